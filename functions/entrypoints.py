"""What each Azure Function calls: one call per function body in function_app.py.

Turns the host's trigger objects into plain payloads for the orchestrator and its results
into HTTP responses. Error bodies are always {"error": "..."} with a 4xx naming the problem.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any

import azure.functions as func

from functions.bootstrap import orchestrator
from functions.orchestrator import Conflict, NotFound
from functions.domain.release import Release, State

log = logging.getLogger("mlops.entrypoints")
MAX_LIST = 500


def on_event(function_name: str, event: Any) -> str:
    """An Event Grid delivery (Event Grid schema or CloudEvent); returns the outcome."""
    return orchestrator().receive(function_name, event_payload(event)).value


def event_payload(event: Any) -> dict[str, Any]:
    """The event as it came over the wire, from either trigger type azure.functions hands over."""
    if hasattr(event, "specversion"):
        payload = {
            "specversion": event.specversion,
            "id": event.id,
            "source": event.source,
            "type": event.type,
            "subject": event.subject,
            "time": _iso(event.time),
            "data": event.get_json(),
        }
        return {k: v for k, v in payload.items() if v is not None}
    return {
        "id": event.id,
        "topic": event.topic,
        "subject": event.subject,
        "eventType": event.event_type,
        "eventTime": _iso(event.event_time),
        "data": event.get_json(),
        "dataVersion": event.data_version,
    }


def reconcile(timer: func.TimerRequest) -> dict[str, int]:
    counts = orchestrator().reconcile()
    log.info("reconcile%s: %s", " (past due)" if timer.past_due else "", counts)
    return counts


def health(_: func.HttpRequest) -> func.HttpResponse:
    return _json({"status": "ok"})


def list_releases(req: func.HttpRequest) -> func.HttpResponse:
    raw_limit = req.params.get("limit", "50")
    if not (raw_limit.isascii() and raw_limit.isdecimal()) or not 1 <= int(raw_limit) <= MAX_LIST:
        return _error(400, f"limit must be an integer between 1 and {MAX_LIST}")
    states = [s for s in req.params.get("state", "").split(",") if s]
    releases = orchestrator().ports.store.list(limit=int(raw_limit), states=states or None)
    return _json({"releases": [release_view(r, summary=True) for r in releases]})


def get_release(req: func.HttpRequest) -> func.HttpResponse:
    try:
        return _json(release_view(orchestrator().get_release(req.route_params["id"])))
    except NotFound as exc:
        return _error(404, str(exc))


def approve_release(req: func.HttpRequest) -> func.HttpResponse:
    return _decide(req, approve=True)


def reject_release(req: func.HttpRequest) -> func.HttpResponse:
    return _decide(req, approve=False)


def dead_letters(req: func.HttpRequest) -> func.HttpResponse:
    letters = orchestrator().ports.store.dead_letters(limit=MAX_LIST)
    return _json({"dead_letters": [letter.__dict__ for letter in letters]})


def _decide(req: func.HttpRequest, approve: bool) -> func.HttpResponse:
    release_id = req.route_params["id"]
    try:
        body = req.get_json() if req.get_body() else None
    except ValueError:
        return _error(400, 'body must be JSON: {"by": "name", "comment": "..."}')
    if not isinstance(body, dict):
        return _error(400, 'body must be a JSON object: {"by": "name", "comment": "..."}')
    by, comment = body.get("by"), body.get("comment", "")
    if not isinstance(by, str) or not by.strip():
        return _error(400, '"by" is required: who decides')
    if not isinstance(comment, str):
        return _error(400, '"comment" must be a string')
    if not approve and not comment.strip():
        return _error(400, '"comment" is required to reject: say why')
    try:
        if approve:
            release = orchestrator().approve(release_id, by.strip(), comment.strip())
        else:
            release = orchestrator().decline(release_id, by.strip(), comment.strip())
    except NotFound as exc:
        return _error(404, str(exc))
    except Conflict as exc:
        return _error(409, str(exc))
    # 202 when the promotion goes on after this response (MLOps.ReleaseApproved), 200 when it is done.
    return _json(release_view(release), 202 if release.state == State.PROMOTING else 200)


def release_view(release: Release, summary: bool = False) -> dict[str, Any]:
    view = release.to_json()
    view.pop("handled_events", None)
    if summary:
        view.pop("timeline", None)
        if view.get("gate"):
            view["gate"] = {k: v for k, v in view["gate"].items() if k != "evaluation"}
    return view


def _json(document: Any, status: int = 200) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(document, default=str), status_code=status, mimetype="application/json")


def _error(status: int, message: str) -> func.HttpResponse:
    return _json({"error": message}, status)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None
