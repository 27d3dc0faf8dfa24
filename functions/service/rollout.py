"""A release takes production's traffic step by step, and what each step served decides whether it goes on.

After the new deployment passed its direct tests (steps.beside_up), ``start`` plans the rollout from
the policy (functions/domain/rollout.py) against the stable deployment (the one with most traffic
before) and begins step 1. Each step is two operations the follow timer carries on:

1. the traffic change (``Deployer.begin_traffic``: a mirror for shadow, weights for canary); once
   production routes that way, ``traffic_in_place`` marks where the evidence starts (``mark``) and
2. a "window" operation, followed here (``look``, one read of the evidence: never a wait) until the
   window is over and the new deployment answered the step's minimum, then ``window_ended`` analyses
   (functions/domain/analysis.py): pass, the next step; fail, the release is rolled back: traffic back
   to the stable deployment at once, the new deployment removed (the outbox's restore_traffic), the
   champion unchanged (it only changes when the release goes live at 100%).

Nothing to compare with (no stable deployment), a rollback release, or a policy without steps: the
traffic moves at once, as it did before rollouts existed. A step the platform cannot do (shadow on
an AKS endpoint, which does not mirror) is skipped with a note. A release retried mid-rollout
resumes at the step it had reached.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from functions.domain.analysis import analyse
from functions.domain.refs import Evidence, Operation, Progress
from functions.domain.release import Release, State
from functions.domain.rollout import RolloutStep, policy_from_json, step_from_json
from functions.service.announce import announce
from functions.service.context import Context
from functions.service.operations import begin
from functions.service.undo import undo_promotion
from functions.service.unit_of_work import update

log = logging.getLogger("mlops.rollout")

WINDOW = "window"  # the kind of the operation a step holds its window in


def start(ctx: Context, release: Release) -> None:
    """Take production's traffic by the rollout policy (steps.beside_up calls this once the direct tests
    passed and what served before is saved)."""
    key = release.deployment_key
    before = (release.production or {}).get("traffic_before") or {}
    stable = max(before, key=lambda k: before[k]) if before else ""
    policy = ctx.rollout_policy
    at_once = _why_at_once(release, stable, key, policy.immediate)
    if at_once:
        noted = update(ctx, release, State.PROMOTING, lambda r: r.note(ctx.clock(), "rollout_skipped", at_once))
        begin(ctx, noted, ctx.ports.deployer.begin_traffic({key: 100}), f"production traffic to {key}")
        return
    now = ctx.clock()
    planned = update(
        ctx, release, State.PROMOTING, lambda r: r.rollout_planned(now, stable, policy.to_json(), policy.describe())
    )
    begin_step(ctx, planned, 0)


def resume(ctx: Context, release: Release) -> None:
    """A promotion retried once its rollout began: the step it had reached, begun again (the deployment
    came up and passed its direct tests already)."""
    begin_step(ctx, release, int((release.rollout or {}).get("step") or 0))


def _why_at_once(release: Release, stable: str, key: str, immediate: bool) -> str:
    if immediate:
        return "the rollout policy has no steps: all traffic moves at once"
    if release.trigger.get("kind") == "rollback":
        return "a rollback goes back to a version that served before: all traffic moves at once"
    if not stable or stable == key:
        return "nothing served before it to compare with: all traffic moves at once"
    return ""


def begin_step(ctx: Context, release: Release, index: int) -> None:
    """Begin step ``index``'s traffic change (or skip a step production cannot do)."""
    rollout = release.rollout or {}
    step = step_from_json(rollout["steps"][index])
    key, stable = release.deployment_key, str(rollout["stable"])
    now = ctx.clock()
    if step.kind == "shadow" and not ctx.ports.deployer.can_mirror():
        why = "production cannot mirror live requests on this platform (docs/azure.md): step skipped"
        skipped = update(ctx, release, State.PROMOTING, lambda r: r.rollout_step_skipped(now, index, why))
        begin_step(ctx, skipped, index + 1)
        return
    weights, mirror = traffic_of(step, key, stable)
    operation = ctx.ports.deployer.begin_traffic(weights, mirror or None)
    shown = ", ".join(f"{k} {v}%" for k, v in weights.items())
    detail = f"traffic {shown}" + (f"; {step.share}% of live requests mirrored to {key}" if mirror else "")
    begun = update(ctx, release, State.PROMOTING, lambda r: r.rollout_step_begun(now, index, detail))
    begin(ctx, begun, operation, f"rollout {step.label}: {detail}")


def traffic_of(step: RolloutStep, key: str, stable: str) -> tuple[dict[str, int], dict[str, int]]:
    """The weights and the mirror of a step: shadow leaves all traffic on the stable deployment."""
    if step.kind == "shadow":
        return {stable: 100}, {key: step.share}
    if step.share == 100:
        return {key: 100}, {}
    return {stable: 100 - step.share, key: step.share}, {}


def traffic_in_place(ctx: Context, release: Release) -> bool:
    """A traffic change of a rollout step ended: its window starts, its evidence read from now on.
    False when there is no window to hold (no rollout, or the last step): the release goes live."""
    rollout = release.rollout
    index = int((rollout or {}).get("step") or 0)
    if not rollout or step_from_json(rollout["steps"][index]).final:
        return False
    step = step_from_json(rollout["steps"][index])
    mark = ctx.ports.evidence.mark()
    now = ctx.clock()
    holding = update(ctx, release, State.PROMOTING, lambda r: r.rollout_step_holding(now, index, mark))
    _hold(ctx, holding, index, step, (holding.rollout or {})["steps"][index])
    return True


def look(ctx: Context, release: Release, operation: Operation) -> Progress:
    """One read of the step's evidence: "succeeded" once its window is over and the new deployment
    answered the minimum (or the step waited out its max wait: then the analysis says too little)."""
    step, record, policy = _holding(release, int(operation.handle["step"]))
    evidence = _evidence(ctx, release, record)
    answered = _answered(step, evidence, release.deployment_key)
    elapsed = (ctx.clock() - datetime.fromisoformat(str(record["started_at"]))).total_seconds()
    said = f"{answered}/{step.min_requests} requests, {min(elapsed, step.window_s):.0f}/{step.window_s:g} s"
    if elapsed >= step.window_s and answered >= step.min_requests:
        return Progress("succeeded", f"window over: {said}")
    if elapsed >= policy.max_wait_s:
        return Progress("succeeded", f"max wait {policy.max_wait_s:g} s over with {said}")
    return Progress("running", said)


def window_ended(ctx: Context, release: Release, progress: Progress) -> None:
    """The window is over (FINISHERS["window"]): analyse, then the next step or the rollback."""
    rollout = release.rollout or {}
    index = int(rollout.get("step") or 0)
    step, record, policy = _holding(release, index)
    try:
        evidence = _evidence(ctx, release, record)
    except Exception as exc:  # a read that fails is not a verdict: look again, from the same mark
        log.warning("release %s: could not read the evidence of %s: %s", release.id, step.label, exc)
        _hold(ctx, release, index, step, record)
        return
    elapsed = (ctx.clock() - datetime.fromisoformat(str(record["started_at"]))).total_seconds()
    key, stable = release.deployment_key, str(rollout["stable"])
    verdict = analyse(step, evidence, key, stable, policy, waited_out=elapsed >= policy.max_wait_s)
    log.info("release %s: %s", release.id, verdict["summary"])
    said = ""
    if not verdict["passed"]:
        # Production goes back before the verdict is saved: a final release has no follower, so a host
        # that died in between must not leave traffic (or a mirror) on the new deployment.
        said = undo_promotion(ctx, release, strict=True).removeprefix("; ")
    now = ctx.clock()

    def record_verdict(r: Release) -> None:
        r.rollout_step_analysed(now, index, verdict)
        if said:
            r.note(now, "rollback_begun", said)

    analysed = update(ctx, release, State.PROMOTING, record_verdict)
    if analysed.state == State.ROLLED_BACK:
        announce(ctx, analysed)
        return
    begin_step(ctx, analysed, index + 1)


def _hold(ctx: Context, release: Release, index: int, step: RolloutStep, record: dict[str, Any]) -> None:
    """(Again) follow step ``index``'s window, its evidence read from the mark it has."""
    policy = policy_from_json((release.rollout or {})["policy"])
    started = datetime.fromisoformat(str(record["started_at"]))
    deadline = started + timedelta(seconds=policy.max_wait_s) + ctx.timeouts.operation_max
    window = Operation(WINDOW, release.deployment_key, {"step": index})
    begin(ctx, release, window, f"rollout {step.label} window", deadline=deadline)


def _holding(release: Release, index: int) -> tuple[RolloutStep, dict[str, Any], Any]:
    rollout = release.rollout or {}
    record = rollout["steps"][index]
    return step_from_json(record), record, policy_from_json(rollout["policy"])


def _evidence(ctx: Context, release: Release, record: dict[str, Any]) -> Evidence:
    rollout = release.rollout or {}
    return ctx.ports.evidence.since(dict(record.get("mark") or {}), [release.deployment_key, str(rollout["stable"])])


def _answered(step: RolloutStep, evidence: Evidence, key: str) -> int:
    served = (evidence.mirrored if step.kind == "shadow" else evidence.served).get(key)
    return served.requests if served else 0
