"""The HTTP API: read releases, approve or decline one, read dead letters.

Every route reads its input through `limits` (body size, JSON shape, query integers) and answers
JSON; errors are {"error": "..."} with the 4xx that names the problem.
"""

from __future__ import annotations

from typing import Any

import azure.functions as func

from functions import bootstrap
from functions.domain.release import Release, State
from functions.entrypoints.limits import RequestRejected, parse_json, query_int, query_words, route_word
from functions.entrypoints.responses import error, json_response
from functions.service import commands
from functions.service.results import Conflict, NotFound

MAX_LIST = 500
STATES = frozenset(state.value for state in State)
DECISION_BODY = '{"by": "name", "comment": "..."}'


def health(_: func.HttpRequest) -> func.HttpResponse:
    return json_response({"status": "ok"})


def list_releases(req: func.HttpRequest) -> func.HttpResponse:
    try:
        limit = query_int(req.params, "limit", 50, 1, MAX_LIST)
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
    letters = commands.dead_letters(bootstrap.context(), MAX_LIST)
    return json_response({"dead_letters": [letter.__dict__ for letter in letters]})


def _decide(req: func.HttpRequest, approve: bool) -> func.HttpResponse:
    try:
        release_id = route_word(req.route_params["id"], "release id")
        body = parse_json(req.get_body()) if req.get_body() else None
    except RequestRejected as exc:
        message = f"body must be JSON: {DECISION_BODY}" if exc.reason == "not_json" else str(exc)
        return error(exc.status, message)
    if not isinstance(body, dict):
        return error(400, f"body must be a JSON object: {DECISION_BODY}")
    by, comment = body.get("by"), body.get("comment", "")
    if not isinstance(by, str) or not by.strip():
        return error(400, '"by" is required: who decides')
    if not isinstance(comment, str):
        return error(400, '"comment" must be a string')
    if not approve and not comment.strip():
        return error(400, '"comment" is required to decline: say why')
    ctx = bootstrap.context()
    try:
        if approve:
            release = commands.approve(ctx, release_id, by.strip(), comment.strip())
        else:
            release = commands.decline(ctx, release_id, by.strip(), comment.strip())
    except NotFound as exc:
        return error(404, str(exc))
    except Conflict as exc:
        return error(409, str(exc))
    # 202 when the promotion goes on after this response (MLOps.ReleaseApproved), 200 when it is done.
    return json_response(release_view(release), 202 if release.state == State.PROMOTING else 200)


def release_view(release: Release, summary: bool = False) -> dict[str, Any]:
    view = release.to_json()
    view.pop("handled_events", None)
    if summary:
        view.pop("timeline", None)
        if view.get("gate"):
            view["gate"] = {k: v for k, v in view["gate"].items() if k != "evaluation"}
    return view
