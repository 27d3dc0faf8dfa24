"""The follow timer's pass: one look at every open operation, and the step carried on when one ended.

See functions/service/operations.py for the design. Saving ``operation_finished`` is the claim (the
store's version check): of two passes that saw the same operation end, one carries the step on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from functions.domain.refs import Operation, Progress
from functions.domain.release import InvalidTransition, Release, State
from functions.ports import ConcurrencyError
from functions.service import rollout, steps
from functions.service.context import Context
from functions.service.invocations import current, noted
from functions.service.unit_of_work import update

log = logging.getLogger("mlops.following")

FOLLOWED_STATES = (State.DEPLOYING_STAGING, State.PROMOTING)
MAX_DETAIL_CHARS = 500


# What carries a step on once its operation succeeded, by operation kind.
def _traffic_changed(ctx: Context, release: Release, progress: Progress) -> None:
    """A rollout step's window starts, or (the last step, or no rollout) the release goes live."""
    if not rollout.traffic_in_place(ctx, release):
        steps.traffic_moved(ctx, release, progress)


FINISHERS: dict[str, Callable[[Context, Release, Progress], None]] = {
    "staging": steps.staging_up,
    "beside": steps.beside_up,
    "traffic": _traffic_changed,
    rollout.WINDOW: rollout.window_ended,
}
# What looks at an operation, by kind: the deployer, except for what the service follows itself.
LOOKS: dict[str, Callable[[Context, Release, Operation], Progress]] = {rollout.WINDOW: rollout.look}


def follow_all(ctx: Context) -> dict[str, int]:
    """One look at every open operation: counts of those still running, finished, and looks that broke."""
    counts = {"running": 0, "finished": 0, "errors": 0}
    for release in ctx.ports.store.list(limit=1000, states=[s.value for s in FOLLOWED_STATES]):
        if not release.operation:
            continue
        try:
            counts[follow(ctx, release)] += 1
        except (ConcurrencyError, InvalidTransition):
            continue  # another pass saw it end first and carries it on
        except Exception:
            log.exception("follow: release %s", release.id)
            counts["errors"] += 1
    return counts


def follow(ctx: Context, release: Release) -> str:
    """Look once at ``release``'s operation; when it has ended, claim it and carry the step on."""
    record = release.operation or {}
    operation = Operation(str(record["kind"]), str(record["deployment"]), dict(record.get("handle") or {}))
    now = ctx.clock()
    try:
        looked = LOOKS.get(operation.kind)
        progress = looked(ctx, release, operation) if looked else ctx.ports.deployer.follow(operation)
    except Exception as exc:  # a look that fails is not the operation failing: the deadline decides
        log.warning("release %s: could not look at %s: %s", release.id, record.get("what"), exc)
        progress = Progress("running", f"could not look: {type(exc).__name__}: {exc}")
    if not progress.finished:
        if now < datetime.fromisoformat(str(record["deadline"])):
            return "running"
        progress = Progress("failed", f"still running at its deadline {record['deadline']} ({progress.detail})")
    number, detail = int(record["number"]), progress.detail[:MAX_DETAIL_CHARS]
    claimed = update(
        ctx, release, release.state, lambda r: r.operation_finished(now, number, progress.state, detail, current())
    )
    noted(f"saw {record.get('what')} of {release.id} {progress.state}")
    if progress.state == "failed":
        steps.retry_or_fail(ctx, claimed, f"{record.get('what')} failed: {detail}")
        return "finished"
    try:
        FINISHERS[operation.kind](ctx, claimed, progress)
    except ConcurrencyError:
        raise  # someone else moved the release (a person declined, the timer expired it): theirs stands
    except Exception as exc:  # like a step that raises: a step error, the step begun again or failed
        log.exception("release %s: carrying on after %s failed", release.id, record.get("what"))
        steps.retry_or_fail(ctx, claimed, f"after {record.get('what')}: {type(exc).__name__}: {exc}")
    return "finished"
