"""Trigger arguments and HTTP responses, converted the way the Python worker converts them.

The Functions host hands the worker typed values (``Datum``: an ``http`` request, a ``json`` timer
payload or event) and the worker turns them into ``HttpRequest``, ``TimerRequest``, ``EventGridEvent``
or ``CloudEvent`` with azure.functions' own converters; an HTTP function's return value goes back
through the same library's ``HttpResponseConverter``. This module builds those datums from what the
local host has (a Starlette request, a timer's schedule status, an event's JSON) and calls the same
converters, so user functions receive the objects they would receive under Core Tools. It also holds
the host's own error body, ``{"error": "..."}``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import azure.functions as func
from azure.functions.eventgrid import EventGridEventInConverter
from azure.functions.http import HttpRequestConverter, HttpResponseConverter
from azure.functions.meta import Datum
from azure.functions.timer import TimerRequestConverter
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from devhost.indexing import EVENT_GRID_TRIGGER, TIMER_TRIGGER

# The Functions host's default request body limit (FUNCTIONS_REQUEST_BODY_SIZE_LIMIT, 100 MiB): larger
# bodies get 413 before anything buffers them, as on Azure. The app's own routes limit far lower.
MAX_HOST_BODY_BYTES = 100 * 1024 * 1024


class BodyTooLarge(ValueError):
    pass


async def read_body(request: Request, limit: int | None = None) -> bytes:
    """The request body, refusing (BodyTooLarge) one larger than ``limit`` before or while it is read."""
    limit = MAX_HOST_BODY_BYTES if limit is None else limit
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdecimal() and int(declared) > limit:
        raise BodyTooLarge(f"the request body is larger than the host's limit of {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"the request body is larger than the host's limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def error_response(status: int, message: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    """The host's own errors (no route, bad webhook call, a failed function) as JSON, never HTML."""
    return JSONResponse({"error": message}, status_code=status, headers=headers)


# --- HTTP ---------------------------------------------------------------------------------------------


def to_http_request(request: Request, route_params: Mapping[str, str], body: bytes) -> func.HttpRequest:
    """The worker's HttpRequest, built by azure.functions' converter from the host's 'http' datum."""

    def text(value: str) -> Datum:
        return Datum(value, "string")

    # Repeated headers reach the worker as one comma-joined value, as the host sends them.
    headers = {name: ", ".join(request.headers.getlist(name)) for name in request.headers}
    datum = Datum(
        {
            "method": text(request.method),
            "url": text(str(request.url)),
            "headers": {name: text(value) for name, value in headers.items()},
            "query": {name: text(value) for name, value in request.query_params.items()},
            "params": {name: text(value) for name, value in route_params.items()},
            "body": Datum(body, "bytes"),
        },
        "http",
    )
    return HttpRequestConverter.decode(datum, trigger_metadata={})


def to_starlette_response(result: Any) -> Response:
    """Encode the return value with azure.functions' http converter (as the worker does), then serve it."""
    try:
        datum = HttpResponseConverter.encode(result, expected_type=None)
    except NotImplementedError:
        raise TypeError(
            f"an HTTP function must return azure.functions.HttpResponse or str, not {type(result).__name__}"
        ) from None
    if datum.type == "string":
        return Response(datum.value, media_type="text/plain")
    value = datum.value
    headers = {name: header.value for name, header in value["headers"].items()}
    response = Response(value["body"].value, status_code=int(value["status_code"].value), headers=headers)
    # Cookies arrive as http.cookies objects; each becomes its own Set-Cookie header.
    for cookie in value["cookies"] or []:
        for morsel in cookie.values():
            response.headers.append("set-cookie", morsel.OutputString())
    return response


# --- Timers and events --------------------------------------------------------------------------------


def timer_request(past_due: bool, status: Mapping[str, datetime | None]) -> func.TimerRequest:
    """The TimerRequest the worker builds from the host's timer payload (status keys: Last, Next, LastUpdated)."""
    payload = {
        "Schedule": {"AdjustForDST": True},
        "ScheduleStatus": {key: moment.isoformat() for key, moment in status.items() if moment is not None},
        "IsPastDue": past_due,
    }
    return TimerRequestConverter.decode(Datum(json.dumps(payload), "json"), trigger_metadata={})


def decode_event(event: Mapping[str, Any]) -> func.EventGridEvent | func.CloudEvent:
    """One Event Grid or CloudEvents schema event as the worker decodes it (the converter tells them apart)."""
    return EventGridEventInConverter.decode(Datum(json.dumps(event), "json"), trigger_metadata={})


def admin_argument(trigger_type: str, given: Any) -> Any:
    """The trigger argument for ``POST /admin/functions/NAME`` with body ``{"input": given}``.

    Like Core Tools: a timer function gets a fresh TimerRequest whatever the input; an Event Grid function
    needs an event (object or JSON text); other triggers go through their registered converter, if any.
    Raises ValueError when the input cannot become that argument.
    """
    if trigger_type == TIMER_TRIGGER:
        return timer_request(False, {})
    if trigger_type == EVENT_GRID_TRIGGER:
        event = json.loads(given) if isinstance(given, str) else given
        if not isinstance(event, dict):
            raise ValueError("input for an Event Grid function must be an event object (or its JSON text)")
        return decode_event(event)
    converter = func.get_binding_registry().get(trigger_type)
    if converter is None:
        return given
    datum = Datum(given, "string") if isinstance(given, str) else Datum(json.dumps(given), "json")
    try:
        return converter.decode(datum, trigger_metadata={})
    except Exception as exc:
        raise ValueError(f"cannot build a {trigger_type} argument from the input: {exc!r}") from exc
