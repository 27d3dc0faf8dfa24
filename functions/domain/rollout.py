"""How a release takes production's traffic once its direct tests passed: the rollout policy.

Pure: no I/O. One setting, MLOPS_ROLLOUT_POLICY (JSON), validated at start: a bad field stops the
app, naming it. The default: shadow (half of the live requests mirrored to the new deployment, its
answers discarded and compared), then canary 10% -> 50% -> 100%. Every step but the last holds for
``window_s`` and until the new deployment answered ``min_requests``; then the analysis
(functions/domain/analysis.py) compares it with the stable deployment on what each served and
decides: pass, the next step; fail, traffic back to the stable deployment at once. At 100% the
release is live and the deployment that served before stays warm for ``keep_previous_s``.

A step that has not seen ``min_requests`` after ``max_wait_s`` is analysed with what it has: too
little traffic to judge fails it (rolled back), the safe answer when nothing can be shown.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

KINDS = ("shadow", "canary")
# Rule fields that are probabilities or shares: 0..1.
FRACTIONS = {"alpha", "baseline_rate", "max_share", "max_shift"}


class RolloutConfigError(ValueError):
    """The rollout policy setting is malformed; the message names the field."""


@dataclass(frozen=True)
class RolloutStep:
    kind: str  # "shadow": ``share`` % of live requests mirrored; "canary": ``share`` % of live traffic
    share: int
    window_s: float
    min_requests: int

    @property
    def final(self) -> bool:
        """The last canary step: all traffic, nothing beside it to compare with, so nothing to hold for."""
        return self.kind == "canary" and self.share == 100

    @property
    def label(self) -> str:
        return f"{self.kind} {self.share}%"


@dataclass(frozen=True)
class ErrorRule:
    """The new deployment fails when its 5xx rate is higher than the stable one's with one-sided
    Fisher exact p < ``alpha`` (it holds for small counts); when the stable one served nothing to
    compare with, a one-sided binomial test against ``baseline_rate`` decides instead."""

    alpha: float = 0.05
    baseline_rate: float = 0.01


@dataclass(frozen=True)
class LatencyRule:
    """Fails when the new deployment is slower by Mann-Whitney U (one-sided p < ``alpha``) AND its p95 is
    more than ``max_p95_ratio`` times the stable one's. Always recorded; ``decides`` False records only
    (the project's tests do that: shared machines are noisy)."""

    alpha: float = 0.01
    max_p95_ratio: float = 1.5
    min_samples: int = 20
    decides: bool = True


@dataclass(frozen=True)
class DivergenceRule:
    """On mirrored requests (the same rows answered by both): a row diverges when the predictions differ
    by more than ``absolute`` + ``relative`` x |stable prediction| (labels: when they differ). Fails when
    more than ``max_share`` of the rows diverge, or the prediction distribution shifted by more than
    ``max_shift`` (Kolmogorov-Smirnov statistic; labels: total variation distance). Canary steps, which
    answer different requests, record the shift without deciding on it."""

    relative: float = 0.5
    absolute: float = 0.0
    max_share: float = 0.05
    max_shift: float = 0.35
    decides: bool = True


DEFAULT_WINDOW_S = 600.0
DEFAULT_MIN_REQUESTS = 100


def _default_steps() -> tuple[RolloutStep, ...]:
    plan = (("shadow", 50), ("canary", 10), ("canary", 50), ("canary", 100))
    return tuple(RolloutStep(kind, share, DEFAULT_WINDOW_S, DEFAULT_MIN_REQUESTS) for kind, share in plan)


@dataclass(frozen=True)
class RolloutPolicy:
    steps: tuple[RolloutStep, ...] = field(default_factory=_default_steps)
    errors: ErrorRule = field(default_factory=ErrorRule)
    latency: LatencyRule = field(default_factory=LatencyRule)
    divergence: DivergenceRule = field(default_factory=DivergenceRule)
    keep_previous_s: float = 3600.0
    max_wait_s: float = 3600.0

    @property
    def immediate(self) -> bool:
        """No steps: traffic moves to the new deployment at once (after its direct tests)."""
        return not self.steps

    @classmethod
    def from_mapping(cls, settings: Mapping[str, Any]) -> RolloutPolicy:
        """The policy a setting describes; RolloutConfigError names the first bad field."""
        _known(settings, {f.name for f in fields(cls)} | {"window_s", "min_requests"}, "the rollout policy")
        window = _number(settings, "window_s", DEFAULT_WINDOW_S, low=0.0)
        minimum = _whole(settings, "min_requests", DEFAULT_MIN_REQUESTS, low=1)
        raw_steps = settings.get("steps")
        if raw_steps is None:
            steps = tuple(RolloutStep(s.kind, s.share, window, minimum) for s in _default_steps())
        elif isinstance(raw_steps, list):
            steps = tuple(_step(raw, number, window, minimum) for number, raw in enumerate(raw_steps, start=1))
        else:
            raise RolloutConfigError("steps must be a list of {kind, share[, window_s, min_requests]}")
        _check_plan(steps)
        max_wait = _number(settings, "max_wait_s", 3600.0, low=1.0)
        too_long = [step.label for step in steps if step.window_s > max_wait and not step.final]
        if too_long:
            raise RolloutConfigError(f"the window of {', '.join(too_long)} is longer than max_wait_s ({max_wait:g} s)")
        return cls(
            steps=steps,
            errors=_rule(ErrorRule, settings.get("errors"), "errors"),
            latency=_rule(LatencyRule, settings.get("latency"), "latency"),
            divergence=_rule(DivergenceRule, settings.get("divergence"), "divergence"),
            keep_previous_s=_number(settings, "keep_previous_s", 3600.0, low=0.0),
            max_wait_s=max_wait,
        )

    def to_json(self) -> dict[str, Any]:
        document = asdict(self)
        document["steps"] = [asdict(step) for step in self.steps]
        return document

    def describe(self) -> str:
        return " → ".join(step.label for step in self.steps) or "all traffic at once"


def step_from_json(document: Mapping[str, Any]) -> RolloutStep:
    return RolloutStep(str(document["kind"]), int(document["share"]), float(document["window_s"]),
                       int(document["min_requests"]))  # fmt: skip


def policy_from_json(document: Mapping[str, Any]) -> RolloutPolicy:
    """The policy a release recorded when its rollout began (so a changed setting does not change it midway)."""
    return RolloutPolicy(
        steps=tuple(step_from_json(step) for step in document.get("steps") or []),
        errors=ErrorRule(**document.get("errors") or {}),
        latency=LatencyRule(**document.get("latency") or {}),
        divergence=DivergenceRule(**document.get("divergence") or {}),
        keep_previous_s=float(document.get("keep_previous_s", 3600.0)),
        max_wait_s=float(document.get("max_wait_s", 3600.0)),
    )


def _step(raw: Any, number: int, window: float, minimum: int) -> RolloutStep:
    where = f"steps[{number}]"
    if not isinstance(raw, Mapping):
        raise RolloutConfigError(f'{where} must be an object like {{"kind": "canary", "share": 10}}')
    _known(raw, {"kind", "share", "window_s", "min_requests"}, where)
    kind = raw.get("kind")
    if kind not in KINDS:
        raise RolloutConfigError(f"{where}.kind must be one of {', '.join(KINDS)}, not {kind!r}")
    share = raw.get("share")
    if isinstance(share, bool) or not isinstance(share, int) or not 1 <= share <= 100:
        raise RolloutConfigError(f"{where}.share must be a whole percent 1..100, not {share!r}")
    return RolloutStep(
        str(kind),
        share,
        _number(raw, "window_s", window, low=0.0, where=where),
        _whole(raw, "min_requests", minimum, low=1, where=where),
    )


def _check_plan(steps: tuple[RolloutStep, ...]) -> None:
    if not steps:
        return
    canaries = [step.share for step in steps if step.kind == "canary"]
    if steps[-1].kind != "canary" or steps[-1].share != 100:
        raise RolloutConfigError('the last step must be {"kind": "canary", "share": 100} (or give no steps)')
    if canaries != sorted(set(canaries)):
        raise RolloutConfigError(f"canary shares must rise step by step, got {canaries}")
    first_canary = next(i for i, step in enumerate(steps) if step.kind == "canary")
    if any(step.kind == "shadow" for step in steps[first_canary:]):
        raise RolloutConfigError("shadow steps come before the canary steps")


def _rule(kind: type[Any], raw: Any, name: str) -> Any:
    if raw is None:
        return kind()
    if not isinstance(raw, Mapping):
        raise RolloutConfigError(f"{name} must be an object")
    defaults = kind()
    _known(raw, {f.name for f in fields(kind)}, name)
    values: dict[str, Any] = {}
    for item in fields(kind):
        if item.name not in raw:
            continue
        value, default = raw[item.name], getattr(defaults, item.name)
        where = f"{name}.{item.name}"
        if isinstance(default, bool):
            if not isinstance(value, bool):
                raise RolloutConfigError(f"{where} must be true or false, not {value!r}")
        elif isinstance(default, int):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise RolloutConfigError(f"{where} must be a whole number >= 1, not {value!r}")
        elif isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise RolloutConfigError(f"{where} must be a number >= 0, not {value!r}")
        elif item.name in FRACTIONS and value > 1:  # 5 meant as 5% would switch the check off
            raise RolloutConfigError(f"{where} is a fraction 0..1 (0.05 for 5%), not {value!r}")
        values[item.name] = type(default)(value)
    return kind(**values)


def _known(raw: Mapping[str, Any], known: set[str], where: str) -> None:
    unknown = sorted(set(raw) - known)
    if unknown:
        raise RolloutConfigError(f"unknown field(s) in {where}: {', '.join(map(str, unknown))}")


def _number(raw: Mapping[str, Any], name: str, default: float, *, low: float, where: str = "") -> float:
    value = raw.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < low:
        raise RolloutConfigError(f"{where + '.' if where else ''}{name} must be a number >= {low:g}, not {value!r}")
    return float(value)


def _whole(raw: Mapping[str, Any], name: str, default: int, *, low: int, where: str = "") -> int:
    value = raw.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise RolloutConfigError(f"{where + '.' if where else ''}{name} must be a whole number >= {low}, not {value!r}")
    return value
