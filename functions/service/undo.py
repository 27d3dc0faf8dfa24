"""Putting production back when a promotion fails or its rollout says no.

The champion goes back at once; the traffic through the outbox (background.py's restore_traffic:
begun at once, looked at again until production routes there, dead-lettered if it never does),
which then removes the new deployment; one that never had traffic is removed at once.
"""

from __future__ import annotations

import logging

from functions.domain.refs import ModelRef
from functions.domain.release import Release
from functions.service import background
from functions.service.context import Context

log = logging.getLogger("mlops.undo")


def undo_promotion(ctx: Context, release: Release, *, strict: bool = False) -> str:
    """Put production's traffic and champion back where they were before this promotion moved them
    (the traffic change goes through the outbox: begun at once, looked at again until it is done,
    dead-lettered if it never is), or remove the new deployment that never had traffic. What could not
    be undone is said in the answer, or with ``strict`` raised (the caller's step is then retried)."""
    production = release.production or {}
    before = production.get("traffic_before") or {}
    said = ""
    try:
        if production.get("traffic_moved"):
            if before:
                key = f"restore_traffic:{release.id}:v{release.version}"
                # Once production routes there again, the new deployment (unless it served before) goes.
                removed = [] if release.deployment_key in before else [release.deployment_key]
                payload = {"traffic": dict(before), "remove": removed}
                background.enqueue(ctx, "restore_traffic", release.id, key, payload, run_now=True)
                said = f"; production traffic is going back to {', '.join(before)}"
            else:
                said = "; nothing served before it, so its traffic stays"
            if production.get("champion_before"):
                ctx.ports.registry.set_champion(ModelRef(**production["champion_before"]))
        elif release.deployment_key not in ctx.ports.deployer.traffic():
            ctx.ports.deployer.remove(release.deployment_key)
    except Exception as exc:  # the release fails either way; say what could not be undone
        if strict:
            raise
        log.exception("release %s: could not undo the promotion", release.id)
        return f"{said}; could not undo the promotion: {type(exc).__name__}: {exc}"
    return said
