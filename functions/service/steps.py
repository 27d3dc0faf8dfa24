"""The claimed steps: the work a release does once a handler has won its claim.

A release in a claimed state (queued, registering, deploying_staging, promoting) belongs to the
handler whose save put it there; `advance` runs that state's step. A step that raises is recorded
(step_error) for reconcile to retry, and fails the release after Timeouts.max_step_attempts.

Staging and the promotion are long: their step begins a platform operation and returns
(functions/service/operations.py); the follow timer carries them on (staging_up, beside_up,
traffic_moved) once the operation has ended. The promotion tests the new deployment directly
before it has any traffic, and moves traffic only if it passes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict
from datetime import timedelta
from typing import Any

from functions.domain import events as ev
from functions.domain.approval import POLICY_PRINCIPAL
from functions.domain.gate import decide
from functions.domain.lineage import checks_summary, evaluation_summary, image_of, lineage_tags, model_of
from functions.domain.notifications import Kind
from functions.domain.refs import Endpoint, Progress
from functions.domain.release import Release, State
from functions.ports import ConcurrencyError
from functions.service import background, candidates, rollout
from functions.service.announce import announce, publish, tell
from functions.service.context import Context
from functions.service.operations import begin
from functions.service.undo import undo_promotion
from functions.service.unit_of_work import get, update

log = logging.getLogger("mlops.steps")


def advance(ctx: Context, release: Release) -> None:
    """Run the step the release is claimed for; errors are recorded for reconcile to retry."""
    step = STEPS.get(release.state)
    if step is None:
        return
    state = release.state
    try:
        step(ctx, release)
    except Exception as exc:  # a platform error must not strand the event in a retry storm
        log.exception("release %s: step %s failed", release.id, state.value)
        step_error(ctx, release.id, state, f"{type(exc).__name__}: {exc}")


def submit_training(ctx: Context, release: Release) -> None:
    champion = ctx.ports.registry.champion()
    job = ctx.ports.training.submit(release.id, release.trigger, release.params, champion)
    champion_json = asdict(champion) if champion else None
    update(ctx, release, State.QUEUED, lambda r: r.training_submitted(ctx.clock(), job, champion_json))


def gate_and_package(ctx: Context, release: Release) -> None:
    evaluation = ctx.ports.training.evaluation(release.job_name)
    decision = decide(evaluation, ctx.policy).to_json()
    candidate_metrics = (evaluation.get("metrics") or {}).get("candidate") or {}
    summary = evaluation_summary(evaluation)
    checks = read_data_checks(ctx, release)
    if not decision["promote"]:
        updated = update(
            ctx,
            release,
            State.REGISTERING,
            lambda r: r.gate_decided(ctx.clock(), decision, candidate_metrics, summary, checks),
        )
        announce(ctx, updated)
        return
    location = ctx.ports.training.model_location(release.job_name)
    model = ctx.ports.registry.register(release.id, release.job_name, location, lineage_tags(release, evaluation))
    image = ctx.ports.images.build(release.id, model)

    def record(r: Release) -> None:
        r.gate_decided(ctx.clock(), decision, candidate_metrics, summary, checks)
        r.packaging_requested(ctx.clock(), asdict(model), asdict(image))

    update(ctx, release, State.REGISTERING, record)


def read_data_checks(ctx: Context, release: Release) -> dict[str, Any]:
    """The job's data checks, summarised for the record; one that cannot be read is said so, not fatal
    (the checks already held: the job would not have trained otherwise)."""
    try:
        return checks_summary(ctx.ports.training.data_checks(release.job_name))
    except Exception as exc:
        log.warning("release %s: could not read the data checks of %s: %s", release.id, release.job_name, exc)
        return {"error": f"could not be read: {type(exc).__name__}: {exc}"[:300]}


def deploy_staging(ctx: Context, release: Release) -> None:
    """Begin the staging deployment; the follow timer carries on once it is up (staging_up)."""
    operation = ctx.ports.deployer.begin_staging(release.id, image_of(release), model_of(release))
    begin(ctx, release, operation, "staging deployment")


def staging_up(ctx: Context, release: Release, progress: Progress) -> None:
    """Staging is up: test it, then ask for approval (or approve by policy)."""
    model = model_of(release)
    endpoint = progress.endpoint or Endpoint(f"staging-{release.id}", "", release.id)
    reports = [asdict(ctx.ports.tester.smoke(endpoint)), asdict(ctx.ports.tester.integration(endpoint, model))]
    now = ctx.clock()
    deadline = now + ctx.timeouts.approval

    def record(r: Release) -> None:
        r.staging_tested(now, asdict(endpoint), reports)
        if r.state == State.DEPLOYING_STAGING:
            r.approval_requested(now, deadline)

    updated = update(ctx, release, State.DEPLOYING_STAGING, record)
    if updated.state == State.AWAITING_APPROVAL:
        updated = candidates.keep_newest(ctx, updated)
    if updated.state == State.AWAITING_APPROVAL and ctx.approval_policy.auto_approves(updated.gate, updated.staging):
        announce(ctx, updated)
        staging = "staging tests passed" if (updated.staging or {}).get("passed") else "staging not required"
        evidence = f"auto-approved by policy: {(updated.gate or {}).get('reason')}; {staging}"
        approve_by_policy(ctx, updated, evidence)
        return
    if updated.state == State.AWAITING_APPROVAL:
        tell(ctx, "approval", updated, Kind.APPROVAL_REQUESTED, State.AWAITING_APPROVAL)
    announce(ctx, updated)


def promote(ctx: Context, release: Release) -> None:
    """Begin the new production deployment beside the serving one, with no traffic (beside_up next); a
    retry once its rollout began resumes the rollout at the step it had reached instead."""
    if release.rollout:
        rollout.resume(ctx, release)
        return
    key = release.deployment_key
    operation = ctx.ports.deployer.begin_beside(key, image_of(release), model_of(release))
    begin(ctx, release, operation, f"production deployment {key} beside the serving one")


def beside_up(ctx: Context, release: Release, progress: Progress) -> None:
    """The new deployment is up with no traffic: test it directly; only if it passes does traffic move."""
    key = release.deployment_key
    endpoint = progress.endpoint or ctx.ports.deployer.direct(key)
    model = model_of(release)
    reports = [asdict(ctx.ports.tester.smoke(endpoint)), asdict(ctx.ports.tester.integration(endpoint, model))]
    if (release.production or {}).get("traffic_moved") and not all(r["passed"] for r in reports):
        # A retry after an earlier attempt moved traffic: "nothing moved" would be false. Put it back.
        summary = "; ".join(r["summary"] for r in reports)
        fail(ctx, release, f"production tests failed on a retry after traffic had moved: {summary}")
        return
    now = ctx.clock()
    tested = update(ctx, release, State.PROMOTING, lambda r: r.production_direct_tested(now, asdict(endpoint), reports))
    if tested.state != State.PROMOTING:  # failed: it never had traffic, so there is nothing to move back
        _remove_quietly(ctx, key, tested.id)
        announce(ctx, tested)
        return
    rollout.start(ctx, _before_moving_traffic(ctx, tested))


def _before_moving_traffic(ctx: Context, release: Release) -> Release:
    """Save what served before (traffic and champion) and that traffic is about to move, before it moves:
    a host that dies right after begin_traffic leaves a record whose undo puts back the right version.
    Kept from the first attempt: a retry must not take its own traffic for what served before."""
    production = release.production or {}
    if "traffic_before" in production:
        return release
    before = ctx.ports.deployer.traffic()
    champion = ctx.ports.registry.champion()

    def record(r: Release) -> None:
        r.production = {**(r.production or {}), "traffic_before": before, "traffic_moved": True,
                        "champion_before": asdict(champion) if champion else None}  # fmt: skip

    return update(ctx, release, State.PROMOTING, record)


def traffic_moved(ctx: Context, release: Release, progress: Progress) -> None:
    """Production routes to the new deployment: it is the champion and the release is live."""
    ctx.ports.registry.set_champion(model_of(release))
    endpoint = progress.endpoint or ctx.ports.deployer.production_endpoint()
    traffic = ctx.ports.deployer.traffic()
    now = ctx.clock()
    updated = update(ctx, release, State.PROMOTING, lambda r: r.went_live(now, asdict(endpoint), traffic))
    candidates.supersede_others(ctx, updated, State.LIVE)
    ctx.ports.deployer.remove_staging(updated.id)
    _remove_older_deployments(ctx, updated)
    announce(ctx, updated)


def _remove_older_deployments(ctx: Context, release: Release) -> None:
    """Keep the new deployment and, for the rollout policy's keep_previous_s, the one that served before it
    (an instant rollback: the outbox's retire_deployments removes it then); remove the rest now."""
    previous = [key for key in (release.production or {}).get("traffic_before") or {} if key != release.deployment_key]
    keep = {release.deployment_key, *previous}
    try:
        older = [key for key in ctx.ports.deployer.deployments() if key not in keep]
    except Exception:  # cleanup is best effort: the next promotion tries again
        log.exception("release %s: could not list the production deployments", release.id)
        older = []
    for key in older:
        _remove_quietly(ctx, key, release.id)
    if previous:
        warm = timedelta(seconds=ctx.rollout_policy.keep_previous_s)
        key = f"retire:{release.id}:v{release.version}"
        background.enqueue(ctx, "retire_deployments", release.id, key, {"remove": previous}, due_in=warm,
                           run_now=not warm)  # fmt: skip


def _remove_quietly(ctx: Context, key: str, release_id: str) -> None:
    try:
        ctx.ports.deployer.remove(key)
    except Exception:  # a leftover deployment without traffic serves nobody; the next cleanup removes it
        log.exception("release %s: could not remove production deployment %s", release_id, key)


def approve_by_policy(ctx: Context, release: Release, evidence: str) -> Release:
    """The policy's auto_approve rule held: approved without a person, with the evidence in the timeline."""
    who = POLICY_PRINCIPAL
    promoting = [r.id for r in ctx.ports.store.list(states=[State.PROMOTING.value]) if r.id != release.id]
    if promoting:  # one promotion at a time: a person approves this one once that one is done
        why = f"auto-approval deferred: {promoting[0]} is being promoted"
        return update(
            ctx, release, State.AWAITING_APPROVAL, lambda r: r.note(ctx.clock(), "auto_approve_deferred", why)
        )
    approved = update(
        ctx, release, State.AWAITING_APPROVAL, lambda r: r.approve(ctx.clock(), who.name, evidence, who=who.to_json())
    )
    return carry_on_approval(ctx, approved)


def carry_on_approval(ctx: Context, release: Release) -> Release:
    """After an approval: with enough of them, run the promotion here (local) or hand it to
    MLOps.ReleaseApproved (Azure); else the release keeps waiting for the others."""
    if release.state != State.PROMOTING:
        return release
    if ctx.promote_inline:
        advance(ctx, release)
        return get(ctx, release.id)
    # Through the outbox: a topic that is down is retried with backoff; should even that fail, the
    # claim stands and reconcile retries the promotion that never started.
    publish(ctx, "approved", release, ev.RELEASE_APPROVED, {"releaseId": release.id})
    return release


STEPS: dict[State, Callable[[Context, Release], None]] = {
    State.QUEUED: submit_training,
    State.REGISTERING: gate_and_package,
    State.DEPLOYING_STAGING: deploy_staging,
    State.PROMOTING: promote,
}


def step_error(ctx: Context, release_id: str, state: State, error: str) -> None:
    try:
        updated = update(ctx, get(ctx, release_id), state, lambda r: r.step_error(ctx.clock(), error))
    except ConcurrencyError:
        return
    if updated.step_attempts >= ctx.timeouts.max_step_attempts:
        fail(ctx, updated, f"step {state.value} failed {updated.step_attempts} times; last error: {error}")


def retry_or_fail(ctx: Context, release: Release, error: str) -> None:
    """An operation failed: count it as a step error and begin the step again, or fail the release."""
    step_error(ctx, release.id, release.state, error)
    current = get(ctx, release.id)
    if current.state == release.state and current.operation is None:
        advance(ctx, current)


def fail(ctx: Context, release: Release, reason: str) -> None:
    if release.state == State.PROMOTING:  # do not leave a half-promoted model serving
        reason += undo_promotion(ctx, release)
    updated = update(ctx, release, release.state, lambda r: r.fail(ctx.clock(), reason))
    announce(ctx, updated)
