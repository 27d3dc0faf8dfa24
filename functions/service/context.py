"""What every service function is given: the ports, the policies, the links and the clock."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from functions.domain.approval import ApprovalPolicy
from functions.domain.data_trigger import DataTrigger
from functions.domain.gate import GatePolicy
from functions.domain.rollout import RolloutPolicy
from functions.ports import (
    Clock,
    Deployer,
    EndpointTester,
    Images,
    Instances,
    LinkBuilder,
    Notifier,
    ProductionEvidence,
    Publisher,
    Registry,
    ReleaseStore,
    Training,
)


@dataclass(frozen=True)
class Timeouts:
    """How long a release may sit in a step before reconcile looks at it again, and how background work retries."""

    claimed_step: timedelta = timedelta(minutes=10)
    training_check: timedelta = timedelta(minutes=15)
    training_max: timedelta = timedelta(hours=24)
    packaging_check: timedelta = timedelta(minutes=5)
    packaging_max: timedelta = timedelta(hours=2)
    approval: timedelta = timedelta(hours=72)
    max_step_attempts: int = 3
    # A platform operation (a deployment coming up, a traffic change) still running after this is stuck.
    operation_max: timedelta = timedelta(minutes=30)
    # Background work: a claimed item is someone's for `work_lease`; a failed one waits `work_backoff`,
    # doubling per attempt up to `work_backoff_max`, and is dead-lettered after `max_work_attempts`.
    work_lease: timedelta = timedelta(minutes=5)
    work_backoff: timedelta = timedelta(seconds=30)
    work_backoff_max: timedelta = timedelta(hours=1)
    max_work_attempts: int = 6
    # One timer pass takes due items for at most this long (a webhook waits up to 15 s per send).
    work_pass_budget: timedelta = timedelta(minutes=2)
    # An event parked this long (its release never became ready for it) expires into a dead letter.
    parked_event: timedelta = timedelta(hours=24)


class UnknownInstances:
    """For a platform that cannot tell whether an instance runs: claims wait for their timeouts."""

    def current(self) -> str:
        return "unknown"

    def alive(self, instance: str) -> bool | None:
        return None


@dataclass
class Ports:
    store: ReleaseStore
    training: Training
    registry: Registry
    images: Images
    deployer: Deployer
    tester: EndpointTester
    notifier: Notifier
    publisher: Publisher
    # What production's deployments served: a rollout step's analysis reads it.
    evidence: ProductionEvidence
    # Who holds a claim, and whether it is still running (reconcile retries a dead one's claim at once).
    instances: Instances = field(default_factory=UnknownInstances)


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Context:
    ports: Ports
    links: LinkBuilder
    policy: GatePolicy = field(default_factory=GatePolicy)
    approval_policy: ApprovalPolicy = field(default_factory=ApprovalPolicy)
    timeouts: Timeouts = field(default_factory=Timeouts)
    # How a release takes production's traffic after its direct tests (service/rollout.py).
    rollout_policy: RolloutPolicy = field(default_factory=RolloutPolicy)
    # Locally the approval request begins the promotion itself (a process start: quick); on Azure the
    # request only claims it and MLOps.ReleaseApproved carries it to on_build_event, so an approval
    # never waits on the SDK's first call. Either way the timer follows the operations it begins.
    promote_inline: bool = True
    clock: Clock = utc_now
    # Whether a BuildCompleted from the event topic may name its requester for the self-approval rule:
    # locally the bus is the machine owner's; on Azure anyone who can publish could name anyone, so only
    # the authenticated CI hooks' requester counts there.
    trust_published_requester: bool = True
    # Whether the generic hook's requester counts (MLOPS_GENERIC_WEBHOOK_TRUST_REQUESTER): its delivery is
    # signed, but the CI job's script, which whoever edits the pipeline writes, names the requester.
    trust_generic_requester: bool = False
    # Retraining on new blobs (MLOPS_DATA_CONTAINER ...): None is off (service/new_data.py).
    data_trigger: DataTrigger | None = None
    # MLOPS_RETRAIN_SCHEDULE (NCRONTAB, UTC): "" is off; reconcile starts a release per occurrence.
    retrain_schedule: str = ""
