"""One handler per event type: HANDLERS maps the wire's event type to the function that acts on it.

A handler loads the event's release, decides, and either acts (saving a claim first, then
running the claimed step), records the event as a duplicate or stale, or asks the delivery to
park it (returns Park) until the release is ready for it. Handlers never raise for a late,
repeated or unexpected event; delivery (functions.service.delivery) retries a lost race.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from functions.domain import events as ev
from functions.domain.ids import legacy_release_id, release_id
from functions.domain.release import Release, State
from functions.service.announce import announce
from functions.service.context import Context
from functions.service.new_data import on_blob_created
from functions.service.results import Outcome
from functions.service.steps import advance, read_data_checks
from functions.service.unit_of_work import claimed, get, note

log = logging.getLogger("mlops.handlers")


@dataclass(frozen=True)
class Park:
    """Keep the event until its release catches up; ``seen`` is the release as the handler found it."""

    seen: Release | None


Result = Outcome | Park


# The CI hooks build their events in-process from an authenticated delivery: who they say started the
# build is what Azure DevOps / GitHub said. The custom topic takes whatever a pipeline publishes, and so
# does the generic hook (the CI job's own script names the requester), unless the app is told to trust it.
VERIFIED_REQUESTER_SOURCES = frozenset({"hooks/azure-devops", "hooks/github"})
GENERIC_HOOK_SOURCE = "hooks/generic"


def on_build(ctx: Context, event: ev.BuildCompleted) -> Result:
    if not event.succeeded:
        log.info("build %s result %s: no release", event.build_id, event.result)
        return Outcome.IGNORED
    trigger = event.trigger()
    verified = event.source in VERIFIED_REQUESTER_SOURCES or (
        event.source == GENERIC_HOOK_SOURCE and ctx.trust_generic_requester
    )
    if not (ctx.trust_published_requester or verified):
        trigger["requesterVerified"] = False  # kept for people to read, never compared (approval policy)
    return start_release(ctx, build_release_id(ctx, event), event.id, trigger, dict(event.parameters))


def build_release_id(ctx: Context, event: ev.BuildCompleted) -> str:
    """The build's release: ``rel-<system>-<build>``, or the release this build got before build systems
    were recorded (``rel-<build>``), when one exists for the same build and its system is that one or
    was never recorded (docs/decisions.md: release identity per CI system, migration)."""
    legacy_id = legacy_release_id(event.build_id)
    legacy = ctx.ports.store.get(legacy_id)
    if legacy is not None and is_release_of(legacy, event):
        return legacy_id
    return event.release_id


def is_release_of(release: Release, event: ev.BuildCompleted) -> bool:
    trigger = release.trigger
    if trigger.get("kind") != "build" or str(trigger.get("buildId")) != event.build_id:
        return False
    return trigger.get("buildSystem", event.system) == event.system


def on_drift(ctx: Context, event: ev.DriftDetected) -> Result:
    trigger = {"kind": "drift", "reason": f"{event.drift_name} drift {event.drift_coefficient:.3f}"}
    return start_release(ctx, release_id("drift", event.id), event.id, trigger, {})


def on_release_approved(ctx: Context, event: ev.ReleaseApproved) -> Result:
    release = _load_for(ctx, event)
    if not isinstance(release, Release):
        return release
    if release.state != State.PROMOTING:
        why = f"approval of {release.id} arrived while the release is {release.state.value}"
        return note(ctx, release, "stale_event", why, Outcome.STALE, event.id)
    if release.operation is not None:  # a late or retried hand-over: the promotion is under way already
        why = f"approval of {release.id} arrived while {release.operation.get('what')} is in flight"
        return note(ctx, release, "stale_event", why, Outcome.STALE, event.id)
    release.mark_handled(event.id)
    release.note(ctx.clock(), "promotion_started", "deploying beside production, to be tested before any traffic")
    ctx.ports.store.save(release)  # a redelivery of the same event is now a duplicate
    advance(ctx, release)
    return Outcome.HANDLED


def on_run_finished(ctx: Context, event: ev.RunFinished) -> Result:
    if not (event.succeeded or event.failed):
        return Outcome.IGNORED  # Running, Queued...: nothing to decide yet
    release = _load_for(ctx, event)
    if not isinstance(release, Release):
        return release
    if release.state == State.QUEUED:
        return Park(release)
    if release.state != State.TRAINING or event.run_id != release.job_name:
        why = f"run {event.run_id} {event.status} while the release is {release.state.value}"
        return note(ctx, release, "stale_event", why, Outcome.STALE, event.id)
    release.mark_handled(event.id)
    if event.failed:
        detail = str(event.properties.get("error") or event.properties.get("failed_step") or event.status)
        portal_url = ctx.ports.training.status(event.run_id).portal_url
        release.training_failed(ctx.clock(), detail, portal_url, read_data_checks(ctx, release))
        ctx.ports.store.save(release)
        announce(ctx, release)
        return Outcome.HANDLED
    release.evaluation_started(ctx.clock())
    ctx.ports.store.save(claimed(ctx, release))  # the claim: only one handler gets past this line
    advance(ctx, release)
    return Outcome.HANDLED


def on_model_registered(ctx: Context, event: ev.ModelRegistered) -> Result:
    release = ctx.ports.store.get(event.release_id) if event.release_id else None
    if release is None:
        return Outcome.IGNORED  # a model registered outside a release
    if release.has_handled(event.id):
        return note(ctx, release, "duplicate_event", f"event {event.id} delivered again", Outcome.DUPLICATE)
    release.mark_handled(event.id)
    detail = f"registry confirmed {event.model_name}:{event.model_version}"
    return note(ctx, release, "model_registered", detail, Outcome.HANDLED)


def on_image_pushed(ctx: Context, event: ev.ImageEvent) -> Result:
    release = _load_for(ctx, event)
    if not isinstance(release, Release):
        return release
    if release.state in (State.QUEUED, State.TRAINING, State.REGISTERING):
        return Park(release)
    expected_tag = (release.image or {}).get("tag")
    if release.state != State.PACKAGING or event.tag != expected_tag:
        why = f"image {event.repository}:{event.tag} pushed while the release is {release.state.value}"
        return note(ctx, release, "stale_event", why, Outcome.STALE, event.id)
    release.mark_handled(event.id)
    release.image_pushed(ctx.clock(), event.repository, event.tag, event.digest)
    ctx.ports.store.save(claimed(ctx, release))  # claim the staging step
    advance(ctx, release)
    return Outcome.HANDLED


def on_image_deleted(ctx: Context, event: ev.ImageEvent) -> Result:
    """ACR sends ImageDeleted without a tag (target: mediaType, digest, repository), so the release
    is the one whose pushed image has that digest; locally the tag may name it directly."""
    release = _release_of_image(ctx, event)
    if release is None:
        return Outcome.IGNORED
    if release.has_handled(event.id):
        return note(ctx, release, "duplicate_event", f"event {event.id} delivered again", Outcome.DUPLICATE)
    release.mark_handled(event.id)
    what = f"{event.repository}@{event.digest}" if event.digest else f"{event.repository}:{event.tag}"
    if _is_its_image(release, event) and release.state == State.AWAITING_APPROVAL:
        release.fail(ctx.clock(), f"image {what} was deleted before approval")
        ctx.ports.store.save(release)
        announce(ctx, release)
        return Outcome.HANDLED
    return note(ctx, release, "image_deleted", what, Outcome.HANDLED)


# Releases whose pushed image an ImageDeleted can concern (the digest is recorded from ImagePushed).
_WITH_AN_IMAGE = [s.value for s in (State.DEPLOYING_STAGING, State.AWAITING_APPROVAL, State.PROMOTING, State.LIVE)]


def _is_its_image(release: Release, event: ev.ImageEvent) -> bool:
    image = release.image or {}
    if image.get("repository") != event.repository:
        return False
    if event.digest:
        return image.get("digest") == event.digest
    return bool(event.tag) and image.get("tag") == event.tag


def _release_of_image(ctx: Context, event: ev.ImageEvent) -> Release | None:
    if event.release_id:  # a tag that carries the release id
        return ctx.ports.store.get(event.release_id)
    if not event.digest:
        return None
    candidates = ctx.ports.store.list(limit=1000, states=_WITH_AN_IMAGE)
    return next((r for r in candidates if _is_its_image(r, event)), None)


# Each handler takes its own event class (the parser for that type builds it).
Handler = Callable[[Context, Any], Result]
HANDLERS: dict[str, Handler] = {
    ev.BUILD_COMPLETED: on_build,
    ev.RELEASE_APPROVED: on_release_approved,
    ev.DATASET_DRIFT_DETECTED: on_drift,
    ev.RUN_COMPLETED: on_run_finished,
    ev.RUN_STATUS_CHANGED: on_run_finished,
    ev.MODEL_REGISTERED: on_model_registered,
    ev.IMAGE_PUSHED: on_image_pushed,
    ev.IMAGE_DELETED: on_image_deleted,
    ev.BLOB_CREATED: on_blob_created,
}


def start_release(
    ctx: Context, release_id: str, event_id: str, trigger: dict[str, Any], params: dict[str, Any]
) -> Result:
    """Create the release and begin it; the same ``release_id`` again is a duplicate (same event) or stale."""
    release = Release.create(release_id, trigger, params, ctx.clock())
    release.mark_handled(event_id)
    if not ctx.ports.store.create(claimed(ctx, release)):
        existing = get(ctx, release_id)
        if existing.has_handled(event_id):
            return note(ctx, existing, "duplicate_event", f"event {event_id} delivered again", Outcome.DUPLICATE)
        why = f"build event {event_id} for an existing release"
        return note(ctx, existing, "stale_event", why, Outcome.STALE, event_id)
    advance(ctx, release)
    return Outcome.HANDLED


def _load_for(ctx: Context, event: ev.DomainEvent) -> Release | Result:
    """The event's release, or the result when there is nothing to act on."""
    release_id = event.release_id
    if not release_id:
        return Outcome.IGNORED  # not started by this orchestrator (no release tag)
    release = ctx.ports.store.get(release_id)
    if release is None:
        return Park(None)
    if release.has_handled(event.id):
        return note(ctx, release, "duplicate_event", f"event {event.id} delivered again", Outcome.DUPLICATE)
    return release
