"""Train a regressor or a classifier and write the model with its metrics, data profile and model card.

    python -m ml_pipeline.train --data diabetes|breast_cancer|PATH.csv --output DIR
        [--task regression|classification] [--estimator sklearn.x.Y] [--params PARAMS.json] [--param alpha=0.5]

Outputs in DIR: model.joblib, metrics.json (holdout metrics: mse/rmse/mae/r2 for a regressor;
log loss, Brier score, accuracy, balanced accuracy and ROC AUC for a classifier), profile.json
(the reference profile for data_checks) and model_card.json (task, params, split, data hash,
row counts, library versions; a classifier's classes and holdout confusion matrix).
A classifier's holdout is stratified by class.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path
from typing import Any

from ml_pipeline.dataset import (
    DEFAULT_TARGET,
    TASKS,
    data_fingerprint,
    default_task,
    feature_columns,
    load_dataset,
    require_target,
)
from ml_pipeline.errors import PipelineInputError
from ml_pipeline.estimators import build_estimator, resolve_params
from ml_pipeline.jsonio import read_json, write_json
from ml_pipeline.metrics import (
    CLASSIFICATION_METRICS,
    REGRESSION_METRICS,
    aligned_probabilities,
    class_positions,
    classification_metrics,
    confusion_matrix,
    regression_metrics,
)
from ml_pipeline.profile import build_profile
from ml_pipeline.split import DEFAULT_HOLDOUT_FRACTION, DEFAULT_SEED, make_split, make_stratified_split

MODEL_FILE = "model.joblib"
METRICS_FILE = "metrics.json"
PROFILE_FILE = "profile.json"
CARD_FILE = "model_card.json"


def library_versions() -> dict[str, str]:
    import joblib
    import numpy
    import pandas
    import sklearn

    return {
        "python": platform.python_version(),
        "scikit-learn": sklearn.__version__,
        "numpy": numpy.__version__,
        "pandas": pandas.__version__,
        "joblib": joblib.__version__,
    }


def train(
    data: str,
    output: Path,
    params_document: dict[str, Any] | None = None,
    overrides: dict[str, Any] | None = None,
    target: str = DEFAULT_TARGET,
    seed: int = DEFAULT_SEED,
    holdout_fraction: float = DEFAULT_HOLDOUT_FRACTION,
    task: str | None = None,
) -> dict[str, Any]:
    """Train, write the outputs to ``output`` and return the model card. ``task``: default_task(data)."""
    import joblib
    import numpy as np

    task = task or default_task(data)
    if task not in TASKS:
        raise PipelineInputError(f"task must be one of {', '.join(TASKS)}, got {task!r}")
    frame = load_dataset(data)
    require_target(frame, target)
    features = feature_columns(frame, target)
    x, y = _arrays(frame, features, target, task)
    try:
        split = (
            make_stratified_split(y, seed, holdout_fraction)
            if task == "classification"
            else make_split(len(frame), seed, holdout_fraction)
        )
    except ValueError as exc:
        raise PipelineInputError(str(exc)) from None
    spec = resolve_params(params_document, overrides, task)
    estimator = build_estimator(spec, seed, task)

    train_rows, holdout_rows = split.train_index, np.asarray(split.holdout_index)
    try:
        estimator.fit(x[train_rows], y[train_rows])
    except ValueError as exc:
        raise PipelineInputError(f"training failed: {exc}") from None
    extra: dict[str, Any] = {}
    names: tuple[str, ...]
    if task == "classification":
        metrics, extra = _classifier_holdout(estimator, x[holdout_rows], y[holdout_rows])
        names = CLASSIFICATION_METRICS
    else:
        metrics = regression_metrics(y[holdout_rows], estimator.predict(x[holdout_rows]))
        names = REGRESSION_METRICS
    metrics.update(n_train=int(train_rows.size), n_holdout=int(holdout_rows.size))

    card = {
        "task": task,
        "estimator": spec["estimator"],
        "params": spec["params"],
        "target": target,
        "features": features,
        "data": {"source": data, "sha256": data_fingerprint(frame), "n_rows": len(frame)},
        "split": split.to_json(),
        "rows": {"train": int(train_rows.size), "holdout": int(holdout_rows.size)},
        "metrics": {k: metrics[k] for k in names},
        **extra,
        "libraries": library_versions(),
    }
    output.mkdir(parents=True, exist_ok=True)
    joblib.dump(estimator, output / MODEL_FILE)
    write_json(output / METRICS_FILE, metrics)
    write_json(output / PROFILE_FILE, build_profile(frame.iloc[train_rows], target, task))
    write_json(output / CARD_FILE, card)
    return card


def _arrays(frame: Any, features: list[str], target: str, task: str) -> tuple[Any, Any]:
    """Features as finite float64; the target as float64 (regression) or as the labels it holds."""
    import numpy as np

    try:
        x = frame[features].to_numpy(dtype=np.float64)
        y = frame[target].to_numpy(dtype=np.float64) if task == "regression" else frame[target].to_numpy()
    except (TypeError, ValueError) as exc:
        raise PipelineInputError(f"data must be numeric to train on: {exc}") from None
    if task == "classification" and frame[target].isna().any():
        raise PipelineInputError("the target has missing labels; run ml_pipeline.data_checks for details")
    if not (np.isfinite(x).all() and (task == "classification" or np.isfinite(y).all())):
        raise PipelineInputError("data has missing or infinite values; run ml_pipeline.data_checks for details")
    return x, y


def _classifier_holdout(estimator: Any, x: Any, y: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Holdout metrics of a fitted classifier, and what the card records beside them."""
    import numpy as np

    model_classes = np.asarray(estimator.classes_)
    classes = np.unique(np.concatenate([model_classes, y]))  # a holdout label the model never saw counts too
    truth = class_positions(y, classes)
    probabilities = aligned_probabilities(estimator.predict_proba(x), model_classes, classes)
    predicted = class_positions(np.asarray(estimator.predict(x)), classes)
    metrics: dict[str, Any] = classification_metrics(probabilities, predicted, truth)
    return metrics, {"classes": model_classes.tolist(), "confusion_matrix": confusion_matrix(truth, predicted, classes)}


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """``key=value`` pairs; values are read as JSON when they parse, else kept as strings."""
    overrides: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise PipelineInputError(f"--param expects key=value, got {pair!r}")
        try:
            overrides[key] = json.loads(raw)
        except json.JSONDecodeError:
            overrides[key] = raw
    return overrides


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ml_pipeline.train", description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, help="'diabetes', 'breast_cancer' or a CSV path")
    parser.add_argument("--output", required=True, type=Path, help="directory for the model and its records")
    parser.add_argument("--task", choices=TASKS, help="default: the built-in data set's task, else regression")
    parser.add_argument(
        "--estimator", help="scikit-learn class path; its own defaults, then --param (default: the task's)"
    )
    parser.add_argument("--params", help='JSON file: {"estimator": "sklearn....", "params": {...}}')
    parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE", help="override one parameter")
    parser.add_argument("--target", default=DEFAULT_TARGET)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="split and estimator seed")
    parser.add_argument("--holdout-fraction", type=float, default=DEFAULT_HOLDOUT_FRACTION)
    args = parser.parse_args(argv)
    try:
        document = read_json(args.params, what="params file") if args.params else None
        if args.estimator:
            if document is not None and not isinstance(document, dict):
                raise PipelineInputError("params file must hold a JSON object with 'estimator' and 'params'")
            if document and "estimator" in document:
                raise PipelineInputError("name the estimator once: --estimator or the params file, not both")
            document = {**(document or {}), "estimator": args.estimator}
        card = train(
            args.data,
            args.output,
            document,
            parse_overrides(args.param),
            args.target,
            args.seed,
            args.holdout_fraction,
            args.task,
        )
    except PipelineInputError as exc:
        print(f"train: error: {exc}", file=sys.stderr)
        return 2
    metrics = card["metrics"]
    if card["task"] == "classification":
        measured = (
            f"log_loss={metrics['log_loss']:.4f} brier={metrics['brier']:.4f} accuracy={metrics['accuracy']:.3f} "
            f"balanced_accuracy={metrics['balanced_accuracy']:.3f} roc_auc={metrics['roc_auc']:.3f}"
        )
    else:
        measured = (
            f"mse={metrics['mse']:.1f} rmse={metrics['rmse']:.2f} mae={metrics['mae']:.2f} r2={metrics['r2']:.3f}"
        )
    print(
        f"train: {card['estimator']} {json.dumps(card['params'])} on {card['rows']['train']} rows; "
        f"holdout ({card['rows']['holdout']} rows) {measured}; written to {args.output}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
