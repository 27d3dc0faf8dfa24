"""Score a candidate and the champion on the same holdout rows, with paired evidence.

    python -m ml_pipeline.evaluate --candidate DIR --champion DIR|none --data diabetes|PATH.csv --output evaluation.json

The holdout rows are the candidate's (recorded by training). For regressors the report gives
each model's mse/rmse/mae/r2; for the pair, the mean difference (candidate minus champion)
of per-row squared and absolute errors with paired-bootstrap intervals, and the r2
difference derived from the squared-error one. For classifiers: each model's log loss,
Brier score, accuracy, balanced accuracy and ROC AUC; for the pair, per-row log loss, Brier
and 0/1 correctness differences with the same paired bootstrap, and AUC and balanced
accuracy differences computed on each resample's rows (the same draws).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ml_pipeline.bootstrap import (
    DEFAULT_RESAMPLES,
    DEFAULT_SEED,
    bootstrap_means,
    bootstrap_statistic,
    percentile_intervals,
)
from ml_pipeline.dataset import data_fingerprint, load_dataset
from ml_pipeline.errors import PipelineInputError
from ml_pipeline.jsonio import read_json, write_json
from ml_pipeline.metrics import (
    aligned_probabilities,
    balanced_accuracy,
    class_positions,
    classification_metrics,
    confusion_matrix,
    per_row_brier,
    per_row_log_loss,
    regression_metrics,
    roc_auc,
)
from ml_pipeline.split import Split
from ml_pipeline.train import CARD_FILE, MODEL_FILE

REPORT_VERSION = 1
NO_CHAMPION = "none"
# The gate reads "lower is better" for losses and "higher is better" for r2, accuracy and AUC.
DIRECTIONS = {
    "mse": "lower_is_better",
    "mae": "lower_is_better",
    "r2": "higher_is_better",
    "log_loss": "lower_is_better",
    "brier": "lower_is_better",
    "accuracy": "higher_is_better",
    "balanced_accuracy": "higher_is_better",
    "roc_auc": "higher_is_better",
}
BOOTSTRAP_METHOD = "paired percentile bootstrap"


@dataclass(frozen=True)
class ClassifierOutput:
    """A classifier's answers on the holdout rows: predict_proba (columns in ``classes`` order) and predict."""

    classes: np.ndarray
    probabilities: np.ndarray
    labels: np.ndarray


@dataclass(frozen=True)
class TrainedModel:
    directory: Path
    card: dict[str, Any]
    estimator: Any

    def describe(self) -> dict[str, Any]:
        return {
            "path": str(self.directory),
            "estimator": self.card.get("estimator"),
            "params": self.card.get("params"),
            "data_sha256": self.card.get("data", {}).get("sha256"),
        }


def load_trained_model(directory: Path, role: str) -> TrainedModel:
    import joblib

    if not (directory / MODEL_FILE).is_file():
        raise PipelineInputError(f"{role} directory {directory} has no {MODEL_FILE}")
    card = read_json(directory / CARD_FILE, what=f"{role} model card")
    try:
        estimator = joblib.load(directory / MODEL_FILE)
    except Exception as exc:  # a corrupt pickle can raise nearly anything
        raise PipelineInputError(f"cannot load {role} model {directory / MODEL_FILE}: {exc}") from None
    return TrainedModel(directory, card, estimator)


def compare_predictions(
    y_true: np.ndarray,
    candidate_pred: np.ndarray,
    champion_pred: np.ndarray | None,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> dict[str, Any]:
    """Metrics for both models and paired-bootstrap differences (candidate minus champion)."""
    report: dict[str, Any] = {
        "n": int(y_true.size),
        "metrics": {"candidate": regression_metrics(y_true, candidate_pred), "champion": None},
        "differences": None,
    }
    if champion_pred is None:
        return report
    report["metrics"]["champion"] = regression_metrics(y_true, champion_pred)
    candidate_err, champion_err = candidate_pred - y_true, champion_pred - y_true
    per_row = np.column_stack([candidate_err**2 - champion_err**2, np.abs(candidate_err) - np.abs(champion_err)])
    estimates = per_row.mean(axis=0)
    samples = bootstrap_means(per_row, resamples, seed)
    bootstrap = {"resamples": resamples, "seed": seed, "method": BOOTSTRAP_METHOD}
    differences: dict[str, dict[str, Any]] = {
        "mse": {"estimate": float(estimates[0]), "intervals": percentile_intervals(samples[:, 0])},
        "mae": {"estimate": float(estimates[1]), "intervals": percentile_intervals(samples[:, 1])},
    }
    # r2 = 1 - mse / var(y) on the same rows, so its difference is the mse one scaled by -1/var(y).
    variance = float(np.mean((y_true - y_true.mean()) ** 2))
    if variance > 0:
        differences["r2"] = {
            "estimate": -differences["mse"]["estimate"] / variance,
            "intervals": {
                level: [-high / variance, -low / variance]
                for level, (low, high) in differences["mse"]["intervals"].items()
            },
        }
    report["differences"] = _oriented(differences)
    report["bootstrap"] = bootstrap
    return report


def _oriented(differences: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    for metric, entry in differences.items():
        entry["direction"] = DIRECTIONS[metric]
        entry["definition"] = "candidate minus champion"
    return differences


def compare_classifiers(
    y_true: np.ndarray,
    candidate: ClassifierOutput,
    champion: ClassifierOutput | None,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> dict[str, Any]:
    """Classification metrics for both models and paired-bootstrap differences (candidate minus champion).

    Log loss, Brier score and accuracy are means of per-row values: their differences are
    bootstrapped as paired per-row differences. AUC and balanced accuracy are not: each resample's
    rows are scored whole for both models and the difference taken there (bootstrap_statistic draws
    the same rows as bootstrap_means). A resample holding one class only has no AUC; such resamples
    are left out of the AUC interval and counted.
    """
    outputs = [candidate] + ([champion] if champion is not None else [])
    classes = np.unique(np.concatenate([np.asarray(y_true), *(output.classes for output in outputs)]))
    truth = class_positions(np.asarray(y_true), classes)
    scored = [
        (aligned_probabilities(o.probabilities, o.classes, classes), class_positions(o.labels, classes))
        for o in outputs
    ]
    # Binary when the candidate and the rows know two classes, whatever else the champion knows.
    binary = np.unique(np.concatenate([np.asarray(y_true), candidate.classes])).size == 2
    report: dict[str, Any] = {
        "n": int(truth.size),
        "task": "classification",
        "classes": classes.tolist(),
        "metrics": {"candidate": classification_metrics(*scored[0], truth, binary), "champion": None},
        "confusion_matrices": {"candidate": confusion_matrix(truth, scored[0][1], classes), "champion": None},
        "differences": None,
    }
    if champion is None:
        return report
    report["metrics"]["champion"] = classification_metrics(*scored[1], truth, binary)
    report["confusion_matrices"]["champion"] = confusion_matrix(truth, scored[1][1], classes)
    (cand_p, cand_label), (champ_p, champ_label) = scored
    per_row = np.column_stack(
        [
            per_row_log_loss(cand_p, truth) - per_row_log_loss(champ_p, truth),
            per_row_brier(cand_p, truth, binary) - per_row_brier(champ_p, truth, binary),
            (cand_label == truth).astype(float) - (champ_label == truth).astype(float),
        ]
    )
    estimates = per_row.mean(axis=0)
    means = bootstrap_means(per_row, resamples, seed)
    k = classes.size

    def resampled(rows: np.ndarray) -> np.ndarray:
        t = truth[rows]
        return np.asarray(
            [
                roc_auc(cand_p[rows], t) - roc_auc(champ_p[rows], t),
                balanced_accuracy(t, cand_label[rows], k) - balanced_accuracy(t, champ_label[rows], k),
            ]
        )

    statistics = bootstrap_statistic(resampled, truth.size, resamples, seed)
    auc_samples = statistics[:, 0][np.isfinite(statistics[:, 0])]
    cand_m, champ_m = report["metrics"]["candidate"], report["metrics"]["champion"]
    differences: dict[str, dict[str, Any]] = {
        "log_loss": {"estimate": float(estimates[0]), "intervals": percentile_intervals(means[:, 0])},
        "brier": {"estimate": float(estimates[1]), "intervals": percentile_intervals(means[:, 1])},
        "accuracy": {"estimate": float(estimates[2]), "intervals": percentile_intervals(means[:, 2])},
        "balanced_accuracy": {
            "estimate": cand_m["balanced_accuracy"] - champ_m["balanced_accuracy"],
            "intervals": percentile_intervals(statistics[:, 1]),
        },
    }
    if auc_samples.size and np.isfinite(cand_m["roc_auc"] - champ_m["roc_auc"]):
        differences["roc_auc"] = {
            "estimate": cand_m["roc_auc"] - champ_m["roc_auc"],
            "intervals": percentile_intervals(auc_samples),
            "undefined_resamples": int(resamples - auc_samples.size),
        }
    report["differences"] = _oriented(differences)
    report["bootstrap"] = {
        "resamples": resamples,
        "seed": seed,
        "method": BOOTSTRAP_METHOD,
        "per_row": ["log_loss", "brier", "accuracy"],
        "whole_resample": ["roc_auc", "balanced_accuracy"],
    }
    return report


def evaluate(
    candidate_dir: Path,
    champion_dir: Path | None,
    data: str,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> dict[str, Any]:
    candidate = load_trained_model(candidate_dir, "candidate")
    champion = load_trained_model(champion_dir, "champion") if champion_dir else None
    task = _task(candidate)
    if champion is not None and _task(champion) != task:
        raise PipelineInputError(
            f"the champion is a {_task(champion)} model and the candidate a {task} one: "
            "their metrics cannot be compared; release a model of the champion's task, or retire the champion"
        )
    frame = load_dataset(data)
    fingerprint = data_fingerprint(frame)
    if fingerprint != candidate.card["data"]["sha256"]:
        raise PipelineInputError(
            f"data {data!r} is not the data the candidate was trained on (sha256 {fingerprint[:12]} vs "
            f"{candidate.card['data']['sha256'][:12]}); its recorded holdout rows would not be held out"
        )
    split = Split.from_json(candidate.card["split"])
    holdout = np.asarray(split.holdout_index)
    target = candidate.card["target"]

    def rows(model: TrainedModel) -> np.ndarray:
        features = model.card["features"]
        missing = [c for c in features if c not in frame.columns]
        if missing:
            raise PipelineInputError(f"{model.directory} needs columns the data lacks: {', '.join(missing)}")
        return frame[features].to_numpy(dtype=np.float64)[holdout]

    if task == "classification":

        def classify(model: TrainedModel) -> ClassifierOutput:
            x = rows(model)
            estimator = model.estimator
            return ClassifierOutput(np.asarray(estimator.classes_), estimator.predict_proba(x), estimator.predict(x))

        y_true = frame[target].to_numpy()[holdout]
        outputs = [classify(candidate)] + ([classify(champion)] if champion else [])
        _require_comparable_labels(y_true, outputs)
        comparison = compare_classifiers(y_true, outputs[0], outputs[1] if champion else None, resamples, seed)
    else:
        y_true = frame[target].to_numpy(dtype=np.float64)[holdout]

        def predict(model: TrainedModel) -> np.ndarray:
            return np.asarray(model.estimator.predict(rows(model)), dtype=float)

        comparison = compare_predictions(
            y_true, predict(candidate), predict(champion) if champion else None, resamples, seed
        )
    compared: dict[str, Any] = {
        "candidate": candidate.describe(),
        "champion": champion.describe() if champion else None,
        "data": {"source": data, "sha256": fingerprint},
        "holdout": {"rows": int(holdout.size), "seed": split.seed, "fraction": split.holdout_fraction},
    }
    if champion is None:
        note = "no champion: nothing to compare against; only the candidate's metrics are reported"
    elif champion.card.get("data", {}).get("sha256") == fingerprint:
        overlap = np.intersect1d(Split.from_json(champion.card["split"]).train_index, holdout).size
        compared["champion_trained_on_holdout_rows"] = int(overlap)
        note = "champion and candidate scored on the same holdout rows" + (
            f"; the champion saw {overlap} of them in training, which favours it" if overlap else ""
        )
    else:
        note = "champion and candidate scored on the same holdout rows; the champion was trained on other data"
    return {"version": REPORT_VERSION, "compared": compared, "note": note, **comparison}


def _require_comparable_labels(y_true: np.ndarray, outputs: list[ClassifierOutput]) -> None:
    """Labels of one type, and a champion that knows every holdout label: otherwise the comparison would
    crash (str vs int) or score the champion 0 on classes it merely names differently."""
    every = [*y_true.tolist(), *(label for output in outputs for label in output.classes.tolist())]
    try:
        np.unique(np.asarray(every, dtype=object))
    except TypeError:
        kinds = ", ".join(sorted({type(label).__name__ for label in every}))
        raise PipelineInputError(f"class labels are of different types ({kinds})") from None
    if len(outputs) == 2:
        champion_classes = outputs[1].classes.tolist()
        unknown = sorted(str(label) for label in set(y_true.tolist()) - set(champion_classes))
        if unknown:
            raise PipelineInputError(
                f"the champion's classes ({', '.join(map(str, champion_classes))}) do not include the holdout's "
                f"{', '.join(unknown)}: the two models name their classes differently"
            )


def _task(model: TrainedModel) -> str:
    """A card from before classification support has no task: it is a regressor's."""
    return str(model.card.get("task") or "regression")


def _summary_lines(report: dict[str, Any]) -> list[str]:
    cand = report["metrics"]["candidate"]
    if report.get("task") == "classification":
        metric, unit = "log_loss", ".4f"
        lines = [
            f"candidate log_loss={cand['log_loss']:.4f} brier={cand['brier']:.4f} accuracy={cand['accuracy']:.3f} "
            f"roc_auc={cand['roc_auc']:.3f}"
        ]
    else:
        metric, unit = "mse", ".1f"
        lines = [f"candidate mse={cand['mse']:.1f} mae={cand['mae']:.2f} r2={cand['r2']:.3f}"]
    if report["differences"]:
        champ = report["metrics"]["champion"]
        diff = report["differences"][metric]
        low, high = diff["intervals"]["0.95"]
        lines.append(
            f"champion {metric}={champ[metric]:{unit}}; difference (candidate - champion) "
            f"{diff['estimate']:+{unit}}, 95% CI [{low:+{unit}}, {high:+{unit}}]"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ml_pipeline.evaluate", description=__doc__.split("\n")[0])
    parser.add_argument("--candidate", required=True, type=Path, help="training output directory")
    parser.add_argument("--champion", required=True, help="champion's training output directory, or 'none'")
    parser.add_argument("--data", required=True, help="the built-in name or the CSV the candidate was trained on")
    parser.add_argument("--output", required=True, type=Path, help="where to write evaluation.json")
    parser.add_argument("--resamples", type=int, default=DEFAULT_RESAMPLES)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="bootstrap seed")
    args = parser.parse_args(argv)
    champion_dir = None if args.champion.lower() == NO_CHAMPION else Path(args.champion)
    try:
        report = evaluate(args.candidate, champion_dir, args.data, args.resamples, args.seed)
    except PipelineInputError as exc:
        print(f"evaluate: error: {exc}", file=sys.stderr)
        return 2
    write_json(args.output, report)
    first, *rest = _summary_lines(report)
    print(f"evaluate: {report['n']} holdout rows; {first}")
    for line in rest:
        print(f"evaluate: {line}")
    print(f"evaluate: {report['note']}; report at {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
