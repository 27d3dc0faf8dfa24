"""What people are told about a release: one Notification, rendered later for each target's format.

Pure: built from the release as it was saved, so a retried send says what the first attempt said.
A notification carries the evidence (the gate's numbers, data checks, staging tests, lineage) and a
link to the release's page, and never a credential: everyone in a channel reads it, so the page
authenticates the reader instead. The formats (Teams, Slack, JSON) are the adapters' job.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from functions.domain.lineage import gate_evidence, release_lineage
from functions.domain.release import Release, State

# The formats a webhook target can take (MLOPS_NOTIFICATION_TARGETS: FORMAT:URL or NAME=FORMAT:URL).
TARGET_FORMATS = ("teams", "slack", "json")
MAX_TEXT = 600  # one summary line in a chat message, not a report: the page has the rest


class Kind(StrEnum):
    APPROVAL_REQUESTED = "approval_requested"
    LIVE = "live"
    ROLLED_BACK = "rolled_back"
    REJECTED = "rejected"  # by the gate
    DECLINED = "declined"  # by a person
    FAILED = "failed"
    EXPIRED = "expired"


# How a channel colours it: good news, a request for attention, a quiet no, a failure.
TONES = {
    Kind.APPROVAL_REQUESTED: "attention",
    Kind.LIVE: "good",
    Kind.REJECTED: "warning",
    Kind.DECLINED: "warning",
    Kind.EXPIRED: "warning",
    Kind.FAILED: "bad",
    Kind.ROLLED_BACK: "bad",
}
KIND_OF_STATE = {
    State.LIVE: Kind.LIVE,
    State.ROLLED_BACK: Kind.ROLLED_BACK,
    State.REJECTED: Kind.REJECTED,
    State.DECLINED: Kind.DECLINED,
    State.FAILED: Kind.FAILED,
    State.EXPIRED: Kind.EXPIRED,
}


@dataclass(frozen=True)
class Fact:
    name: str
    value: str


@dataclass(frozen=True)
class Notification:
    kind: str  # a Kind value
    release_id: str
    state: str
    title: str  # "Release rel-1 awaits approval"
    summary: str  # why, in a sentence or two (the gate's reason, the error)
    url: str  # the release's page; it asks the reader to sign in
    at: str  # when the release reached this state (ISO UTC)
    facts: tuple[Fact, ...] = ()
    evidence: dict[str, Any] = field(default_factory=dict)  # the gate's numbers, for machines
    lineage: dict[str, str] = field(default_factory=dict)
    # The same on every send of this notification (a UUID): receivers drop repeats by it (at least once).
    id: str = ""

    @property
    def tone(self) -> str:
        return TONES.get(Kind(self.kind), "attention")

    def to_json(self) -> dict[str, Any]:
        document = asdict(self)
        document["facts"] = [asdict(fact) for fact in self.facts]
        return document

    @classmethod
    def from_json(cls, document: dict[str, Any]) -> Notification:
        fields = dict(document)
        fields["facts"] = tuple(Fact(str(f["name"]), str(f["value"])) for f in fields.get("facts") or ())
        fields["evidence"] = dict(fields.get("evidence") or {})
        fields["lineage"] = {str(k): str(v) for k, v in (fields.get("lineage") or {}).items()}
        return cls(**fields)


def kind_for(release: Release) -> Kind | None:
    """What a release in its current state is worth telling people, if anything."""
    return KIND_OF_STATE.get(release.state)


def notification_for(
    release: Release,
    kind: Kind,
    page_url: str,
    *,
    required_approvals: int = 1,
    extra_facts: tuple[Fact, ...] = (),
) -> Notification:
    """The notification of ``kind`` about ``release`` as it is now; ``page_url`` is its page."""
    title, summary = _headline(release, kind, required_approvals)
    return Notification(
        kind=kind.value,
        release_id=release.id,
        state=release.state.value,
        title=title,
        summary=_clip(summary),
        url=page_url,
        at=release.updated_at,
        facts=(*_facts(release, kind, required_approvals), *extra_facts),
        evidence=gate_evidence(release),
        lineage=release_lineage(release),
        id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"mlops-notification:{release.id}:{kind.value}:v{release.version}")),
    )


def _headline(release: Release, kind: Kind, required: int) -> tuple[str, str]:
    reason = str((release.gate or {}).get("reason") or "")
    rid = release.id
    if kind == Kind.APPROVAL_REQUESTED:
        needs = "one approval" if required == 1 else f"{required} approvals from different people"
        return f"Release {rid} awaits approval", f"{_sentence(reason)} Staging tests passed. It needs {needs}."
    if kind == Kind.LIVE:
        return f"Release {rid} is live", _last_detail(release)
    if kind == Kind.REJECTED:
        return f"Release {rid} was rejected by the gate", reason or _last_detail(release)
    if kind == Kind.DECLINED:
        return f"Release {rid} was declined", _last_detail(release)
    if kind == Kind.EXPIRED:
        deadline = (release.approval or {}).get("deadline", "")
        return f"Release {rid} expired without a decision", f"Nobody decided before the deadline {deadline}."
    if kind == Kind.ROLLED_BACK:
        return f"Release {rid} was rolled back", _last_detail(release) or str(release.error or "")
    return f"Release {rid} failed", release.error or _last_detail(release)


def _facts(release: Release, kind: Kind, required: int) -> list[Fact]:
    facts = [Fact("State", release.state.value.replace("_", " "))]
    trigger = release.trigger
    build = str(trigger.get("buildNumber") or trigger.get("buildId") or "")
    if build:
        facts.append(Fact("Build", build))
    if trigger.get("sourceVersion"):
        facts.append(Fact("Commit", str(trigger["sourceVersion"])[:12]))
    requester = trigger.get("requester") or trigger.get("requestedFor")
    if requester:
        facts.append(Fact("Requested by", str(requester)))
    model = (release.candidate or {}).get("model")
    if model:
        facts.append(Fact("Model", f"{model['name']}:{model['version']}"))
    evidence = gate_evidence(release)
    if evidence.get("metric"):
        facts.append(Fact("Gate", _gate_line(evidence)))
    checks = release.data_checks or {}
    if checks.get("checks") is not None:
        failed = checks.get("failed") or []
        verdict = "passed" if checks.get("passed") else f"failed: {', '.join(map(str, failed))}"
        facts.append(Fact("Data checks", f"{verdict} ({len(checks['checks'])} checks)"))
    staging = release.staging or {}
    if staging.get("tests"):
        facts.append(Fact("Staging tests", _tests_line(staging)))
    if kind == Kind.APPROVAL_REQUESTED:
        deadline = (release.approval or {}).get("deadline")
        facts.append(Fact("Approvals", f"{len(release.approvals())} of {required}"))
        if deadline:
            facts.append(Fact("Decide before", str(deadline)))
    if release.error and kind in (Kind.FAILED, Kind.ROLLED_BACK):
        facts.append(Fact("Error", _clip(release.error)))
    return facts


def _gate_line(evidence: dict[str, Any]) -> str:
    metric = evidence["metric"]
    if evidence.get("champion") is None:
        candidate = evidence.get("candidate")
        return f"no champion; candidate {metric} {_num(candidate)}" if candidate is not None else "no champion"
    low, high = evidence.get("interval") or (None, None)
    level = f"{float(evidence.get('confidence') or 0):.0%}"
    return (f"{metric} champion {_num(evidence['champion'])} vs candidate {_num(evidence.get('candidate'))}; "
            f"improvement {_num(evidence.get('improvement'), signed=True)} ({level} CI [{_num(low, signed=True)}, "
            f"{_num(high, signed=True)}])")  # fmt: skip


def _tests_line(staging: dict[str, Any]) -> str:
    parts = []
    for report in staging.get("tests") or []:
        checks = report.get("checks") or []
        passed = sum(1 for check in checks if check.get("passed"))
        name = str(report.get("summary") or "").split(" test", 1)[0] or "test"
        parts.append(f"{name} {passed}/{len(checks)}")
    verdict = "passed" if staging.get("passed") else "failed"
    return f"{verdict}: {', '.join(parts)}" if parts else verdict


def _last_detail(release: Release) -> str:
    return str(release.timeline[-1]["detail"]) if release.timeline else ""


def _sentence(text: str) -> str:
    text = text.strip()
    if not text:
        return ""
    text = text[0].upper() + text[1:]
    return text if text.endswith(".") else text + "."


def _num(value: Any, *, signed: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{float(value):+.4g}" if signed else f"{float(value):.4g}"


def _clip(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"
