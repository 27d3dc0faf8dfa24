"""Telling the world about a release: MLOps.ReleaseStateChanged for systems, a notification for people.

Both go through the background outbox (tried at once, retried by the timer), so a publisher or
notifier that is down never fails the release; a release that is over gives back its staging endpoint.
"""

from __future__ import annotations

import logging

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
    publish = {"event_type": ev.RELEASE_STATE_CHANGED, "subject": f"releases/{release.id}", "data": data}
    background.enqueue(ctx, "publish", release.id, _key("publish", release), publish, run_now=True)
    if release.state in NOTIFIED_STATES:
        detail = release.error or (release.gate or {}).get("reason") or release.timeline[-1]["detail"]
        subject = f"release {release.id} is {release.state.value}"
        tell(ctx, release, subject, f"{detail}\n{ctx.links.release(release.id)}")


def tell(ctx: Context, release: Release, subject: str, body: str) -> None:
    """A notification to people about ``release`` as it is now (once per saved version)."""
    message = {"subject": subject, "body": body}
    background.enqueue(ctx, "notify", release.id, _key("notify", release), message, run_now=True)


def _key(kind: str, release: Release) -> str:
    # One per saved version of the release: a redelivered event that changes nothing adds nothing.
    return f"{kind}:{release.id}:v{release.version}"
