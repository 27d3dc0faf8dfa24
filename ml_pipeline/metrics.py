"""Holdout metrics on one set of rows: regression losses, or a classifier's probabilities and labels.

Classification metrics are written out per row where they are means of per-row values (log
loss, Brier score, 0/1 correctness), so the evaluation can pair them row by row. AUC and
balanced accuracy are not means of rows; they are computed on a set of rows and resampled
whole (ml_pipeline.bootstrap.bootstrap_statistic).
"""

from __future__ import annotations

from typing import Any

import numpy as np

REGRESSION_METRICS = ("mse", "rmse", "mae", "r2")
CLASSIFICATION_METRICS = ("log_loss", "brier", "accuracy", "balanced_accuracy", "roc_auc")
# log(0) is -inf: probabilities are clipped to [eps, 1] first, as scikit-learn's log_loss does.
_EPS = float(np.finfo(np.float64).eps)


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    errors = y_pred - y_true
    mse = float(np.mean(errors**2))
    total = float(np.sum((y_true - y_true.mean()) ** 2))
    return {
        "mse": mse,
        "rmse": float(np.sqrt(mse)),
        "mae": float(np.mean(np.abs(errors))),
        "r2": 1.0 - float(np.sum(errors**2)) / total if total > 0 else float("nan"),
    }


def class_positions(labels: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Each label's index in ``classes`` (sorted, holding every label)."""
    positions = np.searchsorted(classes, labels)
    if np.any(positions >= classes.size) or np.any(classes[np.minimum(positions, classes.size - 1)] != labels):
        raise ValueError("a label is not among the classes")
    return positions


def aligned_probabilities(probabilities: np.ndarray, model_classes: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """A model's predict_proba columns placed under ``classes``; a class the model never saw gets 0."""
    aligned = np.zeros((probabilities.shape[0], classes.size))
    aligned[:, class_positions(np.asarray(model_classes), classes)] = probabilities
    return aligned


def per_row_log_loss(probabilities: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """-log p(true class), p clipped to [eps, 1] after normalising rows to sum 1."""
    rows = probabilities / probabilities.sum(axis=1, keepdims=True)
    return -np.log(np.clip(rows[np.arange(truth.size), truth], _EPS, 1.0))


def per_row_brier(probabilities: np.ndarray, truth: np.ndarray, binary: bool | None = None) -> np.ndarray:
    """Sum over classes of (p - 1[true class])**2; halved for a binary problem, so a binary score is
    (p(positive) - y)**2, scikit-learn's brier_score_loss in both cases. ``binary`` defaults to "two
    columns"; a pair of models may have more columns than the problem has classes (a class only the
    champion knows), and both must then be scored on the same scale."""
    onehot = np.zeros_like(probabilities)
    onehot[np.arange(truth.size), truth] = 1.0
    squares = ((probabilities - onehot) ** 2).sum(axis=1)
    return squares / 2.0 if (probabilities.shape[1] == 2 if binary is None else binary) else squares


def balanced_accuracy(truth: np.ndarray, predicted: np.ndarray, n_classes: int) -> float:
    """Mean recall over the classes present in ``truth``."""
    support = np.bincount(truth, minlength=n_classes)
    hits = np.bincount(truth[truth == predicted], minlength=n_classes)
    present = support > 0
    return float(np.mean(hits[present] / support[present]))


def roc_auc(probabilities: np.ndarray, truth: np.ndarray) -> float:
    """Binary: AUC of the second class's probability. More classes: the macro mean of one-vs-rest
    AUCs over the classes present (scikit-learn's multi_class="ovr", average="macro"). NaN when
    only one class is present. Ties count a half (Mann-Whitney U with average ranks)."""
    from scipy.stats import rankdata

    n_classes = probabilities.shape[1]
    scored = [1] if n_classes == 2 else range(n_classes)
    aucs = []
    for k in scored:
        positive = truth == k
        n_pos = int(positive.sum())
        n_neg = truth.size - n_pos
        if n_pos == 0 or n_neg == 0:
            continue
        ranks = rankdata(probabilities[:, k])
        aucs.append((ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))
    return float(np.mean(aucs)) if aucs else float("nan")


def classification_metrics(
    probabilities: np.ndarray, predicted: np.ndarray, truth: np.ndarray, binary: bool | None = None
) -> dict[str, float]:
    """``probabilities`` (n, k) and ``predicted``/``truth`` as class positions (n,)."""
    return {
        "log_loss": float(per_row_log_loss(probabilities, truth).mean()),
        "brier": float(per_row_brier(probabilities, truth, binary).mean()),
        "accuracy": float(np.mean(predicted == truth)),
        "balanced_accuracy": balanced_accuracy(truth, predicted, probabilities.shape[1]),
        "roc_auc": roc_auc(probabilities, truth),
    }


def confusion_matrix(truth: np.ndarray, predicted: np.ndarray, classes: np.ndarray) -> dict[str, Any]:
    """Counts: row = true class, column = predicted class, both in ``classes`` order."""
    k = classes.size
    counts = np.bincount(truth * k + predicted, minlength=k * k).reshape(k, k)
    return {"labels": classes.tolist(), "rows": "true class", "columns": "predicted class", "counts": counts.tolist()}
