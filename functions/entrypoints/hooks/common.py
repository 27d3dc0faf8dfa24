"""What the CI hooks share: the BuildCompleted envelope, stable event ids, field readers, the hand-over."""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import azure.functions as func

from functions import bootstrap
from functions.domain import events as ev
from functions.entrypoints.limits import RequestRejected, parse_json
from functions.entrypoints.responses import json_response
from functions.service import delivery, handlers
from functions.service.results import Outcome

log = logging.getLogger("mlops.hooks")

BUILD_FUNCTION = "on_build_event"
SAFE_ID = re.compile(r"[A-Za-z0-9._-]{1,100}")


class InvalidHook(ValueError):
    """The body is not a delivery this hook understands (HTTP 400); the message says why."""


class NotABuild(Exception):
    """An authenticated delivery that starts nothing (another event type, a run still in progress)."""


def same(given: str, expected: str) -> bool:
    """Constant-time comparison; str.encode keeps non-ASCII input from raising in compare_digest."""
    return hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode("utf-8", "replace"))


def build_completed_envelope(event_id: str, data: dict[str, Any], source: str, moment: str = "") -> dict[str, Any]:
    """The MLOps.BuildCompleted event (Event Grid schema) the custom topic would deliver."""
    return {
        "id": event_id,
        "topic": source,
        "subject": f"builds/{data['buildId']}",
        "eventType": ev.BUILD_COMPLETED,
        "eventTime": moment or datetime.now(UTC).isoformat(),
        "data": data,
        "dataVersion": "1.0",
    }


def event_id(prefix: str, *parts: str) -> str:
    """A stable event id from the delivery's own ids: readable when safe, else hashed."""
    if all(SAFE_ID.fullmatch(part) for part in parts):
        return "-".join((prefix, *parts))
    return f"{prefix}-{hashlib.sha256(':'.join(parts).encode()).hexdigest()[:32]}"


def text(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        return ""
    return str(value).strip()


def id_text(value: Any, name: str) -> str:
    found = text(value)
    if not found:
        raise InvalidHook(f"payload has no {name} (a number or a string)")
    return found


def mapping(container: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = container.get(key)
    return value if isinstance(value, Mapping) else {}


def load_json(body: bytes) -> Any:
    """The delivery's JSON within the request limits; a body that is not JSON is an InvalidHook."""
    try:
        return parse_json(body)
    except RequestRejected as exc:
        raise InvalidHook("body must be JSON" if exc.reason == "not_json" else str(exc)) from None


def ignored(reason: str) -> func.HttpResponse:
    return json_response({"outcome": Outcome.IGNORED.value, "reason": reason}, 202)


def deliver(envelope: dict[str, Any]) -> func.HttpResponse:
    """Hand the event to the service as if Event Grid had delivered it to on_build_event."""
    data = envelope["data"]
    ctx = bootstrap.context()
    outcome = delivery.receive(ctx, BUILD_FUNCTION, envelope)
    answer: dict[str, Any] = {"outcome": outcome.value, "eventId": envelope["id"]}
    if outcome is Outcome.IGNORED:
        answer["reason"] = f"build {data['buildId']} result {data['result']}: no release"
    elif outcome is Outcome.DEAD_LETTERED:
        answer["reason"] = "the event could not be processed; see /api/dead-letters"
    else:
        event = ev.parse_event(envelope)  # parsed by the service a moment ago: it parses
        assert isinstance(event, ev.BuildCompleted)
        answer["releaseId"] = handlers.build_release_id(ctx, event)
    log.info("%s: build %s %s -> %s", envelope["topic"], data["buildId"], data["result"], outcome.value)
    return json_response(answer, 202)
