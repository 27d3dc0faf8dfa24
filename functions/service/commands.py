"""What people ask for over HTTP: read releases, approve one, decline one.

"Decline" is the person's no (state ``declined``; the API's route is ``/reject``); "rejected" is
the gate's word for a candidate that was not better.
"""

from __future__ import annotations

from functions.domain import events as ev
from functions.domain.refs import DeadLetter
from functions.domain.release import Release, State
from functions.service.announce import announce, publish
from functions.service.context import Context
from functions.service.results import Conflict
from functions.service.steps import advance
from functions.service.unit_of_work import command, get


def get_release(ctx: Context, release_id: str) -> Release:
    return get(ctx, release_id)


def list_releases(ctx: Context, limit: int, states: list[str] | None = None) -> list[Release]:
    return ctx.ports.store.list(limit=limit, states=states or None)


def dead_letters(ctx: Context, limit: int) -> list[DeadLetter]:
    return ctx.ports.store.dead_letters(limit=limit)


def approve(ctx: Context, release_id: str, by: str, comment: str = "") -> Release:
    """Claim the promotion; run it here (local) or hand it to MLOps.ReleaseApproved (Azure)."""

    def claim(release: Release) -> None:
        promoting = [r.id for r in ctx.ports.store.list(states=[State.PROMOTING.value]) if r.id != release_id]
        if promoting:
            raise Conflict(f"release {promoting[0]} is being promoted to production; approve when it is done")
        release.approve(ctx.clock(), by, comment)

    release = command(ctx, release_id, claim)
    if ctx.promote_inline:
        advance(ctx, release)
        return get(ctx, release_id)
    # Through the outbox: a topic that is down is retried with backoff; should even that fail, the
    # claim stands and reconcile retries the promotion that never started.
    publish(ctx, "approved", release, ev.RELEASE_APPROVED, {"releaseId": release_id})
    return release


def decline(ctx: Context, release_id: str, by: str, comment: str) -> Release:
    release = command(ctx, release_id, lambda r: r.decline(ctx.clock(), by, comment))
    announce(ctx, release)
    return release
