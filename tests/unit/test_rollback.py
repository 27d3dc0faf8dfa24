"""`mlops rollback` / POST /api/production/rollback in the service: an earlier version back, tested first."""

from __future__ import annotations

from datetime import timedelta

import pytest

from functions.domain.approval import ApprovalPolicy, Principal
from functions.domain.ids import image_tag, release_id_for_build
from functions.domain.refs import ModelRef
from functions.domain.release import Release, State
from functions.links import Links
from functions.service.context import Ports, Timeouts
from functions.service.results import Conflict, Forbidden, Invalid, NotFound
from tests import payloads as p
from tests.doubles.clock import Clock
from tests.doubles.followed import Followed
from tests.doubles.ports import Calls, FakeDeployer, FakeImages, FakeRegistry, evaluation_report, fake_ports
from tests.unit.test_rollout_steps import POLICY

FIRST, SECOND = release_id_for_build("1"), release_id_for_build("2")
BOB = Principal("bob@example.com", provider="local", method="cli")
OPS = Principal("ops@example.com", provider="local", method="cli")


class VersionedRegistry(FakeRegistry):
    """Each release registers the next version, as a real registry does."""

    def register(self, release_id: str, job_name: str, location: str, tags: dict[str, str]) -> ModelRef:
        self.calls.add("register", release_id)
        if release_id not in self.by_release:
            version = str(len(self.by_release) + 1)
            self.by_release[release_id] = ModelRef("diabetes-model", version, location, tags)
        return self.by_release[release_id]


class PushingImages(FakeImages):
    """Images stay looked-up-able once built (a registry keeps them)."""

    def build(self, release_id, model):
        image = super().build(release_id, model)
        self.pushed[image.tag] = image
        return image


def live(orchestrator: Followed, build: str, version: str) -> str:
    release_id = release_id_for_build(build)
    orchestrator.receive("on_build_event", p.build_completed(build))
    orchestrator.receive("on_ml_event", p.run_completed(f"job-{release_id}", release_id))
    orchestrator.receive("on_registry_event", p.image_pushed(image_tag(version, release_id)))
    assert orchestrator.approve(release_id, BOB, "").state == State.LIVE
    return release_id


@pytest.fixture
def world():
    calls = Calls()
    ports = fake_ports(calls)
    ports.registry, ports.images = VersionedRegistry(calls), PushingImages(calls)
    orchestrator = Followed(ports, links=Links(), clock=Clock(), timeouts=Timeouts(approval=timedelta(hours=1)))
    live(orchestrator, "1", "1")
    ports.training.report = evaluation_report(candidate_error=20.0, champion_error=40.0)  # type: ignore[attr-defined]
    live(orchestrator, "2", "2")
    return orchestrator, ports, calls


def deployer_of(ports: Ports) -> FakeDeployer:
    assert isinstance(ports.deployer, FakeDeployer)
    return ports.deployer


def test_rollback_puts_the_previous_version_back_through_the_tested_promotion(world):
    orchestrator, ports, calls = world
    assert ports.registry.champion().version == "2" and deployer_of(ports).traffic() == {SECOND: 100}
    release = orchestrator.rollback(OPS, "v2 is drifting on Mondays")
    assert release.state == State.LIVE and release.trigger["kind"] == "rollback"
    assert (release.trigger["from"], release.trigger["to"], release.trigger["model"]) == (
        SECOND,
        FIRST,
        "diabetes-model:1",
    )
    assert ports.registry.champion().version == "1"  # the champion follows
    assert deployer_of(ports).traffic() == {FIRST: 100}  # the deployment kept for rollback is reused
    assert release.production is not None and release.production["tests"][0]["passed"]
    steps = [e["step"] for e in release.timeline]
    assert steps[0] == "rollback_requested" and "production_direct_passed" in steps and steps[-1] == "live"
    assert "rollback by ops@example.com [cli, local] from " in release.timeline[0]["detail"]
    assert orchestrator.get_release(SECOND).state == State.SUPERSEDED
    assert not any(call[0] == "submit" and call[1] == release.id for call in calls.log)  # no retraining


def test_rollback_to_a_model_version_or_a_release(world):
    orchestrator, ports, _ = world
    assert orchestrator.rollback(OPS, "back to one", to="1").trigger["to"] == FIRST
    assert orchestrator.rollback(OPS, "and forward again", to=SECOND).trigger["to"] == SECOND
    assert ports.registry.champion().version == "2"


def test_a_rollback_whose_direct_tests_fail_moves_no_traffic(world):
    orchestrator, ports, _ = world
    ports.tester.failing_urls.add(f"production-{FIRST}")
    release = orchestrator.rollback(OPS, "try one")
    assert release.state == State.ROLLED_BACK and "before any traffic moved" in (release.error or "")
    assert deployer_of(ports).traffic() == {SECOND: 100} and ports.registry.champion().version == "2"
    assert orchestrator.get_release(SECOND).state == State.LIVE


@pytest.mark.parametrize(
    "comment, to, error, match",
    [
        ("  ", None, Invalid, "comment"),
        ("why", "7", NotFound, "no release served model version 7"),
        ("why", "rel-nope", NotFound, "no release rel-nope"),
        ("why", "2", Conflict, "is what production serves now"),
    ],
)
def test_what_a_rollback_refuses(world, comment, to, error, match):
    orchestrator, _, _ = world
    with pytest.raises(error, match=match):
        orchestrator.rollback(OPS, comment, to=to)


def test_only_approvers_roll_back_when_the_policy_names_them_and_a_refusal_is_noted(world):
    orchestrator, _, _ = world
    orchestrator.ctx.approval_policy = ApprovalPolicy(approvers=("bob@example.com",), required_approvals=2)
    for _ in range(2):  # noted once, however often it is tried
        with pytest.raises(Forbidden, match="not an approver who may roll production back"):
            orchestrator.rollback(OPS, "why")
    refused = [e for e in orchestrator.get_release(SECOND).timeline if e["step"] == "rollback_refused"]
    assert len(refused) == 1 and "ops@example.com" in refused[0]["detail"]
    assert orchestrator.rollback(BOB, "why").state == State.LIVE  # one approver is enough to go back


def test_a_release_that_never_went_live_is_no_rollback_target(world):
    """Rolling "back" to a release nobody approved would deploy an unapproved model."""
    orchestrator, ports, _ = world
    third = release_id_for_build("3")
    orchestrator.receive("on_build_event", p.build_completed("3"))
    orchestrator.receive("on_ml_event", p.run_completed(f"job-{third}", third))
    orchestrator.receive("on_registry_event", p.image_pushed(image_tag("3", third)))
    assert orchestrator.get_release(third).state == State.AWAITING_APPROVAL
    with pytest.raises(Conflict, match="never went live: approve it instead"):
        orchestrator.rollback(OPS, "sneak it in", to=third)
    assert ports.registry.champion().version == "2"


def test_a_target_whose_model_or_image_is_gone_is_refused(world):
    orchestrator, ports, _ = world
    first = orchestrator.get_release(FIRST)
    del ports.images.pushed[first.image["tag"]]
    with pytest.raises(Conflict, match="no longer exists"):
        orchestrator.rollback(OPS, "why")
    ports.registry.by_release.pop(FIRST)
    with pytest.raises(Conflict, match="no longer registered"):
        orchestrator.rollback(OPS, "why")


def test_one_promotion_at_a_time_and_nothing_earlier_is_a_conflict(world):
    orchestrator, ports, _ = world
    second = orchestrator.get_release(SECOND)
    second.state = State.PROMOTING  # as if a promotion were running
    ports.store.save(second)
    with pytest.raises(Conflict, match="is being promoted"):
        orchestrator.rollback(OPS, "why", to=FIRST)
    lonely = Followed(fake_ports(Calls()), links=Links(), clock=Clock())
    with pytest.raises(Conflict, match="nothing to roll back to"):
        lonely.rollback(OPS, "why")


def test_a_release_that_never_reached_a_pushed_image_is_no_target(world):
    orchestrator, ports, _ = world
    rejected = Release.create("rel-rejected", {"kind": "build"}, {}, orchestrator.ctx.clock())
    ports.store.create(rejected)
    with pytest.raises(Invalid, match="never had a registered model"):
        orchestrator.rollback(OPS, "why", to="rel-rejected")


def test_a_rollback_takes_all_traffic_at_once_whatever_the_rollout_policy(world):
    orchestrator, ports, _ = world
    orchestrator.ctx.rollout_policy = POLICY  # shadow and canary steps for new versions
    release = orchestrator.rollback(OPS, "v2 is drifting on Mondays")
    assert release.state == State.LIVE and release.rollout is None
    assert deployer_of(ports).traffic() == {FIRST: 100}
    assert "a rollback goes back" in next(e["detail"] for e in release.timeline if e["step"] == "rollout_skipped")
