"""``/runtime/webhooks/eventgrid``: the Event Grid extension's webhook, as the Functions host serves it.

``POST ?functionName=NAME`` is driven by the ``aeg-event-type`` header, as Event Grid sends it:

- ``SubscriptionValidation``: answer ``{"validationResponse": <data.validationCode>}`` without invoking;
- ``Notification``: invoke the function once per event (a body is one event object, CloudEvents style,
  or an array of them, Event Grid schema); 202 when all ran, else 500 naming each failed event, after
  the rest of the batch has still run;
- ``Unsubscribe``: 202, nothing invoked.

``OPTIONS`` answers the CloudEvents 1.0 abuse-protection handshake (echoing ``WebHook-Request-Origin``).
An unknown function, or one that is not an Event Grid function, is 404; a missing or unknown header or a
body that is not event JSON is 400. Function names match case-insensitively, as on the host.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from devhost.conversion import BodyTooLarge, decode_event, error_response, read_body
from devhost.indexing import EVENT_GRID_TRIGGER
from devhost.invocation import HostedFunction, invoke

EVENT_GRID_WEBHOOK = "/runtime/webhooks/eventgrid"


def webhook_url(function_name: str) -> str:
    """The path Event Grid subscriptions deliver to for one function (below the host's base URL)."""
    return f"{EVENT_GRID_WEBHOOK}?functionName={function_name}"


class EventGridWebhook:
    """The webhook's request handler over the app's Event Grid functions."""

    def __init__(self, functions: Iterable[HostedFunction]) -> None:
        self.functions = [function for function in functions if function.trigger_type == EVENT_GRID_TRIGGER]
        self.by_name = {function.name.lower(): function for function in self.functions}

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
            events = parse_events(await read_body(request))
        except BodyTooLarge as exc:
            return error_response(413, str(exc))
        except ValueError as exc:
            return error_response(400, str(exc))
        if kind == "subscriptionvalidation":
            return validation_response(events)
        return await deliver(function, events)


async def deliver(function: HostedFunction, events: list[dict[str, Any]]) -> Response:
    """Invoke ``function`` once per event; one failure must not keep the rest of the batch from running."""
    failures = []
    for index, event in enumerate(events):
        try:
            argument = decode_event(event)
            await invoke(function, argument, f"EventGrid trigger fired at {datetime.now(UTC).isoformat()}")
        except Exception as exc:
            failures.append(f"event {event.get('id', index)!r}: {type(exc).__name__}: {exc}")
    if failures:
        # A 5xx makes Event Grid retry the delivery (and dead-letter it in the end), as on Azure.
        summary = f"{len(failures)} of {len(events)} events failed in Functions.{function.name}"
        return error_response(500, f"{summary}: {'; '.join(failures)}")
    return Response(status_code=202)


def parse_events(body: bytes) -> list[dict[str, Any]]:
    """One event object (CloudEvents) or an array of them (Event Grid schema)."""
    try:
        payload = json.loads(body)
    except ValueError:
        raise ValueError("the request body is not JSON") from None
    events = payload if isinstance(payload, list) else [payload]
    if not all(isinstance(event, dict) for event in events):
        raise ValueError("the request body must be an event object or a JSON array of event objects")
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
