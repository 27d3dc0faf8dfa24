"""functions.service.background: the outbox the timer carries out (notifications now; async steps later)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from functions.domain.notifications import Notification
from functions.domain.refs import WorkItem
from functions.domain.release import Release, State
from functions.links import Links
from functions.service import background
from functions.service.context import Ports, Timeouts
from functions.service.orchestrator import Orchestrator
from functions.service.results import Outcome
from tests import payloads as p
from tests.doubles.clock import Clock
from tests.doubles.followed import Followed
from tests.doubles.ports import Calls, InMemoryReleaseStore, as_message, fake_ports
from tests.unit.test_orchestrator import RELEASE, TAG, person, state, to_approval


class FlakyNotifier:
    """One notification target ("chat") that is down for its first ``failures`` calls."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.messages: list[tuple[str, str, str]] = []

    def targets(self) -> list[str]:
        return ["chat"]

    def sends_inline(self, target: str) -> bool:
        return True

    def send(self, target: str, notification: Notification) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise ConnectionError("webhook target unreachable")
        self.messages.append(as_message(notification))


def message(title: str) -> dict:
    """A notify work item's payload for the one target."""
    note = Notification("live", RELEASE, "live", title, "s", "http://h/api/ui/releases/r", "2026-12-02T00:00:00")
    return {"target": "chat", "notification": note.to_json()}


def stored_release(ports: Ports) -> Release:
    release = ports.store.get(RELEASE)
    assert release is not None
    return release


def world(notifier: FlakyNotifier, **timeouts: object) -> tuple[Orchestrator, Ports, Clock]:
    ports = fake_ports(Calls())
    ports.notifier = notifier
    clock = Clock()
    orchestrator = Followed(ports, links=Links(), clock=clock, timeouts=Timeouts(**timeouts))  # type: ignore[arg-type]
    return orchestrator, ports, clock


def test_a_target_that_is_down_never_holds_up_the_release_and_is_retried_with_backoff():
    notifier = FlakyNotifier(failures=2)
    orchestrator, ports, clock = world(notifier, work_backoff=timedelta(seconds=30))
    to_approval(orchestrator)
    assert state(ports) == State.AWAITING_APPROVAL  # the failed message changed nothing
    [pending] = ports.store.pending_work(RELEASE)
    assert (pending.kind, pending.attempts) == ("notify", 1)
    assert pending.last_error == "ConnectionError: webhook target unreachable"

    assert orchestrator.reconcile()["work_done"] == 0  # not due yet: 30 s backoff after the first attempt
    clock.advance(seconds=30)
    assert orchestrator.reconcile()["work_retried"] == 1  # second failure: now 60 s
    clock.advance(seconds=59)
    assert orchestrator.reconcile()["work_done"] == 0
    clock.advance(seconds=1)
    assert orchestrator.reconcile()["work_done"] == 1
    [(release_id, subject, body)] = notifier.messages
    assert release_id == RELEASE and subject == f"Release {RELEASE} awaits approval"
    assert f"mlops approve {RELEASE} (or POST http://127.0.0.1:7071/api/releases/{RELEASE}/approve" in body
    assert ports.store.pending_work(RELEASE) == []
    timeline = [(e["step"], e["detail"]) for e in stored_release(ports).timeline if "notification" in e["step"]]
    assert timeline == [
        ("notification_failed", "notification to chat failed: ConnectionError: webhook target unreachable; "
                                "retrying in 0:00:30"),
        ("notification_delivered", "notification to chat delivered on attempt 3"),
    ]  # fmt: skip


def test_work_that_keeps_failing_is_dead_lettered_and_given_up():
    notifier = FlakyNotifier(failures=1000)
    orchestrator, ports, clock = world(notifier, max_work_attempts=3, work_backoff=timedelta(seconds=1))
    to_approval(orchestrator)
    for _ in range(5):
        clock.advance(hours=1)
        orchestrator.reconcile()
    assert ports.store.pending_work() == []
    [letter] = [d for d in ports.store.dead_letters() if d.function == background.BACKGROUND_FUNCTION]
    assert letter.event_type == "notify" and letter.event_id.startswith(f"notify:approval:chat:{RELEASE}:")
    assert letter.reason.startswith("notify failed 3 times; last error: ConnectionError")
    assert state(ports) == State.AWAITING_APPROVAL
    notes = [e["detail"] for e in stored_release(ports).timeline if e["step"] == "notification_failed"]
    assert len(notes) == 2  # the first failure and the giving up; not one per attempt
    assert notes[1].startswith("notification to chat given up after 3 attempts (dead letter notify:approval:chat:")


def test_enqueueing_a_pending_key_again_adds_nothing():
    notifier = FlakyNotifier(failures=1)
    orchestrator, ports, clock = world(notifier)
    for title in ("b", "2nd"):
        background.enqueue(orchestrator.ctx, "notify", RELEASE, "notify:once", message(title), run_now=True)
    assert [item.payload["notification"]["title"] for item in ports.store.pending_work(RELEASE)] == ["b"]
    clock.advance(hours=1)
    orchestrator.reconcile()
    assert [title for _, title, _ in notifier.messages] == ["b"]


def test_work_left_by_a_host_that_died_mid_attempt_runs_when_its_lease_ends():
    """run_now writes the item under a lease before trying it: a crash leaves it for the timer."""
    notifier = FlakyNotifier(failures=0)
    orchestrator, ports, clock = world(notifier, work_lease=timedelta(minutes=5))
    leased_until = (clock() + timedelta(minutes=5)).isoformat(timespec="seconds")
    ports.store.add_work(WorkItem("notify:crash", "notify", RELEASE, message("b"), leased_until, 1))
    assert orchestrator.reconcile()["work_done"] == 0
    clock.advance(minutes=5)
    assert orchestrator.reconcile()["work_done"] == 1 and [t for _, t, _ in notifier.messages] == ["b"]


def test_a_kind_without_a_handler_is_refused_at_enqueue():
    orchestrator, _, _ = world(FlakyNotifier(0))
    with pytest.raises(ValueError, match="no background handler for 'teleport'"):
        background.enqueue(orchestrator.ctx, "teleport", RELEASE, "k", {})


def test_state_changes_are_published_through_the_outbox_once_per_version():
    orchestrator, ports, _ = world(FlakyNotifier(0))
    to_approval(orchestrator)
    orchestrator.receive("on_registry_event", p.image_pushed(TAG))  # a redelivery: recorded, nothing published
    published = [data["state"] for _, _, data in ports.publisher.events]  # type: ignore[attr-defined]
    assert published == ["awaiting_approval"]


class FlakyPublisher:
    """A topic that refuses its first ``failures`` sends; keeps (event id, type, data) of the rest."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.attempted_ids: list[str | None] = []
        self.sent: list[tuple[str | None, str, dict]] = []

    def publish(self, event_type: str, subject: str, data: dict, event_id: str | None = None) -> str:
        self.attempted_ids.append(event_id)
        if self.failures > 0:
            self.failures -= 1
            raise ConnectionError("topic unreachable")
        self.sent.append((event_id, event_type, data))
        return event_id or ""


def test_a_state_change_whose_topic_is_down_is_sent_later_under_the_same_event_id():
    orchestrator, ports, clock = world(FlakyNotifier(0))
    publisher = FlakyPublisher(failures=1)
    ports.publisher = publisher
    to_approval(orchestrator)
    assert publisher.sent == []  # the first send failed; the release did not
    assert state(ports) == State.AWAITING_APPROVAL
    clock.advance(minutes=1)
    assert orchestrator.reconcile()["work_done"] == 1
    [(event_id, event_type, data)] = publisher.sent
    assert event_type == "MLOps.ReleaseStateChanged" and data["state"] == "awaiting_approval"
    assert event_id is not None and publisher.attempted_ids == [event_id, event_id]  # a subscriber can dedupe


class BrokenOutboxStore(InMemoryReleaseStore):
    def add_work(self, item: WorkItem) -> bool:
        raise OSError("disk full")


def test_an_outbox_that_cannot_be_written_never_undoes_or_fails_the_state_change():
    orchestrator, ports, _ = world(FlakyNotifier(0))
    ports.store = BrokenOutboxStore()
    orchestrator.receive("on_build_event", p.build_completed("1234"))
    failed = p.run_status_changed(f"job-{RELEASE}", RELEASE, "Failed")
    assert orchestrator.receive("on_ml_event", failed) is Outcome.HANDLED  # no exception, no redelivery
    assert state(ports) == State.FAILED


def test_an_approval_request_retried_after_the_decision_is_dropped():
    notifier = FlakyNotifier(failures=1)
    orchestrator, ports, clock = world(notifier)
    to_approval(orchestrator)  # the "approve with ..." message failed once
    orchestrator.approve(RELEASE, person("bob"), "")
    clock.advance(hours=1)
    orchestrator.reconcile()
    assert [subject for _, subject, _ in notifier.messages] == [f"Release {RELEASE} is live"]
    assert ports.store.pending_work(RELEASE) == []


def test_a_dropped_message_is_not_reported_as_delivered():
    notifier = FlakyNotifier(failures=1)
    orchestrator, ports, clock = world(notifier)
    to_approval(orchestrator)  # the approval request failed once
    orchestrator.decline(RELEASE, person("bob"), "no")
    clock.advance(hours=1)
    orchestrator.reconcile()
    steps = [e["step"] for e in stored_release(ports).timeline]
    assert "notification_delivered" not in steps and steps.count("notification_failed") == 1


def test_an_item_queued_before_targets_existed_is_still_told_to_every_target():
    notifier = FlakyNotifier(failures=0)
    orchestrator, ports, _ = world(notifier)
    to_approval(orchestrator)
    notifier.messages.clear()
    legacy = {
        "subject": "approval requested for x",
        "body": "approve with: mlops approve x",
        "only_while": "awaiting_approval",
    }
    ports.store.add_work(WorkItem("notify:approval:old", "notify", RELEASE, legacy, "2000-01-01T00:00:00+00:00"))
    assert orchestrator.reconcile()["work_done"] == 1
    assert notifier.messages == [(RELEASE, "approval requested for x", "approve with: mlops approve x\n")]


def test_a_pass_stops_taking_work_when_its_budget_is_spent():
    class SlowNotifier(FlakyNotifier):
        def send(self, target: str, notification: Notification) -> None:
            clock.advance(seconds=50)  # each send takes 50 s of the pass
            super().send(target, notification)

    notifier = SlowNotifier(failures=0)
    orchestrator, ports, clock = world(notifier, work_pass_budget=timedelta(seconds=120))
    for number in range(5):
        ports.store.add_work(
            WorkItem(f"notify:{number}", "notify", RELEASE, message(str(number)), "2000-01-01T00:00:00+00:00")
        )
    assert orchestrator.reconcile()["work_done"] == 3  # 0 s, 50 s, 100 s: the fourth would start past 120 s
    assert len(ports.store.pending_work()) == 2
    assert orchestrator.reconcile()["work_done"] == 2


def test_a_notification_keeps_its_id_across_retries_and_versions_make_new_ones():
    ids: list[str] = []

    class RecordingNotifier(FlakyNotifier):
        def send(self, target: str, notification: Notification) -> None:
            ids.append(notification.id)
            super().send(target, notification)

    orchestrator, _, clock = world(RecordingNotifier(failures=1))
    to_approval(orchestrator)  # the first try fails
    clock.advance(hours=1)
    orchestrator.reconcile()  # the retry works
    orchestrator.approve(RELEASE, person("bob"), "")  # live: a new notification
    assert len(ids) == 3 and ids[0] == ids[1] != ids[2]
    assert all(len(i) == 36 for i in ids)
