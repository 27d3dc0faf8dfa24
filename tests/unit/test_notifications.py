"""What people are told (functions/domain/notifications.py) and how it reaches each target (announce, background)."""

from __future__ import annotations

from datetime import timedelta

from functions.domain.notifications import Kind, Notification, kind_for, notification_for
from functions.domain.release import Release, State
from functions.links import Links
from functions.service.context import Timeouts
from functions.service.orchestrator import Orchestrator
from tests import payloads as p
from tests.doubles.clock import Clock
from tests.doubles.followed import Followed
from tests.doubles.ports import Calls, FakeNotifier, FakeTraining, data_checks_report, evaluation_report, fake_ports
from tests.unit.test_orchestrator import RELEASE, person, to_approval

SECRET_LOOKING = "sig=do-not-leak"


class HalfDownNotifier(FakeNotifier):
    """Two targets; "teams" is down for good."""

    def __init__(self) -> None:
        super().__init__(("teams", "slack"))

    def send(self, target: str, notification: Notification) -> None:
        if target == "teams":
            raise ConnectionError("teams: could not reach the target (ConnectTimeout)")
        super().send(target, notification)


def sent(orchestrator: Orchestrator) -> list[tuple[str, Notification]]:
    notifier = orchestrator.ports.notifier
    assert isinstance(notifier, FakeNotifier)
    return notifier.sent


def stored(orchestrator: Orchestrator, release_id: str = RELEASE) -> Release:
    release = orchestrator.ports.store.get(release_id)
    assert release is not None
    return release


def world(notifier: FakeNotifier | None = None) -> tuple[Orchestrator, Clock]:
    ports = fake_ports(Calls())
    if notifier is not None:
        ports.notifier = notifier
    clock = Clock()
    timeouts = Timeouts(work_backoff=timedelta(seconds=1), max_work_attempts=3)
    return Followed(ports, links=Links("https://mlops.example.net"), clock=clock, timeouts=timeouts), clock


def test_the_approval_request_carries_the_evidence_and_a_link_to_the_page_never_a_credential():
    orchestrator, _ = world()
    to_approval(orchestrator)
    [(target, note)] = sent(orchestrator)
    assert target == "chat" and note.kind == Kind.APPROVAL_REQUESTED and note.tone == "attention"
    assert note.url == f"https://mlops.example.net/api/ui/releases/{RELEASE}"
    facts = {fact.name: fact.value for fact in note.facts}
    assert facts["Model"] == "diabetes-model:1" and facts["Commit"] == "3f2a9c1d0e4b"
    assert facts["Data checks"] == "passed (5 checks)" and facts["Approvals"] == "0 of 1"
    assert facts["Staging tests"].startswith("passed")
    assert facts["From a terminal"].startswith(f"mlops approve {RELEASE}")
    assert note.evidence["metric"] == "mse" and note.evidence["promote"] is True
    assert note.lineage["commit"].startswith("3f2a9c1d") and note.lineage["model"] == "diabetes-model:1"
    assert "token" not in str(note.to_json()).lower() and "key" not in note.url


def test_a_champion_makes_the_gate_fact_the_comparison_with_its_interval():
    ports = fake_ports(Calls())
    ports.training = FakeTraining(Calls(), evaluation_report(40.0, 45.0))
    orchestrator = Followed(ports, links=Links(), clock=Clock())
    to_approval(orchestrator)
    [(_, note)] = sent(orchestrator)
    gate = {fact.name: fact.value for fact in note.facts}["Gate"]
    assert gate.startswith("mse champion ") and "improvement +" in gate and "(95% CI [" in gate


def test_each_outcome_is_told_once_per_target_with_its_own_words():
    orchestrator, _ = world()
    to_approval(orchestrator)
    orchestrator.approve(RELEASE, person("bob"), "ok")
    kinds = [note.kind for _, note in sent(orchestrator)]
    assert kinds == ["approval_requested", "live"]
    assert sent(orchestrator)[1][1].title == f"Release {RELEASE} is live"


def with_failed_checks(*failed: str) -> Orchestrator:
    """An orchestrator whose training reports these data checks failed."""
    ports = fake_ports(Calls())
    training = FakeTraining(Calls())
    training.checks = data_checks_report(failed=failed)
    ports.training = training
    return Followed(ports, links=Links(), clock=Clock())


def test_a_failed_data_check_report_is_in_the_record_and_the_message():
    orchestrator = with_failed_checks("duplicates")
    to_approval(orchestrator)
    checks = stored(orchestrator).data_checks or {}
    assert checks["failed"] == ["duplicates"] and len(checks["checks"]) == 5
    assert "details" not in checks["checks"][0]  # the record keeps verdicts, not the report
    [(_, note)] = sent(orchestrator)
    assert {f.name: f.value for f in note.facts}["Data checks"] == "failed: duplicates (5 checks)"


def test_unreadable_data_checks_are_said_so_and_never_stop_the_release():
    ports = fake_ports(Calls())
    ports.training.data_checks = lambda job_name: (_ for _ in ()).throw(FileNotFoundError("no report"))  # type: ignore[method-assign]
    orchestrator = Followed(ports, links=Links(), clock=Clock())
    to_approval(orchestrator)
    release = stored(orchestrator)
    assert release.state == State.AWAITING_APPROVAL
    assert release.data_checks == {"error": "could not be read: FileNotFoundError: no report"}


def test_a_dead_target_neither_blocks_the_release_nor_the_other_target_and_is_in_the_timeline():
    notifier = HalfDownNotifier()
    orchestrator, clock = world(notifier)
    to_approval(orchestrator)
    assert notifier.sent == []  # webhook targets are not tried inside the invocation: the timer sends them
    assert sorted(item.key.split(":")[2] for item in orchestrator.ports.store.pending_work()) == ["slack", "teams"]
    orchestrator.reconcile()
    assert [target for target, _ in notifier.sent] == ["slack"]
    for _ in range(4):
        clock.advance(minutes=5)
        orchestrator.reconcile()
    release = stored(orchestrator)
    assert release.state == State.AWAITING_APPROVAL
    notes = [e["detail"] for e in release.timeline if e["step"].startswith("notification")]
    assert notes[0] == ("notification to teams failed: ConnectionError: teams: could not reach the target "
                        "(ConnectTimeout); retrying in 0:00:01")  # fmt: skip
    assert notes[1].startswith("notification to teams given up after 3 attempts")
    assert len(notes) == 2 and [target for target, _ in notifier.sent] == ["slack"]  # slack was not sent again
    assert orchestrator.ports.store.pending_work() == []
    orchestrator.approve(RELEASE, person("bob"), "ok")  # still approvable, and goes live
    assert stored(orchestrator).state == State.LIVE


def test_kinds_follow_the_states_people_hear_about():
    orchestrator, _ = world()
    orchestrator.receive("on_build_event", p.build_completed("1234"))
    release = stored(orchestrator)
    assert kind_for(release) is None  # queued/training: nothing to tell
    release.state = State.FAILED
    release.error = "training failed: " + "x" * 2000
    assert kind_for(release) == Kind.FAILED
    note = notification_for(release, Kind.FAILED, "https://h/api/ui/releases/r")
    assert note.tone == "bad" and len(note.summary) <= 600 and note.summary.endswith("…")
    assert Notification.from_json(note.to_json()) == note


def test_a_release_that_failed_in_training_keeps_its_data_checks_for_the_page():
    orchestrator = with_failed_checks("value_ranges")
    orchestrator.receive("on_build_event", p.build_completed("1234"))
    orchestrator.receive("on_ml_event", p.run_status_changed(f"job-{RELEASE}", RELEASE, "Failed"))
    release = stored(orchestrator)
    assert release.state == State.FAILED and (release.data_checks or {})["failed"] == ["value_ranges"]
    [(_, note)] = sent(orchestrator)
    assert {f.name: f.value for f in note.facts}["Data checks"] == "failed: value_ranges (5 checks)"
