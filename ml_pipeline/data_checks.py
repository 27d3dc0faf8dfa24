"""Data sanity checks run before training.

    python -m ml_pipeline.data_checks --data diabetes|breast_cancer|PATH.csv [--task regression|classification]
        [--reference PROFILE.json] --report OUT.json

A classification target is checked as class labels (at least two classes, none below the
balance limit, no class the reference profile lacks, class proportions against the
reference's); a regression target as numbers.

Every check records its name, pass/fail and the numbers behind it. Exit codes: 0 all
checks pass, 1 at least one failed (each failure is named on stdout), 2 the input could
not be read at all.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ml_pipeline.dataset import DEFAULT_TARGET, TASKS, default_task, load_dataset
from ml_pipeline.errors import PipelineInputError
from ml_pipeline.jsonio import read_json, write_json
from ml_pipeline.profile import current_proportions, json_label, population_stability_index

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class Thresholds:
    min_rows: int = 50
    max_missing_ratio: float = 0.0
    max_duplicate_ratio: float = 0.05
    # Reference ranges are widened by this fraction of their span before values count as out of range.
    range_tolerance: float = 0.1
    max_out_of_range_ratio: float = 0.01
    max_mean_shift_in_std: float = 0.5
    min_std_ratio: float = 0.5
    max_std_ratio: float = 2.0
    max_psi: float = 0.25
    # Classification: the rarest class must make up at least this share of the rows.
    min_class_ratio: float = 0.01


@dataclass
class CheckResult:
    name: str
    status: str  # "passed" | "failed" | "skipped"
    summary: str
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.status != "failed"

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "passed": self.passed, **asdict(self)}


def _numeric_columns(frame: pd.DataFrame, skip: str | None = None) -> list[str]:
    """Numeric columns, without ``skip`` (a classification target: labels, not values to range-check)."""
    import pandas as pd

    return [
        str(c)
        for c in frame.columns
        if c != skip and pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])
    ]


def _label_column(target: str, task: str) -> str | None:
    return target if task == "classification" else None


def check_schema(frame: pd.DataFrame, target: str, reference: dict | None, task: str = "regression") -> CheckResult:
    columns = [str(c) for c in frame.columns]
    numeric = set(_numeric_columns(frame))
    problems: list[str] = []
    # A classification target may hold strings ("churned", "stayed"); every feature must be numeric.
    non_numeric = [c for c in columns if c not in numeric and c != _label_column(target, task)]
    if non_numeric:
        problems.append(f"non-numeric columns: {', '.join(non_numeric)}")
    duplicated_names = sorted({c for c in columns if columns.count(c) > 1})
    if duplicated_names:
        problems.append(f"duplicated column names: {', '.join(duplicated_names)}")
    if target not in columns:
        problems.append(f"target column {target!r} is missing")
    details: dict[str, Any] = {"columns": columns, "n_columns": len(columns), "non_numeric": non_numeric}
    if reference is not None:
        expected = list(reference["column_order"])
        missing = [c for c in expected if c not in columns]
        unexpected = [c for c in columns if c not in expected]
        if missing:
            problems.append(f"missing columns: {', '.join(missing)}")
        if unexpected:
            problems.append(f"unexpected columns: {', '.join(unexpected)}")
        if not missing and not unexpected and len(columns) != len(expected):
            problems.append(f"{len(columns)} columns, reference has {len(expected)}")
        details.update(expected_columns=expected, missing=missing, unexpected=unexpected)
    if problems:
        return CheckResult("schema", "failed", "; ".join(problems), details)
    return CheckResult("schema", "passed", f"{len(columns)} columns as expected", details)


def check_missing_values(frame: pd.DataFrame, thresholds: Thresholds) -> CheckResult:
    counts = {str(c): int(n) for c, n in frame.isna().sum().items()}
    ratios = {c: n / max(len(frame), 1) for c, n in counts.items()}
    bad = {c: r for c, r in ratios.items() if r > thresholds.max_missing_ratio}
    details = {"missing_counts": counts, "max_missing_ratio": thresholds.max_missing_ratio}
    if bad:
        listed = ", ".join(f"{c} ({counts[c]} missing, {r:.1%})" for c, r in bad.items())
        return CheckResult("missing_values", "failed", f"missing values in {listed}", details)
    return CheckResult("missing_values", "passed", "no column over the missing-value limit", details)


def check_row_count(frame: pd.DataFrame, thresholds: Thresholds) -> CheckResult:
    n = len(frame)
    details = {"n_rows": n, "min_rows": thresholds.min_rows}
    if n < thresholds.min_rows:
        return CheckResult("row_count", "failed", f"{n} rows, at least {thresholds.min_rows} needed", details)
    return CheckResult("row_count", "passed", f"{n} rows", details)


def check_value_ranges(
    frame: pd.DataFrame, reference: dict | None, thresholds: Thresholds, labels: str | None = None
) -> CheckResult:
    per_column: dict[str, dict[str, Any]] = {}
    problems: list[str] = []
    for column in _numeric_columns(frame, skip=labels):
        values = frame[column].to_numpy(dtype=float)
        present = values[~np.isnan(values)]
        infinite = int(np.isinf(present).sum())
        finite = present[np.isfinite(present)]
        entry: dict[str, Any] = {
            "min": float(finite.min()) if finite.size else None,
            "max": float(finite.max()) if finite.size else None,
            "infinite": infinite,
        }
        if infinite:
            problems.append(f"{column} has {infinite} infinite values")
        ref = (reference or {}).get("columns", {}).get(column)
        if ref is not None and ref.get("kind") == "label":
            ref = None  # a classifier's target: labels have no range (check_target says the task differs)
        if ref is not None and present.size:
            span = ref["max"] - ref["min"]
            low = ref["min"] - thresholds.range_tolerance * span
            high = ref["max"] + thresholds.range_tolerance * span
            outside = int(((present < low) | (present > high)).sum())
            ratio = outside / present.size
            entry.update(allowed_min=low, allowed_max=high, out_of_range=outside, out_of_range_ratio=ratio)
            if ratio > thresholds.max_out_of_range_ratio:
                problems.append(f"{column} has {outside} values ({ratio:.1%}) outside [{low:.4g}, {high:.4g}]")
        per_column[column] = entry
    details = {"columns": per_column, "reference_used": reference is not None}
    if problems:
        return CheckResult("value_ranges", "failed", "; ".join(problems), details)
    scope = "within the reference ranges" if reference is not None else "finite"
    return CheckResult("value_ranges", "passed", f"all values {scope}", details)


def check_duplicates(frame: pd.DataFrame, thresholds: Thresholds) -> CheckResult:
    duplicated = int(frame.duplicated().sum())
    ratio = duplicated / max(len(frame), 1)
    details = {"duplicate_rows": duplicated, "ratio": ratio, "max_ratio": thresholds.max_duplicate_ratio}
    if ratio > thresholds.max_duplicate_ratio:
        return CheckResult(
            "duplicates",
            "failed",
            f"{duplicated} duplicate rows ({ratio:.1%}, limit {thresholds.max_duplicate_ratio:.1%})",
            details,
        )
    return CheckResult("duplicates", "passed", f"{duplicated} duplicate rows ({ratio:.1%})", details)


def check_target(
    frame: pd.DataFrame,
    target: str,
    task: str = "regression",
    reference: dict | None = None,
    thresholds: Thresholds | None = None,
) -> CheckResult:
    import pandas as pd

    if target not in frame.columns:
        return CheckResult("target", "failed", f"target column {target!r} is missing", {})
    reference_target = (reference or {}).get("columns", {}).get(target)
    if reference_target is not None and (reference_target.get("kind") == "label") != (task == "classification"):
        theirs = "classification" if reference_target.get("kind") == "label" else "regression"
        return CheckResult(
            "target",
            "failed",
            f"the reference profile is a {theirs} model's and the task is {task}: "
            "release a model of the champion's task (MLOPS_TASK), or retire the champion",
            {"reference_task": theirs, "task": task},
        )
    if task == "classification":
        return _check_labels(frame[target], reference_target, thresholds or Thresholds())
    series = frame[target]
    if not pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
        return CheckResult("target", "failed", f"target {target!r} is not numeric", {"dtype": str(series.dtype)})
    values = series.to_numpy(dtype=float)
    missing = int(np.isnan(values).sum())
    finite = values[np.isfinite(values)]
    non_finite = int(values.size - finite.size - missing)
    distinct = int(np.unique(finite).size)
    std = float(finite.std()) if finite.size else 0.0
    details = {
        "missing": missing,
        "non_finite": non_finite,
        "distinct_values": distinct,
        "mean": float(finite.mean()) if finite.size else None,
        "std": std,
    }
    problems = []
    if missing:
        problems.append(f"{missing} missing target values")
    if non_finite:
        problems.append(f"{non_finite} infinite target values")
    if distinct < 2:
        problems.append("target is constant: nothing to learn")
    if problems:
        return CheckResult("target", "failed", "; ".join(problems), details)
    return CheckResult("target", "passed", f"{distinct} distinct values, std {std:.4g}", details)


def _check_labels(labels: pd.Series, ref: dict | None, thresholds: Thresholds) -> CheckResult:
    """A categorical target: two or more classes, balance above the limit, no class the reference lacks."""
    missing = int(labels.isna().sum())
    counts = labels.dropna().value_counts()
    total = max(int(counts.sum()), 1)
    proportions = {json_label(label): int(n) / total for label, n in counts.items()}
    details: dict[str, Any] = {
        "missing": missing,
        "classes": [str(label) for label in proportions],
        "counts": {str(label): int(n) for label, n in counts.items()},
        "proportions": {str(label): share for label, share in proportions.items()},
        "min_class_ratio": thresholds.min_class_ratio,
    }
    problems = []
    if missing:
        problems.append(f"{missing} missing target labels")
    if len(proportions) < 2:
        problems.append(f"{len(proportions)} class(es): a classifier needs at least two")
    rare = {label: share for label, share in proportions.items() if share < thresholds.min_class_ratio}
    if rare and len(proportions) >= 2:
        listed = ", ".join(f"{label} ({share:.2%})" for label, share in rare.items())
        problems.append(f"class balance: {listed} below {thresholds.min_class_ratio:.2%} of the rows")
    if ref is not None and ref.get("kind") == "label":
        known = list(ref["classes"])
        unseen = [label for label in proportions if label not in known]
        absent = [label for label in known if label not in proportions]
        current = np.asarray([proportions.get(label, 0.0) for label in known] + [sum(proportions[u] for u in unseen)])
        psi = population_stability_index(np.asarray(ref["proportions"]), current)
        details.update(
            reference_classes=[str(c) for c in known],
            unseen=[str(u) for u in unseen],
            absent=[str(a) for a in absent],
            psi=psi,
        )
        if unseen:
            problems.append(f"classes the reference never had: {', '.join(map(str, unseen))}")
        if psi > thresholds.max_psi:
            problems.append(f"class proportions moved from the reference's (PSI {psi:.3f})")
    if problems:
        return CheckResult("target", "failed", "; ".join(problems), details)
    shares = ", ".join(f"{label}: {share:.1%}" for label, share in sorted(proportions.items(), key=lambda x: str(x[0])))
    return CheckResult("target", "passed", f"{len(proportions)} classes ({shares})", details)


def check_distribution_shift(
    frame: pd.DataFrame, reference: dict | None, thresholds: Thresholds, labels: str | None = None
) -> CheckResult:
    if reference is None:
        return CheckResult("distribution_shift", "skipped", "no reference profile given (--reference)", {})
    per_column: dict[str, dict[str, float]] = {}
    problems: list[str] = []
    for column in _numeric_columns(frame, skip=labels):
        ref = reference["columns"].get(column)
        if ref is None or ref.get("kind") == "label":
            continue
        values = frame[column].to_numpy(dtype=float)
        values = values[np.isfinite(values)]
        if values.size < 2:
            continue
        ref_std = ref["std"] or 1e-12
        mean_shift = abs(float(values.mean()) - ref["mean"]) / ref_std
        std_ratio = float(values.std(ddof=1)) / ref_std
        psi = population_stability_index(np.asarray(ref["proportions"]), current_proportions(values, ref))
        per_column[column] = {"mean_shift_in_std": mean_shift, "std_ratio": std_ratio, "psi": psi}
        reasons = []
        if mean_shift > thresholds.max_mean_shift_in_std:
            reasons.append(f"mean moved {mean_shift:.2f} std")
        if not thresholds.min_std_ratio <= std_ratio <= thresholds.max_std_ratio:
            reasons.append(f"std ratio {std_ratio:.2f}")
        if psi > thresholds.max_psi:
            reasons.append(f"PSI {psi:.3f}")
        if reasons:
            problems.append(f"{column}: {', '.join(reasons)}")
    details = {"columns": per_column}
    if problems:
        return CheckResult("distribution_shift", "failed", "; ".join(problems), details)
    worst = max((v["psi"] for v in per_column.values()), default=0.0)
    return CheckResult("distribution_shift", "passed", f"no shift over the limits (max PSI {worst:.3f})", details)


def run_checks(
    frame: pd.DataFrame,
    target: str = DEFAULT_TARGET,
    reference: dict | None = None,
    thresholds: Thresholds | None = None,
    task: str = "regression",
) -> list[CheckResult]:
    thresholds = thresholds or Thresholds()
    labels = _label_column(target, task)
    return [
        check_schema(frame, target, reference, task),
        check_missing_values(frame, thresholds),
        check_row_count(frame, thresholds),
        check_value_ranges(frame, reference, thresholds, labels),
        check_duplicates(frame, thresholds),
        check_target(frame, target, task, reference, thresholds),
        check_distribution_shift(frame, reference, thresholds, labels),
    ]


def build_report(
    results: list[CheckResult], source: str, reference_path: str | None, thresholds: Thresholds, n_rows: int
) -> dict[str, Any]:
    failed = [r.name for r in results if not r.passed]
    return {
        "passed": not failed,
        "failed": failed,
        "data": source,
        "reference": reference_path,
        "n_rows": n_rows,
        "thresholds": asdict(thresholds),
        "checks": [r.to_json() for r in results],
    }


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m ml_pipeline.data_checks", description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, help="'diabetes', 'breast_cancer' or a CSV path")
    parser.add_argument("--target", default=DEFAULT_TARGET, help="target column (default: target)")
    parser.add_argument("--task", choices=TASKS, help="default: the built-in data set's task, else regression")
    parser.add_argument("--reference", help="profile.json written by training, for ranges and shift")
    parser.add_argument("--report", required=True, help="where to write the JSON report")
    parser.add_argument("--min-rows", type=int, default=Thresholds.min_rows)
    parser.add_argument("--max-duplicate-ratio", type=float, default=Thresholds.max_duplicate_ratio)
    parser.add_argument("--max-psi", type=float, default=Thresholds.max_psi)
    parser.add_argument("--min-class-ratio", type=float, default=Thresholds.min_class_ratio)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    thresholds = Thresholds(
        min_rows=args.min_rows,
        max_duplicate_ratio=args.max_duplicate_ratio,
        max_psi=args.max_psi,
        min_class_ratio=args.min_class_ratio,
    )
    try:
        frame = load_dataset(args.data)
        reference = read_json(args.reference, what="reference profile") if args.reference else None
    except PipelineInputError as exc:
        print(f"data_checks: error: {exc}", file=sys.stderr)
        return 2
    results = run_checks(frame, args.target, reference, thresholds, args.task or default_task(args.data))
    report = build_report(results, args.data, args.reference, thresholds, len(frame))
    write_json(Path(args.report), report)
    for result in results:
        print(f"{result.status.upper():>8}  {result.name}: {result.summary}")
    if report["failed"]:
        print(f"data_checks: {len(report['failed'])} check(s) failed: {', '.join(report['failed'])}")
        return 1
    print(f"data_checks: all checks passed on {len(frame)} rows; report at {args.report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
