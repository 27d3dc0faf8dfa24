"""Retraining on a schedule (MLOPS_RETRAIN_SCHEDULE): which occurrence is due, and its release's identity.

The reconcile timer asks on every pass. An occurrence is due from its time until CATCH_UP after it,
so a pass that runs late (or a timer that fired twice, or two instances) still finds the same
occurrence, and the release id derived from it makes the second start a duplicate. Occurrences
missed for longer than CATCH_UP (the app was stopped) are not replayed: a week-old "retrain weekly"
is not worth a retraining now, and the next occurrence comes anyway.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from functions.domain import ncrontab
from functions.domain.ids import release_id

# Longer than the reconcile timer's default period (one minute) with room for a slow or late pass.
CATCH_UP = timedelta(minutes=10)
SCHEDULE_REQUESTER = "mlops-schedule"  # never a person's identity: any allowed approver may approve


def validate(expression: str) -> None:
    """A six-field NCRONTAB schedule that fires at most once a minute (its seconds field is one number)."""
    ncrontab.validate(expression)
    seconds = expression.split()[0]
    if not seconds.isdigit():
        raise ValueError(
            f"NCRONTAB expression {expression!r} fires more than once a minute; a retraining schedule "
            "names one second, e.g. '0 0 3 * * MON' (Mondays 03:00 UTC)"
        )


def due_occurrence(expression: str, now: datetime, catch_up: timedelta = CATCH_UP) -> datetime | None:
    """The latest occurrence in (now - catch_up, now], or None when none is."""
    occurrence = ncrontab.next_fire(expression, now - catch_up)
    if occurrence > now:
        return None
    while (following := ncrontab.next_fire(expression, occurrence)) <= now:
        occurrence = following
    return occurrence


def occurrence_key(occurrence: datetime) -> str:
    """The occurrence's event id (what the release records as handled)."""
    return f"schedule-{occurrence:%Y%m%dt%H%M%S}"


def release_id_for_occurrence(occurrence: datetime) -> str:
    """One release per occurrence: ``rel-schedule-20261207t030000``."""
    return release_id("schedule", f"{occurrence:%Y%m%dt%H%M%S}")


def schedule_trigger(expression: str, occurrence: datetime) -> dict[str, Any]:
    return {
        "kind": "schedule",
        "schedule": expression,
        "occurrence": occurrence.isoformat(),
        "requester": SCHEDULE_REQUESTER,
        "reason": f"{expression} occurrence {occurrence.isoformat()}",
    }
