"""The claimed steps: the work a release does once a handler has won its claim.

A release in a claimed state (queued, registering, deploying_staging, promoting) belongs to the
handler whose save put it there; `advance` runs that state's step. A step that raises is recorded
(step_error) for reconcile to retry, and fails the release after Timeouts.max_step_attempts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from functions.domain import events as ev
from functions.domain.approval import POLICY_PRINCIPAL
from functions.domain.gate import decide
from functions.domain.lineage import checks_summary, evaluation_summary, image_of, lineage_tags, model_of
from functions.domain.notifications import Kind
from functions.domain.release import Release, State
from functions.ports import ConcurrencyError
from functions.service import candidates
from functions.service.announce import announce, publish, tell
from functions.service.context import Context
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
    model, image = model_of(release), image_of(release)
    endpoint = ctx.ports.deployer.deploy_staging(release.id, image, model)
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
    model, image = model_of(release), image_of(release)
    endpoint = ctx.ports.deployer.deploy_production(release.id, image, model)
    reports = [asdict(ctx.ports.tester.smoke(endpoint)), asdict(ctx.ports.tester.integration(endpoint, model))]
    rolled_back_to = None
    if all(r["passed"] for r in reports):
        ctx.ports.registry.set_champion(model)
    else:
        previous = ctx.ports.deployer.rollback_production(release.id)
        rolled_back_to = previous.version if previous else None
    now = ctx.clock()
    updated = update(
        ctx, release, State.PROMOTING, lambda r: r.production_tested(now, asdict(endpoint), reports, rolled_back_to)
    )
    if updated.state == State.LIVE:
        candidates.supersede_others(ctx, updated, State.LIVE)
        ctx.ports.deployer.remove_staging(updated.id)
    announce(ctx, updated)


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


def fail(ctx: Context, release: Release, reason: str) -> None:
    if release.state == State.PROMOTING:  # do not leave a half-promoted model serving
        previous = ctx.ports.deployer.rollback_production(release.id)
        reason += f"; production rolled back to {previous.version}" if previous else ""
    updated = update(ctx, release, release.state, lambda r: r.fail(ctx.clock(), reason))
    announce(ctx, updated)
