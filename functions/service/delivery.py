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
from functions.domain.input_limits import event_problem
from functions.domain.refs import DeadLetter
from functions.domain.release import Release
from functions.ports import ConcurrencyError
from functions.service.context import Context
from functions.service.handlers import HANDLERS, Park
from functions.service.results import Outcome
from functions.service.subscriptions import FUNCTION_EVENT_TYPES, function_for
from functions.service.unit_of_work import CONFLICT_RETRIES

log = logging.getLogger("mlops.delivery")
FUNCTION_OF_PARKED = "parked"  # the function named in a dead letter of a parked event


def receive(ctx: Context, function_name: str, payload: Any) -> Outcome:
    """One delivered event; never raises for a bad event (it is dead-lettered)."""
    problem = event_problem(payload)  # before anything reads it: a lone surrogate cannot even be stored
    if problem:
        return dead_letter(ctx, function_name, payload, problem)
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
    try:
        ctx.ports.store.park(event.release_id, event.id, payload, ctx.clock().isoformat())
    except ValueError as exc:  # larger than the store can keep for later (Table Storage's entity limit)
        return dead_letter(
            ctx, FUNCTION_OF_PARKED, payload, f"came before its release was ready and cannot be parked: {exc}"
        )
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
            ctx.ports.store.park(release_id, str(payload.get("id")), payload, ctx.clock().isoformat())


def dead_letter(ctx: Context, function_name: str, payload: Any, reason: str) -> Outcome:
    """Record the event with the reason (an excerpt of it, its size and sha256) and acknowledge it."""
    at = ctx.clock().isoformat()
    letter = DeadLetter.of(ev.wire_id(payload), ev.wire_type(payload), function_name, reason, at, payload)
    ctx.ports.store.add_dead_letter(letter)
    log.warning("dead-lettered event %s for %s: %s", letter.event_id, function_name, letter.reason)
    return Outcome.DEAD_LETTERED


def expire_parked(ctx: Context) -> dict[str, int]:
    """Parked events older than ``Timeouts.parked_event`` become dead letters that say which release
    they waited for and how long, then leave the parked events. The dead letter is written first, so
    a crash in between leaves the event in both places (the next pass finds it recorded), never in neither."""
    now, ttl = ctx.clock(), ctx.timeouts.parked_event
    expired = 0
    for entry, payload in ctx.ports.store.parked_before((now - ttl).isoformat(), limit=100):
        release = ctx.ports.store.get(entry.release_id)
        where = "does not exist" if release is None else f"is {release.state.value}"
        reason = (
            f"parked at {entry.parked_at} for release {entry.release_id}, which {where}; it was not ready for "
            f"the event within {ttl.total_seconds() / 3600:g} h (MLOPS_PARKED_EVENT_TTL_HOURS)"
        )
        function = function_for(entry.event_type) or FUNCTION_OF_PARKED
        letter = DeadLetter.of(entry.event_id, entry.event_type, function, reason, now.isoformat(), payload)
        ctx.ports.store.add_dead_letter(letter)
        if ctx.ports.store.unpark(entry.release_id, entry.event_id):
            expired += 1
            log.warning("parked event %s of release %s expired into a dead letter", entry.event_id, entry.release_id)
    return {"parked_expired": expired}
