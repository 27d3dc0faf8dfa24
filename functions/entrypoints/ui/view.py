"""What the page shows of a release: the record turned into plain values and charts for the templates.

No I/O: the release, the approval policy and the reader come in; the templates only lay it out.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from functions.domain.approval import ApprovalPolicy, Principal, requester_of, same_person
from functions.domain.lineage import gate_evidence, release_lineage
from functions.domain.notifications import TONES, kind_for
from functions.domain.release import Release, State
from functions.domain.rollout import step_from_json
from functions.entrypoints.ui import charts


def tone_of(release: Release) -> str:
    kind = kind_for(release)
    if release.state == State.AWAITING_APPROVAL:
        return "attention"
    return TONES[kind] if kind is not None else "neutral"


def summary_row(release: Release) -> dict[str, Any]:
    """One line of the list page."""
    evidence = gate_evidence(release)
    trigger = release.trigger
    return {
        "id": release.id,
        "state": release.state.value,
        "state_label": label(release.state),
        "tone": tone_of(release),
        "created_at": release.created_at,
        "build": str(trigger.get("buildNumber") or trigger.get("buildId") or trigger.get("kind") or ""),
        "commit": str(trigger.get("sourceVersion") or "")[:12],
        "metric": evidence.get("metric", ""),
        "candidate": evidence.get("candidate"),
        "champion": evidence.get("champion"),
        "decision": "passed" if evidence.get("promote") else ("rejected" if evidence else ""),
    }


IN_FLIGHT = frozenset({State.DEPLOYING_STAGING, State.PROMOTING})
REFRESH_S = 3


def release_page(release: Release, policy: ApprovalPolicy, reader: Principal | None, now: datetime) -> dict[str, Any]:
    """Everything the release's page shows."""
    trigger = release.trigger
    approvals = release.approvals()
    required = int((release.approval or {}).get("required") or policy.required_approvals)
    waiting = release.state == State.AWAITING_APPROVAL
    requester = requester_of(trigger)
    return {
        "id": release.id,
        "state": release.state.value,
        "state_label": label(release.state),
        "tone": tone_of(release),
        "waiting": waiting,
        "error": release.error,
        "created_at": release.created_at,
        "updated_at": release.updated_at,
        "trigger": _trigger(trigger),
        "lineage": release_lineage(release),
        "params": release.params,
        "data_checks": release.data_checks,
        "gate": _gate(release),
        "staging": release.staging,
        "production": release.production,
        "rollout": rollout_rows(release),
        "timeline": list(reversed(release.timeline)),  # newest first: what happened last is what people look for
        "approval": {
            "approvals": approvals,
            "required": required,
            "remaining": max(required - len(approvals), 0),
            "deadline": (release.approval or {}).get("deadline"),
            "decision": (release.approval or {}).get("decision"),
            "who_may": who_may_approve(policy, requester, approvals),
        },
        "reader_note": _reader_note(policy, reader, requester, approvals) if waiting else None,
        # A step the timer carries on (a deployment coming up, traffic moving): the page reloads itself.
        "in_flight": (release.operation or {}).get("what") if release.state in IN_FLIGHT else None,
        "refresh_s": REFRESH_S if release.state in IN_FLIGHT else None,
        "overdue": waiting and _past((release.approval or {}).get("deadline"), now),
    }


def who_may_approve(policy: ApprovalPolicy, requester: str | None, approvals: list[dict[str, Any]]) -> str:
    """The policy in words: who may still approve this release."""
    people = ", ".join(policy.approvers) if policy.approvers else "anyone who signs in"
    rules = []
    if not policy.allow_self_approval:
        if requester:
            rules.append(f"except {requester}, who started it")
        elif policy.unknown_requester == "deny":
            rules.append("but nobody yet: who started it is not known, so self-approval cannot be ruled out")
    if approvals:
        rules.append("and not " + ", ".join(str(a.get("name", "")) for a in approvals) + " again")
    return " ".join([people, *rules])


def _reader_note(
    policy: ApprovalPolicy, reader: Principal | None, requester: str | None, approvals: list[dict[str, Any]]
) -> str | None:
    """A word before the reader tries: they approved already, or the policy will refuse them."""
    if reader is None:
        return None
    if any(same_person(reader.to_json(), earlier) for earlier in approvals):
        return "You have approved this release; it waits for someone else."
    refusal = policy.refusal(reader, requester)
    return f"The policy will refuse your approval: {refusal}." if refusal else None


def _trigger(trigger: dict[str, Any]) -> dict[str, str]:
    found = {
        "kind": str(trigger.get("kind") or ""),
        "build": str(trigger.get("buildNumber") or trigger.get("buildId") or ""),
        "result": str(trigger.get("result") or ""),
        "repository": str(trigger.get("repository") or ""),
        "branch": str(trigger.get("sourceBranch") or ""),
        "commit": str(trigger.get("sourceVersion") or ""),
        "requested_by": str(trigger.get("requester") or trigger.get("requestedFor") or ""),
        "reason": str(trigger.get("reason") or ""),
    }
    return {key: value for key, value in found.items() if value}


def _gate(release: Release) -> dict[str, Any] | None:
    evidence = gate_evidence(release)
    if not evidence:
        return None
    gate = release.gate or {}
    metric = str(evidence.get("metric") or "")
    defaults = {"n": None, "mode": None, "confidence": None, "threshold": None, "champion": None, "candidate": None}
    view: dict[str, Any] = {**defaults, **evidence, "bars": None, "plot": None, "intervals": []}
    champion = evidence.get("champion")
    if _finite(evidence.get("candidate"), *([] if champion is None else [champion])):
        view["bars"] = charts.metric_bars("metric-bars", metric, evidence.get("champion"), float(evidence["candidate"]))
    intervals = _improvement_intervals(gate, metric)
    bounds = [bound for pair in intervals.values() for bound in pair]
    # A metric can be NaN (r2 of a constant target): then the table says so and nothing is drawn.
    if intervals and _finite(evidence.get("improvement"), evidence.get("threshold") or 0.0, *bounds):
        threshold = float(evidence.get("threshold") or 0.0)
        level = f"{float(evidence.get('confidence') or 0.95):g}"
        improvement = float(evidence["improvement"])
        view["plot"] = charts.difference_plot("difference", metric, improvement, intervals, threshold, level)
        view["intervals"] = [
            {"level": f"{float(name):.0%}", "low": low, "high": high, "clears": low > threshold, "gate": name == level}
            for name, (low, high) in sorted(intervals.items(), key=lambda item: float(item[0]))
        ]
    view["other_metrics"] = _other_metrics(gate, metric)
    return view


def _improvement_intervals(gate: dict[str, Any], metric: str) -> dict[str, tuple[float, float]]:
    """The report's intervals of candidate minus champion, turned around like the gate's improvement
    (positive: the candidate is better), at every level the evaluation reported."""
    difference = (((gate.get("evaluation") or {}).get("differences") or {}).get(metric)) or {}
    sign = -1.0 if difference.get("direction") == "lower_is_better" else 1.0
    turned = {}
    for level, bounds in (difference.get("intervals") or {}).items():
        low, high = sorted(sign * float(bound) for bound in bounds)
        turned[str(level)] = (low, high)
    return turned


def _other_metrics(gate: dict[str, Any], metric: str) -> list[dict[str, Any]]:
    metrics = (gate.get("evaluation") or {}).get("metrics") or {}
    candidate, champion = metrics.get("candidate") or {}, metrics.get("champion") or {}
    return [
        {"name": name, "candidate": value, "champion": champion.get(name), "gated": name == metric}
        for name, value in candidate.items()
    ]


def _finite(*values: Any) -> bool:
    """Every value is a number a chart can place."""
    try:
        return all(math.isfinite(float(value)) and abs(float(value)) < 1e12 for value in values)
    except (TypeError, ValueError):  # None, or not a number
        return False


def label(state: State) -> str:
    return state.value.replace("_", " ")


def _past(moment: str | None, now: datetime) -> bool:
    return bool(moment) and now >= datetime.fromisoformat(str(moment))


def rollout_rows(release: Release) -> dict[str, Any] | None:
    """The rollout's steps as the page shows them: what each served and what its analysis said."""
    rollout = release.rollout
    if not rollout or not rollout.get("steps"):
        return None
    rows = []
    for step in rollout["steps"]:
        verdict = step.get("verdict") or {}
        checks = {check.get("name"): check for check in verdict.get("checks") or []}
        checked = [
            {"name": name, "passed": bool(check.get("passed")), "decides": bool(check.get("decides")),
             "summary": check.get("summary", "")}
            for name, check in checks.items()
        ]  # fmt: skip
        row = {
            "label": step_from_json(step).label,
            "state": step.get("state", "pending"),
            "candidate": verdict.get("candidate") or {},
            "stable": verdict.get("stable") or {},
            "checks": checked,
            "window": f"{step.get('window_s', 0):g} s, {step.get('min_requests', 0)} requests",
        }
        rows.append(row)
    return {"stable": rollout.get("stable"), "steps": rows}
