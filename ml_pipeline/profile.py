"""The reference data profile: per-column statistics that later data is checked against.

Training writes it from its training rows; ``data_checks --reference`` reads it back to
check schema, value ranges and distribution shift (mean/std shift and PSI).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

PROFILE_VERSION = 1
# Columns with at most this many distinct values are profiled as categories (e.g. `sex`),
# since quantile bins collapse on them.
MAX_CATEGORIES = 10
N_BINS = 10
# Keeps PSI finite when a bin is empty on one side.
PSI_EPSILON = 1e-4


def build_profile(frame: pd.DataFrame, target: str, task: str = "regression") -> dict[str, Any]:
    """Every column's statistics; a classification target's as class labels (``label_profile``)."""
    columns = {
        str(name): label_profile(frame[name])
        if task == "classification" and name == target
        else _profile_column(frame[name].to_numpy(dtype=float))
        for name in frame.columns
    }
    return {
        "version": PROFILE_VERSION,
        "target": target,
        "task": task,
        "n_rows": len(frame),
        "columns": columns,
        "column_order": [str(name) for name in frame.columns],
    }


def label_profile(labels: pd.Series) -> dict[str, Any]:
    """A categorical target: its classes (as JSON values, in sorted order) and their proportions."""
    counts = labels.dropna().value_counts(sort=False).sort_index()
    total = max(int(counts.sum()), 1)
    return {
        "kind": "label",
        "classes": [json_label(label) for label in counts.index],
        "counts": [int(n) for n in counts],
        "proportions": [int(n) / total for n in counts],
    }


def json_label(label: Any) -> Any:
    """numpy ints and strings as plain JSON values; other labels (floats) as they are."""
    return label.item() if isinstance(label, np.generic) else label


def _profile_column(values: np.ndarray) -> dict[str, Any]:
    values = values[np.isfinite(values)]
    distinct = np.unique(values)
    stats: dict[str, Any] = {
        "mean": float(values.mean()),
        "std": float(values.std(ddof=1)) if values.size > 1 else 0.0,
        "min": float(values.min()),
        "max": float(values.max()),
    }
    if distinct.size <= MAX_CATEGORIES:
        stats["kind"] = "categorical"
        stats["categories"] = [float(v) for v in distinct]
        stats["proportions"] = [float(np.mean(values == v)) for v in distinct]
    else:
        stats["kind"] = "continuous"
        inner_edges = np.unique(np.quantile(values, np.linspace(0, 1, N_BINS + 1)[1:-1]))
        stats["bin_edges"] = [float(e) for e in inner_edges]
        stats["proportions"] = [float(p) for p in _bin_proportions(values, inner_edges)]
    return stats


def _bin_proportions(values: np.ndarray, inner_edges: np.ndarray) -> np.ndarray:
    counts = np.bincount(np.searchsorted(inner_edges, values, side="right"), minlength=inner_edges.size + 1)
    return counts / max(values.size, 1)


def current_proportions(values: np.ndarray, column_profile: dict[str, Any]) -> np.ndarray:
    """Proportions of ``values`` over the reference column's bins or categories."""
    values = values[np.isfinite(values)]
    if column_profile["kind"] == "categorical":
        categories = np.asarray(column_profile["categories"])
        known = [float(np.mean(values == c)) for c in categories]
        unseen = 1.0 - sum(known)
        # Values outside the reference categories count as one extra bin the reference lacks.
        return np.asarray([*known, max(unseen, 0.0)])
    return _bin_proportions(values, np.asarray(column_profile["bin_edges"]))


def population_stability_index(expected: np.ndarray, actual: np.ndarray) -> float:
    """PSI = sum((a - e) * ln(a / e)); 0 means identical, > 0.25 is a large shift."""
    if actual.size == expected.size + 1:  # categorical with an "unseen" bin
        expected = np.append(expected, 0.0)
    e = np.clip(expected, PSI_EPSILON, None)
    a = np.clip(actual, PSI_EPSILON, None)
    return float(np.sum((a - e) * np.log(a / e)))
