"""A rollout step's analysis: the new deployment against the stable one, on what each actually served.

Pure (scipy's tests, imported when a step is analysed; no I/O). Every check keeps its numbers, so
the verdict in the release's JSON and timeline is the evidence, not just the answer:

- traffic: the new deployment answered at least the step's ``min_requests`` (else: too little to judge);
- errors: 5xx rate, one-sided Fisher exact test (holds for small counts), binomial when the stable
  deployment has nothing to compare with;
- latency: p95 of each and a one-sided Mann-Whitney U test (decides only if the policy says so);
- divergence (shadow: mirrored requests, the same rows answered by both): the share of rows whose
  predictions differ by more than the tolerance, and the shift of the prediction distribution;
- shift (canary: different requests): the distribution shift, recorded without deciding.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from functions.domain.refs import Evidence, Served
from functions.domain.rollout import RolloutPolicy, RolloutStep


def analyse(
    step: RolloutStep, evidence: Evidence, candidate: str, stable: str, policy: RolloutPolicy, *, waited_out: bool
) -> dict[str, Any]:
    """The verdict of ``step``: {"passed", "summary", "checks": [...], "candidate", "stable", ...}.

    ``waited_out``: the step's max wait passed before its window and minimum were met (said in the verdict).
    """
    shadow = step.kind == "shadow"
    new = (evidence.mirrored if shadow else evidence.served).get(candidate) or Served()
    old = evidence.served.get(stable) or Served()
    checks = [
        _traffic(step, new, shadow, waited_out),
        _errors(new, old, policy),
        _latency(new, old, policy),
    ]
    if shadow:
        checks.append(_divergence(list(evidence.pairs.get(candidate) or ()), policy))
    else:
        checks.append(_unpaired_shift(list(new.predictions), list(old.predictions)))
    deciding = [check for check in checks if check["decides"]]
    failed = [check for check in deciding if not check["passed"]]
    summary = "; ".join(check["summary"] for check in checks)
    verdict = "passed" if not failed else f"failed ({', '.join(check['name'] for check in failed)})"
    return {
        "passed": not failed,
        "summary": f"{step.label}: {verdict}: {summary}",
        "checks": checks,
        "candidate": _described(candidate, new),
        "stable": _described(stable, old),
        "source": evidence.source,
        "note": evidence.note,
    }


def _described(key: str, served: Served) -> dict[str, Any]:
    return {"deployment": key, "requests": served.requests, "errors": served.errors,
            "p95_ms": _round(percentile(served.latencies_ms, 95))}  # fmt: skip


def _traffic(step: RolloutStep, new: Served, shadow: bool, waited_out: bool) -> dict[str, Any]:
    what = "mirrored requests" if shadow else "requests"
    passed = new.requests >= step.min_requests
    said = f"{new.requests} {what} (min {step.min_requests})"
    if not passed:
        said += ": too little traffic to judge" + (" within the step's max wait" if waited_out else "")
    return {"name": "traffic", "passed": passed, "decides": True, "requests": new.requests,
            "min_requests": step.min_requests, "summary": said}  # fmt: skip


def _errors(new: Served, old: Served, policy: RolloutPolicy) -> dict[str, Any]:
    from scipy import stats  # heavy: only when a step is analysed

    rule = policy.errors
    new_errors, old_errors = min(new.errors, new.requests), min(old.errors, old.requests)
    if old.requests:
        table = [[new_errors, new.requests - new_errors], [old_errors, old.requests - old_errors]]
        p_value = float(stats.fisher_exact(table, alternative="greater").pvalue) if new.requests else 1.0
        test = "Fisher exact, one-sided"
    else:
        p_value = float(stats.binomtest(new_errors, new.requests, rule.baseline_rate, "greater").pvalue) \
            if new.requests else 1.0  # fmt: skip
        test = f"binomial against {rule.baseline_rate:.2%}, one-sided (the stable deployment served nothing)"
    passed = not p_value < rule.alpha
    said = f"errors {new_errors}/{new.requests} vs {old_errors}/{old.requests} ({test} p={p_value:.3g}"
    said += f", fails below {rule.alpha:g})"
    return {"name": "errors", "passed": passed, "decides": True, "candidate": [new_errors, new.requests],
            "stable": [old_errors, old.requests], "p_value": _round(p_value), "alpha": rule.alpha,
            "test": test, "summary": said}  # fmt: skip


def _latency(new: Served, old: Served, policy: RolloutPolicy) -> dict[str, Any]:
    rule = policy.latency
    new_p95, old_p95 = percentile(new.latencies_ms, 95), percentile(old.latencies_ms, 95)
    check: dict[str, Any] = {"name": "latency", "decides": rule.decides, "candidate_p95_ms": _round(new_p95),
                             "stable_p95_ms": _round(old_p95), "samples": [len(new.latencies_ms),
                             len(old.latencies_ms)]}  # fmt: skip
    deciding = "" if rule.decides else ", recorded only"
    if min(len(new.latencies_ms), len(old.latencies_ms)) < rule.min_samples:
        return {**check, "passed": True, "summary": f"latency: too few samples to test (min {rule.min_samples}"
                f"{deciding})"}  # fmt: skip
    from scipy import stats

    p_value = float(stats.mannwhitneyu(new.latencies_ms, old.latencies_ms, alternative="greater").pvalue)
    ratio = new_p95 / old_p95 if old_p95 else math.inf
    passed = not (p_value < rule.alpha and ratio > rule.max_p95_ratio)
    said = (f"p95 {new_p95:.1f} vs {old_p95:.1f} ms (x{ratio:.2f}, fails above x{rule.max_p95_ratio:g} with "
            f"Mann-Whitney p<{rule.alpha:g}: p={p_value:.3g}{deciding})")  # fmt: skip
    return {**check, "passed": passed, "p_value": _round(p_value), "p95_ratio": _round(ratio), "summary": said}


def _divergence(pairs: list[tuple[Any, Any]], policy: RolloutPolicy) -> dict[str, Any]:
    rule = policy.divergence
    check: dict[str, Any] = {"name": "divergence", "decides": rule.decides, "rows": len(pairs)}
    if not pairs:
        return {**check, "passed": True, "summary": "divergence: no mirrored rows to compare"}
    diverging = sum(1 for old, new in pairs if diverges(old, new, rule.relative, rule.absolute))
    share = diverging / len(pairs)
    shift = distribution_shift([new for _, new in pairs], [old for old, _ in pairs])
    passed = share <= rule.max_share and (shift is None or shift <= rule.max_shift)
    shown_shift = "n/a" if shift is None else f"{shift:.3f}"
    said = (f"{diverging}/{len(pairs)} mirrored rows diverge ({share:.1%}, max {rule.max_share:.0%}; a row "
            f"diverges beyond {rule.absolute:g} + {rule.relative:g}x|stable|), shift {shown_shift} "
            f"(max {rule.max_shift:g})")  # fmt: skip
    return {**check, "passed": passed, "diverging": diverging, "share": _round(share), "max_share": rule.max_share,
            "shift": _round(shift), "max_shift": rule.max_shift, "tolerance": {"relative": rule.relative,
            "absolute": rule.absolute}, "summary": said}  # fmt: skip


def _unpaired_shift(new: list[Any], old: list[Any]) -> dict[str, Any]:
    shift = distribution_shift(new, old)
    said = "prediction shift n/a" if shift is None else f"prediction shift {shift:.3f}"
    return {"name": "shift", "passed": True, "decides": False, "shift": _round(shift), "rows": [len(new), len(old)],
            "summary": f"{said} (different requests: recorded only)"}  # fmt: skip


def diverges(old: Any, new: Any, relative: float, absolute: float) -> bool:
    """Whether two predictions of the same row differ beyond the tolerance (labels: any difference)."""
    if _is_number(old) and _is_number(new):
        return abs(float(new) - float(old)) > absolute + relative * abs(float(old))
    return bool(old != new)


def distribution_shift(new: Sequence[Any], old: Sequence[Any]) -> float | None:
    """Kolmogorov-Smirnov statistic of two numeric samples; total variation distance of two label samples."""
    if not new or not old:
        return None
    if all(_is_number(v) for v in new) and all(_is_number(v) for v in old):
        from scipy import stats

        return float(stats.ks_2samp([float(v) for v in new], [float(v) for v in old]).statistic)
    labels = {str(v) for v in new} | {str(v) for v in old}
    return 0.5 * sum(abs(_share(new, label) - _share(old, label)) for label in labels)


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (nearest rank), 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return float(ordered[rank - 1])


def _share(values: Sequence[Any], label: str) -> float:
    return sum(1 for v in values if str(v) == label) / len(values)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _round(value: float | None) -> float | None:
    """Rounded for the record; None for no value and for inf/nan (JSON has neither)."""
    if value is None or not math.isfinite(value):
        return None
    return round(value, 6)
