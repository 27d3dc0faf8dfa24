"""MLOPS_RETRAIN_SCHEDULE: the reconcile pass starts exactly one release per occurrence."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from functions.domain import schedule
from functions.links import Links
from functions.service.orchestrator import Orchestrator
from functions.service.reconcile import start_scheduled, timer_pass
from functions.settings import Settings, SettingsError
from tests.doubles.clock import Clock
from tests.doubles.ports import Calls, fake_ports

WEEKLY = "0 0 3 * * MON"  # Mondays 03:00 UTC
MONDAY_3AM = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)


def service(expression: str, now: datetime) -> tuple[Orchestrator, Calls, Clock]:
    calls, clock = Calls(), Clock(now)
    return Orchestrator(fake_ports(calls), links=Links(), clock=clock, retrain_schedule=expression), calls, clock


def scheduled_releases(orchestrator: Orchestrator) -> list:
    return [r for r in orchestrator.ports.store.list(limit=100) if r.trigger.get("kind") == "schedule"]


@pytest.mark.parametrize(
    "now, due",
    [
        (MONDAY_3AM - timedelta(seconds=1), None),
        (MONDAY_3AM, MONDAY_3AM),
        (MONDAY_3AM + timedelta(minutes=9, seconds=59), MONDAY_3AM),
        (MONDAY_3AM + timedelta(minutes=10, seconds=1), None),  # missed for longer than CATCH_UP: not replayed
    ],
)
def test_an_occurrence_is_due_from_its_time_until_the_catch_up_window_ends(now, due):
    assert schedule.due_occurrence(WEEKLY, now) == due


def test_the_latest_occurrence_in_the_window_is_the_due_one():
    every_two_minutes = "0 */2 * * * *"
    assert schedule.due_occurrence(every_two_minutes, MONDAY_3AM + timedelta(minutes=5)) == MONDAY_3AM + timedelta(
        minutes=4
    )


def test_one_release_per_occurrence_however_often_the_timer_fires():
    orchestrator, calls, clock = service(WEEKLY, MONDAY_3AM + timedelta(seconds=20))
    assert start_scheduled(orchestrator.ctx) == {"scheduled": 1}
    clock.advance(minutes=1)
    assert start_scheduled(orchestrator.ctx) == {"scheduled": 0}  # the same occurrence: a duplicate
    assert timer_pass(orchestrator.ctx)["scheduled"] == 0  # the timer firing twice
    (release,) = scheduled_releases(orchestrator)
    assert release.id == "rel-schedule-20261130t030000"
    assert release.trigger["occurrence"] == MONDAY_3AM.isoformat() and release.trigger["schedule"] == WEEKLY
    assert [c[0] for c in calls.log].count("submit") == 1
    (duplicate,) = [e for e in release.timeline if e["step"] == "duplicate_event"]
    assert duplicate["count"] == 2  # the second and third look at the same occurrence, counted on one entry

    clock.now = MONDAY_3AM + timedelta(days=7, minutes=2)  # the next occurrence
    assert start_scheduled(orchestrator.ctx) == {"scheduled": 1}
    assert sorted(r.id for r in scheduled_releases(orchestrator)) == [
        "rel-schedule-20261130t030000",
        "rel-schedule-20261207t030000",
    ]


def test_two_instances_sharing_a_store_start_the_occurrence_once():
    first, calls, _ = service(WEEKLY, MONDAY_3AM + timedelta(seconds=5))
    second = Orchestrator(first.ports, links=Links(), clock=Clock(MONDAY_3AM + timedelta(seconds=7)),
                          retrain_schedule=WEEKLY)  # fmt: skip
    assert start_scheduled(first.ctx)["scheduled"] + start_scheduled(second.ctx)["scheduled"] == 1
    assert len(scheduled_releases(first)) == 1 and [c[0] for c in calls.log].count("submit") == 1


def test_without_a_schedule_the_pass_starts_nothing():
    orchestrator, calls, _ = service("", MONDAY_3AM)
    assert "scheduled" not in timer_pass(orchestrator.ctx)
    assert scheduled_releases(orchestrator) == [] and calls.log == []


def test_a_scheduled_release_is_requested_by_no_person():
    from functions.domain.approval import requester_of

    trigger = schedule.schedule_trigger(WEEKLY, MONDAY_3AM)
    assert requester_of(trigger) == schedule.SCHEDULE_REQUESTER  # nobody can be refused as its requester


@pytest.mark.parametrize(
    "value, said",
    [
        ("0 3 * * MON", "six"),  # five fields: classic cron
        ("* 0 3 * * MON", "more than once a minute"),
        ("*/30 * * * * *", "more than once a minute"),
        ("0 0 0 30 2 *", "never fires"),
    ],
)
def test_a_bad_schedule_stops_the_app_at_start_naming_the_setting(value, said):
    with pytest.raises(SettingsError, match="MLOPS_RETRAIN_SCHEDULE") as caught:
        Settings.from_env({"MLOPS_RETRAIN_SCHEDULE": value})
    assert said in str(caught.value)


def test_the_schedule_is_off_by_default_and_read_when_set():
    assert Settings.from_env({}).retrain_schedule == ""
    assert Settings.from_env({"MLOPS_RETRAIN_SCHEDULE": "  0 0 3  * * MON "}).retrain_schedule == WEEKLY
