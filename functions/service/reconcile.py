"""The timer's look at every open release: expire approvals, re-check stuck steps, retry claims; and
the retraining schedule (MLOPS_RETRAIN_SCHEDULE), whose due occurrence it starts a release for.

Recovers what events alone cannot: a missed RunCompleted or ImagePushed (asks the platform), a
handler that died holding a claim (retries the step, then fails the release), an approval
nobody gave before its deadline. One broken release never stops the pass for the others.
A step whose claim names an instance the platform knows has ended (Ports.instances) is looked at
on the first pass, not after its timeout; the app runs a pass when it starts, so a host restarted
after a crash recovers its releases in seconds.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from functions.domain.release import AT_REST, Release, State
from functions.ports import ConcurrencyError
from functions.service import background
from functions.service.announce import announce
from functions.service.context import Context
from functions.service.delivery import expire_parked
from functions.service.handlers import start_release
from functions.service.results import Outcome
from functions.service.steps import advance, fail, read_data_checks
from functions.service.unit_of_work import claimed, get, update

log = logging.getLogger("mlops.reconcile")

CLAIMED_STATES = (State.QUEUED, State.REGISTERING, State.DEPLOYING_STAGING, State.PROMOTING)


def timer_pass(ctx: Context) -> dict[str, int]:
    """What the timer runs: reconcile the open releases, then the background work that is due.

    Each part is guarded on its own: a reconcile that breaks must not stop the outbox, and the reverse.
    """
    counts: dict[str, int] = {}
    for part in (start_scheduled, reconcile, expire_parked, background.run_due):
        try:
            counts |= part(ctx)
        except Exception:
            log.exception("timer: %s failed; the next pass tries again", part.__name__)
            counts["errors"] = counts.get("errors", 0) + 1
    return counts


def start_scheduled(ctx: Context) -> dict[str, int]:
    """Start the release of the schedule's due occurrence, once: its id comes from the occurrence, so a
    second pass (or a second instance) finds it created and counts a duplicate."""
    if not ctx.retrain_schedule:
        return {}
    from functions.domain import schedule  # croniter: imported only by apps that set a schedule

    occurrence = schedule.due_occurrence(ctx.retrain_schedule, ctx.clock())
    if occurrence is None:
        return {"scheduled": 0}
    outcome = start_release(
        ctx,
        schedule.release_id_for_occurrence(occurrence),
        schedule.occurrence_key(occurrence),
        schedule.schedule_trigger(ctx.retrain_schedule, occurrence),
        {},
    )
    if outcome == Outcome.HANDLED:
        log.info("schedule %s: started the release of %s", ctx.retrain_schedule, occurrence.isoformat())
    return {"scheduled": int(outcome == Outcome.HANDLED)}


def reconcile(ctx: Context) -> dict[str, int]:
    counts = {"expired": 0, "rechecked": 0, "retried": 0, "failed": 0, "errors": 0}
    now = ctx.clock()
    open_states = [s.value for s in State if s not in AT_REST] + [State.AWAITING_APPROVAL.value]
    for release in ctx.ports.store.list(limit=1000, states=open_states):
        try:
            counts_key = _reconcile_one(ctx, release, now)
        except ConcurrencyError:
            continue  # someone else is working on it right now
        except Exception:
            log.exception("reconcile: release %s", release.id)
            counts_key = "errors"
        if counts_key:
            counts[counts_key] += 1
    return counts


def _reconcile_one(ctx: Context, release: Release, now: datetime) -> str | None:
    age, t = release.step_age(now), ctx.timeouts
    if release.state == State.AWAITING_APPROVAL:
        return _expire_if_due(ctx, release, now)
    # A step whose holder is known to be gone (a host killed mid-step) is looked at now, not after its
    # timeout: nobody else will finish it.
    orphaned = holder_gone(ctx, release)
    if release.state == State.TRAINING and (orphaned or age >= t.training_check):
        return _recheck_training(ctx, release, now, age)
    if release.state == State.PACKAGING and (orphaned or age >= t.packaging_check):
        return _recheck_packaging(ctx, release, now, age)
    if release.state in CLAIMED_STATES and release.operation:
        return None  # the follow timer has it: an operation past its deadline is a step error there
    if release.state in CLAIMED_STATES and (orphaned or age >= t.claimed_step):
        if release.step_attempts >= t.max_step_attempts:
            fail(ctx, release, f"step {release.state.value} did not finish after {release.step_attempts} attempts")
            return "failed"
        release.retry_step(now)
        ctx.ports.store.save(claimed(ctx, release))  # the claim; a concurrent pass gets ConcurrencyError and skips
        advance(ctx, release)
        return "retried"
    return None


def holder_gone(ctx: Context, release: Release) -> bool:
    """Whether the instance that last claimed ``release``'s step is known to have ended (not this one)."""
    holder = str((release.claimed_by or {}).get("instance") or "")
    instances = ctx.ports.instances
    return bool(holder) and holder != instances.current() and instances.alive(holder) is False


def _expire_if_due(ctx: Context, release: Release, now: datetime) -> str | None:
    deadline = datetime.fromisoformat((release.approval or {}).get("deadline") or release.step_started_at)
    if now < deadline:
        return None
    announce(ctx, update(ctx, release, State.AWAITING_APPROVAL, lambda r: r.expire(now)))
    return "expired"


def _recheck_training(ctx: Context, release: Release, now: datetime, age: timedelta) -> str:
    status = ctx.ports.training.status(release.job_name)
    if status.state == "completed":
        update(ctx, release, State.TRAINING, lambda r: r.evaluation_started(now))
        advance(ctx, get(ctx, release.id))
        return "rechecked"
    if status.state in ("failed", "canceled", "unknown") or age >= ctx.timeouts.training_max:
        detail = status.detail or f"job {status.state} after {age}"
        checks = read_data_checks(ctx, release)
        url = status.portal_url
        failed = update(ctx, release, State.TRAINING, lambda r: r.training_failed(now, detail, url, checks))
        announce(ctx, failed)
        return "failed"
    return "rechecked"


def _recheck_packaging(ctx: Context, release: Release, now: datetime, age: timedelta) -> str:
    image = release.image or {}
    found = ctx.ports.images.lookup(image.get("repository", ""), image.get("tag", ""))
    if found is not None:
        update(ctx, release, State.PACKAGING, lambda r: r.image_pushed(now, found.repository, found.tag, found.digest))
        advance(ctx, get(ctx, release.id))
        return "rechecked"
    if age >= ctx.timeouts.packaging_max:
        fail(ctx, release, f"image {image.get('repository')}:{image.get('tag')} never arrived")
        return "failed"
    return "rechecked"
