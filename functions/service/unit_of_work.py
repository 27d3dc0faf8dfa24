"""Load, mutate, save: every change to a release goes through here, under the store's version check.

A save that loses a race (ConcurrencyError) reloads and applies the change again, so concurrent
notes never get lost and two actors never both win a claim.
"""

from __future__ import annotations

from collections.abc import Callable

from functions.domain.release import InvalidTransition, Release, State
from functions.ports import ConcurrencyError, ReleaseStore
from functions.service.context import Context
from functions.service.results import Conflict, NotFound, Outcome

CONFLICT_RETRIES = 8


def claimed(ctx: Context, release: Release) -> Release:
    """Before a save: a transition that moved the claim records this instance as its holder."""
    release.stamp_claim(ctx.ports.instances.current(), ctx.clock())
    return release


def get(ctx: Context, release_id: str) -> Release:
    release = ctx.ports.store.get(release_id)
    if release is None:
        raise NotFound(f"no release {release_id}")
    return release


def update(ctx: Context, release: Release, expected: State, mutate: Callable[[Release], None]) -> Release:
    """Apply a transition to a copy and save it; on a concurrent note, reload and apply it again.

    Raises ConcurrencyError when the release left ``expected`` meanwhile (someone else moved it).
    """
    current = Release.from_json(release.to_json())
    for _ in range(CONFLICT_RETRIES):
        if current.state != expected:
            raise ConcurrencyError(f"release {release.id} moved to {current.state.value}")
        mutate(current)
        try:
            ctx.ports.store.save(claimed(ctx, current))
            return current
        except ConcurrencyError:
            current = get(ctx, release.id)
    raise ConcurrencyError(f"release {release.id} kept changing")


def change(store: ReleaseStore, release_id: str, mutate: Callable[[Release], None]) -> Release:
    """Load, mutate, save; a lost race loads the release again and applies ``mutate`` again."""
    for _ in range(CONFLICT_RETRIES):
        release = store.get(release_id)
        if release is None:
            raise NotFound(f"no release {release_id}")
        mutate(release)
        try:
            store.save(release)
            return release
        except ConcurrencyError:
            continue
    raise ConcurrencyError(f"release {release_id} kept changing; try again")


def command(ctx: Context, release_id: str, mutate: Callable[[Release], None]) -> Release:
    """A person's request: a transition the release's state does not allow is a Conflict (HTTP 409)."""

    def checked(release: Release) -> None:
        try:
            mutate(release)
        except InvalidTransition as exc:
            raise Conflict(str(exc)) from None
        claimed(ctx, release)  # an approval that claims the promotion names this instance

    return change(ctx.ports.store, release_id, checked)


def note(ctx: Context, release: Release, step: str, detail: str, outcome: Outcome, event_id: str = "") -> Outcome:
    """Record without acting; an event id given is marked handled, so a redelivery is a plain duplicate."""
    if event_id:
        release.mark_handled(event_id)
    release.note(ctx.clock(), step, detail)
    ctx.ports.store.save(release)
    return outcome
