"""One release at a time: only the newest candidate awaits approval, only one release is live."""

from __future__ import annotations

from functions.domain.release import Release, State
from functions.ports import ConcurrencyError
from functions.service.context import Context
from functions.service.unit_of_work import get, update


def keep_newest(ctx: Context, release: Release) -> Release:
    """Only the newest release awaits approval: older ones are superseded, and so is this
    one when a newer release got there first (its events arrived earlier)."""
    for other in ctx.ports.store.list(limit=1000, states=[State.AWAITING_APPROVAL.value]):
        if other.id == release.id:
            continue
        if (other.created_at, other.id) < (release.created_at, release.id):
            supersede(ctx, other, State.AWAITING_APPROVAL, release.id)
        else:
            supersede(ctx, release, State.AWAITING_APPROVAL, other.id)
            return get(ctx, release.id)
    return release


def supersede_others(ctx: Context, release: Release, state: State) -> None:
    for other in ctx.ports.store.list(limit=1000, states=[state.value]):
        if other.id != release.id:
            supersede(ctx, other, state, release.id)


def supersede(ctx: Context, release: Release, state: State, by_release: str) -> None:
    try:
        update(ctx, release, state, lambda r: r.supersede(ctx.clock(), by_release))
    except ConcurrencyError:
        return
    if state == State.AWAITING_APPROVAL:
        ctx.ports.deployer.remove_staging(release.id)
