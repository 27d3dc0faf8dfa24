from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from functions.domain.approval import Principal
from functions.domain.ids import image_tag, release_id_for_build
from functions.domain.refs import JobStatus, ModelRef, TestReport
from functions.domain.release import Release, State
from functions.links import Links
from functions.service import delivery, rollout
from functions.service.context import Ports, Timeouts
from functions.service.orchestrator import Orchestrator
from functions.service.results import Conflict, NotFound, Outcome
from tests import payloads as p
from tests.doubles.clock import Clock
from tests.doubles.followed import Followed
from tests.doubles.ports import Calls, FakeTraining, evaluation_report, fake_ports

RELEASE = release_id_for_build("1234")
JOB = f"job-{RELEASE}"
TAG = image_tag("1", RELEASE)


def person(name: str) -> Principal:
    """A proven identity, as the entry layer hands it over (here: the local CLI's signature)."""
    return Principal(name, provider="local", method="cli")


@pytest.fixture
def world():
    calls = Calls()
    clock = Clock()
    ports = fake_ports(calls)
    orchestrator = Followed(ports, links=Links(), clock=clock, timeouts=Timeouts(approval=timedelta(hours=1)))
    return orchestrator, ports, calls, clock


def to_approval(orchestrator: Orchestrator) -> None:
    orchestrator.receive("on_build_event", p.build_completed("1234", parameters={"alpha": 0.5}))
    orchestrator.receive("on_ml_event", p.run_completed(JOB, RELEASE))
    orchestrator.receive("on_ml_event", p.model_registered(1, RELEASE))
    orchestrator.receive("on_registry_event", p.image_pushed(TAG))


def state(ports: Ports, release_id: str = RELEASE) -> State:
    release = ports.store.get(release_id)
    assert release is not None, f"no release {release_id}"
    return release.state


def test_build_to_awaiting_approval(world):
    orchestrator, ports, calls, _ = world
    to_approval(orchestrator)
    release = ports.store.get(RELEASE)
    assert release.state == State.AWAITING_APPROVAL
    assert release.params == {"alpha": 0.5}
    assert release.trigger["sourceVersion"].startswith("3f2a9c1d")
    assert release.gate["promote"] is True and "no champion" in release.gate["reason"]
    assert release.candidate["model"]["version"] == "1" and release.image["tag"] == TAG
    assert release.staging["passed"] is True
    assert [c[0] for c in calls.log] == [
        "submit",
        "register",
        "build",
        "begin_staging",
        "follow",
        "smoke",
        "integration",
    ]
    assert any(f"From a terminal: mlops approve {RELEASE}" in body for _, _, body in ports.notifier.messages)
    assert [step["step"] for step in release.timeline] == [
        "created", "training_submitted", "run_completed", "gate_passed", "packaging", "model_registered",
        "image_pushed", "operation_started", "operation_succeeded", "staging_passed", "approval_requested",
    ]  # fmt: skip


def test_approve_goes_live_and_crowns_the_champion(world):
    orchestrator, ports, calls, _ = world
    to_approval(orchestrator)
    release = orchestrator.approve(RELEASE, person("bob@example.com"), "looks good")
    assert release.state == State.LIVE
    assert release.approval["by"] == "bob@example.com" and release.approval["decision"] == "approved"
    assert release.production["live_endpoint"]["scoring_url"] == "http://127.0.0.1:5101/score"
    assert release.production["endpoint"]["name"] == f"production-{RELEASE}"  # tested directly first
    assert ports.deployer.traffic() == {RELEASE: 100}
    assert ports.registry.champion().version == "1"
    assert ("remove_staging", RELEASE) in calls.log
    assert (
        "MLOps.ReleaseStateChanged",
        f"releases/{RELEASE}",
        {"releaseId": RELEASE, "state": "live", "error": None},
    ) in (ports.publisher.events)


def test_approving_twice_or_too_early_is_a_conflict(world):
    orchestrator, _ports, _, _ = world
    orchestrator.receive("on_build_event", p.build_completed("1234"))
    with pytest.raises(Conflict, match="training, not awaiting_approval"):
        orchestrator.approve(RELEASE, person("bob"), "")
    with pytest.raises(NotFound):
        orchestrator.approve("rel-nope", person("bob"), "")


def test_decline(world):
    orchestrator, _ports, calls, _ = world
    to_approval(orchestrator)
    release = orchestrator.decline(RELEASE, person("carol"), "not this week")
    assert release.state == State.DECLINED and release.approval["comment"] == "not this week"
    assert ("remove_staging", RELEASE) in calls.log
    with pytest.raises(Conflict):
        orchestrator.approve(RELEASE, person("bob"), "")


def test_gate_rejection_is_recorded_with_evidence(world):
    orchestrator, ports, calls, _ = world
    ports.training.report = evaluation_report(candidate_error=60.0, champion_error=40.0)
    orchestrator.receive("on_build_event", p.build_completed("1234"))
    orchestrator.receive("on_ml_event", p.run_completed(JOB, RELEASE))
    release = ports.store.get(RELEASE)
    assert release.state == State.REJECTED
    assert release.gate["promote"] is False and release.gate["reason"].startswith("not better")
    assert release.gate["evidence"]["interval"][1] < 0
    assert release.gate["evaluation"]["metrics"]["champion"]["mse"] > 0
    assert calls.count("register") == 0
    assert any("rejected by the gate" in subject for _, subject, _ in ports.notifier.messages)


def test_failed_training_run_fails_the_release(world):
    orchestrator, ports, _, _ = world
    orchestrator.receive("on_build_event", p.build_completed("1234"))
    orchestrator.receive("on_ml_event", p.run_status_changed(JOB, RELEASE, "Failed"))
    release = ports.store.get(RELEASE)
    assert release.state == State.FAILED and "training failed" in release.error
    assert "https://ml.example/" in release.error


def test_running_status_is_ignored(world):
    orchestrator, ports, _, _ = world
    orchestrator.receive("on_build_event", p.build_completed("1234"))
    assert orchestrator.receive("on_ml_event", p.run_status_changed(JOB, RELEASE, "Running")) is Outcome.IGNORED
    assert state(ports) == State.TRAINING


def test_unsuccessful_build_starts_nothing(world):
    orchestrator, ports, calls, _ = world
    assert orchestrator.receive("on_build_event", p.build_completed("9", result="failed")) is Outcome.IGNORED
    assert ports.store.list() == [] and calls.log == []


def test_staging_test_failure_fails_the_release(world):
    orchestrator, ports, _, _ = world
    ports.tester.failing_urls.add(f"staging-{RELEASE}")
    to_approval(orchestrator)
    release = ports.store.get(RELEASE)
    assert release.state == State.FAILED and release.error.startswith("staging tests failed")


def deliver_a_better_second_release(orchestrator: Orchestrator, ports: Ports) -> str:
    """Build 5678, better than the champion by far, through training and staging; its release id."""
    second = release_id_for_build("5678")
    assert isinstance(ports.training, FakeTraining)
    ports.training.report = evaluation_report(candidate_error=20.0, champion_error=40.0)
    orchestrator.receive("on_build_event", p.build_completed("5678"))
    orchestrator.receive("on_ml_event", p.run_completed(f"job-{second}", second))
    orchestrator.receive("on_registry_event", p.image_pushed(image_tag("1", second)))
    return second


def second_release_awaiting_approval(orchestrator: Orchestrator, ports: Ports) -> str:
    """The first release live, then a better second one waiting for approval."""
    to_approval(orchestrator)
    orchestrator.approve(RELEASE, person("bob"), "")
    second = deliver_a_better_second_release(orchestrator, ports)
    assert state(ports, second) == State.AWAITING_APPROVAL
    return second


def test_a_deployment_failing_its_direct_tests_never_gets_traffic(world):
    orchestrator, ports, calls, _ = world
    second = second_release_awaiting_approval(orchestrator, ports)
    ports.tester.failing_urls.add(f"production-{second}")
    release = orchestrator.approve(second, person("bob"), "")
    assert release.state == State.ROLLED_BACK and "before any traffic moved" in release.error
    assert release.production["traffic_moved"] is False
    assert not any(name == "begin_traffic" and second in arg for name, arg in calls.log)
    assert ports.deployer.traffic() == {RELEASE: 100} and ("remove", second) in calls.log
    assert state(ports) == State.LIVE  # the first release still serves
    assert ports.registry.champion().tags["release_id"] == RELEASE


def test_going_live_supersedes_the_previous_live_release(world):
    orchestrator, ports, _, _ = world
    second = second_release_awaiting_approval(orchestrator, ports)
    orchestrator.approve(second, person("bob"), "")
    assert state(ports, second) == State.LIVE and state(ports) == State.SUPERSEDED


def test_duplicate_events_act_once_and_are_noted(world):
    orchestrator, ports, calls, _ = world
    build = p.build_completed("1234")
    run = p.run_completed(JOB, RELEASE)
    pushed = p.image_pushed(TAG)
    assert orchestrator.receive("on_build_event", build) is Outcome.HANDLED
    assert orchestrator.receive("on_build_event", build) is Outcome.DUPLICATE
    orchestrator.receive("on_ml_event", run)
    assert orchestrator.receive("on_ml_event", run) is Outcome.DUPLICATE
    for _ in range(3):
        orchestrator.receive("on_registry_event", pushed)
    assert calls.count("submit") == 1 and calls.count("register") == 1 and calls.count("begin_staging") == 1
    timeline = ports.store.get(RELEASE).timeline
    duplicates = [e for e in timeline if e["step"] == "duplicate_event"]
    # One entry per event delivered again; its redeliveries are counted on it, not appended.
    assert [e.get("count", 1) for e in duplicates] == [1, 1, 2]


def test_a_new_push_of_the_same_image_after_staging_is_stale(world):
    orchestrator, ports, calls, _ = world
    to_approval(orchestrator)
    assert orchestrator.receive("on_registry_event", p.image_pushed(TAG)) is Outcome.STALE
    assert calls.count("begin_staging") == 1 and state(ports) == State.AWAITING_APPROVAL


def test_early_events_are_parked_and_replayed(world):
    orchestrator, ports, calls, _ = world
    assert orchestrator.receive("on_registry_event", p.image_pushed(TAG)) is Outcome.PARKED
    assert orchestrator.receive("on_ml_event", p.run_completed(JOB, RELEASE)) is Outcome.PARKED
    orchestrator.receive("on_build_event", p.build_completed("1234"))
    assert state(ports) == State.AWAITING_APPROVAL
    assert calls.count("begin_staging") == 1


def test_events_without_a_release_tag_are_ignored(world):
    orchestrator, _ports, _, _ = world
    assert orchestrator.receive("on_registry_event", p.image_pushed("latest")) is Outcome.IGNORED
    assert orchestrator.receive("on_ml_event", p.model_registered(3, "")) is Outcome.IGNORED


@pytest.mark.parametrize(
    "function, payload, reason",
    [
        (
            "on_build_event",
            {"id": "x1", "eventType": "MLOps.BuildCompleted", "data": {"result": "succeeded"}},
            "no buildId",
        ),
        ("on_build_event", ["not", "an", "object"], "must be a JSON object"),
        ("on_ml_event", {"id": "x2", "eventType": "Microsoft.Storage.BlobDeleted", "data": {}}, "unhandled event type"),
        ("on_ml_event", p.build_completed("77", event_id="x3"), "not handled by on_ml_event"),
        ("on_registry_event", {"eventType": "Microsoft.ContainerRegistry.ImagePushed", "data": {}}, "no id"),
    ],
)
def test_bad_events_are_dead_lettered_once_and_acknowledged(world, function, payload, reason):
    orchestrator, ports, _, _ = world
    assert orchestrator.receive(function, payload) is Outcome.DEAD_LETTERED
    orchestrator.receive(function, payload)
    letters = ports.store.dead_letters()
    assert len(letters) == 1 and reason in letters[0].reason and letters[0].function == function


def test_concurrent_deliveries_of_one_event_act_once(world):
    orchestrator, _ports, calls, _ = world
    orchestrator.receive("on_build_event", p.build_completed("1234"))
    run = p.run_completed(JOB, RELEASE)
    barrier = threading.Barrier(4)
    outcomes = []

    def deliver() -> None:
        barrier.wait()
        outcomes.append(orchestrator.receive("on_ml_event", run))

    threads = [threading.Thread(target=deliver) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == sorted([Outcome.HANDLED] + [Outcome.DUPLICATE] * 3)
    assert calls.count("register") == 1 and calls.count("build") == 1


def test_reconcile_expires_approvals_past_their_deadline(world):
    orchestrator, ports, calls, clock = world
    to_approval(orchestrator)
    clock.advance(minutes=59)
    assert orchestrator.reconcile()["expired"] == 0
    clock.advance(minutes=2)
    assert orchestrator.reconcile()["expired"] == 1
    assert state(ports) == State.EXPIRED and ("remove_staging", RELEASE) in calls.log


def test_reconcile_recovers_a_missed_run_completed(world):
    orchestrator, ports, calls, clock = world
    orchestrator.receive("on_build_event", p.build_completed("1234"))
    clock.advance(minutes=5)
    orchestrator.reconcile()
    assert state(ports) == State.TRAINING  # not stuck long enough to ask the platform
    ports.training.status_by_job[JOB] = JobStatus("completed")
    clock.advance(minutes=20)
    assert orchestrator.reconcile()["rechecked"] == 1
    assert state(ports) == State.PACKAGING and calls.count("build") == 1


def test_reconcile_fails_a_vanished_training_job(world):
    orchestrator, ports, _, clock = world
    orchestrator.receive("on_build_event", p.build_completed("1234"))
    ports.training.status_by_job[JOB] = JobStatus("failed", "job process vanished")
    clock.advance(minutes=20)
    orchestrator.reconcile()
    assert state(ports) == State.FAILED and "vanished" in ports.store.get(RELEASE).error


def test_reconcile_recovers_a_missed_image_pushed(world):
    orchestrator, ports, _calls, clock = world
    orchestrator.receive("on_build_event", p.build_completed("1234"))
    orchestrator.receive("on_ml_event", p.run_completed(JOB, RELEASE))
    clock.advance(minutes=6)
    assert orchestrator.reconcile()["rechecked"] == 1 and state(ports) == State.PACKAGING
    ports.images.pushed[TAG] = ports.images.build(RELEASE, ports.registry.by_release[RELEASE])
    orchestrator.reconcile()
    assert state(ports) == State.AWAITING_APPROVAL


def test_a_failing_step_is_retried_by_reconcile_then_failed(world):
    orchestrator, ports, _calls, clock = world
    ports.training.fail_submit = True
    assert orchestrator.receive("on_build_event", p.build_completed("1234")) is Outcome.HANDLED
    release = ports.store.get(RELEASE)
    assert release.state == State.QUEUED and release.step_attempts == 1
    assert "compute cluster unavailable" in release.timeline[-1]["detail"]
    ports.training.fail_submit = False
    clock.advance(minutes=11)
    assert orchestrator.reconcile()["retried"] == 1
    assert state(ports) == State.TRAINING

    ports.training.fail_submit = True
    orchestrator.receive("on_build_event", p.build_completed("999"))
    for _ in range(4):
        clock.advance(minutes=11)
        orchestrator.reconcile()
    failed = ports.store.get(release_id_for_build("999"))
    assert failed.state == State.FAILED and "compute cluster unavailable" in failed.error


# ---- regressions found in review ----------------------------------------------------------
def test_an_event_parked_after_the_release_moved_on_is_replayed_at_once(world):
    orchestrator, ports, _, _ = world
    orchestrator.receive("on_build_event", p.build_completed("1234"))
    seen_while_registering = ports.store.get(RELEASE)  # what a concurrent ImagePushed handler loaded
    orchestrator.receive("on_ml_event", p.run_completed(JOB, RELEASE))  # moves on and replays (nothing yet)
    pushed = p.image_pushed(TAG)
    from functions.domain.events import parse_event

    assert delivery.park(orchestrator.ctx, parse_event(pushed), pushed, seen_while_registering) is Outcome.PARKED
    orchestrator.follow()
    assert state(ports) == State.AWAITING_APPROVAL and ports.store.take_parked(RELEASE) == []


def test_a_replay_that_fails_keeps_the_event_parked(world, monkeypatch):
    orchestrator, ports, _, _ = world
    original_handle = delivery.handle
    image_calls = []

    def flaky_handle(ctx, event, payload):
        if event.type == "Microsoft.ContainerRegistry.ImagePushed":
            image_calls.append(event.id)
            if len(image_calls) == 2:  # the first replay
                raise OSError("disk full")
        return original_handle(ctx, event, payload)

    monkeypatch.setattr(delivery, "handle", flaky_handle)  # receive and replay both go through it
    orchestrator.receive("on_registry_event", p.image_pushed(TAG))
    orchestrator.receive("on_build_event", p.build_completed("1234"))  # its replay fails: event kept
    assert state(ports) == State.TRAINING and len(ports.store.parked_events) == 1 and len(image_calls) == 2
    orchestrator.receive("on_ml_event", p.run_completed(JOB, RELEASE))  # the next replay succeeds
    assert state(ports) == State.AWAITING_APPROVAL and ports.store.parked_events == []


def test_one_broken_release_does_not_stop_reconcile_for_the_others(world):
    orchestrator, ports, _, clock = world
    to_approval(orchestrator)
    orchestrator.receive("on_build_event", p.build_completed("777"))  # newer, listed first

    def broken_status(job_name):
        raise ValueError("corrupt status.json")

    ports.training.status = broken_status
    clock.advance(hours=2)
    counts = orchestrator.reconcile()
    assert counts["errors"] == 1 and counts["expired"] == 1 and state(ports) == State.EXPIRED


def test_only_one_release_is_promoted_at_a_time(world):
    orchestrator, ports, _, _ = world
    second = second_release_awaiting_approval(orchestrator, ports)
    first = ports.store.get(RELEASE)
    first.state = State.PROMOTING  # as if its promotion were still running
    ports.store.save(first)
    with pytest.raises(Conflict, match=f"{RELEASE} is being promoted"):
        orchestrator.approve(second, person("bob"), "")
    assert state(ports, second) == State.AWAITING_APPROVAL


def test_a_promotion_that_keeps_failing_is_rolled_back_and_failed(world):
    orchestrator, ports, calls, _ = world
    second = second_release_awaiting_approval(orchestrator, ports)

    def broken_set_champion(model):
        raise RuntimeError("registry unavailable")

    ports.registry.set_champion = broken_set_champion
    orchestrator.approve(second, person("bob"), "")  # each attempt moves traffic, then fails
    orchestrator.follow(passes=6)  # three attempts of two operations each
    release = ports.store.get(second)
    assert release.state == State.FAILED and "registry unavailable" in release.error
    assert [e["step"] for e in release.timeline].count("step_error") == 3
    assert f"production traffic is going back to {RELEASE}" in release.error
    assert ("begin_traffic", f"{RELEASE}=100") in calls.log and ports.deployer.traffic() == {RELEASE: 100}
    assert state(ports) == State.LIVE


def test_a_release_that_ends_gives_back_its_staging_endpoint(world):
    orchestrator, ports, calls, _ = world
    ports.tester.failing_urls.add(f"staging-{RELEASE}")
    to_approval(orchestrator)
    assert state(ports) == State.FAILED and ("remove_staging", RELEASE) in calls.log


def test_approval_can_hand_the_promotion_to_an_event(world):
    orchestrator, ports, calls, _ = world
    orchestrator.ctx.promote_inline = False
    to_approval(orchestrator)
    release = orchestrator.approve(RELEASE, person("bob"), "")
    assert release.state == State.PROMOTING and calls.count("begin_beside") == 0
    event_type, subject, data = ports.publisher.events[-1]
    assert (event_type, data) == ("MLOps.ReleaseApproved", {"releaseId": RELEASE})
    approved = p.event_grid(event_type, subject, data, p.BUILD_TOPIC)
    assert orchestrator.receive("on_build_event", approved) is Outcome.HANDLED
    assert state(ports) == State.LIVE and calls.count("begin_beside") == 1
    assert orchestrator.receive("on_build_event", approved) is Outcome.DUPLICATE
    assert calls.count("begin_beside") == 1


def test_the_documented_image_deleted_fails_the_release_awaiting_approval_whose_image_it_deleted(world):
    orchestrator, ports, calls, _ = world
    to_approval(orchestrator)
    assert orchestrator.receive("on_registry_event", p.image_deleted(p.PUSHED_DIGEST)) is Outcome.HANDLED
    release = ports.store.get(RELEASE)
    assert release.state == State.FAILED
    assert release.error == f"image diabetes-scoring@{p.PUSHED_DIGEST} was deleted before approval"
    assert ("remove_staging", RELEASE) in calls.log


def test_an_image_deleted_for_another_digest_or_repository_changes_nothing(world):
    orchestrator, ports, _, _ = world
    to_approval(orchestrator)
    other_digest = p.image_deleted("sha256:" + "00" * 32)
    other_repository = p.image_deleted(p.PUSHED_DIGEST, repository="someone-elses-image")
    assert orchestrator.receive("on_registry_event", other_digest) is Outcome.IGNORED
    assert orchestrator.receive("on_registry_event", other_repository) is Outcome.IGNORED
    assert state(ports) == State.AWAITING_APPROVAL


def test_an_image_deleted_after_going_live_is_noted_and_a_redelivery_is_a_duplicate(world):
    orchestrator, ports, _, _ = world
    to_approval(orchestrator)
    orchestrator.approve(RELEASE, person("bob"), "")
    deleted = p.image_deleted(p.PUSHED_DIGEST)
    assert orchestrator.receive("on_registry_event", deleted) is Outcome.HANDLED
    assert orchestrator.receive("on_registry_event", deleted) is Outcome.DUPLICATE
    release = ports.store.get(RELEASE)
    assert release.state == State.LIVE
    assert [s["step"] for s in release.timeline][-2:] == ["image_deleted", "duplicate_event"]


# ---- what Event Grid does not tell us (docs/azure.md, "Events Azure does not send") ----------------
def test_a_canceled_job_sends_no_event_and_reconcile_fails_the_release(world):
    """Azure ML sends no RunStatusChanged for a job canceled from the studio: reconcile asks the job."""
    orchestrator, ports, _, clock = world
    orchestrator.receive("on_build_event", p.build_completed("1234"))
    ports.training.status_by_job[JOB] = JobStatus("canceled", "canceled by alice@example.com")
    clock.advance(minutes=16)  # past Timeouts.training_check
    assert orchestrator.reconcile()["failed"] == 1
    release = ports.store.get(RELEASE)
    assert release.state == State.FAILED and release.error == "training failed: canceled by alice@example.com"


def test_a_child_step_run_carries_no_release_tag_and_is_ignored(world):
    """The pipeline's step runs complete too; only the pipeline job carries runTags.release_id."""
    orchestrator, ports, calls, _ = world
    orchestrator.receive("on_build_event", p.build_completed("1234"))
    child = p.run_completed(f"{JOB}-train-step", RELEASE)
    child["data"]["runTags"] = {"azureml.nodeid": "train", "azureml.pipeline": JOB}
    child["data"]["runType"] = "azureml.StepRun"
    assert orchestrator.receive("on_ml_event", child) is Outcome.IGNORED
    assert state(ports) == State.TRAINING and calls.count("register") == 0


def test_a_run_status_changed_that_is_not_terminal_is_ignored(world):
    """The subscription passes every status it does not exclude; a non-terminal one decides nothing."""
    orchestrator, ports, _, _ = world
    orchestrator.receive("on_build_event", p.build_completed("1234"))
    assert orchestrator.receive("on_ml_event", p.run_status_changed(JOB, RELEASE, "Finalizing")) is Outcome.IGNORED
    assert state(ports) == State.TRAINING


# ---- a promotion that moved traffic and then failed puts production back ---------------------------
def test_a_retry_whose_direct_tests_fail_after_traffic_moved_puts_traffic_and_champion_back(world):
    orchestrator, ports, _, _ = world
    second = second_release_awaiting_approval(orchestrator, ports)
    ports.deployer.failing.add("traffic")  # the first traffic change fails after production moved
    tested = []
    original_smoke = ports.tester.smoke

    def smoke_that_fails_the_second_time(endpoint):
        if endpoint.name == f"production-{second}":
            tested.append(endpoint.name)
            if len(tested) > 1:
                return TestReport(False, "smoke failed", [{"name": "smoke", "passed": False}])
        return original_smoke(endpoint)

    ports.tester.smoke = smoke_that_fails_the_second_time
    orchestrator.approve(second, person("bob"), "")
    release = ports.store.get(second)
    assert release.state == State.FAILED and "after traffic had moved" in release.error
    assert f"production traffic is going back to {RELEASE}" in release.error
    assert ports.deployer.traffic() == {RELEASE: 100} and state(ports) == State.LIVE
    assert ports.registry.champion().tags["release_id"] == RELEASE


def test_a_failure_after_the_champion_moved_puts_the_champion_back(world, monkeypatch):
    orchestrator, ports, _, _ = world
    second = second_release_awaiting_approval(orchestrator, ports)
    ports.registry.by_release[second] = ModelRef("diabetes-model", "2", "/m/2", {"release_id": second})

    def broken(*args, **kwargs):
        raise RuntimeError("store unavailable")

    monkeypatch.setattr(Release, "went_live", broken)  # the champion moved, recording "live" fails
    orchestrator.approve(second, person("bob"), "")
    orchestrator.follow(passes=6)
    release = ports.store.get(second)
    assert release.state == State.FAILED and "store unavailable" in release.error
    assert ports.registry.champion().version == "1" and ports.deployer.traffic() == {RELEASE: 100}


def test_what_served_before_is_saved_before_traffic_moves(world, monkeypatch):
    """A host that dies between the traffic change and recording it: the retry keeps the real before."""
    orchestrator, ports, _, _ = world
    second = second_release_awaiting_approval(orchestrator, ports)
    real_begin = rollout.begin  # the traffic change is begun by the rollout (all at once here)
    died: list[str] = []

    def dies_once_after_traffic(ctx, release, operation, what, deadline=None):
        if operation.kind == "traffic" and not died:
            died.append(what)
            raise RuntimeError("host died")
        return real_begin(ctx, release, operation, what, deadline)

    monkeypatch.setattr(rollout, "begin", dies_once_after_traffic)
    release = orchestrator.approve(second, person("bob"), "")
    assert died and release.state == State.LIVE
    assert release.production["traffic_before"] == {RELEASE: 100}
    assert RELEASE in ports.deployer.deployments()  # the version before is kept for rollback, not removed


def test_traffic_going_back_after_a_failed_promotion_is_retried_until_production_routes_there(world):
    orchestrator, ports, _, clock = world
    second = second_release_awaiting_approval(orchestrator, ports)
    ports.deployer.failing.add("traffic")  # every traffic change fails to finish: the forward one and the undo
    orchestrator.approve(second, person("bob"), "")
    orchestrator.follow(passes=6)
    release = ports.store.get(second)
    assert release.state == State.FAILED and f"production traffic is going back to {RELEASE}" in release.error
    [pending] = ports.store.pending_work(second)
    assert pending.kind == "restore_traffic" and "not back to" in pending.last_error
    assert "production_restored" not in [e["step"] for e in release.timeline]

    ports.deployer.failing.clear()
    clock.advance(seconds=31)  # past the outbox's first backoff
    orchestrator.reconcile()  # the timer's pass: the work is due again, and production routes there now
    assert ports.deployer.traffic() == {RELEASE: 100} and ports.store.pending_work(second) == []
    assert ports.store.get(second).timeline[-1]["step"] == "production_restored"
