"""The entry script of a local production deployment with an injected fault (MLOPS_LOCAL_FAULT).

Off by default: the local deployer uses it only for the production deployments whose key matches the
setting's ``deployments`` pattern, never for staging. It loads the image's own score.py
(MLOPS_FAULT_SCORE_SCRIPT) and answers through it; after the first ``after_requests`` scoring
requests (which direct tests use up) it adds ``bias`` to a ``share`` of the rows' predictions, and
answers an ``error_share`` of the requests with HTTP 500. Rows and requests are picked by counting,
not at random, so a run is repeatable. For demos and tests of the rollout's analysis: a fault only
live traffic shows, caught in shadow or canary.
"""

import importlib.util
import json
import math
import os
import threading
from typing import Any

_spec = importlib.util.spec_from_file_location("mlops_scored_model", os.environ["MLOPS_FAULT_SCORE_SCRIPT"])
assert _spec is not None and _spec.loader is not None
scored = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(scored)

FAULT: dict[str, Any] = json.loads(os.environ.get("MLOPS_FAULT") or "{}")
_lock = threading.Lock()
_requests = 0
_rows = 0


def init() -> None:
    scored.init()
    print(json.dumps({"event": "fault_injection", "fault": FAULT}), flush=True)


def run(raw_data: str, request_headers: dict | None = None) -> Any:
    global _requests, _rows
    result = scored.run(raw_data, request_headers)
    if not isinstance(result, dict) or not isinstance(result.get("result"), list):
        return result  # a 4xx answer stays as it is
    with _lock:
        _requests += 1
        number = _requests
        if number <= int(FAULT.get("after_requests", 0)):
            return result
        if _picked(number - int(FAULT.get("after_requests", 0)), float(FAULT.get("error_share", 0.0))):
            return scored.AMLResponse({"error": "injected fault (MLOPS_LOCAL_FAULT)"}, 500, json_str=True)
        bias, share = float(FAULT.get("bias", 0.0)), float(FAULT.get("share", 1.0))
        predictions = result["result"]
        for index, value in enumerate(predictions):
            _rows += 1
            if bias and isinstance(value, (int, float)) and _picked(_rows, share):
                predictions[index] = value + bias
    return result


def _picked(count: int, share: float) -> bool:
    """The ``count``-th item is one of the ``share`` picked: spread evenly, exactly share x n of n."""
    return math.floor(count * share) > math.floor((count - 1) * share)
