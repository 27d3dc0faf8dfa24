"""Background work: one outbox in the release store, carried out by the timer.

Anything that should not hold up (or fail) the invocation that wants it is a WorkItem: a kind that
names its handler in WORK_HANDLERS, a payload, and a due time. The timer's pass (`run_due`) claims
due items one at a time (compare-and-set, so two hosts never run the same item while its lease
lasts), runs them, and removes them (compare-and-set again: a worker whose lease ran out leaves the
item to its new holder); a failed item waits with exponential backoff and is dead-lettered after
Timeouts.max_work_attempts. Cheap work can be tried once at once (`run_now=True`): the item is
written first and claimed under a lease, so a host that dies mid-attempt leaves it for the timer.

Delivery is at least once: a send that succeeded but whose finish was lost is sent again. Events
keep one id across retries (derived from the work key) so subscribers can drop the repeat.

Not covered: a host that dies between saving a release and adding its work item (two writes, no
transaction across them) loses that item; the state change itself is kept.

Kinds: notifications, events to publish, and putting production's traffic back after a failed
promotion (begun and looked at once per attempt, never waited for).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from functions.domain.notifications import Kind, Notification
from functions.domain.refs import DeadLetter, WorkItem
from functions.service.context import Context
from functions.service.unit_of_work import command

log = logging.getLogger("mlops.background")

KINDS = frozenset(kind.value for kind in Kind)
BACKGROUND_FUNCTION = "background"  # the dead-letter record's "function" for work that never succeeded
MAX_ERROR_CHARS = 500


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def event_id_for(item: WorkItem) -> str:
    """The same event id on every attempt of one work item (a UUID, as Event Grid's ids are)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"mlops-outbox:{item.key}"))


class _Dropped:
    """A handler's answer for work that is moot now: finished, and not reported as delivered."""


DROPPED = _Dropped()


def _notify(ctx: Context, item: WorkItem) -> _Dropped | None:
    wanted = item.payload.get("only_while")
    if wanted:  # e.g. "approve with ..." is moot once the release is no longer awaiting approval
        release = ctx.ports.store.get(item.release_id)
        if release is None or release.state.value != wanted:
            log.info("background %s: release %s moved on; message dropped", item.key, item.release_id)
            return DROPPED
    document = item.payload.get("notification")
    if not isinstance(document, dict):
        _send_legacy(ctx, item)
        return None
    ctx.ports.notifier.send(str(item.payload["target"]), Notification.from_json(document))
    return None


def _send_legacy(ctx: Context, item: WorkItem) -> None:
    """An item queued before notifications had targets (subject and body only): told to every target
    as it is, so an upgrade loses no message (a retry may repeat it to the targets that took it)."""
    subject, body = str(item.payload.get("subject") or item.release_id), str(item.payload.get("body") or "")
    release = ctx.ports.store.get(item.release_id)
    state = release.state.value if release is not None else ""
    kind = "approval_requested" if item.payload.get("only_while") == "awaiting_approval" else (state or "failed")
    note = Notification(kind if kind in KINDS else "failed", item.release_id, state, subject, body,
                        ctx.links.page(item.release_id), _iso(ctx.clock()))  # fmt: skip
    for target in ctx.ports.notifier.targets():
        ctx.ports.notifier.send(target, note)


def _notify_outcome(ctx: Context, item: WorkItem, error: str | None, final: bool) -> None:
    """The release's timeline says when a target fails (its first failure, and when it is given up on)
    and when it recovers, so a dead Teams channel is visible where people look, and bounded."""
    target = item.payload.get("target", "?")
    if error is None:
        if item.attempts <= 1:
            return
        step, detail = "notification_delivered", f"notification to {target} delivered on attempt {item.attempts}"
    elif final:
        step = "notification_failed"
        detail = f"notification to {target} given up after {item.attempts} attempts (dead letter {item.key}): {error}"
    elif item.attempts == 1:
        wait = backoff_after(ctx, item.attempts)
        step, detail = "notification_failed", f"notification to {target} failed: {error}; retrying in {wait}"
    else:
        return
    try:
        command(ctx, item.release_id, lambda release: release.note(ctx.clock(), step, detail))
    except Exception:  # the timeline note is for people; the outbox must carry on without it
        log.exception("background %s: could not note %s on release %s", item.key, step, item.release_id)


def _publish(ctx: Context, item: WorkItem) -> None:
    payload = item.payload
    ctx.ports.publisher.publish(
        str(payload["event_type"]), str(payload["subject"]), dict(payload["data"]), event_id=event_id_for(item)
    )


class NotYet(Exception):
    """The work was begun but is not done: look again after the backoff (it counts as an attempt)."""


def _restore_traffic(ctx: Context, item: WorkItem) -> None:
    """Put production's traffic back to what served before a failed promotion: begin the change (again,
    if it did not take: e.g. the endpoint was busy with the failed one), look once, and come back later
    until production routes that way. A failed release has no follower, so the outbox is its retry."""
    wanted = {str(key): int(share) for key, share in dict(item.payload["traffic"]).items() if share}
    # Begun even when the weights look right already: it also ends a mirror (a shadow step's). The
    # adapters answer a change that is in place at once.
    progress = ctx.ports.deployer.follow(ctx.ports.deployer.begin_traffic(dict(item.payload["traffic"])))
    if progress.state != "succeeded":
        raise NotYet(f"production traffic not back to {wanted} yet: {progress.state}: {progress.detail}"[:300])
    for key in item.payload.get("remove") or []:
        if key not in wanted:
            ctx.ports.deployer.remove(str(key))


def _retire_deployments(ctx: Context, item: WorkItem) -> None:
    """The deployments that served before a release went live were kept warm for an instant rollback
    (RolloutPolicy.keep_previous_s); now they go, unless they serve again or a promotion is using one."""
    for key in item.payload.get("remove") or []:
        # Looked at again for each: a rollback to it may have begun meanwhile (it reuses a warm one).
        promoting = {r.deployment_key for r in ctx.ports.store.list(states=["promoting"])}
        if key in ctx.ports.deployer.traffic() or key in promoting:
            log.info("background %s: %s serves again or is being promoted: kept", item.key, key)
            continue
        ctx.ports.deployer.remove(str(key))


def _restore_outcome(ctx: Context, item: WorkItem, error: str | None, final: bool) -> None:
    """The release that failed says when production is back, or that it could not be put back."""
    wanted = ", ".join(f"{key} {share}%" for key, share in dict(item.payload["traffic"]).items())
    if error is None:
        step, detail = "production_restored", f"production traffic back to {wanted}"
    elif final:
        step = "production_restore_failed"
        detail = f"production traffic could not be put back to {wanted} after {item.attempts} attempts: {error}"
    else:
        return
    try:
        command(ctx, item.release_id, lambda release: release.note(ctx.clock(), step, detail))
    except Exception:  # the note is for people; the outbox carries on without it
        log.exception("background %s: could not note %s on release %s", item.key, step, item.release_id)


def _close_data_window(ctx: Context, item: WorkItem) -> _Dropped | None:
    from functions.service import new_data  # it starts training (steps), which queues work here

    return None if new_data.close_window(ctx, item) else DROPPED


WorkHandler = Callable[[Context, WorkItem], "_Dropped | None"]
WORK_HANDLERS: dict[str, WorkHandler] = {
    "notify": _notify,
    "publish": _publish,
    "restore_traffic": _restore_traffic,
    "retire_deployments": _retire_deployments,
    "close_data_window": _close_data_window,
}
# Told of each attempt's outcome (error None: it worked; final: given up), for kinds people should see.
OutcomeHook = Callable[[Context, WorkItem, "str | None", bool], None]
OUTCOME_HOOKS: dict[str, OutcomeHook] = {"notify": _notify_outcome, "restore_traffic": _restore_outcome}


def enqueue(
    ctx: Context,
    kind: str,
    release_id: str,
    key: str,
    payload: dict[str, Any],
    *,
    run_now: bool = False,
    due_in: timedelta = timedelta(0),
) -> bool:
    """Add work unless its ``key`` is pending (False then); with ``run_now`` claim it and try it here too;
    ``due_in``: not before then (the timer's pass takes it once due)."""
    if kind not in WORK_HANDLERS:
        raise ValueError(f"no background handler for {kind!r}")
    now = ctx.clock()
    item = WorkItem(key, kind, release_id, payload, _iso(now + due_in))
    if not ctx.ports.store.add_work(item):
        log.info("background %s is pending already; not added again", key)
        return False
    if run_now:
        # A new item is stored at version 1 (the port's contract); None: another host's timer got it first.
        claimed = ctx.ports.store.claim_work(replace(item, version=1), _iso(now + ctx.timeouts.work_lease))
        if claimed is not None:
            _attempt(ctx, claimed)
    return True


def run_due(ctx: Context, limit: int = 100) -> dict[str, int]:
    """The timer's pass over due work: counts of items done, put back for a retry, and given up.

    A pass stops taking items after Timeouts.work_pass_budget (the rest stay due for the next pass),
    so a target that answers slowly cannot hold the timer and the reconcile after it."""
    counts = {"work_done": 0, "work_retried": 0, "work_failed": 0}
    started = ctx.clock()
    for due in ctx.ports.store.due_work(_iso(started), limit):
        if ctx.clock() - started >= ctx.timeouts.work_pass_budget:
            log.warning("background: pass budget %s spent; the remaining due work waits", ctx.timeouts.work_pass_budget)
            break
        # The lease starts at each claim: items late in a slow pass must not start out expired.
        claimed = ctx.ports.store.claim_work(due, _iso(ctx.clock() + ctx.timeouts.work_lease))
        if claimed is None:
            continue  # another host took it
        counts[_attempt(ctx, claimed)] += 1
    return counts


def _attempt(ctx: Context, item: WorkItem) -> str:
    handler = WORK_HANDLERS.get(item.kind)
    try:
        if handler is None:
            raise LookupError(f"no background handler for {item.kind!r}")
        result = handler(ctx, item)
    except Exception as exc:  # a failing target must never fail the release that wanted the work
        error = f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS]
        log.warning("background %s %s attempt %d failed: %s", item.kind, item.key, item.attempts, error)
        if item.attempts >= ctx.timeouts.max_work_attempts:
            outcome = _give_up(ctx, item, error)
            if outcome == "work_failed":
                _tell_outcome(ctx, item, error, final=True)
            return outcome
        ctx.ports.store.retry_work(item, _iso(ctx.clock() + backoff_after(ctx, item.attempts)), error)
        _tell_outcome(ctx, item, error, final=False)
        return "work_retried"
    if ctx.ports.store.finish_work(item) and result is not DROPPED:
        _tell_outcome(ctx, item, None, final=False)
    return "work_done"


def _tell_outcome(ctx: Context, item: WorkItem, error: str | None, final: bool) -> None:
    hook = OUTCOME_HOOKS.get(item.kind)
    if hook is not None:
        hook(ctx, item, error, final)


def _give_up(ctx: Context, item: WorkItem, error: str) -> str:
    if not ctx.ports.store.finish_work(item):
        return "work_retried"  # our lease ran out and another worker holds it now: its outcome counts
    reason = f"{item.kind} failed {item.attempts} times; last error: {error}"
    letter = DeadLetter.of(item.key, item.kind, BACKGROUND_FUNCTION, reason, _iso(ctx.clock()), item.payload)
    ctx.ports.store.add_dead_letter(letter)
    return "work_failed"


def backoff_after(ctx: Context, attempts: int) -> timedelta:
    """How long an item that failed ``attempts`` times waits before the next try."""
    return min(ctx.timeouts.work_backoff * (2 ** max(attempts - 1, 0)), ctx.timeouts.work_backoff_max)
