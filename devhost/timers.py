"""Timer triggers: fire each timer function on its NCRONTAB schedule (UTC) while the host runs.

As on the Functions host, a run sees the schedule status the previous run saved (``Last``: the previous
occurrence, ``Next``: the occurrence now running, ``LastUpdated``: when the previous run finished; empty
on the first run), ``IsPastDue`` is true when the run starts more than ``PAST_DUE_TOLERANCE`` after its
occurrence, and occurrences missed by a late run are folded into it rather than replayed one by one.
A function that raises is logged and the schedule goes on. ``run_on_startup`` fires once at start.

The clock and the sleep are parameters so the loop can be driven without waiting (tests/unit/test_timers.py).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from devhost.conversion import timer_request
from devhost.invocation import HostedFunction, invoke
from functions.domain import ncrontab

# A run this much later than its scheduled time means an occurrence was missed: the host's IsPastDue.
PAST_DUE_TOLERANCE = timedelta(seconds=1)

Clock = Callable[[], datetime]
Sleep = Callable[[float], Awaitable[None]]


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class TimerSchedule:
    function: HostedFunction
    schedule: str  # NCRONTAB, app settings already resolved
    run_on_startup: bool


def is_past_due(due: datetime, fired_at: datetime) -> bool:
    return fired_at - due > PAST_DUE_TOLERANCE


def following_occurrence(schedule: str, due: datetime, fired_at: datetime) -> datetime:
    """The occurrence after the one due at ``due`` and run at ``fired_at``.

    Occurrences missed by a late run are folded into it (the host runs a missed schedule once, past due).
    """
    anchor = fired_at if is_past_due(due, fired_at) else due
    return ncrontab.next_fire(schedule, anchor)


async def _fire(timer: TimerSchedule, past_due: bool, status: dict[str, datetime | None], clock: Clock) -> None:
    reason = f"Timer fired at {clock().isoformat()}"
    with contextlib.suppress(Exception):  # invoke() logged it; a failing run must not stop the schedule
        await invoke(timer.function, timer_request(past_due, status), reason)


async def run_timer(timer: TimerSchedule, clock: Clock = utcnow, sleep: Sleep = asyncio.sleep) -> None:
    """Fire ``timer`` on schedule until cancelled."""
    if timer.run_on_startup:
        await _fire(timer, False, {}, clock)
    due = ncrontab.next_fire(timer.schedule, clock())
    status: dict[str, datetime | None] = {}
    while True:
        # Sleep again if woken early: asyncio may wake a little before the deadline.
        while (delay := (due - clock()).total_seconds()) > 0:
            await sleep(delay)
        fired_at = clock()
        await _fire(timer, is_past_due(due, fired_at), status | {"Next": due}, clock)
        status = {"Last": due, "LastUpdated": clock()}
        due = following_occurrence(timer.schedule, due, fired_at)
