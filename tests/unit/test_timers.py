"""The timer loop and its schedule arithmetic, on a fake clock: no waiting, no real time involved."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import azure.functions as func
import pytest
from azure.functions.timer import TimerRequest as WorkerTimerRequest

from devhost.indexing import indexed_functions
from devhost.invocation import HostedFunction
from devhost.timers import PAST_DUE_TOLERANCE, TimerSchedule, following_occurrence, is_past_due, run_timer

START = datetime(2024, 1, 1, 12, 0, 3, tzinfo=UTC)


class _Stop(Exception):
    """Ends the otherwise endless timer loop once the test has seen enough runs."""


class FakeTime:
    """A clock that moves only when the loop sleeps, by the delay asked for plus any lateness planned."""

    def __init__(self, runs: list[func.TimerRequest], stop_after: int, late: dict[int, float] | None = None) -> None:
        self.now = START
        self.runs, self.stop_after, self.late = runs, stop_after, late or {}
        self.sleeps = 0

    def clock(self) -> datetime:
        return self.now

    async def sleep(self, delay: float) -> None:
        if len(self.runs) >= self.stop_after:
            raise _Stop
        self.now += timedelta(seconds=delay + self.late.get(self.sleeps, 0.0))
        self.sleeps += 1


def _timer(schedule: str, runs: list[func.TimerRequest], run_on_startup: bool = False, fail_first: bool = False):
    app = func.FunctionApp()

    @app.timer_trigger(schedule=schedule, arg_name="timer", run_on_startup=run_on_startup)
    async def scheduled(timer: func.TimerRequest) -> None:
        runs.append(timer)
        if fail_first and len(runs) == 1:
            raise RuntimeError("the first run fails")

    function = HostedFunction.from_function(indexed_functions(app)[0])
    return TimerSchedule(function, schedule, run_on_startup)


def _run(timer: TimerSchedule, time: FakeTime) -> list[WorkerTimerRequest]:
    with pytest.raises(_Stop):
        asyncio.run(run_timer(timer, clock=time.clock, sleep=time.sleep))
    assert all(isinstance(run, WorkerTimerRequest) for run in time.runs)
    return [run for run in time.runs if isinstance(run, WorkerTimerRequest)]


def _at(second: float) -> str:
    return (START.replace(second=0) + timedelta(seconds=second)).isoformat()


def test_runs_on_time_see_the_status_the_previous_run_saved() -> None:
    runs: list[func.TimerRequest] = []
    first, second = _run(_timer("*/10 * * * * *", runs), FakeTime(runs, stop_after=2))

    assert (first.past_due, second.past_due) == (False, False)
    assert first.schedule == {"AdjustForDST": True}
    assert first.schedule_status == {"Next": _at(10)}
    assert second.schedule_status == {"Last": _at(10), "Next": _at(20), "LastUpdated": _at(10)}


def test_a_late_run_is_past_due_and_the_occurrences_it_missed_are_not_replayed() -> None:
    runs: list[func.TimerRequest] = []
    time = FakeTime(runs, stop_after=2, late={0: 7.5})  # due at :04, runs at :11.5; :05 ... :11 are missed

    late, next_one = _run(_timer("*/1 * * * * *", runs), time)

    assert late.past_due is True
    assert late.schedule_status["Next"] == _at(4)
    assert next_one.past_due is False
    assert next_one.schedule_status["Last"] == _at(4)
    assert next_one.schedule_status["Next"] == _at(12)


def test_run_on_startup_runs_first_with_an_empty_status() -> None:
    runs: list[func.TimerRequest] = []
    startup, scheduled = _run(_timer("0 0 0 1 1 *", runs, run_on_startup=True), FakeTime(runs, stop_after=2))

    assert startup.past_due is False
    assert startup.schedule_status == {}
    assert scheduled.schedule_status == {"Next": datetime(2025, 1, 1, tzinfo=UTC).isoformat()}


def test_a_failing_run_does_not_stop_the_schedule() -> None:
    runs: list[func.TimerRequest] = []
    failed, following = _run(_timer("*/10 * * * * *", runs, fail_first=True), FakeTime(runs, stop_after=2))
    assert failed.schedule_status["Next"] == _at(10)
    assert following.schedule_status["Next"] == _at(20)


def test_on_time_run_is_not_past_due_and_schedules_the_next_occurrence() -> None:
    due = datetime(2024, 1, 1, 12, 0, 0, tzinfo=UTC)
    fired_at = due + timedelta(milliseconds=30)
    assert not is_past_due(due, fired_at)
    assert following_occurrence("0 */5 * * * *", due, fired_at) == due + timedelta(minutes=5)


def test_late_run_is_past_due_and_missed_occurrences_fold_into_it() -> None:
    due = datetime(2024, 1, 1, 12, 0, 0, tzinfo=UTC)
    fired_at = due + timedelta(seconds=7, milliseconds=500)  # occurrences at :01 ... :07 were missed
    assert is_past_due(due, fired_at)
    assert not is_past_due(due, due + PAST_DUE_TOLERANCE)
    assert following_occurrence("*/1 * * * * *", due, fired_at) == due + timedelta(seconds=8)
