"""Who may decide on a release, and how many must: the approval policy and the principal it judges.

Pure: no I/O. A Principal is an identity someone proved (Easy Auth headers, the local CLI's signature,
a signed link), never one read from a request body. The policy is one setting (MLOPS_APPROVAL_POLICY,
JSON), validated at start: a bad field stops the app, naming it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

GROUP_PREFIX = "group:"
METHODS = ("easy_auth", "cli", "link", "session", "policy")


class ApprovalConfigError(ValueError):
    """The approval policy setting is malformed; the message names the field."""


@dataclass(frozen=True)
class Principal:
    """A proven identity. ``groups`` is None when the provider could not list them (a groups overage):
    group rules then fail closed."""

    name: str  # UPN or email as the provider gives it
    object_id: str = ""  # the directory's object id, where there is one
    provider: str = ""  # "aad", "local", ...
    method: str = ""  # one of METHODS: how it was proven
    groups: tuple[str, ...] | None = ()

    def is_identity(self, identity: str) -> bool:
        wanted = identity.strip().lower()
        return bool(wanted) and wanted in {self.name.strip().lower(), self.object_id.strip().lower()} - {""}

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "object_id": self.object_id, "provider": self.provider, "method": self.method}


_FIELD_TYPES: dict[str, type | tuple[type, ...]] = {
    "required_approvals": int,
    "allow_self_approval": bool,
    "comment_required_to_decline": bool,
    "deadline_hours": (int, float),
    "unknown_requester": str,
}

POLICY_PRINCIPAL = Principal("approval policy", provider="mlops", method="policy")


@dataclass(frozen=True)
class AutoApprove:
    """Approve without a person when the evidence is overwhelming: the gate's superiority interval at
    ``min_confidence`` or higher cleared, and (by default) every staging test passed."""

    min_confidence: float = 0.99
    require_staging_passed: bool = True


@dataclass(frozen=True)
class ApprovalPolicy:
    # Users by UPN/email or object id, groups as "group:<object id>"; empty: any proven identity.
    approvers: tuple[str, ...] = ()
    required_approvals: int = 1  # distinct approvers
    allow_self_approval: bool = False
    # When the release's requester cannot be compared with the approver: "deny" (fail closed) or "allow".
    unknown_requester: Literal["deny", "allow"] = "deny"
    deadline_hours: float = 72.0
    comment_required_to_decline: bool = True
    auto_approve: AutoApprove | None = None

    def __post_init__(self) -> None:
        if self.required_approvals < 1:
            raise ApprovalConfigError(f"required_approvals must be at least 1, got {self.required_approvals}")
        if self.unknown_requester not in ("deny", "allow"):
            raise ApprovalConfigError(f"unknown_requester must be deny or allow, got {self.unknown_requester!r}")
        if not self.deadline_hours > 0:
            raise ApprovalConfigError(f"deadline_hours must be positive, got {self.deadline_hours}")
        for approver in self.approvers:
            if not approver.strip() or approver.strip() == GROUP_PREFIX:
                raise ApprovalConfigError(f"approvers: {approver!r} names nobody")
        if self.auto_approve is not None and not 0.5 <= self.auto_approve.min_confidence < 1:
            raise ApprovalConfigError("auto_approve.min_confidence must be at least 0.5 and below 1")

    @classmethod
    def from_mapping(cls, settings: Mapping[str, Any]) -> ApprovalPolicy:
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(settings) - known)
        if unknown:
            raise ApprovalConfigError(f"unknown approval policy field(s): {', '.join(unknown)}")
        values = dict(settings)
        approvers = values.get("approvers", [])
        if not isinstance(approvers, list) or not all(isinstance(a, str) for a in approvers):
            raise ApprovalConfigError("approvers must be a list of strings")
        values["approvers"] = tuple(a.strip() for a in approvers)
        for name, kind in _FIELD_TYPES.items():
            value = values.get(name)
            if name in values and (not isinstance(value, kind) or (kind is not bool and isinstance(value, bool))):
                raise ApprovalConfigError(f"{name} has the wrong type: {value!r}")
        auto = values.get("auto_approve")
        if auto is not None:
            if not isinstance(auto, Mapping) or set(auto) - {"min_confidence", "require_staging_passed"}:
                raise ApprovalConfigError("auto_approve takes min_confidence and require_staging_passed")
            values["auto_approve"] = AutoApprove(**auto)
        return cls(**values)

    def to_json(self) -> dict[str, Any]:
        document = asdict(self)
        document["approvers"] = list(self.approvers)
        return document

    # ---- judging a person ----
    def refusal(self, principal: Principal, requester: str | None) -> str | None:
        """Why ``principal`` may not approve a release started by ``requester`` (None: they may)."""
        if self.approvers and not self._is_approver(principal):
            if principal.groups is None and any(a.startswith(GROUP_PREFIX) for a in self.approvers):
                return (f"{principal.name} is not a named approver, and the identity provider did not list "
                        "their groups (too many to send): group approval fails closed")  # fmt: skip
            return f"{principal.name} is not an approver of this release"
        if not self.allow_self_approval:
            if requester is None:
                if self.unknown_requester == "deny":
                    return ("who started this release cannot be compared with your identity, so self-approval "
                            "cannot be ruled out (policy: unknown_requester deny)")  # fmt: skip
            elif principal.is_identity(requester):
                return f"{principal.name} started this release and may not approve it (self-approval)"
        return None

    def decline_refusal(self, principal: Principal) -> str | None:
        """Why ``principal`` may not decline (only approvers may; a requester may decline their own)."""
        if self.approvers and not self._is_approver(principal):
            return f"{principal.name} is not an approver of this release"
        return None

    def _is_approver(self, principal: Principal) -> bool:
        for approver in self.approvers:
            if approver.startswith(GROUP_PREFIX):
                group = approver[len(GROUP_PREFIX) :].strip().lower()
                if principal.groups and group in {g.lower() for g in principal.groups}:
                    return True
            elif principal.is_identity(approver):
                return True
        return False

    # ---- approving without a person ----
    def auto_approves(self, gate: Mapping[str, Any] | None, staging: Mapping[str, Any] | None) -> bool:
        rule = self.auto_approve
        if rule is None or not gate or not gate.get("promote"):
            return False
        evidence = gate.get("evidence") or {}
        policy = evidence.get("policy") or {}
        if policy.get("mode") != "superiority" or float(evidence.get("confidence") or 0) < rule.min_confidence:
            return False
        interval = evidence.get("interval")
        if not interval or float(interval[0]) <= float(evidence.get("threshold") or 0):
            return False
        return not rule.require_staging_passed or bool((staging or {}).get("passed"))


def identifiers(record: Mapping[str, Any]) -> set[str]:
    return {str(record.get(key) or "").strip().lower() for key in ("name", "object_id")} - {""}


def same_person(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Two recorded principals are one person when any identifier matches: a name on one and the object
    id on the other included (an approval by UPN and another by a link minted for the object id)."""
    return bool(identifiers(a) & identifiers(b))


def requester_of(trigger: Mapping[str, Any]) -> str | None:
    """The comparable identity of whoever started the release: recorded by the hook (``requester``:
    Azure DevOps' uniqueName, a mapped GitHub login, the CLI's signed identity), else ``requestedFor``
    when it has the UPN/email form; None when nothing comparable is known."""
    if trigger.get("requesterVerified") is False:
        return None  # published by whoever could publish: not evidence of who started it
    recorded = str(trigger.get("requester") or "").strip()
    if recorded:
        return recorded
    requested = str(trigger.get("requestedFor") or "").strip()
    return requested if "@" in requested else None
