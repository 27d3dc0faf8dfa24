"""Event Grid triggers: the event as it came over the wire, handed to the service's delivery."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import azure.functions as func

from functions import bootstrap
from functions.service import delivery
from functions.service.invocations import invocation


def on_event(function_name: str, event: func.EventGridEvent | func.CloudEvent) -> str:
    """An Event Grid delivery (Event Grid schema or CloudEvent); returns the outcome."""
    with invocation(function_name):
        return delivery.receive(bootstrap.context(), function_name, event_payload(event)).value


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


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None
