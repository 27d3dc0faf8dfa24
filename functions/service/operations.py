"""Long platform steps as operations: begun by the step that holds the claim, followed by the timer.

A claimed step (staging, a promotion) begins its platform operation (a ``begin_*`` call that returns
once the platform has accepted it), records the Operation on the release and returns: no invocation
waits for a deployment to come up or for traffic to move. The follow timer (``follow_all``) looks at
each open operation once per pass (``Deployer.follow``: one GET or health probe). When one has ended,
saving that (``Release.operation_finished``, under the store's version check) is the claim to carry
the step on, so of two passes that saw it end, exactly one acts; what comes next is in FINISHERS.

An operation that fails, or is still running at its deadline, is a step error: the step is begun again
from its start (the adapters make a repeated begin cheap) until Timeouts.max_step_attempts fail the
release. A pass that dies after its claim leaves the release claimed with no operation: reconcile's
stuck-step rule retries it.

This module begins and records; functions/service/following.py looks and carries on.
"""

from __future__ import annotations

from datetime import datetime

from functions.domain.refs import Operation
from functions.domain.release import Release
from functions.service.context import Context
from functions.service.invocations import current, noted
from functions.service.unit_of_work import update


def begin(ctx: Context, release: Release, operation: Operation, what: str, deadline: datetime | None = None) -> Release:
    """Record that ``release``'s step began ``operation`` (``what`` says which, for people); it fails
    when still running at ``deadline`` (default: Timeouts.operation_max from now)."""
    now = ctx.clock()
    deadline = deadline or now + ctx.timeouts.operation_max
    record = {"kind": operation.kind, "deployment": operation.deployment, "handle": operation.handle}
    saved = update(ctx, release, release.state, lambda r: r.operation_started(now, record, deadline, current(), what))
    noted(f"began {what} of {release.id}")
    return saved
