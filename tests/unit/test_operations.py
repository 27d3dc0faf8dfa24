"""Long steps as operations: begun by one invocation, followed to the end by the follow timer's passes.

The fake deployer holds every operation as running until ``settle()``, so these tests see each state in
between; no test waits: the clock is moved by hand.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from functions.domain.approval import Principal
from functions.domain.ids import image_tag, release_id_for_build
from functions.domain.release import Release, State
from functions.links import Links
from functions.service import following
from functions.service.context import Timeouts
from functions.service.invocations import invocation
from functions.service.orchestrator import Orchestrator
from tests import payloads as p
from tests.doubles.clock import Clock
from tests.doubles.ports import Calls, FakeDeployer, fake_ports

RELEASE = release_id_for_build("1234")
TAG = image_tag("1", RELEASE)
BOB = Principal("bob@example.com", provider="local", method="cli")


@pytest.fixture
def world():
    calls, clock = Calls(), Clock()
    ports = fake_ports(calls)
    timeouts = Timeouts(approval=timedelta(hours=1), operation_max=timedelta(minutes=30))
    orchestrator = Orchestrator(ports, links=Links(), clock=clock, timeouts=timeouts)
    deployer = ports.deployer
    assert isinstance(deployer, FakeDeployer)
    deployer.hold = True
    return orchestrator, deployer, calls, clock


def release_of(orchestrator: Orchestrator, release_id: str = RELEASE) -> Release:
    return orchestrator.get_release(release_id)


def to_staging(orchestrator: Orchestrator) -> None:
    orchestrator.receive("on_build_event", p.build_completed("1234"))
    orchestrator.receive("on_ml_event", p.run_completed(f"job-{RELEASE}", RELEASE))
    with invocation("on_registry_event"):
        orchestrator.receive("on_registry_event", p.image_pushed(TAG))


def follow(orchestrator: Orchestrator) -> dict[str, int]:
    with invocation("follow_operations"):
        return orchestrator.follow()


def operation_entries(release: Release) -> list[dict]:
    return [e for e in release.timeline if e["step"].startswith("operation_")]


def test_the_event_begins_staging_and_returns_a_later_pass_sees_it_up(world):
    orchestrator, deployer, calls, _ = world
    to_staging(orchestrator)
    release = release_of(orchestrator)
    assert release.state == State.DEPLOYING_STAGING and release.operation is not None
    assert release.operation["kind"] == "staging" and calls.count("smoke") == 0

    assert follow(orchestrator) == {"running": 1, "finished": 0, "errors": 0}
    deployer.settle()
    assert follow(orchestrator)["finished"] == 1
    release = release_of(orchestrator)
    assert release.state == State.AWAITING_APPROVAL and release.operation is None
    started, finished = operation_entries(release)
    assert started["invocation"].startswith("on_registry_event:")
    assert finished["invocation"].startswith("follow_operations:")
    assert started["invocation"] != finished["invocation"]


def test_a_promotion_is_deployed_beside_tested_directly_and_only_then_takes_traffic(world):
    orchestrator, deployer, calls, _ = world
    to_staging(orchestrator)
    deployer.settle()
    follow(orchestrator)
    with invocation("approve_release"):
        approved = orchestrator.approve(RELEASE, BOB, "ship it")
    assert approved.state == State.PROMOTING and (approved.operation or {})["kind"] == "beside"
    assert deployer.traffic() == {} and calls.count("begin_traffic") == 0

    deployer.settle()
    follow(orchestrator)  # the new deployment is up: its direct tests, then the traffic change begins
    release = release_of(orchestrator)
    assert release.state == State.PROMOTING and (release.operation or {})["kind"] == "traffic"
    tested = [call for call in calls.log if call[0] in ("smoke", "integration", "begin_traffic")][-3:]
    assert tested == [("smoke", f"production-{RELEASE}"), ("integration", f"production-{RELEASE}"),
                      ("begin_traffic", f"{RELEASE}=100")]  # fmt: skip
    assert calls.count("set_champion") == 0

    deployer.settle()
    follow(orchestrator)
    release = release_of(orchestrator)
    assert release.state == State.LIVE and calls.count("set_champion") == 1
    assert release.production is not None and release.production["traffic"] == {RELEASE: 100}
    kinds = [(e["step"], e["invocation"].split(":")[0]) for e in operation_entries(release)]
    assert kinds == [
        ("operation_started", "on_registry_event"), ("operation_succeeded", "follow_operations"),
        ("operation_started", "approve_release"), ("operation_succeeded", "follow_operations"),
        ("operation_started", "follow_operations"), ("operation_succeeded", "follow_operations"),
    ]  # fmt: skip
    begun_by = [e["invocation"] for e in operation_entries(release) if e["step"] == "operation_started"]
    ended_by = [e["invocation"] for e in operation_entries(release) if e["step"] == "operation_succeeded"]
    assert all(b != e for b, e in zip(begun_by, ended_by, strict=True))  # no invocation waited for its own


def test_of_two_passes_that_saw_an_operation_end_one_carries_on(world):
    orchestrator, deployer, calls, _ = world
    to_staging(orchestrator)
    deployer.settle()
    seen_by_the_other_pass = release_of(orchestrator)  # loaded before either pass saved
    assert following.follow(orchestrator.ctx, release_of(orchestrator)) == "finished"
    with pytest.raises(Exception, match=r"moved to awaiting_approval|not following"):
        following.follow(orchestrator.ctx, seen_by_the_other_pass)
    assert calls.count("smoke") == 1


def test_an_operation_past_its_deadline_is_begun_again_then_the_release_fails(world):
    orchestrator, _, calls, clock = world
    to_staging(orchestrator)
    for attempt in range(1, 4):
        clock.advance(minutes=31)
        follow(orchestrator)
        release = release_of(orchestrator)
        if attempt < 3:
            assert release.state == State.DEPLOYING_STAGING and calls.count("begin_staging") == attempt + 1
    assert release.state == State.FAILED and "still running at its deadline" in (release.error or "")
    assert calls.count("begin_staging") == 3


def test_a_failed_operation_is_a_step_error_and_retried(world):
    orchestrator, deployer, calls, _ = world
    to_staging(orchestrator)
    deployer.failing.add("staging")
    deployer.settle()
    follow(orchestrator)
    release = release_of(orchestrator)
    assert release.state == State.DEPLOYING_STAGING and release.step_attempts == 1
    assert calls.count("begin_staging") == 2 and release.timeline[-2]["step"] == "step_error"
    deployer.failing.clear()
    deployer.settle()
    follow(orchestrator)
    assert release_of(orchestrator).state == State.AWAITING_APPROVAL


def test_reconcile_leaves_a_step_with_an_operation_in_flight_to_the_follower(world):
    orchestrator, _, calls, clock = world
    to_staging(orchestrator)
    clock.advance(minutes=11)  # past Timeouts.claimed_step, within operation_max
    assert orchestrator.reconcile()["retried"] == 0 and calls.count("begin_staging") == 1


def test_a_pass_that_died_after_its_claim_leaves_the_step_to_reconcile(world):
    orchestrator, deployer, calls, clock = world
    to_staging(orchestrator)
    release = release_of(orchestrator)
    number = int((release.operation or {})["number"])
    release.operation_finished(clock(), number, "succeeded", "up", "follow_operations:died")
    orchestrator.ports.store.save(release)  # the claim was saved; the host died before the tests
    clock.advance(minutes=11)
    assert orchestrator.reconcile()["retried"] == 1 and calls.count("begin_staging") == 2
    deployer.settle()
    follow(orchestrator)
    assert release_of(orchestrator).state == State.AWAITING_APPROVAL


def test_a_look_that_fails_is_not_the_operation_failing(world):
    orchestrator, deployer, _, _ = world
    to_staging(orchestrator)

    def broken_follow(operation):
        raise ConnectionError("management API unreachable")

    deployer.follow = broken_follow
    assert follow(orchestrator) == {"running": 1, "finished": 0, "errors": 0}
    assert release_of(orchestrator).state == State.DEPLOYING_STAGING


def test_a_late_hand_over_of_an_approval_begins_nothing_twice(world):
    orchestrator, deployer, calls, _ = world
    orchestrator.ctx.promote_inline = False
    to_staging(orchestrator)
    deployer.settle()
    follow(orchestrator)
    orchestrator.approve(RELEASE, BOB, "")
    event_type, subject, data = orchestrator.ports.publisher.events[-1]
    approved = p.event_grid(event_type, subject, data, p.BUILD_TOPIC)
    assert orchestrator.receive("on_build_event", approved).value == "handled"
    again = {**approved, "id": "a-retried-hand-over"}  # e.g. the outbox sent it again after a lost answer
    assert orchestrator.receive("on_build_event", again).value == "stale"
    assert calls.count("begin_beside") == 1
    assert release_of(orchestrator).timeline[-1]["step"] == "stale_event"
