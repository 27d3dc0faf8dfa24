"""Claims name the host instance that saved them; a claim whose instance is known to be gone is retried on
the next reconcile pass (the app runs one at start), not after the step's timeout."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import pytest

from functions.domain.ids import image_tag, release_id_for_build
from functions.domain.refs import JobStatus
from functions.domain.release import Release, State
from functions.links import Links
from functions.service.context import Timeouts, UnknownInstances
from functions.service.unit_of_work import update
from tests import payloads as p
from tests.doubles.clock import Clock
from tests.doubles.followed import Followed
from tests.doubles.ports import Calls, fake_ports

RELEASE = release_id_for_build("1234")
JOB = f"job-{RELEASE}"
TAG = image_tag("1", RELEASE)


@dataclass
class Instances:
    """Instances port double: which instance this is, and which others are known alive or gone."""

    me: str
    gone: set[str] = field(default_factory=set)
    unknown: set[str] = field(default_factory=set)

    def current(self) -> str:
        return self.me

    def alive(self, instance: str) -> bool | None:
        if instance in self.unknown:
            return None
        return instance not in self.gone


@pytest.fixture
def world():
    calls, clock = Calls(), Clock()
    ports = fake_ports(calls)
    ports.instances = Instances("host-a")
    orchestrator = Followed(ports, links=Links(), clock=clock, timeouts=Timeouts(approval=timedelta(hours=1)))
    return orchestrator, ports, calls, clock


def held_by(ports, release_id: str = RELEASE) -> str:
    return ports.store.get(release_id).claimed_by["instance"]


def restart_as(ports, new: str, *, old_is: str = "gone") -> None:
    """The host that held the claims ends (gone) or is one this platform cannot see (unknown)."""
    old = ports.instances.me
    gone, unknown = ({old}, set()) if old_is == "gone" else (set(), {old})
    ports.instances = Instances(new, gone=gone, unknown=unknown)


def test_every_claim_names_the_instance_that_saved_it(world):
    orchestrator, ports, _, clock = world
    orchestrator.receive("on_build_event", p.build_completed("1234"))
    release = ports.store.get(RELEASE)
    assert release.state == State.TRAINING and release.claimed_by["instance"] == "host-a"
    ports.instances = Instances("host-b")
    clock.advance(seconds=5)
    orchestrator.receive("on_ml_event", p.run_completed(JOB, RELEASE))  # REGISTERING, then PACKAGING
    assert held_by(ports) == "host-b"


def test_a_note_from_another_instance_does_not_take_the_claim(world):
    orchestrator, ports, _, clock = world
    orchestrator.receive("on_build_event", p.build_completed("1234"))
    ports.instances = Instances("host-b")
    release = ports.store.get(RELEASE)
    # A save through the unit of work that moves nothing (a note) leaves the claim where it was...
    update(orchestrator.ctx, release, State.TRAINING, lambda r: r.note(clock(), "stale_event", "late run"))
    assert held_by(ports) == "host-a"
    # ...and one that moves the step takes it.
    update(orchestrator.ctx, ports.store.get(RELEASE), State.TRAINING, lambda r: r.evaluation_started(clock()))
    assert held_by(ports) == "host-b"


def _stuck_in_registering(orchestrator, ports, clock) -> None:
    """The holder saved the claim to register and package, then died before doing it."""
    orchestrator.receive("on_build_event", p.build_completed("1234"))
    release = ports.store.get(RELEASE)
    release.evaluation_started(clock())
    release.stamp_claim("host-a", clock())
    ports.store.save(release)


def test_a_claim_of_a_gone_instance_is_retried_on_the_next_pass(world):
    orchestrator, ports, calls, clock = world
    _stuck_in_registering(orchestrator, ports, clock)
    restart_as(ports, "host-b")
    clock.advance(seconds=1)
    assert orchestrator.reconcile()["retried"] == 1
    assert ports.store.get(RELEASE).state == State.PACKAGING and calls.count("register") == 1
    assert held_by(ports) == "host-b"


@pytest.mark.parametrize("old_is", ["unknown", "alive"])
def test_a_claim_of_an_instance_not_known_gone_waits_for_its_timeout(world, old_is):
    orchestrator, ports, calls, clock = world
    _stuck_in_registering(orchestrator, ports, clock)
    if old_is == "alive":
        ports.instances = Instances("host-b")
    else:
        restart_as(ports, "host-b", old_is="unknown")
    clock.advance(minutes=9)
    assert orchestrator.reconcile()["retried"] == 0 and calls.count("register") == 0
    clock.advance(minutes=2)
    assert orchestrator.reconcile()["retried"] == 1 and calls.count("register") == 1


def test_the_instance_itself_never_counts_as_gone(world):
    orchestrator, ports, calls, clock = world
    _stuck_in_registering(orchestrator, ports, clock)
    ports.instances = Instances("host-a", gone={"host-a"})  # even a port that says so
    clock.advance(seconds=1)
    assert orchestrator.reconcile()["retried"] == 0 and calls.count("register") == 0


def test_training_submitted_by_a_gone_instance_is_asked_about_at_once(world):
    orchestrator, ports, calls, clock = world
    orchestrator.receive("on_build_event", p.build_completed("1234"))
    restart_as(ports, "host-b")
    clock.advance(seconds=30)
    assert orchestrator.reconcile()["rechecked"] == 1 and ports.store.get(RELEASE).state == State.TRAINING
    ports.training.status_by_job[JOB] = JobStatus("completed")  # its RunCompleted went down with the host
    clock.advance(seconds=30)
    assert orchestrator.reconcile()["rechecked"] == 1
    assert ports.store.get(RELEASE).state == State.PACKAGING and calls.count("build") == 1


def test_an_image_requested_by_a_gone_instance_is_looked_up_at_once(world):
    orchestrator, ports, _, clock = world
    orchestrator.receive("on_build_event", p.build_completed("1234"))
    orchestrator.receive("on_ml_event", p.run_completed(JOB, RELEASE))
    ports.images.pushed[TAG] = ports.images.build(RELEASE, ports.registry.by_release[RELEASE])
    restart_as(ports, "host-b")  # the ImagePushed the old host queued never left it
    clock.advance(seconds=10)
    assert orchestrator.reconcile()["rechecked"] == 1
    assert ports.store.get(RELEASE).state == State.AWAITING_APPROVAL


def test_claimed_by_survives_the_store_and_old_records_load_without_it():
    release = Release.create("rel-x", {"kind": "build"}, {}, Clock()())
    release.stamp_claim("host-a", Clock()())
    again = Release.from_json(release.to_json())
    assert again.claimed_by == release.claimed_by and not again.claim_moved
    legacy = release.to_json()
    del legacy["claimed_by"]
    assert Release.from_json(legacy).claimed_by is None


def test_a_platform_that_cannot_tell_says_so():
    assert UnknownInstances().alive("anything") is None
