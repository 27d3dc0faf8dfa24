"""The HTTP API: read releases, approve or decline one, roll production back, read dead letters and parked events.

Every route reads its input through `limits` (body size, JSON shape, query integers) and answers
JSON; errors are {"error": "..."} with the 4xx that names the problem.

A decision (POST .../approve, .../reject) is JSON ({"comment": "..."}, Content-Type application/json,
else 415) from a proven identity (entrypoints/identity/authenticate.py: Easy Auth, a signed link in
X-MLOps-Link, locally the CLI's signature); a "by" in the body is ignored.
"""

from __future__ import annotations

from typing import Any

import azure.functions as func

from functions import bootstrap
from functions.domain.input_limits import DEFAULT_PAGE, MAX_PAGE
from functions.domain.release import Release, State
from functions.entrypoints.identity.authenticate import AuthenticationFailed, identify
from functions.entrypoints.limits import (
    RequestRejected,
    parse_json,
    query_cursor,
    query_int,
    query_words,
    route_word,
)
from functions.entrypoints.responses import error, json_response
from functions.ports import ConcurrencyError
from functions.service import commands
from functions.service.invocations import invocation
from functions.service.results import Conflict, Forbidden, Gone, Invalid, NotFound

MAX_LIST = MAX_PAGE
STATES = frozenset(state.value for state in State)
DECISION_BODY = '{"comment": "..."}'


def health(_: func.HttpRequest) -> func.HttpResponse:
    return json_response({"status": "ok"})


def list_releases(req: func.HttpRequest) -> func.HttpResponse:
    try:
        limit = query_int(req.params, "limit", DEFAULT_PAGE, 1, MAX_LIST)
        states = query_words(req.params, "state", STATES)
    except RequestRejected as exc:
        return error(exc.status, str(exc))
    releases = commands.list_releases(bootstrap.context(), limit, states)
    return json_response({"releases": [release_view(r, summary=True) for r in releases]})


def get_release(req: func.HttpRequest) -> func.HttpResponse:
    try:
        release_id = route_word(req.route_params["id"], "release id")
        return json_response(release_view(commands.get_release(bootstrap.context(), release_id)))
    except RequestRejected as exc:
        return error(exc.status, str(exc))
    except NotFound as exc:
        return error(404, str(exc))


def approve_release(req: func.HttpRequest) -> func.HttpResponse:
    return _decide(req, approve=True)


def decline_release(req: func.HttpRequest) -> func.HttpResponse:
    """POST /releases/{id}/reject: a person declines the release (state ``declined``)."""
    return _decide(req, approve=False)


def dead_letters(req: func.HttpRequest) -> func.HttpResponse:
    """GET /dead-letters?limit=&before=: a page, newest first, each with an excerpt, size and sha256."""
    try:
        limit, before = _page_query(req)
    except RequestRejected as exc:
        return error(exc.status, str(exc))
    page = commands.dead_letters(bootstrap.context(), limit, before)
    return json_response({"dead_letters": [letter.to_json() for letter in page.items], "next": page.next})


def parked_events(req: func.HttpRequest) -> func.HttpResponse:
    """GET /parked?limit=&before=: events waiting for their release, newest first, with when they expire."""
    try:
        limit, before = _page_query(req)
    except RequestRejected as exc:
        return error(exc.status, str(exc))
    ctx = bootstrap.context()
    page = commands.parked_events(ctx, limit, before)
    parked = [entry.to_json(commands.parked_expires_at(ctx, entry)) for entry in page.items]
    return json_response({"parked": parked, "next": page.next})


def _page_query(req: func.HttpRequest) -> tuple[int, str | None]:
    """A paged listing's ``limit`` and ``before`` cursor (RequestRejected, a 400, for bad ones)."""
    return query_int(req.params, "limit", DEFAULT_PAGE, 1, MAX_LIST), query_cursor(req.params)


def _decide(req: func.HttpRequest, approve: bool) -> func.HttpResponse:
    """Content type (415), request limits (400/413), who decides (401/403/409/410, identity), the policy's
    comment rule (400), then the service: 404, 409, 403, 410, or the release (202 promoting, else 200)."""
    if not _is_json(req.headers.get("content-type")):
        return error(415, f"Content-Type must be application/json: {DECISION_BODY}")
    try:
        release_id = route_word(req.route_params["id"], "release id")
        body = parse_json(req.get_body()) if req.get_body() else {}
    except RequestRejected as exc:
        message = f"body must be JSON: {DECISION_BODY}" if exc.reason == "not_json" else str(exc)
        return error(exc.status, message)
    if not isinstance(body, dict):
        return error(400, f"body must be a JSON object: {DECISION_BODY}")
    comment = body.get("comment", "")  # "by" is never read: who decides is proven, not said
    if not isinstance(comment, str):
        return error(400, '"comment" must be a string')
    comment = comment.strip()
    ctx, settings = bootstrap.context(), bootstrap.settings()
    action = "approve" if approve else "decline"
    try:
        proof = identify(req, settings, int(ctx.clock().timestamp()), release_id=release_id, action=action)
        if not approve and ctx.approval_policy.comment_required_to_decline and not comment:
            return error(400, '"comment" is required to decline: say why')  # before a link is spent on it
    except AuthenticationFailed as exc:
        return error(exc.status, str(exc))

    def spend_the_link() -> None:  # once the decision is judged: a refused decision keeps the link
        proof.spend(ctx.ports.store, release_id)

    try:
        with invocation("approve_release" if approve else "decline_release"):
            if approve:
                release = commands.approve(ctx, release_id, proof.principal, comment, before_recording=spend_the_link)
            else:
                release = commands.decline(ctx, release_id, proof.principal, comment, before_recording=spend_the_link)
    except ConcurrencyError:
        return error(409, "the release changed while deciding; look at it again and retry")
    except REFUSALS as exc:
        return _refused(exc)
    # 202 when the promotion goes on after this response (the follow timer carries it), else 200.
    return json_response(release_view(release), 202 if release.state == State.PROMOTING else 200)


ROLLBACK_BODY = '{"comment": "why", "to": "<release id or model version> (optional)"}'
MAX_TO_CHARS = 100


def rollback(req: func.HttpRequest) -> func.HttpResponse:
    """POST /production/rollback: the previous or an earlier version back in production, tested first.

    The same protection as a decision: JSON only (415; a cross-site form cannot send it), a proven
    identity (401; a signed link is refused: links are minted for one release's decision), who may
    (403), a comment (400). 202 with the new release, which goes live once its direct tests pass."""
    if not _is_json(req.headers.get("content-type")):
        return error(415, f"Content-Type must be application/json: {ROLLBACK_BODY}")
    try:
        body = parse_json(req.get_body()) if req.get_body() else {}
    except RequestRejected as exc:
        return error(exc.status, f"body must be JSON: {ROLLBACK_BODY}" if exc.reason == "not_json" else str(exc))
    if not isinstance(body, dict):
        return error(400, f"body must be a JSON object: {ROLLBACK_BODY}")
    comment, to = body.get("comment", ""), body.get("to")
    if not isinstance(comment, str) or not comment.strip():
        return error(400, f'"comment" is required to roll back: say why ({ROLLBACK_BODY})')
    if to is not None and (not isinstance(to, str) or not to.strip() or len(to) > MAX_TO_CHARS):
        return error(400, f'"to" must be a release id or a model version (at most {MAX_TO_CHARS} characters)')
    ctx, settings = bootstrap.context(), bootstrap.settings()
    with invocation("rollback_production"):
        try:
            proof = identify(req, settings, int(ctx.clock().timestamp()), release_id="production", action="rollback")
            release = commands.rollback(
                ctx, proof.principal, comment.strip(), to.strip() if to else None,
                before_recording=lambda: proof.spend(ctx.ports.store),
            )  # fmt: skip
        except ConcurrencyError:
            return error(409, "a release changed while rolling back; look at production again and retry")
        except REFUSALS as exc:
            return _refused(exc)
    return json_response(release_view(release), 202)


# What the service (and the identity check) refuse with, and the status each answers.
_STATUS: tuple[tuple[type[Exception], int], ...] = ((NotFound, 404), (Conflict, 409), (Forbidden, 403),
                                                    (Gone, 410), (Invalid, 400))  # fmt: skip
REFUSALS: tuple[type[Exception], ...] = (AuthenticationFailed, *(kind for kind, _ in _STATUS))


def _refused(exc: Exception) -> func.HttpResponse:
    if isinstance(exc, AuthenticationFailed):
        return error(exc.status, str(exc))
    status = next(code for kind, code in _STATUS if isinstance(exc, kind))
    return error(status, str(exc))


def _is_json(content_type: str | None) -> bool:
    """application/json, with parameters (charset) or not, in any case."""
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    return media_type == "application/json"


def release_view(release: Release, summary: bool = False) -> dict[str, Any]:
    view = release.to_json()
    view.pop("handled_events", None)
    if summary:
        view.pop("timeline", None)
        if view.get("gate"):
            view["gate"] = {k: v for k, v in view["gate"].items() if k != "evaluation"}
    return view
