"""What people ask for over HTTP: read releases, approve one, decline one, roll production back.

"Decline" is the person's no (state ``declined``; the API's route is ``/reject``); "rejected" is
the gate's word for a candidate that was not better.

A decision comes with a proven Principal (the entry layer checked the credential) and is judged by
the approval policy: the state (409), the deadline (410: the release is expired then and there,
whether or not the timer has run), who may decide (403: not an approver, self-approval, a requester
that cannot be compared), the same approver twice (409). Every judged decision, granted or refused,
goes in the timeline with who, how and the approvals so far.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from functions.domain import ids
from functions.domain.approval import Principal, requester_of, same_person
from functions.domain.refs import DeadLetter, ParkedEvent
from functions.domain.release import Release, State
from functions.service.announce import announce
from functions.service.context import Context
from functions.service.results import Conflict, Forbidden, Gone, Invalid, NotFound
from functions.service.steps import carry_on_approval
from functions.service.unit_of_work import claimed, command, get, update

log = logging.getLogger("mlops.commands")
Listed = TypeVar("Listed", DeadLetter, ParkedEvent)


def get_release(ctx: Context, release_id: str) -> Release:
    return get(ctx, release_id)


def list_releases(ctx: Context, limit: int, states: list[str] | None = None) -> list[Release]:
    return ctx.ports.store.list(limit=limit, states=states or None)


@dataclass(frozen=True)
class Page(Generic[Listed]):
    """One page of a newest-first listing; ``next`` is the cursor of the following page (None: the last)."""

    items: list[Listed]
    next: str | None


def dead_letters(ctx: Context, limit: int, before: str | None = None) -> Page[DeadLetter]:
    return _page(ctx.ports.store.dead_letters(limit=limit + 1, before=before), limit)


def parked_events(ctx: Context, limit: int, before: str | None = None) -> Page[ParkedEvent]:
    return _page(ctx.ports.store.parked(limit=limit + 1, before=before), limit)


def parked_expires_at(ctx: Context, entry: ParkedEvent) -> str:
    """When the reconcile pass turns the parked event into a dead letter ("" when its park time is unknown)."""
    try:
        return (datetime.fromisoformat(entry.parked_at) + ctx.timeouts.parked_event).isoformat()
    except ValueError:
        return ""


def _page(found: list[Listed], limit: int) -> Page[Listed]:
    """``found`` was asked for one more than a page: whether it came says if there is a next page."""
    items = found[:limit]
    return Page(items, items[-1].cursor if len(found) > limit and items else None)


def approve(
    ctx: Context,
    release_id: str,
    principal: Principal,
    comment: str = "",
    *,
    before_recording: Callable[[], None] | None = None,
) -> Release:
    """One approval; the policy's N-th distinct one claims the promotion, run here (local) or handed
    to MLOps.ReleaseApproved (Azure)."""
    policy = ctx.approval_policy

    def refusal(release: Release) -> str | None:
        return policy.refusal(principal, requester_of(release.trigger))

    release = _judge(ctx, release_id, principal, "approve", refusal)
    if any(same_person(principal.to_json(), earlier) for earlier in release.approvals()):
        _refuse(ctx, release, principal, "approve", f"{principal.name} has approved it already", Conflict)
    if before_recording is not None:
        before_recording()  # e.g. spend a single-use link: only a decision that is going to count uses it

    def claim(current: Release) -> None:
        promoting = [r.id for r in ctx.ports.store.list(states=[State.PROMOTING.value]) if r.id != release_id]
        if promoting and len(current.approvals()) + 1 >= policy.required_approvals:
            raise Conflict(f"release {promoting[0]} is being promoted to production; approve when it is done")
        required = policy.required_approvals
        current.approve(ctx.clock(), principal.name, comment, who=principal.to_json(), required=required)

    release = command(ctx, release_id, claim)
    return carry_on_approval(ctx, release)


def decline(
    ctx: Context,
    release_id: str,
    principal: Principal,
    comment: str,
    *,
    before_recording: Callable[[], None] | None = None,
) -> Release:
    policy = ctx.approval_policy
    if policy.comment_required_to_decline and not comment.strip():
        raise Invalid('"comment" is required to decline: say why')
    _judge(ctx, release_id, principal, "decline", lambda _: policy.decline_refusal(principal))
    if before_recording is not None:
        before_recording()
    who = principal.to_json()
    release = command(ctx, release_id, lambda r: r.decline(ctx.clock(), principal.name, comment, who=who))
    announce(ctx, release)
    return release


def _judge(
    ctx: Context, release_id: str, principal: Principal, act: str, refusal: Callable[[Release], str | None]
) -> Release:
    """The release, if ``principal`` may ``act`` on it now; else the refusal, noted, as an exception."""
    release = get(ctx, release_id)
    if release.state == State.EXPIRED:  # the timer got there first: still too late, not a conflict
        log.info("release %s: %s by %s refused: expired", release.id, act, principal.name)
        raise Gone("the approval deadline has passed; the release is expired")
    if release.state != State.AWAITING_APPROVAL:
        # Logged, not noted: anyone signed in could otherwise grow a finished release without bound.
        wrong_state = f"release {release.id} is {release.state.value}, not {State.AWAITING_APPROVAL.value}"
        log.info("release %s: %s by %s refused: %s", release.id, act, principal.name, wrong_state)
        raise Conflict(wrong_state)
    now = ctx.clock()
    if now >= _deadline(release):
        expired = update(ctx, release, State.AWAITING_APPROVAL, lambda r: r.expire(now))
        announce(ctx, expired)
        _refuse(ctx, expired, principal, act, "the approval deadline has passed; the release is expired", Gone)
    reason = refusal(release)
    if reason:
        _refuse(ctx, release, principal, act, reason, Forbidden)
    return release


def _refuse(
    ctx: Context, release: Release, principal: Principal, act: str, reason: str, answer: type[Exception]
) -> None:
    """Note an authenticated refusal in the timeline (who, how, the approvals so far), then raise it.

    A refusal already noted word for word is not noted again: repeating a refused request cannot grow
    the release (the log still has every attempt)."""
    so_far = len(release.approvals())
    detail = f"{_who(principal)} may not {act}: {reason} (approvals so far: {so_far})"
    step = f"{act}_refused"
    log.info("release %s: %s", release.id, detail)
    if not any(entry["step"] == step and entry["detail"] == detail for entry in release.timeline):

        def record(current: Release) -> None:
            current.note(ctx.clock(), step, detail)

        command(ctx, release.id, record)
    raise answer(reason)


def _who(principal: Principal) -> str:
    parts = [principal.name]
    if principal.object_id:
        parts.append(f"object id {principal.object_id}")
    parts.append(f"via {principal.method or 'unknown'}" + (f" ({principal.provider})" if principal.provider else ""))
    return ", ".join(parts)


def _deadline(release: Release) -> datetime:
    return datetime.fromisoformat((release.approval or {}).get("deadline") or release.step_started_at)


def rollback(
    ctx: Context,
    principal: Principal,
    comment: str,
    to: str | None = None,
    *,
    before_recording: Callable[[], None] | None = None,
) -> Release:
    """Put an earlier version back in production without retraining: a new release that deploys
    ``to``'s image and model beside the serving one, tests it directly, then moves the traffic.

    ``to`` is a release id or a model version of a release that went live before (it passed the approval
    policy then); none means the newest such release before the one serving. Who may: the approval
    policy's approvers, when it names them; one of them is enough (an incident must not wait for a
    second person to put back a version that was approved before). A comment is required. Its image and
    model must still exist; one promotion at a time (409 while another is running). A refusal of a
    proven person is noted in the serving release's timeline.
    """
    if not comment.strip():
        raise Invalid('"comment" is required to roll back: say why')
    live = ctx.ports.store.list(limit=1, states=[State.LIVE.value])
    serving = live[0] if live else None
    reason = ctx.approval_policy.decline_refusal(principal)
    if reason:
        _refuse_rollback(ctx, serving, principal, reason.replace("of this release", "who may roll production back"))
    target = _rollback_target(ctx, to, serving)
    _check_still_there(ctx, target)
    promoting = ctx.ports.store.list(limit=1, states=[State.PROMOTING.value])
    if promoting:
        raise Conflict(f"release {promoting[0].id} is being promoted to production; roll back when it is done")
    if before_recording is not None:
        before_recording()
    release_id = ids.release_id("rollback", uuid.uuid4().hex[:12])
    who = principal.to_json()
    release = Release.for_rollback(
        release_id, target, ctx.clock(), who=who, comment=comment.strip(), from_release=serving.id if serving else ""
    )
    if not ctx.ports.store.create(claimed(ctx, release)):
        raise Conflict(f"release {release_id} exists already; try again")
    log.info("release %s: rollback to %s by %s", release_id, target.id, _who(principal))
    return carry_on_approval(ctx, release)


# States of releases whose model was in production at some point (a rollback's target must have been).
_WERE_LIVE = [State.SUPERSEDED.value, State.LIVE.value]


def _rollback_target(ctx: Context, to: str | None, serving: Release | None) -> Release:
    """The release whose model and image go back: ``to`` by release id or model version, else the
    newest one that went live before the one serving now."""
    if to and to.startswith("rel-"):
        target = ctx.ports.store.get(to)
        if target is None:
            raise NotFound(f"no release {to}")
        if not target.candidate or not (target.candidate.get("model") and (target.image or {}).get("pushed")):
            raise Invalid(f"release {to} never had a registered model in a pushed image: nothing to put back")
        if not went_live_once(target):  # only what was approved and served before goes back without approval
            raise Conflict(f"release {to} never went live: approve it instead of rolling back to it")
    else:
        went_live = [r for r in ctx.ports.store.list(limit=1000, states=_WERE_LIVE) if went_live_once(r)]
        if to:
            matching = [r for r in went_live if str(_model(r).get("version")) == to]
            if not matching:
                raise NotFound(f"no release served model version {to} (give a release id to use one that did not)")
            target = matching[0]
        else:
            earlier = [r for r in went_live if serving is None or r.id != serving.id]
            if not earlier:
                raise Conflict("no earlier version has been live: there is nothing to roll back to")
            target = earlier[0]
    if serving is not None and str(_model(serving).get("version")) == str(_model(target).get("version")):
        raise Conflict(f"model version {_model(target).get('version')} is what production serves now ({serving.id})")
    return target


def _refuse_rollback(ctx: Context, serving: Release | None, principal: Principal, reason: str) -> None:
    """Note the refusal where people look for production's history (the serving release), then raise it."""
    log.info("rollback by %s refused: %s", principal.name, reason)
    if serving is not None:
        detail = f"{_who(principal)} may not roll production back: {reason}"
        if not any(e["step"] == "rollback_refused" and e["detail"] == detail for e in serving.timeline):
            command(ctx, serving.id, lambda current: current.note(ctx.clock(), "rollback_refused", detail))
    raise Forbidden(reason)


def went_live_once(release: Release) -> bool:
    """Whether the release served production at some point (what a rollback can go back to)."""
    return any(entry["step"] == "live" for entry in release.timeline)


def _model(release: Release) -> dict[str, Any]:
    return dict((release.candidate or {}).get("model") or {})


def _check_still_there(ctx: Context, target: Release) -> None:
    """The target's model must be registered and its image pushed, or there is nothing to deploy."""
    model, image = _model(target), target.image or {}
    if ctx.ports.registry.find(str(model.get("name")), str(model.get("version"))) is None:
        raise Conflict(f"model {model.get('name')}:{model.get('version')} of {target.id} is no longer registered")
    if ctx.ports.images.lookup(str(image.get("repository")), str(image.get("tag"))) is None:
        raise Conflict(f"image {image.get('repository')}:{image.get('tag')} of {target.id} no longer exists")
