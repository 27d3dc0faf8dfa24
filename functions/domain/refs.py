"""Value objects the orchestrator and its adapters exchange: what a port takes and gives back."""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass, field
from typing import Any

from functions.domain.input_limits import DEAD_LETTER_EXCERPT_CHARS, MAX_EVENT_ID_CHARS, json_text, printable


@dataclass(frozen=True)
class ModelRef:
    name: str
    version: str
    # Where the model's files are: a local directory, or an azureml:// URI.
    location: str
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ImageRef:
    repository: str
    tag: str
    digest: str = ""
    # Local platform: the build context directory; Azure: the login server.
    location: str = ""

    @property
    def reference(self) -> str:
        return f"{self.repository}:{self.tag}"


@dataclass(frozen=True)
class Endpoint:
    name: str
    scoring_url: str
    version: str = ""  # the deployment/slot behind the URL


@dataclass(frozen=True)
class Operation:
    """A long platform step in flight (a deployment coming up, a traffic change), kept on the release.

    ``kind`` is "staging", "beside", "traffic" or "window" (a rollout step holding for its analysis window,
    followed by the service itself, not the deployer); ``deployment`` the key of the deployment it concerns
    (a release id); ``handle`` is what the adapter follows it by (resource names, the traffic it waits
    for): plain JSON, so the timer that follows it may run in another process than the one that began it.
    """

    kind: str
    deployment: str
    handle: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Progress:
    """Where an Operation is: "running", "succeeded" or "failed" (``detail`` says why)."""

    state: str
    detail: str = ""
    # A deployment that came up: where to test it directly (it may serve no live traffic yet).
    endpoint: Endpoint | None = None

    @property
    def finished(self) -> bool:
        return self.state != "running"


@dataclass(frozen=True)
class Served:
    """What one production deployment answered over a stretch of time: every request counted, samples kept.

    ``errors`` are 5xx answers (and requests that got no answer); a 4xx is the caller's fault, not one.
    ``latencies_ms`` and ``predictions`` are samples (the newest, bounded by the adapter): the
    predictions are the ``result`` values of the answers, row by row (numbers, or labels for a classifier).
    """

    requests: int = 0
    errors: int = 0
    latencies_ms: tuple[float, ...] = ()
    predictions: tuple[float | str, ...] = ()


@dataclass(frozen=True)
class Evidence:
    """What production served since a mark (``ProductionEvidence.since``), per deployment.

    ``served``: the live answers each deployment gave. ``mirrored``: the answers each deployment gave to
    mirrored copies of live requests (discarded, never seen by callers). ``pairs``: per mirrored deployment,
    (the live answer's prediction, its prediction) row by row for the same requests: the divergence
    the analysis measures. ``note`` says what the adapter could not see (a restarted router, a clipped sample).
    """

    served: dict[str, Served] = field(default_factory=dict)
    mirrored: dict[str, Served] = field(default_factory=dict)
    pairs: dict[str, tuple[tuple[float | str, float | str], ...]] = field(default_factory=dict)
    source: str = ""
    note: str = ""


@dataclass(frozen=True)
class JobStatus:
    state: str  # "running" | "completed" | "failed" | "canceled" | "unknown"
    detail: str = ""
    portal_url: str = ""


@dataclass(frozen=True)
class TestReport:
    __test__ = False  # not a pytest test class

    passed: bool
    summary: str
    checks: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class DeadLetter:
    """An event or work item that could not be processed, and why. It keeps a bounded excerpt of the
    payload's JSON text (invalid Unicode escaped) with the size and sha256 of the whole, never the
    whole: a dead letter must not be a way to fill the store or the API's answers."""

    event_id: str
    event_type: str
    function: str
    reason: str
    received_at: str
    excerpt: str
    size: int
    sha256: str
    cursor: str = ""  # where the store keeps it, for paging (set when read)

    @classmethod
    def of(
        cls, event_id: str, event_type: str, function: str, reason: str, received_at: str, payload: Any
    ) -> DeadLetter:
        """The letter of ``payload``. Letters are kept once per (event id, function), so one without an
        ``event_id`` ("") is named by its content: ``(no id) <sha256 prefix>``."""
        text = json_text(payload)
        if text is None:
            text = f"(a {type(payload).__name__} that cannot be written as JSON: nested too deeply)"
        data = text.encode("ascii")
        digest = hashlib.sha256(data).hexdigest()
        return cls(
            printable(event_id, MAX_EVENT_ID_CHARS) if event_id else f"(no id) {digest[:16]}",
            printable(event_type),
            printable(function),
            printable(reason, 2000),
            received_at,
            text[:DEAD_LETTER_EXCERPT_CHARS],
            len(data),
            digest,
        )

    @property
    def truncated(self) -> bool:
        return len(self.excerpt) < self.size

    def stored(self) -> dict[str, Any]:
        """What a store keeps of the payload (``from_stored`` reads it back, or a whole legacy payload)."""
        return {"excerpt": self.excerpt, "size": self.size, "sha256": self.sha256, "kept": "excerpt"}

    @classmethod
    def from_stored(
        cls, event_id: str, event_type: str, function: str, reason: str, received_at: str, kept: Any, cursor: str
    ) -> DeadLetter:
        if isinstance(kept, dict) and kept.get("kept") == "excerpt":
            excerpt, size, digest = str(kept["excerpt"]), int(kept["size"]), str(kept["sha256"])
            return cls(event_id, event_type, function, reason, received_at, excerpt, size, digest, cursor)
        # Written before dead letters kept excerpts: the whole payload, cut down as it is read.
        letter = cls.of(event_id, event_type, function, reason, received_at, kept)
        return dataclasses.replace(letter, cursor=cursor)

    def to_json(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "event_type": self.event_type,
            "function": self.function,
            "reason": self.reason,
            "received_at": self.received_at,
            "size": self.size,
            "sha256": self.sha256,
            "excerpt": self.excerpt,
            "truncated": self.truncated,
        }


@dataclass(frozen=True)
class ParkedEvent:
    """An event kept until its release is ready for it (functions/service/delivery.py), as listed."""

    release_id: str
    event_id: str
    event_type: str
    parked_at: str
    cursor: str = ""

    def to_json(self, expires_at: str) -> dict[str, Any]:
        return {
            "release_id": self.release_id,
            "event_id": self.event_id,
            "event_type": self.event_type,
            "parked_at": self.parked_at,
            "expires_at": expires_at,
        }


@dataclass(frozen=True)
class WorkItem:
    """Background work in the outbox, carried out by the timer (notifications, async steps, rollout steps).

    ``key`` is unique among pending items: adding a key that is still pending keeps the first item
    (a finished item is gone, so callers give work a key per occasion, e.g. per release version).
    ``kind`` names the handler; ``due_at`` is ISO 8601 UTC (``YYYY-MM-DDTHH:MM:SS+00:00``, which
    sorts as text). ``version`` is the store's, for compare-and-set claims.
    """

    key: str
    kind: str
    release_id: str
    payload: dict[str, Any]
    due_at: str
    attempts: int = 0
    last_error: str = ""
    version: int = 0
