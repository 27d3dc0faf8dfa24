"""Building the estimator a params file names, e.g.

    {"estimator": "sklearn.linear_model.Ridge", "params": {"alpha": 0.4}}

Only scikit-learn regressors are allowed: the name is imported, so it must not point at
arbitrary code, and the evaluation gate compares regression losses.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from ml_pipeline.errors import PipelineInputError

DEFAULT_PARAMS: dict[str, Any] = {"estimator": "sklearn.linear_model.Ridge", "params": {"alpha": 0.4}}


def resolve_params(document: dict[str, Any] | None, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Merge a params document and per-release overrides over the default."""
    document = document or {}
    if not isinstance(document, dict):
        raise PipelineInputError("params file must hold a JSON object with 'estimator' and 'params'")
    unknown_keys = set(document) - {"estimator", "params"}
    if unknown_keys:
        raise PipelineInputError(f"params file has unknown keys: {', '.join(sorted(unknown_keys))}")
    estimator = document.get("estimator", DEFAULT_PARAMS["estimator"])
    if "estimator" in document:
        params = dict(document.get("params") or {})
    else:
        params = {**DEFAULT_PARAMS["params"], **(document.get("params") or {})}
    if not isinstance(params, dict):
        raise PipelineInputError("'params' must be a JSON object of estimator parameters")
    params.update(overrides or {})
    return {"estimator": estimator, "params": params}


def build_estimator(spec: dict[str, Any], seed: int) -> Any:
    from sklearn.base import is_regressor

    name = spec["estimator"]
    if not isinstance(name, str) or not name.startswith("sklearn.") or "." not in name[len("sklearn.") :]:
        raise PipelineInputError(
            f"estimator must be a scikit-learn class path like sklearn.linear_model.Ridge, got {name!r}"
        )
    module_name, _, class_name = name.rpartition(".")
    try:
        estimator_class = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError):
        raise PipelineInputError(f"unknown estimator {name!r}") from None
    if not inspect.isclass(estimator_class) or not is_regressor(estimator_class()):
        raise PipelineInputError(f"{name} is not a scikit-learn regressor")
    estimator: Any = estimator_class()  # scikit-learn ships no type information
    valid = estimator.get_params()
    unknown = sorted(set(spec["params"]) - set(valid))
    if unknown:
        raise PipelineInputError(f"{name} has no parameter(s) {', '.join(unknown)}")
    params = dict(spec["params"])
    if "random_state" in valid and "random_state" not in params:
        params["random_state"] = seed  # deterministic training for seeded estimators
    try:
        estimator.set_params(**params)
    except (TypeError, ValueError) as exc:
        raise PipelineInputError(f"bad parameters for {name}: {exc}") from None
    return estimator
