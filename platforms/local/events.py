"""The local event bus: Event Grid–schema events POSTed to the host's Event Grid webhook.

This is the local stand-in for Event Grid and its subscriptions (see infra): each event type
is routed to one function of the host (`mlops up`, or `func start`) through the same webhook
Event Grid uses, ``POST /runtime/webhooks/eventgrid?functionName=<fn>`` with
``aeg-event-type: Notification`` and a JSON array body. Delivery follows Event Grid's retry
policy in miniature: retry with exponential backoff on 5xx, 408, 429 and connection errors,
no retry on other 4xx, give up after a bounded time. An event that is not delivered is
appended to ``<home>/undelivered.jsonl`` with the reason, the local dead-letter record.
Event times and the retry schedule come from one injected clock (``functions.ports.Clock``).
"""

from __future__ import annotations

import atexit
import heapq
import itertools
import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests

from functions.ports import Clock
from platforms.local.chaos import EventChaos
from platforms.local.files import append_jsonl

logger = logging.getLogger("mlops.events")

DEFAULT_HOST_URL = "http://127.0.0.1:7071"
UNDELIVERED_FILE = "undelivered.jsonl"
_SUBSCRIPTION = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/local/providers"
ML_TOPIC = f"{_SUBSCRIPTION}/Microsoft.MachineLearningServices/workspaces/local"
ACR_TOPIC = f"{_SUBSCRIPTION}/Microsoft.ContainerRegistry/registries/local"
BUILDS_TOPIC = f"{_SUBSCRIPTION}/Microsoft.EventGrid/topics/mlops-builds"
STORAGE_TOPIC = f"{_SUBSCRIPTION}/Microsoft.Storage/storageAccounts/local"
# Event Grid retries these as well as 5xx; every other 4xx is final.
_RETRIED_CLIENT_ERRORS = {408, 429}


@dataclass(frozen=True)
class Route:
    """One Event Grid subscription: the event types it takes, the function it calls, its source."""

    prefix: str
    function: str
    topic: str
    data_version: str


ROUTES: tuple[Route, ...] = (
    Route("MLOps.", "on_build_event", BUILDS_TOPIC, "1.0"),
    Route("Microsoft.MachineLearningServices.", "on_ml_event", ML_TOPIC, "2"),
    Route("Microsoft.ContainerRegistry.", "on_registry_event", ACR_TOPIC, "1.0"),
    Route("Microsoft.Storage.", "on_storage_event", STORAGE_TOPIC, ""),
)


def route_for(event_type: str) -> Route:
    for route in ROUTES:
        if event_type.startswith(route.prefix):
            return route
    known = ", ".join(f"{route.prefix}*" for route in ROUTES)
    raise ValueError(f"no subscription takes event type {event_type!r}; routed types: {known}")


def event_time(moment: datetime | None = None) -> str:
    """Event Grid's timestamp format: UTC with seven fractional digits, e.g. 2026-11-26T13:00:00.1234567Z."""
    moment = (moment or datetime.now(UTC)).astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def build_event(
    event_type: str,
    subject: str,
    data: dict[str, Any],
    event_id: str | None = None,
    moment: datetime | None = None,
) -> dict[str, Any]:
    """The Event Grid envelope Azure would send for this event (topic and dataVersion by source)."""
    route = route_for(event_type)
    return {
        "id": event_id or str(uuid.uuid4()),
        "topic": route.topic,
        "subject": subject,
        "eventType": event_type,
        "eventTime": event_time(moment),
        "data": data,
        "dataVersion": route.data_version,
        "metadataVersion": "1",
    }


def webhook_url(host_url: str, function: str) -> str:
    return f"{host_url.rstrip('/')}/runtime/webhooks/eventgrid?functionName={function}"


@dataclass(order=True)
class _Delivery:
    due: datetime
    sequence: int
    event: dict[str, Any] = field(compare=False)
    function: str = field(compare=False)
    first_attempt: datetime | None = field(compare=False, default=None)
    attempts: int = field(compare=False, default=0)
    backoff_s: float = field(compare=False, default=0.0)
    last_error: str = field(compare=False, default="")


def system_clock() -> datetime:
    return datetime.now(UTC)


class LocalEventBus:
    """Publisher for the local platform: queue an event, deliver it to the host in the background.

    ``clock`` gives the events' times and drives the retry schedule: when an attempt is due, the
    backoff after a failure and the give-up deadline (``give_up_after_s`` after the first attempt).
    With ``deliver_in_background=False`` no thread is started: the caller runs what is due with
    ``deliver_due()``, so a test moves a fake clock and delivers without waiting for real time.
    ``flush`` and ``close`` wait in real time for the background thread, whatever the clock says.
    """

    def __init__(
        self,
        home: Path,
        host_url: str = DEFAULT_HOST_URL,
        give_up_after_s: float = 300.0,
        first_backoff_s: float = 0.2,
        max_backoff_s: float = 10.0,
        request_timeout_s: float = 30.0,
        *,
        clock: Clock = system_clock,
        deliver_in_background: bool = True,
        chaos: EventChaos | None = None,
    ) -> None:
        self.home = Path(home)
        self.host_url = host_url
        self.give_up_after_s = give_up_after_s
        self.first_backoff_s = first_backoff_s
        self.max_backoff_s = max_backoff_s
        self.request_timeout_s = request_timeout_s
        self.clock = clock
        self.deliver_in_background = deliver_in_background
        self.chaos = chaos  # MLOPS_LOCAL_EVENT_CHAOS: drops, duplicates, delays, reorders (tests only)
        self._queue: list[_Delivery] = []
        self._in_flight = 0
        self._sequence = itertools.count()
        self._condition = threading.Condition()
        self._closed = False
        self._started = False
        self._thread: threading.Thread | None = None

    @property
    def undelivered_path(self) -> Path:
        return self.home / UNDELIVERED_FILE

    def publish(self, event_type: str, subject: str, data: dict[str, Any], event_id: str | None = None) -> str:
        now = self.clock()
        event = build_event(event_type, subject, data, event_id=event_id, moment=now)
        function = route_for(event_type).function
        with self._condition:
            if self._closed:
                raise RuntimeError(f"event bus is closed; {event_type} for {subject!r} was not sent")
            for delay_s in self.chaos.deliveries(event) if self.chaos else [0.0]:
                due = now + timedelta(seconds=delay_s)
                heapq.heappush(self._queue, _Delivery(due, next(self._sequence), event, function))
            if not self._started:
                self._started = True
                if self.deliver_in_background:
                    self._thread = threading.Thread(target=self._deliver_forever, name="mlops-event-bus", daemon=True)
                    self._thread.start()
                # The thread is a daemon; at exit, whatever is still queued is recorded, not dropped.
                atexit.register(self.close, 0.0)
            self._condition.notify_all()
        logger.debug("queued %s %s (%s) for %s", event_type, subject, event["id"], function)
        return str(event["id"])

    def deliver_due(self) -> int:
        """Attempt, in this thread, every delivery that is due by the clock; the number attempted.

        A failed attempt that is retried is scheduled on the clock (it is not tried again in this call).
        """
        with self._condition:
            now = self.clock()
            due: list[_Delivery] = []
            while not self._closed and self._queue and self._queue[0].due <= now:
                due.append(heapq.heappop(self._queue))
            self._in_flight += len(due)
        for delivery in due:
            self._deliver(delivery)
        return len(due)

    def next_due(self) -> datetime | None:
        """When the next queued delivery is due (None when nothing is queued)."""
        with self._condition:
            return self._queue[0].due if self._queue else None

    def flush(self, timeout_s: float = 30.0) -> bool:
        """Wait until every queued event is delivered or given up; False if time ran out first."""
        with self._condition:
            return self._condition.wait_for(lambda: not self._queue and not self._in_flight, timeout_s)

    def close(self, timeout_s: float = 5.0) -> None:
        """Deliver what can be delivered within ``timeout_s``; record the rest as undelivered."""
        deadline = time.monotonic() + timeout_s
        self.flush(timeout_s)
        with self._condition:
            if self._closed:
                return
            self._closed = True
            self._condition.notify_all()
        if self._thread is not None:
            # An attempt in flight finishes on its own and records itself if it needed a retry.
            self._thread.join(max(deadline - time.monotonic(), 1.0))
        with self._condition:
            left, self._queue = self._queue, []
        for delivery in left:
            self._record_undelivered(delivery, "event bus closed before delivery" + _last(delivery))

    def _deliver_forever(self) -> None:
        while True:
            with self._condition:
                while not self._closed and (not self._queue or self._queue[0].due > self.clock()):
                    wait_s = (self._queue[0].due - self.clock()).total_seconds() if self._queue else None
                    self._condition.wait(wait_s)
                if self._closed:
                    return
                delivery = heapq.heappop(self._queue)
                self._in_flight += 1
            self._deliver(delivery)

    def _deliver(self, delivery: _Delivery) -> None:
        """One attempt of a delivery taken off the queue (counted in flight); requeued if it is retried."""
        try:
            retry = self._attempt(delivery)
        except Exception as exc:  # a bug here must not kill delivery of every later event
            logger.exception("event delivery failed unexpectedly")
            self._record_undelivered(delivery, f"delivery error: {exc!r}")
            retry = False
        with self._condition:
            self._in_flight -= 1
            if retry and self._closed:
                self._record_undelivered(delivery, "event bus closed before delivery" + _last(delivery))
            elif retry:
                heapq.heappush(self._queue, delivery)
            self._condition.notify_all()

    def _attempt(self, delivery: _Delivery) -> bool:
        """POST once; True when the event should be tried again later (``delivery.due`` says when)."""
        first_attempt = delivery.first_attempt = delivery.first_attempt or self.clock()
        delivery.attempts += 1
        try:
            response = requests.post(
                webhook_url(self.host_url, delivery.function),
                json=[delivery.event],
                headers={"aeg-event-type": "Notification"},
                timeout=self.request_timeout_s,
            )
        except requests.RequestException as exc:
            error = f"{type(exc).__name__}: {exc}"
        else:
            if 200 <= response.status_code < 300:
                logger.debug("delivered %s to %s", delivery.event["id"], delivery.function)
                return False
            error = f"HTTP {response.status_code}: {response.text[:300]}"
            if response.status_code < 500 and response.status_code not in _RETRIED_CLIENT_ERRORS:
                self._record_undelivered(delivery, f"rejected, not retried: {error}")
                return False
        delivery.last_error = error
        now = self.clock()
        elapsed = (now - first_attempt).total_seconds()
        delivery.backoff_s = min(self.max_backoff_s, delivery.backoff_s * 2 or self.first_backoff_s)
        if elapsed + delivery.backoff_s > self.give_up_after_s:
            self._record_undelivered(
                delivery, f"gave up after {delivery.attempts} attempts in {elapsed:.1f} s: {error}"
            )
            return False
        logger.warning(
            "delivery of %s to %s failed (%s); retry in %.1f s",
            delivery.event["eventType"],
            delivery.function,
            error,
            delivery.backoff_s,
        )
        delivery.due = now + timedelta(seconds=delivery.backoff_s)
        return True

    def _record_undelivered(self, delivery: _Delivery, reason: str) -> None:
        logger.error("event %s (%s) not delivered: %s", delivery.event["id"], delivery.event["eventType"], reason)
        append_jsonl(
            self.undelivered_path,
            {
                "at": self.clock().astimezone(UTC).isoformat(),
                "reason": reason,
                "function": delivery.function,
                "url": webhook_url(self.host_url, delivery.function),
                "attempts": delivery.attempts,
                "event": delivery.event,
            },
        )


def _last(delivery: _Delivery) -> str:
    return f" (last error: {delivery.last_error})" if delivery.last_error else ""
