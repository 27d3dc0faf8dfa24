"""RecordingPublisher: the Publisher double the local adapters' tests share.

It records the Event Grid envelope the local bus would send (built by the bus's own
``build_event``), so tests check the exact payload without a host to deliver to.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from platforms.local.events import build_event


class RecordingPublisher:
    """Implements functions.ports.Publisher; keeps every event, safe to publish from threads."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self._changed = threading.Condition()

    def publish(self, event_type: str, subject: str, data: dict[str, Any], event_id: str | None = None) -> str:
        event = build_event(event_type, subject, data, event_id=event_id)
        with self._changed:
            self.events.append(event)
            self._changed.notify_all()
        return str(event["id"])

    def of_type(self, event_type: str) -> list[dict[str, Any]]:
        with self._changed:
            return [event for event in self.events if event["eventType"] == event_type]

    def wait_for(self, match: Callable[[dict[str, Any]], bool], timeout_s: float = 60.0) -> dict[str, Any]:
        """The first recorded event ``match`` accepts, waiting up to ``timeout_s`` for it."""
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while True:
                found = next((event for event in self.events if match(event)), None)
                if found is not None:
                    return found
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    seen = [(event["eventType"], event["subject"]) for event in self.events]
                    raise AssertionError(f"no matching event within {timeout_s} s; published: {seen}")
                self._changed.wait(remaining)
