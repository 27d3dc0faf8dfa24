"""The ports the orchestrator talks through. Adapters live in platforms/<name>/.

Every call that starts work on a platform carries the release id, so the events that come
back (run completed, model registered, image pushed) find their release without guessing:
job tags ``release_id``, model tags ``release_id``, image tag ``<model version>-<release id>``.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from functions.domain.notifications import Notification
from functions.domain.refs import (
    DeadLetter,
    Endpoint,
    Evidence,
    ImageRef,
    JobStatus,
    ModelRef,
    Operation,
    ParkedEvent,
    Progress,
    TestReport,
    WorkItem,
)
from functions.domain.release import Release

# The one clock the service, reconcile and the local event bus read (tests pass a fake one).
Clock = Callable[[], datetime]

# A single-use token (a signed action link) is refused when it expires more than this after the
# moment it is presented, so a store may forget a spent nonce once a newer spend expires more than
# this (and an hour for clocks that differ) after it: by then the old token is refused as expired
# by any clock that accepted the newer one. No store needs a clock of its own for that.
MAX_TOKEN_LIFETIME = timedelta(days=30)
_CLOCK_SKEW = timedelta(hours=1)


def utc_iso(moment: str) -> str:
    """An ISO time as the stores keep it (UTC, +00:00), so that text order is time order."""
    parsed = datetime.fromisoformat(moment)
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC).isoformat()


def forgettable_before(expires_at: str) -> str:
    """Spent nonces expiring before this (ISO UTC) may be dropped once a nonce expiring at ``expires_at`` is spent."""
    return (datetime.fromisoformat(utc_iso(expires_at)) - MAX_TOKEN_LIFETIME - _CLOCK_SKEW).isoformat()


class Training(Protocol):
    def submit(self, release_id: str, build: dict[str, Any], params: dict[str, Any], champion: ModelRef | None) -> str:
        """Start data checks -> train -> evaluate for a release; return the job name.
        RunCompleted / RunStatusChanged (failed) follows with runTags.release_id."""

    def status(self, job_name: str) -> JobStatus: ...

    def evaluation(self, job_name: str) -> dict[str, Any]:
        """The evaluation report the job wrote (ml_pipeline.evaluate's output)."""

    def model_location(self, job_name: str) -> str:
        """Where the job's trained model is, for registration."""

    def data_checks(self, job_name: str) -> dict[str, Any]:
        """The data-check report the job wrote (ml_pipeline.data_checks' output)."""


class Registry(Protocol):
    def register(self, release_id: str, job_name: str, location: str, tags: dict[str, str]) -> ModelRef:
        """Register the job's model; ModelRegistered follows."""

    def champion(self) -> ModelRef | None:
        """The model version in production, if any."""

    def set_champion(self, model: ModelRef) -> None: ...

    def find(self, name: str, version: str) -> ModelRef | None:
        """A registered model version, if it exists (a rollback checks its target is still there)."""


class Images(Protocol):
    def build(self, release_id: str, model: ModelRef) -> ImageRef:
        """Package model + score.py into an image tagged <version>-<release id>; ImagePushed follows."""

    def lookup(self, repository: str, tag: str) -> ImageRef | None:
        """The pushed image, if it exists (used by reconcile when ImagePushed was missed)."""


class Deployer(Protocol):
    """Staging and production deployments. Nothing here waits for a platform operation: a ``begin_*``
    call starts one and returns its Operation, which the timer follows (``follow``) until it is done.

    Production deployments are keyed by a release id (``deployment``): a new one comes up beside the
    one serving, at 0% traffic, is tested directly (``direct``), and only then gets traffic.
    """

    def begin_staging(self, release_id: str, image: ImageRef, model: ModelRef) -> Operation:
        """Start the release's staging deployment; followed, it succeeds with its endpoint."""

    def remove_staging(self, release_id: str) -> None:
        """Start removing the release's staging deployment (one that is gone already is fine); no wait."""

    def begin_beside(self, deployment: str, image: ImageRef, model: ModelRef) -> Operation:
        """Start a production deployment beside the serving one, with no traffic (the same one again
        when it exists for this image); followed, it succeeds with its direct endpoint."""

    def direct(self, deployment: str) -> Endpoint:
        """The deployment itself, whatever its traffic share (AKS: the ``azureml-model-deployment``
        header; locally its own port): what the production tests call before traffic moves."""

    def begin_traffic(self, weights: dict[str, int], mirror: dict[str, int] | None = None) -> Operation:
        """Start routing production's traffic by ``weights`` (deployment -> percent, summing to 100;
        deployments not named get none); followed, it succeeds once production routes that way.

        ``mirror`` (at most one deployment -> percent of live requests) also sends that share of live
        requests to it as copies whose answers are discarded (shadow); None or {} mirrors nothing.
        Raises for a mirror where ``can_mirror()`` is False."""

    def can_mirror(self) -> bool:
        """Whether production can mirror live requests to a deployment (local router: yes; an AKS
        Kubernetes online endpoint: no, see docs/azure.md): a rollout's shadow step needs it."""

    def traffic(self) -> dict[str, int]:
        """Production's traffic now: deployment -> percent, only those with some."""

    def deployments(self) -> builtins.list[str]:
        """The production deployments there are (their keys), with traffic or not."""

    def remove(self, deployment: str) -> None:
        """Start removing a production deployment that has no traffic; one that is gone is fine; no wait.
        Raises for one that still has traffic (move the traffic first)."""

    def follow(self, operation: Operation) -> Progress:
        """Where ``operation`` is now: one quick look (a GET, a health probe), never a wait."""

    def production_endpoint(self) -> Endpoint:
        """Production's stable URL, where live traffic goes."""


class ProductionEvidence(Protocol):
    """What production's deployments actually served: the evidence a rollout step's analysis decides on
    (locally the production router's own records; on Azure the deployments' Application Insights)."""

    def mark(self) -> dict[str, Any]:
        """Where the evidence stands now, as plain JSON kept on the release: ``since`` reads on from it."""

    def since(self, mark: dict[str, Any], deployments: builtins.list[str]) -> Evidence:
        """What each of ``deployments`` served (live and mirrored) after ``mark``. One quick read, never a wait."""


class EndpointTester(Protocol):
    def smoke(self, endpoint: Endpoint) -> TestReport: ...

    def integration(self, endpoint: Endpoint, model: ModelRef) -> TestReport:
        """Score known rows and compare with the model's own predictions; bad input must get 4xx."""


class Notifier(Protocol):
    """Where notifications go: named targets (a Teams channel, a Slack channel, a JSON receiver, the
    local file, the topic), each sent to and retried on its own by the background outbox."""

    def targets(self) -> builtins.list[str]:
        """The names of the configured targets (stable: work items are keyed by them)."""

    def sends_inline(self, target: str) -> bool:
        """Whether a send to ``target`` is quick enough to try within the invocation that wants it (a local
        file, the platform's topic). Webhooks are not: they wait for the timer, so no invocation waits on one."""

    def send(self, target: str, notification: Notification) -> None:
        """Deliver to one target, or raise. The error names the target, never its URL (a credential)."""


class Publisher(Protocol):
    def publish(self, event_type: str, subject: str, data: dict[str, Any], event_id: str | None = None) -> str:
        """Send one event (Event Grid schema) to where its subscribers listen; return its id.

        ``event_id``, when given, is the event's id: a retried send keeps it, so subscribers can drop
        the duplicate (delivery is at least once)."""


class Instances(Protocol):
    """Which host instance this is, and whether an instance that claimed a step is still running."""

    def current(self) -> str:
        """This instance's name, recorded on each claim it saves (Release.claimed_by)."""

    def alive(self, instance: str) -> bool | None:
        """False only when ``instance`` is known to have ended; None when this platform cannot tell
        (then a claim waits for its timeout, as before instances were recorded)."""


class LinkBuilder(Protocol):
    """URLs of the app's own routes, for messages to people (built by the entry layer, passed in)."""

    def release(self, release_id: str) -> str: ...

    def approve(self, release_id: str) -> str: ...

    def decline(self, release_id: str) -> str: ...

    def approve_command(self, release_id: str) -> str:
        """A command a person can run to approve, for notifications."""

    def page(self, release_id: str) -> str:
        """The release's page for people (it signs the reader in); what notifications link to."""


class ConcurrencyError(Exception):
    """The release changed since it was loaded: reload and decide again."""


class ReleaseStore(Protocol):
    def get(self, release_id: str) -> Release | None: ...

    def create(self, release: Release) -> bool:
        """Insert a new release; False if one with that id exists already."""

    def save(self, release: Release) -> None:
        """Write if the stored version still equals release.version (then bump it), else ConcurrencyError."""

    def list(self, limit: int = 100, states: Iterable[str] | None = None) -> builtins.list[Release]:
        """Newest first."""

    def park(self, release_id: str, event_id: str, payload: dict[str, Any], parked_at: str) -> None:
        """Keep an event that arrived before its release was ready for it (once per release and event id;
        ``parked_at``, ISO UTC, is when: a replay that fails parks it again, from then)."""

    def take_parked(self, release_id: str) -> builtins.list[dict[str, Any]]:
        """Remove and return the parked events of a release, oldest first."""

    def parked(self, limit: int = 100, before: str | None = None) -> builtins.list[ParkedEvent]:
        """Parked events, newest first, each with its ``cursor``; ``before`` a cursor: only older ones."""

    def parked_before(self, cutoff: str, limit: int = 100) -> builtins.list[tuple[ParkedEvent, dict[str, Any]]]:
        """Parked events parked before ``cutoff`` (ISO UTC), oldest first, with their payloads (for expiry)."""

    def unpark(self, release_id: str, event_id: str) -> bool:
        """Remove one parked event; False when it is gone already (taken or expired by another worker)."""

    def add_dead_letter(self, letter: DeadLetter) -> bool:
        """Record a dead letter once per (event id, function); False if already recorded."""

    def dead_letters(self, limit: int = 100, before: str | None = None) -> builtins.list[DeadLetter]:
        """Newest first, each with its ``cursor``; ``before`` a cursor from a previous page: only older ones."""

    # ---- the outbox: background work the timer carries out ----
    def add_work(self, item: WorkItem) -> bool:
        """Insert ``item`` (stored at version 1) unless an item with its key exists; False if one did."""

    def due_work(self, now: str, limit: int = 100) -> builtins.list[WorkItem]:
        """Items whose ``due_at`` is at or before ``now`` (ISO UTC), earliest due first."""

    def claim_work(self, item: WorkItem, lease_until: str) -> WorkItem | None:
        """Compare-and-set on ``item.version``: move its due time to ``lease_until`` and count the attempt.
        The claimed item (version bumped), or None when another worker changed or finished it first."""

    def retry_work(self, item: WorkItem, due_at: str, error: str) -> None:
        """Put a claimed item back for ``due_at`` with the error of its last attempt."""

    def finish_work(self, item: WorkItem) -> bool:
        """Remove a claimed item if it is still at ``item.version``; False when it is gone or another
        worker holds it now (its lease ran out and it was claimed again: that worker's outcome counts)."""

    def pending_work(self, release_id: str | None = None, limit: int = 100) -> builtins.list[WorkItem]:
        """Items not yet done (of one release, if given), earliest due first."""

    # ---- single-use tokens (signed action links) ----
    def spend_nonce(self, nonce: str, expires_at: str) -> bool:
        """Record a single-use token's nonce; False if it was spent already (of two racing spenders
        exactly one gets True). Kept at least until ``expires_at`` (ISO UTC), when the token is
        refused as expired anyway; expired ones are cleaned up opportunistically, never one that
        ``forgettable_before`` of a newer spend does not allow."""

    def nonce_spent(self, nonce: str) -> bool:
        """Whether ``nonce`` was spent and is still kept (a read: spends nothing)."""
