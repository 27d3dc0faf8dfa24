"""Delivery: what stands between Event Grid's at-least-once, unordered delivery and the handlers.

- parse the wire payload into a typed event; a payload that cannot be understood, or one sent to
  the wrong function, is dead-lettered (recorded with the reason, acknowledged: no retry storm);
- dispatch through HANDLERS (one hop from the event type to its handler);
- retry the handler when it lost a race on the release record (ConcurrencyError); past that,
  raise, so Event Grid redelivers;
- park an event that came before its release was ready, and replay parked events whenever a
  handler moved their release on.
"""

from __future__ import annotations

import logging
from typing import Any

from functions.domain import events as ev
from functions.domain.refs import DeadLetter
from functions.domain.release import Release
from functions.ports import ConcurrencyError
from functions.service.context import Context
from functions.service.handlers import HANDLERS, Park
from functions.service.results import Outcome
from functions.service.subscriptions import FUNCTION_EVENT_TYPES
from functions.service.unit_of_work import CONFLICT_RETRIES

log = logging.getLogger("mlops.delivery")


def receive(ctx: Context, function_name: str, payload: Any) -> Outcome:
    """One delivered event; never raises for a bad event (it is dead-lettered)."""
    if isinstance(payload, dict) and ev.RELEASE_STATE_CHANGED in (payload.get("eventType"), payload.get("type")):
        return Outcome.IGNORED  # our own notification to other systems, echoed back by a catch-all route
    try:
        event = ev.parse_event(payload)
    except ev.InvalidEvent as exc:
        return dead_letter(ctx, function_name, payload, str(exc))
    expected = FUNCTION_EVENT_TYPES.get(function_name)
    if expected is not None and event.type not in expected:
        return dead_letter(ctx, function_name, payload, f"{event.type} is not handled by {function_name}")
    return handle(ctx, event, payload)


def handle(ctx: Context, event: ev.DomainEvent, payload: dict[str, Any]) -> Outcome:
    handler = HANDLERS.get(event.type)
    if handler is None:
        return Outcome.IGNORED
    for _ in range(CONFLICT_RETRIES):
        try:
            result = handler(ctx, event)
            break
        except ConcurrencyError:
            continue
    else:
        raise ConcurrencyError(f"event {event.id}: release kept changing; Event Grid will redeliver")
    outcome = park(ctx, event, payload, result.seen) if isinstance(result, Park) else result
    log.info("%s %s (release %s): %s", event.type, event.id, event.release_id, outcome.value)
    if outcome is Outcome.HANDLED and event.release_id:
        replay_parked(ctx, event.release_id)
    return outcome


def park(ctx: Context, event: ev.DomainEvent, payload: dict[str, Any], seen: Release | None) -> Outcome:
    """Keep an early event. If the release moved while we parked, the handler that moved it
    may already have replayed the parked events, so replay them here too."""
    assert event.release_id, "only events that name a release are parked"
    ctx.ports.store.park(event.release_id, event.id, payload)
    current = ctx.ports.store.get(event.release_id)
    if current is not None and (seen is None or current.version != seen.version):
        replay_parked(ctx, event.release_id)
    return Outcome.PARKED


def replay_parked(ctx: Context, release_id: str) -> None:
    for payload in ctx.ports.store.take_parked(release_id):
        try:
            handle(ctx, ev.parse_event(payload), payload)
        except Exception:  # keep it for the next replay rather than lose it
            log.exception("release %s: replaying parked event %s failed", release_id, payload.get("id"))
            ctx.ports.store.park(release_id, str(payload.get("id")), payload)


def dead_letter(ctx: Context, function_name: str, payload: Any, reason: str) -> Outcome:
    event_id = str(payload.get("id")) if isinstance(payload, dict) and payload.get("id") else "(no id)"
    event_type = ""
    if isinstance(payload, dict):
        event_type = str(payload.get("eventType") or payload.get("type") or "")
    letter = DeadLetter(event_id, event_type, function_name, reason, ctx.clock().isoformat(), payload)
    ctx.ports.store.add_dead_letter(letter)
    log.warning("dead-lettered event %s for %s: %s", event_id, function_name, reason)
    return Outcome.DEAD_LETTERED
