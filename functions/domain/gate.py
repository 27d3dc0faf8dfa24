"""The promotion policy applied to an evaluation report (ml_pipeline.evaluate's output).

Pure and small: no I/O, no numpy. "Not better" is an ordinary decision with its evidence,
never an exception; only a policy that cannot be applied to the report raises GateConfigError.

Improvement is oriented so that positive means "candidate better": for losses it is
champion minus candidate, for r2, accuracy and AUC candidate minus champion. Its interval comes from the
report's paired-bootstrap interval at the policy's confidence level.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Mode = Literal["superiority", "non_inferiority"]
Direction = Literal["lower_is_better", "higher_is_better"]


LOWER: Direction = "lower_is_better"
HIGHER: Direction = "higher_is_better"
# The metrics ml_pipeline.evaluate gives a paired difference for, per task, with their directions.
TASK_METRICS: dict[str, dict[str, Direction]] = {
    "regression": {"mse": LOWER, "mae": LOWER, "r2": HIGHER},
    "classification": {
        "log_loss": LOWER,
        "brier": LOWER,
        "accuracy": HIGHER,
        "balanced_accuracy": HIGHER,
        "roc_auc": HIGHER,
    },
}
DEFAULT_METRIC = {"regression": "mse", "classification": "log_loss"}


class GateConfigError(ValueError):
    """The policy does not fit the report (unknown metric, missing confidence level...)."""


@dataclass(frozen=True)
class GatePolicy:
    metric: str = "mse"
    direction: Direction | None = None  # None: take the metric's direction from the report
    mode: Mode = "superiority"
    # superiority: the improvement's lower bound must exceed this (metric units).
    min_improvement: float = 0.0
    # non_inferiority: the improvement's lower bound must exceed -margin (metric units).
    margin: float = 0.0
    confidence: float = 0.95
    # With no champion the candidate is promoted on its own, unless it misses this limit.
    max_metric_without_champion: float | None = None
    min_metric_without_champion: float | None = None

    def __post_init__(self) -> None:
        if self.mode not in ("superiority", "non_inferiority"):
            raise GateConfigError(f"mode must be superiority or non_inferiority, got {self.mode!r}")
        if self.direction not in (None, "lower_is_better", "higher_is_better"):
            raise GateConfigError(f"direction must be lower_is_better or higher_is_better, got {self.direction!r}")
        if not 0.0 < self.confidence < 1.0:
            raise GateConfigError(f"confidence must be between 0 and 1, got {self.confidence}")
        if self.min_improvement < 0 or self.margin < 0:
            raise GateConfigError("min_improvement and margin must not be negative")

    @classmethod
    def from_mapping(cls, settings: Mapping[str, Any]) -> GatePolicy:
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(settings) - known)
        if unknown:
            raise GateConfigError(f"unknown gate setting(s): {', '.join(unknown)}")
        return cls(**settings)

    @classmethod
    def for_task(cls, settings: Mapping[str, Any], task: str) -> GatePolicy:
        """The policy ``settings`` describe for models of ``task``: the task's default metric when none is
        named, and a GateConfigError naming the metric when it is unknown or belongs to the other task."""
        if task not in TASK_METRICS:
            raise GateConfigError(f"unknown task {task!r}; tasks: {', '.join(TASK_METRICS)}")
        policy = cls.from_mapping({"metric": DEFAULT_METRIC[task], **settings})
        fitting = TASK_METRICS[task]
        if policy.metric not in fitting:
            other = [name for name, metrics in TASK_METRICS.items() if policy.metric in metrics]
            what = f"a {other[0]} metric" if other else "not a metric the evaluation reports"
            raise GateConfigError(
                f"metric {policy.metric!r} is {what}, and the models are {task} models; "
                f"{task} metrics: {', '.join(fitting)}"
            )
        if policy.direction is not None and policy.direction != fitting[policy.metric]:
            raise GateConfigError(f"{policy.metric} is {fitting[policy.metric]}, the policy says {policy.direction}")
        return policy


@dataclass(frozen=True)
class GateDecision:
    promote: bool
    reason: str
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def decide(report: Mapping[str, Any], policy: GatePolicy | None = None) -> GateDecision:
    policy = policy or GatePolicy()
    metrics = report.get("metrics") or {}
    candidate_metrics = metrics.get("candidate") or {}
    if policy.metric not in candidate_metrics:
        raise GateConfigError(f"metric {policy.metric!r} is not in the evaluation report")
    evidence: dict[str, Any] = {
        "policy": asdict(policy),
        "n": report.get("n"),
        "metric": policy.metric,
        "candidate": candidate_metrics.get(policy.metric),
        "champion": (metrics.get("champion") or {}).get(policy.metric),
    }
    value = evidence["candidate"]
    if not isinstance(value, int | float) or value != value:  # NaN: e.g. AUC on holdout rows of one class
        return GateDecision(
            False, f"candidate {policy.metric} is undefined on the holdout rows: nothing to promote on", evidence
        )
    if metrics.get("champion") is None:
        return _decide_without_champion(policy, evidence)

    difference = (report.get("differences") or {}).get(policy.metric)
    if difference is None:
        raise GateConfigError(f"the report has no paired difference for {policy.metric!r}")
    direction = difference["direction"]
    if policy.direction is not None and policy.direction != direction:
        raise GateConfigError(f"{policy.metric} is {direction} in the report, the policy says {policy.direction}")
    level = f"{policy.confidence:g}"
    if level not in difference["intervals"]:
        raise GateConfigError(
            f"the report has no {level} interval; it has {', '.join(sorted(difference['intervals']))}"
        )
    sign = -1.0 if direction == "lower_is_better" else 1.0
    improvement = sign * difference["estimate"]
    bounds = sorted(sign * bound for bound in difference["intervals"][level])
    low, high = bounds
    evidence.update(improvement=improvement, interval=[low, high], confidence=policy.confidence)

    name, pct = policy.metric, f"{policy.confidence:.0%}"
    measured = f"{name} improvement {improvement:+.4g} ({pct} CI [{low:+.4g}, {high:+.4g}])"
    if policy.mode == "superiority":
        threshold = policy.min_improvement
        evidence["threshold"] = threshold
        if low > threshold:
            return GateDecision(True, f"better: {measured} clears the required {threshold:+.4g}", evidence)
        return GateDecision(False, f"not better: {measured} does not clear the required {threshold:+.4g}", evidence)
    threshold = -policy.margin
    evidence["threshold"] = threshold
    if low > threshold:
        return GateDecision(True, f"not worse: {measured} stays above the margin {threshold:+.4g}", evidence)
    return GateDecision(False, f"possibly worse: {measured} reaches below the margin {threshold:+.4g}", evidence)


def _decide_without_champion(policy: GatePolicy, evidence: dict[str, Any]) -> GateDecision:
    value = evidence["candidate"]
    name = policy.metric
    upper, lower = policy.max_metric_without_champion, policy.min_metric_without_champion
    if upper is not None and value > upper:
        return GateDecision(
            False, f"no champion, and candidate {name} {value:.4g} is above the limit {upper:.4g}", evidence
        )
    if lower is not None and value < lower:
        return GateDecision(
            False, f"no champion, and candidate {name} {value:.4g} is below the limit {lower:.4g}", evidence
        )
    return GateDecision(
        True, f"no champion in production: candidate promoted on its own ({name} {value:.4g})", evidence
    )
