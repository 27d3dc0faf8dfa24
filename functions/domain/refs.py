"""Value objects the orchestrator and its adapters exchange: what a port takes and gives back."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


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
    event_id: str
    event_type: str
    function: str
    reason: str
    received_at: str
    payload: Any


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
