"""Endpoint tests over HTTP: a smoke test and an integration test against the model's own predictions.

Works for any endpoint that speaks score.py's contract (local azmlinfsrv, the production
router, ACI/AKS given a reachable URL). An endpoint that is down, slow or wrong gives a failed
TestReport whose checks say what went wrong; these tests never raise for the endpoint's sake.
The local platform uses ``HttpEndpointTester`` as it is; the Azure one adds the AKS endpoint's
key and asks Azure ML for its health (platforms/azure/testing.py).
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

import requests

from functions.domain.refs import Endpoint, ModelRef, TestReport
from platforms.common.model_files import MODEL_FILE, ModelFiles

TOLERANCE = 1e-9
WRONG_SHAPE = b'{"data": [[1, 2]]}'
NOT_JSON = b"this is not JSON"
# 4xx answers that come before the scoring script sees the body: not "malformed input rejected".
NOT_VALIDATION = {401: "unauthorised", 403: "forbidden", 404: "no such route"}


class HttpClient(Protocol):
    """The two calls the tester makes: the ``requests`` module (the default) or a ``requests.Session``."""

    def get(self, url: str, *, headers: Mapping[str, str], timeout: float) -> requests.Response: ...

    def post(
        self, url: str, data: bytes | None = None, json: Any = None, *, headers: Mapping[str, str], timeout: float
    ) -> requests.Response: ...


def health_url(scoring_url: str) -> str:
    """The server's root (its health probe), e.g. http://host:5001/score -> http://host:5001/."""
    parts = urlsplit(scoring_url)
    return urlunsplit((parts.scheme, parts.netloc, "/", "", ""))


class HttpEndpointTester:
    """EndpointTester port, with ``rows`` rows of ``data`` (the pipeline's data source) as test input."""

    def __init__(
        self,
        data: str = "diabetes",
        rows: int = 20,
        timeout_s: float = 10.0,
        model_files: ModelFiles | None = None,
        http: HttpClient = requests,
    ) -> None:
        """``model_files(model, directory)`` puts the model's files in ``directory`` (e.g. a registry
        download); without it the model's files are read from ``model.location``. ``http`` sends the
        requests (tests pass a fake transport)."""
        self.data = data
        self.rows = rows
        self.timeout_s = timeout_s
        self.model_files = model_files
        self.http = http

    def smoke(self, endpoint: Endpoint) -> TestReport:
        checks = [
            _check("health", lambda: self._health(endpoint)),
            _check("score_one_row", lambda: self._score_one_row(endpoint)),
        ]
        return _report(f"smoke test of {endpoint.name} ({endpoint.scoring_url})", checks)

    def integration(self, endpoint: Endpoint, model: ModelRef) -> TestReport:
        checks = [
            _check("predictions_match_model", lambda: self._predictions_match(endpoint, model)),
            _check("wrong_shape_rejected", lambda: self._rejected(endpoint, WRONG_SHAPE)),
            _check("non_json_rejected", lambda: self._rejected(endpoint, NOT_JSON)),
        ]
        return _report(
            f"integration test of {endpoint.name} ({endpoint.scoring_url}) against {model.name}:{model.version}", checks
        )

    def _headers(self, endpoint: Endpoint) -> dict[str, str]:
        """Extra headers for every request to ``endpoint`` (none here; e.g. a key on Azure)."""
        return {}

    def _health(self, endpoint: Endpoint) -> tuple[bool, str]:
        url = health_url(endpoint.scoring_url)
        response = self.http.get(url, headers=self._headers(endpoint), timeout=self.timeout_s)
        return response.status_code == 200, f"GET {url} -> {response.status_code}"

    def _score_one_row(self, endpoint: Endpoint) -> tuple[bool, str]:
        response = self._post(endpoint, {"data": self._features[:1].tolist()})
        if response.status_code != 200:
            return False, f"POST 1 row -> {response.status_code}: {response.text[:200]}"
        result = _json(response).get("result")
        ok = isinstance(result, list) and len(result) == 1 and (_finite(result[0]) or _label(result[0]))
        expected = ' (expected {"result": [a number or a class label]})'
        return ok, f"POST 1 row -> 200 {response.text[:200]}" + ("" if ok else expected)

    def _predictions_match(self, endpoint: Endpoint, model: ModelRef) -> tuple[bool, str]:
        import joblib

        rows = self._features[: self.rows]
        with self._model_dir(model) as directory:
            estimator = joblib.load(directory / MODEL_FILE)
        if hasattr(estimator, "classes_") and hasattr(estimator, "predict_proba"):
            return self._classes_match(endpoint, estimator, rows)
        expected = estimator.predict(rows).tolist()
        response = self._post(endpoint, {"data": rows.tolist()})
        if response.status_code != 200:
            return False, f"POST {len(rows)} rows -> {response.status_code}: {response.text[:200]}"
        result = _json(response).get("result")
        if not isinstance(result, list) or len(result) != len(expected):
            return False, f"expected {len(expected)} predictions, got {response.text[:200]}"
        if not all(_finite(value) for value in result):
            return False, f"non-numeric predictions: {response.text[:200]}"
        differences = [abs(got - want) for got, want in zip(result, expected, strict=True)]
        wrong = sum(difference > TOLERANCE for difference in differences)
        if wrong:
            return (
                False,
                f"{wrong}/{len(expected)} predictions differ from the model's (max |diff| {max(differences):.4g})",
            )
        return True, f"{len(expected)} predictions equal the model's (max |diff| {max(differences):.1e})"

    def _classes_match(self, endpoint: Endpoint, estimator: Any, rows: Any) -> tuple[bool, str]:
        """A classifier: labels equal the model's exactly; probabilities, per class name, within TOLERANCE."""
        import numpy as np

        labels = estimator.predict(rows).tolist()
        classes = estimator.classes_.tolist()
        expected = estimator.predict_proba(rows)
        response = self._post(endpoint, {"data": rows.tolist(), "probabilities": True})
        if response.status_code != 200:
            return False, f"POST {len(rows)} rows with probabilities -> {response.status_code}: {response.text[:200]}"
        answer = _json(response)
        if answer.get("result") != labels:
            wrong = sum(got != want for got, want in zip(answer.get("result") or [], labels, strict=False))
            return False, f"labels differ from the model's ({wrong or 'shape'} of {len(labels)}): {response.text[:200]}"
        if answer.get("classes") != classes:
            return False, f"classes {answer.get('classes')!r} are not the model's {classes!r}"
        try:
            served = np.asarray(answer.get("probabilities"), dtype=np.float64)  # null -> NaN
        except (TypeError, ValueError):  # ragged rows, strings
            served = None
        if served is None or served.shape != expected.shape:
            return False, f"expected {len(labels)} rows of {len(classes)} probabilities, got {response.text[:200]}"
        worst = float(np.max(np.abs(served - expected))) if np.isfinite(served).all() else math.inf
        if worst > TOLERANCE:
            return False, f"probabilities differ from the model's (max |diff| {worst:.4g})"
        return True, (
            f"{len(labels)} labels equal the model's; probabilities of {', '.join(map(str, classes))} "
            f"within {TOLERANCE:g} (max |diff| {worst:.1e})"
        )

    def _rejected(self, endpoint: Endpoint, body: bytes) -> tuple[bool, str]:
        headers = {"Content-Type": "application/json", **self._headers(endpoint)}
        response = self.http.post(endpoint.scoring_url, data=body, headers=headers, timeout=self.timeout_s)
        status = response.status_code
        detail = f"POST {body[:40]!r} -> {status}: {response.text[:120]}"
        if status in NOT_VALIDATION:
            return False, f"{detail} ({NOT_VALIDATION[status]}: refused before the scoring script saw it)"
        return 400 <= status < 500, detail + ("" if status < 500 else " (expected a 4xx)")

    def _post(self, endpoint: Endpoint, document: dict[str, Any]) -> requests.Response:
        headers = self._headers(endpoint)
        return self.http.post(endpoint.scoring_url, json=document, headers=headers, timeout=self.timeout_s)

    @contextmanager
    def _model_dir(self, model: ModelRef) -> Iterator[Path]:
        """The directory holding the model's files: ``model.location``, or a temporary download."""
        if self.model_files is None:
            yield Path(model.location)
            return
        with tempfile.TemporaryDirectory(prefix="mlops-model-") as directory:
            self.model_files(model, Path(directory))
            found = sorted(Path(directory).rglob(MODEL_FILE))
            yield found[0].parent if found else Path(directory)

    @cached_property
    def _features(self) -> Any:
        """The data's feature rows as floats, columns in the data's order (scikit-learn's for diabetes)."""
        import numpy as np

        from ml_pipeline.dataset import DEFAULT_TARGET, feature_columns, load_dataset

        frame = load_dataset(self.data)
        return frame[feature_columns(frame, DEFAULT_TARGET)].to_numpy(dtype=np.float64)


def _check(name: str, run: Callable[[], tuple[bool, str]]) -> dict[str, Any]:
    try:
        passed, detail = run()
    except requests.RequestException as exc:
        passed, detail = False, f"request failed: {type(exc).__name__}: {exc}"
    except Exception as exc:  # e.g. a model file that cannot be loaded: a failed check, not a crash
        passed, detail = False, f"{type(exc).__name__}: {exc}"
    return {"name": name, "passed": passed, "detail": detail}


def _report(title: str, checks: list[dict[str, Any]]) -> TestReport:
    failed = [check for check in checks if not check["passed"]]
    if not failed:
        return TestReport(True, f"{title}: all {len(checks)} checks passed", checks)
    reasons = " ".join("; ".join(f"{check['name']}: {check['detail']}" for check in failed).split())
    return TestReport(False, f"{title}: {len(failed)}/{len(checks)} checks failed ({reasons})", checks)


def _json(response: requests.Response) -> dict[str, Any]:
    try:
        document = response.json()
    except ValueError:
        return {}
    return document if isinstance(document, dict) else {}


def _label(value: Any) -> bool:
    """A class label score.py can answer beyond numbers (``_finite``): a non-empty string or a boolean."""
    return isinstance(value, bool) or (isinstance(value, str) and value != "")


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
