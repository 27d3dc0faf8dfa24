"""`mlops migrate build-systems`: record which CI system made the releases created before release ids named one.

Those releases have ids ``rel-<build id>`` and no ``trigger.buildSystem``. At run time such a release
still answers for a build of that id from *any* system (functions/service/handlers.build_release_id),
so a second system's build of the same number would be taken for it and dropped as stale. Stamping the
system they came from ends that: a build of another system then gets its own ``rel-<system>-<id>``.
Ids are never rewritten (links, image tags, deployments and the registry's lineage tags carry them).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from functions.domain.ids import build_system_problem, legacy_release_id
from functions.domain.release import Release
from functions.ports import Clock, ConcurrencyError, ReleaseStore
from functions.service.results import NotFound
from functions.service.unit_of_work import change

STEP = "build system recorded"
# Releases a store can hold; the listing is one pass, newest first.
ALL_RELEASES = 10_000_000


@dataclass(frozen=True)
class Stamp:
    release_id: str
    build_id: str
    # stamped, would stamp, already recorded, busy (run again), not found, not a legacy build release
    outcome: str


def legacy_build_releases(releases: Iterable[Release]) -> list[Release]:
    """Releases of a build whose id is the legacy ``rel-<build id>`` and which name no build system."""
    return [
        release
        for release in releases
        if release.trigger.get("kind") == "build"
        and not release.trigger.get("buildSystem")
        and release.id == legacy_release_id(str(release.trigger.get("buildId") or ""))
    ]


def stamp_build_systems(
    store: ReleaseStore,
    system: str,
    now: Clock,
    *,
    only: Iterable[str] = (),
    dry_run: bool = False,
) -> list[Stamp]:
    """Set ``trigger.buildSystem = system`` on the legacy build releases (or only those named); idempotent."""
    problem = build_system_problem(system)
    if problem:
        raise ValueError(problem)
    named = list(dict.fromkeys(only))
    if named:
        found = {r.id: r for r in (store.get(release_id) for release_id in named) if r is not None}
        candidates = {r.id: r for r in legacy_build_releases(found.values())}
        stamps = [Stamp(i, "", "not found") for i in named if i not in found]
        stamps += [Stamp(i, "", "not a legacy build release") for i in named if i in found and i not in candidates]
        releases = [candidates[i] for i in named if i in candidates]
    else:
        stamps, releases = [], legacy_build_releases(store.list(limit=ALL_RELEASES))
    for release in releases:
        build_id = str(release.trigger.get("buildId"))
        if dry_run:
            stamps.append(Stamp(release.id, build_id, "would stamp"))
            continue
        stamps.append(Stamp(release.id, build_id, _stamp(store, release.id, system, now)))
    return stamps


class _AlreadyRecorded(Exception):
    """Another run recorded a build system meanwhile."""


def _stamp(store: ReleaseStore, release_id: str, system: str, now: Clock) -> str:
    def stamp(release: Release) -> None:
        if release.trigger.get("buildSystem"):
            raise _AlreadyRecorded
        release.trigger["buildSystem"] = system
        detail = f"build {release.trigger.get('buildId')} came from {system} (mlops migrate build-systems)"
        release.note(now(), STEP, detail)

    try:
        change(store, release_id, stamp)  # the store's version check; a release the app moved is read again
    except _AlreadyRecorded:
        return "already recorded"
    except NotFound:
        return "not found"
    except ConcurrencyError:
        return "busy (run again)"
    return "stamped"
