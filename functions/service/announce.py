"""Telling the world about a release: MLOps.ReleaseStateChanged for systems, a notification for people.

Both go through the background outbox (tried at once, retried by the timer), so a publisher or
notification target that is down never fails the release; each target gets its own work item, so
one that is down neither blocks nor repeats the others. A release that is over gives back its
staging endpoint. The release is saved before anything is announced: an outbox that cannot be
written is logged and the state change stands.
"""

from __future__ import annotations

import logging
from typing import Any

from functions.domain import events as ev
from functions.domain.notifications import Fact, Kind, kind_for, notification_for
from functions.domain.release import Release, State
from functions.service import background
from functions.service.context import Context

log = logging.getLogger("mlops.announce")


def announce(ctx: Context, release: Release) -> None:
    if release.is_final:
        try:
            ctx.ports.deployer.remove_staging(release.id)
        except Exception:
            log.exception("release %s: could not remove its staging endpoint", release.id)
    data = {"releaseId": release.id, "state": release.state.value, "error": release.error}
    publish(ctx, "state", release, ev.RELEASE_STATE_CHANGED, data)
    kind = kind_for(release)  # the states people hear about (approval requests come from the staging step)
    if kind is not None:
        tell(ctx, "state", release, kind)


def publish(ctx: Context, purpose: str, release: Release, event_type: str, data: dict[str, Any]) -> None:
    """An event about ``release`` to the topic, once per purpose and saved version."""
    message = {"event_type": event_type, "subject": f"releases/{release.id}", "data": data}
    _enqueue(ctx, "publish", purpose, release, message)


def tell(ctx: Context, purpose: str, release: Release, kind: Kind, only_while: State | None = None) -> None:
    """A notification of ``kind`` about ``release`` as it is now, one work item per target; ``only_while``:
    drop it once the release has left that state (a retried approval request after the release moved on)."""
    extra: tuple[Fact, ...] = ()
    if kind == Kind.APPROVAL_REQUESTED:
        extra = (Fact("From a terminal", ctx.links.approve_command(release.id)),)
    required = ctx.approval_policy.required_approvals
    note = notification_for(release, kind, ctx.links.page(release.id), required_approvals=required, extra_facts=extra)
    document = note.to_json()
    try:
        targets = ctx.ports.notifier.targets()
    except Exception:  # a notifier that cannot even list its targets must not fail the release
        log.exception("release %s: could not list the notification targets", release.id)
        return
    for target in targets:
        message: dict[str, Any] = {"target": target, "notification": document}
        if only_while is not None:
            message["only_while"] = only_while.value
        inline = ctx.ports.notifier.sends_inline(target)
        _enqueue(ctx, "notify", f"{purpose}:{target}", release, message, run_now=inline)


def _enqueue(
    ctx: Context, kind: str, purpose: str, release: Release, payload: dict[str, Any], *, run_now: bool = True
) -> None:
    # One key per purpose and saved version: a redelivered event that changes nothing adds nothing,
    # and two messages about one version never shadow each other.
    key = f"{kind}:{purpose}:{release.id}:v{release.version}"
    try:
        background.enqueue(ctx, kind, release.id, key, payload, run_now=run_now)
    except Exception:  # the release is saved; its announcement must not turn into a failed delivery
        log.exception("release %s: could not queue %s %s", release.id, kind, key)
