"""``/runtime/webhooks/eventgrid``: the Event Grid extension's webhook, as the Functions host serves it.

``POST ?functionName=NAME`` is driven by the ``aeg-event-type`` header, as Event Grid sends it:

- ``SubscriptionValidation``: answer ``{"validationResponse": <data.validationCode>}`` without invoking;
- ``Notification``: invoke the function once per event (a body is one event object, CloudEvents style,
  or an array of them, Event Grid schema); 202 when all ran, else 500 naming each failed event, after
  the rest of the batch has still run. An event the worker could not turn into the trigger argument (an
  ``eventTime`` that is not a time, say) is not a failure of the batch: it is recorded in the host's
  dead-letter file (``dead_letters``, locally ``$MLOPS_HOME/undelivered.jsonl``, where the local event
  bus records what it gave up on) and the rest are invoked;
- ``Unsubscribe``: 202, nothing invoked.

``OPTIONS`` answers the CloudEvents 1.0 abuse-protection handshake (echoing ``WebHook-Request-Origin``).
An unknown function, or one that is not an Event Grid function, is 404; a missing or unknown header or a
body that is not event JSON is 400 (also nested deeper than 64 levels, Json.NET's limit, or more than
5,000 events); a body over Event Grid's 1 MiB batch is 413 (functions/domain/input_limits.py). Event Grid
retries neither 400 nor 413. Function names match case-insensitively, as on the host.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from devhost.conversion import BodyTooLarge, decode_event, error_response, read_body
from devhost.indexing import EVENT_GRID_TRIGGER
from devhost.invocation import HostedFunction, invoke
from functions.domain.events import wire_id, wire_type
from functions.domain.input_limits import MAX_BATCH_EVENTS, MAX_WEBHOOK_BODY_BYTES, nested_deeper_than, printable
from functions.domain.refs import DeadLetter
from platforms.local.files import append_jsonl

EVENT_GRID_WEBHOOK = "/runtime/webhooks/eventgrid"
MAX_HOST_JSON_DEPTH = 64  # Json.NET's default MaxDepth, which the Functions host reads requests with
logger = logging.getLogger("mlops.host")


def webhook_url(function_name: str) -> str:
    """The path Event Grid subscriptions deliver to for one function (below the host's base URL)."""
    return f"{EVENT_GRID_WEBHOOK}?functionName={function_name}"


class EventGridWebhook:
    """The webhook's request handler over the app's Event Grid functions; events it cannot hand to the
    worker go to ``dead_letters`` (a JSON-lines file), or are only logged when there is none."""

    def __init__(self, functions: Iterable[HostedFunction], dead_letters: Path | None = None) -> None:
        self.functions = [function for function in functions if function.trigger_type == EVENT_GRID_TRIGGER]
        self.by_name = {function.name.lower(): function for function in self.functions}
        self.dead_letters = dead_letters

    async def handle(self, request: Request) -> Response:
        name = request.query_params.get("functionName")
        function = self.by_name.get((name or "").lower())
        # Event Grid validates the endpoint itself (no functionName) or one function's URL: both handshake.
        if request.method == "OPTIONS" and (name is None or function is not None):
            return abuse_protection_handshake(request)
        if function is None:
            known = [f.name for f in self.functions]
            return error_response(404, f"cannot find Event Grid function {name!r}; Event Grid functions: {known}")
        event_type = request.headers.get("aeg-event-type", "")
        kind = event_type.lower()
        if kind == "unsubscribe":
            return Response(status_code=202)
        if kind not in ("subscriptionvalidation", "notification"):
            expected = "SubscriptionValidation, Notification or Unsubscribe"
            return error_response(400, f"the aeg-event-type header must be {expected}, got {event_type!r}")
        try:
            events = parse_events(await read_body(request, MAX_WEBHOOK_BODY_BYTES))
        except BodyTooLarge as exc:
            return error_response(413, str(exc))
        except ValueError as exc:
            return error_response(400, str(exc))
        if kind == "subscriptionvalidation":
            return validation_response(events)
        return await deliver(function, events, self.dead_letters)


async def deliver(function: HostedFunction, events: list[dict[str, Any]], dead_letters: Path | None = None) -> Response:
    """Invoke ``function`` once per event; one failure must not keep the rest of the batch from running."""
    failures = []
    for index, event in enumerate(events):
        try:
            argument = decode_event(event)
        except (ValueError, TypeError, RecursionError) as exc:
            record_undeliverable(dead_letters, function.name, event, f"cannot become the trigger argument: {exc}")
            continue
        try:
            await invoke(function, argument, f"EventGrid trigger fired at {datetime.now(UTC).isoformat()}")
        except Exception as exc:
            failures.append(f"event {printable(str(event.get('id', index)))!r}: {type(exc).__name__}: {exc}")
    if failures:
        # A 5xx makes Event Grid retry the delivery (and dead-letter it in the end), as on Azure.
        summary = f"{len(failures)} of {len(events)} events failed in Functions.{function.name}"
        return error_response(500, f"{summary}: {'; '.join(failures)}")
    return Response(status_code=202)


def record_undeliverable(path: Path | None, function: str, event: dict[str, Any], reason: str) -> None:
    """Event Grid's dead letter for an event the worker refused: the same bounded record as the app's."""
    at = datetime.now(UTC).isoformat()
    letter = DeadLetter.of(wire_id(event), wire_type(event), function, reason, at, event)
    logger.warning("event %s for %s not delivered: %s", letter.event_id, function, letter.reason)
    if path is not None:
        append_jsonl(path, {"at": at, "source": "host", **letter.to_json()})


def parse_events(body: bytes) -> list[dict[str, Any]]:
    """One event object (CloudEvents) or an array of them (Event Grid schema)."""
    try:
        payload = json.loads(body)
    except RecursionError:
        raise ValueError(f"the request body is nested deeper than {MAX_HOST_JSON_DEPTH} levels") from None
    except ValueError:
        raise ValueError("the request body is not JSON") from None
    if nested_deeper_than(payload, MAX_HOST_JSON_DEPTH):
        raise ValueError(f"the request body is nested deeper than {MAX_HOST_JSON_DEPTH} levels")
    events = payload if isinstance(payload, list) else [payload]
    if not all(isinstance(event, dict) for event in events):
        raise ValueError("the request body must be an event object or a JSON array of event objects")
    if len(events) > MAX_BATCH_EVENTS:
        raise ValueError(f"a delivery holds at most {MAX_BATCH_EVENTS} events, this one {len(events)}")
    return events


def validation_response(events: list[dict[str, Any]]) -> Response:
    data = events[0].get("data") if events else None
    code = data.get("validationCode") if isinstance(data, dict) else None
    if code is None:
        return error_response(400, "SubscriptionValidation needs data.validationCode in the first event")
    return JSONResponse({"validationResponse": code})


def abuse_protection_handshake(request: Request) -> Response:
    """CloudEvents 1.0 webhook validation: echo the origin, allow any rate."""
    origin = request.headers.get("webhook-request-origin")
    if not origin:
        return error_response(400, "OPTIONS needs a WebHook-Request-Origin header (CloudEvents abuse protection)")
    return Response(status_code=200, headers={"WebHook-Allowed-Origin": origin, "WebHook-Allowed-Rate": "*"})
