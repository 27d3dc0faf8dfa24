"""Building the estimator a params file names, e.g.

    {"estimator": "sklearn.linear_model.Ridge", "params": {"alpha": 0.4}}

Only scikit-learn classes are allowed (the name is imported, so it must not point at
arbitrary code), and only ones that fit the task: regressors for regression, classifiers with
``predict_proba`` for classification (the gate compares log loss, Brier score and AUC, which
need probabilities).
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from ml_pipeline.errors import PipelineInputError

DEFAULT_PARAMS: dict[str, Any] = {"estimator": "sklearn.linear_model.Ridge", "params": {"alpha": 0.4}}
# max_iter: lbfgs needs more than its default 100 steps on unscaled features such as breast_cancer's.
DEFAULT_CLASSIFIER: dict[str, Any] = {
    "estimator": "sklearn.linear_model.LogisticRegression",
    "params": {"max_iter": 10000},
}
DEFAULTS_BY_TASK = {"regression": DEFAULT_PARAMS, "classification": DEFAULT_CLASSIFIER}


def resolve_params(
    document: dict[str, Any] | None, overrides: dict[str, Any] | None = None, task: str = "regression"
) -> dict[str, Any]:
    """Merge a params document and per-release overrides over the task's default."""
    default = DEFAULTS_BY_TASK[task]
    document = document or {}
    if not isinstance(document, dict):
        raise PipelineInputError("params file must hold a JSON object with 'estimator' and 'params'")
    unknown_keys = set(document) - {"estimator", "params"}
    if unknown_keys:
        raise PipelineInputError(f"params file has unknown keys: {', '.join(sorted(unknown_keys))}")
    estimator = document.get("estimator", default["estimator"])
    if "estimator" in document:
        params = dict(document.get("params") or {})
    else:
        params = {**default["params"], **(document.get("params") or {})}
    if not isinstance(params, dict):
        raise PipelineInputError("'params' must be a JSON object of estimator parameters")
    params.update(overrides or {})
    return {"estimator": estimator, "params": params}


def build_estimator(spec: dict[str, Any], seed: int, task: str = "regression") -> Any:
    from sklearn.base import is_classifier, is_regressor

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
    if not inspect.isclass(estimator_class):
        raise PipelineInputError(f"{name} is not a scikit-learn estimator class")
    try:
        estimator: Any = estimator_class()  # scikit-learn ships no type information
    except TypeError as exc:  # meta-estimators need arguments (VotingClassifier's estimators=...)
        raise PipelineInputError(f"{name} cannot be built from parameters alone: {exc}") from None
    if task == "classification":
        if not is_classifier(estimator):
            raise PipelineInputError(f"{name} is not a scikit-learn classifier (the task is classification)")
    elif not is_regressor(estimator):
        raise PipelineInputError(f"{name} is not a scikit-learn regressor (the task is regression)")
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
    # After set_params: some classifiers offer probabilities only when a parameter asks (SVC probability=True).
    if task == "classification" and not hasattr(estimator, "predict_proba"):
        raise PipelineInputError(
            f"{name} with these parameters gives no class probabilities (predict_proba), "
            "which log loss, Brier score and AUC need"
        )
    return estimator
