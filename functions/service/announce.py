"""Telling the world about a release: MLOps.ReleaseStateChanged for systems, a notification for people.

Both go through the background outbox (tried at once, retried by the timer), so a publisher or
notifier that is down never fails the release; a release that is over gives back its staging
endpoint. The release is saved before anything is announced: an outbox that cannot be written is
logged and the state change stands.
"""

from __future__ import annotations

import logging
from typing import Any

from functions.domain import events as ev
from functions.domain.release import Release, State
from functions.service import background
from functions.service.context import Context

log = logging.getLogger("mlops.announce")

# The states a person hears about (awaiting approval is told by the staging step, with its link).
NOTIFIED_STATES = frozenset({State.REJECTED, State.FAILED, State.ROLLED_BACK, State.LIVE, State.EXPIRED})


def announce(ctx: Context, release: Release) -> None:
    if release.is_final:
        try:
            ctx.ports.deployer.remove_staging(release.id)
        except Exception:
            log.exception("release %s: could not remove its staging endpoint", release.id)
    data = {"releaseId": release.id, "state": release.state.value, "error": release.error}
    publish(ctx, "state", release, ev.RELEASE_STATE_CHANGED, data)
    if release.state in NOTIFIED_STATES:
        detail = release.error or (release.gate or {}).get("reason") or release.timeline[-1]["detail"]
        subject = f"release {release.id} is {release.state.value}"
        tell(ctx, "state", release, subject, f"{detail}\n{ctx.links.release(release.id)}")


def publish(ctx: Context, purpose: str, release: Release, event_type: str, data: dict[str, Any]) -> None:
    """An event about ``release`` to the topic, once per purpose and saved version."""
    message = {"event_type": event_type, "subject": f"releases/{release.id}", "data": data}
    _enqueue(ctx, "publish", purpose, release, message)


def tell(
    ctx: Context, purpose: str, release: Release, subject: str, body: str, only_while: State | None = None
) -> None:
    """A notification to people about ``release`` as it is now; ``only_while``: drop it once the release
    has left that state (a retried "approve with ..." after the release was approved)."""
    message: dict[str, Any] = {"subject": subject, "body": body}
    if only_while is not None:
        message["only_while"] = only_while.value
    _enqueue(ctx, "notify", purpose, release, message)


def _enqueue(ctx: Context, kind: str, purpose: str, release: Release, payload: dict[str, Any]) -> None:
    # One key per purpose and saved version: a redelivered event that changes nothing adds nothing,
    # and two messages about one version never shadow each other.
    key = f"{kind}:{purpose}:{release.id}:v{release.version}"
    try:
        background.enqueue(ctx, kind, release.id, key, payload, run_now=True)
    except Exception:  # the release is saved; its announcement must not turn into a failed delivery
        log.exception("release %s: could not queue %s %s", release.id, kind, key)
