"""Entry script for the Azure ML inference server (azmlinfsrv): init() once, run() per request.

Request:  {"data": [[10 numbers], ...]}      Response: {"result": [prediction, ...]}
A classifier's predictions are its class labels. With "probabilities": true in the request it
also answers {"classes": [label, ...], "probabilities": [[p per class, in that order], ...]};
a regressor refuses that field with a 400.
Bad input gets HTTP 400 with {"error": "..."} saying what is wrong; each request logs one
JSON line (request id, rows, milliseconds, status).

score.py validates every request itself (shape, numbers only, finite). For scikit-learn's linear
models it then computes the prediction the way their predict() does, without predict()'s second
validation of the same rows, which costs more than the arithmetic (docs/decisions.md). Any other
estimator is called through predict() as before.

Settings (environment): AZUREML_MODEL_DIR (set by Azure ML; the model may sit at its root
or under <name>/<version>/), SCORING_MAX_ROWS (default 10000).
"""

import json
import logging
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Optional

import joblib
import numpy as np

try:  # the package azmlinfsrv ships in
    from azureml_inference_server_http.api.aml_response import AMLResponse
except ImportError:  # older Azure ML images ship it under azureml-contrib-services
    from azureml.contrib.services.aml_response import AMLResponse

MODEL_FILE = "model.joblib"
DEFAULT_MAX_ROWS = 10_000

logger = logging.getLogger("scoring")
# A probe batch at init: the fast path must give exactly what predict() gives, or it is not used.
PROBE_ROWS = 64
PROBE_SEED = 20261202

model: Any = None
predict: Any = None  # model.predict, or the same computation without its validation (fast_predictor)
n_features: int = 0
max_rows: int = DEFAULT_MAX_ROWS


class BadRequest(ValueError):
    """The request cannot be scored; the message goes back to the caller."""


def find_model_file(model_dir: Path) -> Path:
    """The model file at the root of AZUREML_MODEL_DIR or under <name>/<version>/."""
    direct = model_dir / MODEL_FILE
    if direct.is_file():
        return direct
    nested = sorted(model_dir.glob(f"*/*/{MODEL_FILE}")) or sorted(model_dir.glob(f"*/{MODEL_FILE}"))
    if len(nested) == 1:
        return nested[0]
    if not nested:
        raise FileNotFoundError(f"no {MODEL_FILE} under AZUREML_MODEL_DIR={model_dir}")
    raise FileNotFoundError(f"several models under AZUREML_MODEL_DIR={model_dir}: {', '.join(str(p) for p in nested)}")


def _configure_logging() -> None:
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


def fast_predictor(estimator: Any) -> Optional[Any]:
    """The arithmetic of a linear model's predict() without its input validation, or None.

    Only for scikit-learn's own linear models (classes of sklearn.linear_model, predict() defined
    there too): their predict() is input validation, then the arithmetic below. Rows reaching it are
    already a finite 2-D float64 array. init() still compares it with predict() before using it.
    """
    try:
        from sklearn.linear_model._base import LinearClassifierMixin, LinearModel
    except ImportError:  # another scikit-learn layout: keep predict()
        return None
    kind = type(estimator)
    predict_owner = next((c for c in kind.__mro__ if "predict" in c.__dict__), object)
    if not (_in_linear_models(kind) and _in_linear_models(predict_owner)):
        return None
    coef, intercept = getattr(estimator, "coef_", None), getattr(estimator, "intercept_", None)
    if not isinstance(coef, np.ndarray) or coef.dtype != np.float64 or intercept is None:
        return None
    if issubclass(kind, LinearModel) and not issubclass(kind, LinearClassifierMixin):
        weights = coef if coef.ndim == 1 else coef.T
        return lambda rows: rows @ weights + intercept
    if issubclass(kind, LinearClassifierMixin) and predict_owner is LinearClassifierMixin:
        weights, classes = coef.T, estimator.classes_
        if coef.shape[0] == 1:  # binary: one score, the second class where it is > 0
            return lambda rows: classes.take(((rows @ weights + intercept).reshape(-1) > 0).astype(np.intp))
        return lambda rows: classes.take((rows @ weights + intercept).argmax(axis=1))
    return None


def _in_linear_models(kind: type) -> bool:
    return kind.__module__.startswith("sklearn.linear_model.")


def _same_as_predict(fast: Any, estimator: Any, width: int) -> bool:
    """The fast path against predict() on seeded probe rows: equal, bit for bit."""
    probe = np.random.default_rng(PROBE_SEED).normal(size=(PROBE_ROWS, width))
    try:
        return bool(np.array_equal(fast(probe), estimator.predict(probe)))
    except Exception:  # any doubt keeps predict()
        return False


def init() -> None:
    global model, predict, n_features, max_rows
    _configure_logging()
    model_dir = Path(os.environ.get("AZUREML_MODEL_DIR", "."))
    model_path = find_model_file(model_dir)
    model = joblib.load(model_path)
    n_features = int(getattr(model, "n_features_in_", 0))
    fast = fast_predictor(model) if n_features and getattr(model, "feature_names_in_", None) is None else None
    fast_path = fast is not None and _same_as_predict(fast, model, n_features)
    predict = fast if fast_path else model.predict
    raw_max = os.environ.get("SCORING_MAX_ROWS", str(DEFAULT_MAX_ROWS))
    try:
        max_rows = int(raw_max)
    except ValueError:
        raise ValueError(f"SCORING_MAX_ROWS must be an integer, got {raw_max!r}") from None
    path = "linear, without repeated validation" if fast_path else "predict()"
    logger.info(
        json.dumps(
            {"event": "init", "model": str(model_path), "features": n_features, "max_rows": max_rows, "path": path}
        )
    )


def parse_request(raw_data: str) -> tuple[np.ndarray, bool]:
    """The rows as a 2-D float array and whether class probabilities were asked for, or BadRequest."""
    try:
        body = json.loads(raw_data)
    except (ValueError, TypeError):
        raise BadRequest('request body is not valid JSON; expected {"data": [[...], ...]}') from None
    if not isinstance(body, dict) or "data" not in body:
        raise BadRequest('expected a JSON object with a "data" field: {"data": [[...], ...]}')
    wants_probabilities = body.get("probabilities", False)
    if not isinstance(wants_probabilities, bool):
        raise BadRequest('"probabilities" must be true or false')
    if wants_probabilities and not hasattr(model, "predict_proba"):
        raise BadRequest('"probabilities": this model is not a classifier; it predicts numbers, not classes')
    return parse_rows(body["data"], raw_data), wants_probabilities


def parse_rows(data: Any, raw_data: str) -> np.ndarray:
    """The "data" field as a 2-D float array, or BadRequest naming what is wrong."""
    if not isinstance(data, list) or not data:
        raise BadRequest('"data" must be a non-empty list of rows')
    if len(data) > max_rows:
        raise BadRequest(f'"data" has {len(data)} rows; at most {max_rows} per request')
    try:
        rows = np.array(data)
    except ValueError:
        raise BadRequest(
            f'every row of "data" must be a list of {n_features} numbers (rows differ in length)'
        ) from None
    # numpy turns true/false into numbers beside floats, so look for them. The text test keeps it
    # cheap: "true" has a "u", "false" an "s", and a body of numbers under "data" has neither.
    if rows.dtype.kind not in "if" or (("u" in raw_data or "s" in raw_data) and _has_bool(data)):
        raise BadRequest(f'"data" must hold only numbers; found {_first_non_number(data)}')
    if rows.ndim != 2 or (n_features and rows.shape[1] != n_features):
        shape = "x".join(map(str, rows.shape))
        raise BadRequest(f'"data" must be a list of rows of {n_features} numbers; got shape {shape}')
    rows = rows.astype(np.float64, copy=False)
    if not np.isfinite(rows).all():
        raise BadRequest('"data" holds NaN or Infinity; every value must be a finite number')
    return rows


def _has_bool(data: list) -> bool:
    return any(isinstance(v, bool) for row in data for v in (row if isinstance(row, list) else [row]))


def _first_non_number(data: list) -> str:
    for row in data:
        for value in row if isinstance(row, list) else [row]:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                return f"{json.dumps(value)[:40]} ({type(value).__name__})"
    return "a value that is not a number"


def _server_request_id() -> str:
    """The id azmlinfsrv gave this request (it returns it as x-request-id), so log lines match up."""
    try:
        from flask import g

        return str(g.request_id) or str(uuid.uuid4())
    except (ImportError, RuntimeError, AttributeError):  # outside a server request (tests, benchmarks)
        return str(uuid.uuid4())


def run(raw_data: str, request_headers: Optional[dict] = None) -> Any:
    started = time.perf_counter()
    headers = request_headers or {}
    request_id = headers.get("X-Request-Id") or headers.get("x-request-id") or _server_request_id()
    rows = 0
    try:
        features, wants_probabilities = parse_request(raw_data)
        rows = len(features)
        result = {"result": predict(features).tolist()}
        if wants_probabilities:
            result["classes"] = model.classes_.tolist()
            result["probabilities"] = model.predict_proba(features).tolist()
        status = 200
    except BadRequest as exc:
        result = AMLResponse({"error": str(exc)}, 400, json_str=True)
        status = 400
    elapsed_ms = (time.perf_counter() - started) * 1000
    logger.info(
        '{"event": "score", "request_id": %s, "rows": %d, "ms": %.3f, "status": %d}',
        json.dumps(request_id),
        rows,
        elapsed_ms,
        status,
    )
    return result
