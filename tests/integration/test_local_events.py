"""LocalEventBus against a real HTTP server on 127.0.0.1 standing in for the host's Event Grid webhook.

The retry schedule runs on a fake clock: the bus delivers what is due when the test says so
(``deliver_due``) and the test moves the clock to the next retry, so no test waits for a backoff
and none depends on how fast this machine is. One test runs the real background thread.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from platforms.local.events import LocalEventBus, event_time
from platforms.local.inference_server import free_port
from tests.doubles.clock import Clock
from tests.doubles.http_server import serving

pytestmark = pytest.mark.integration
RUN_COMPLETED = "Microsoft.MachineLearningServices.RunCompleted"


class FakeHost(ThreadingHTTPServer):
    """Answers each POST with the next scripted status (the last one repeats) and records the request."""

    daemon_threads = True

    def __init__(self, port: int, statuses: list[int]) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.statuses = list(statuses)
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def next_status(self) -> int:
        with self.lock:
            return self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]


class _Handler(BaseHTTPRequestHandler):
    server: FakeHost

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        url = urlsplit(self.path)
        status = self.server.next_status()
        with self.server.lock:
            self.server.requests.append(
                {
                    "path": url.path,
                    "query": parse_qs(url.query),
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "body": json.loads(body),
                    "status": status,
                }
            )
        payload = b'{"error": "scripted"}' if status >= 400 else b""
        self.send_response(status)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def fake_host(statuses: list[int], port: int = 0) -> Iterator[FakeHost]:
    host = FakeHost(port, statuses)
    with serving(host):
        yield host


MakeBus = Callable[..., LocalEventBus]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def make_bus(tmp_path: Path, clock: Clock) -> Iterator[MakeBus]:
    """Buses on the fake clock that deliver only when the test calls ``deliver_due`` (no thread)."""
    buses: list[LocalEventBus] = []

    def make(host_url: str, **options: Any) -> LocalEventBus:
        options = {
            "first_backoff_s": 0.05,
            "max_backoff_s": 0.2,
            "request_timeout_s": 5.0,
            "clock": clock,
            "deliver_in_background": False,
            **options,
        }
        bus = LocalEventBus(tmp_path, host_url, **options)
        buses.append(bus)
        return bus

    yield make
    for bus in buses:
        bus.close(timeout_s=0)


def run_until_idle(bus: LocalEventBus, clock: Clock, rounds: int = 100) -> list[datetime]:
    """Deliver what is due, move the clock to the next retry, again until nothing is queued; when each
    round of attempts was made."""
    attempted_at: list[datetime] = []
    for _ in range(rounds):
        if bus.deliver_due():
            attempted_at.append(clock.now)
        due = bus.next_due()
        if due is None:
            return attempted_at
        clock.now = max(clock.now, due)
    raise AssertionError(f"still retrying after {rounds} rounds")


def undelivered(tmp_path: Path) -> list[dict[str, Any]]:
    path = tmp_path / "undelivered.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def host_url(server: FakeHost) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"


def ms(milliseconds: float) -> timedelta:
    return timedelta(milliseconds=milliseconds)


def test_retries_server_errors_then_delivers_once_like_event_grid(make_bus, clock, tmp_path):
    start = clock.now
    with fake_host([500, 500, 202]) as server:
        bus = make_bus(host_url(server))
        event_id = bus.publish(RUN_COMPLETED, "experiments/e/runs/r", {"runId": "r"})
        attempted_at = run_until_idle(bus, clock)
        assert bus.flush(timeout_s=10)
    assert [r["status"] for r in server.requests] == [500, 500, 202]
    assert attempted_at == [start, start + ms(50), start + ms(150)]  # backoff 50 ms, then doubled
    for request in server.requests:
        assert request["path"] == "/runtime/webhooks/eventgrid"
        assert request["query"] == {"functionName": ["on_ml_event"]}
        assert request["headers"]["aeg-event-type"] == "Notification"
        assert request["headers"]["content-type"] == "application/json"
        [event] = request["body"]
        assert event["id"] == event_id  # a retry is the same event, so the handler can deduplicate
        assert event["eventType"] == RUN_COMPLETED
        assert event["data"] == {"runId": "r"}
    assert undelivered(tmp_path) == []


def test_delivers_once_the_host_comes_up(make_bus, clock, tmp_path):
    port = free_port()
    bus = make_bus(f"http://127.0.0.1:{port}")
    bus.publish("MLOps.BuildCompleted", "builds/1234", {"buildId": "1234", "result": "succeeded"})
    for _ in range(3):  # a few refused connections first
        assert bus.deliver_due() == 1
        next_due = bus.next_due()
        assert next_due is not None
        clock.now = next_due
    with fake_host([202], port) as server:
        assert bus.deliver_due() == 1
        assert bus.flush(timeout_s=10)
    assert len(server.requests) == 1
    assert server.requests[0]["query"] == {"functionName": ["on_build_event"]}
    assert undelivered(tmp_path) == []


def test_client_errors_are_not_retried_and_are_recorded(make_bus, clock, tmp_path):
    with fake_host([400, 202]) as server:
        bus = make_bus(host_url(server))
        event_id = bus.publish("Microsoft.ContainerRegistry.ImagePushed", "repo:1-r", {"action": "push"})
        assert run_until_idle(bus, clock) == [clock.now]
        assert bus.flush(timeout_s=10)
    assert len(server.requests) == 1
    assert server.requests[0]["query"] == {"functionName": ["on_registry_event"]}
    [record] = undelivered(tmp_path)
    assert record["event"]["id"] == event_id
    assert "HTTP 400" in record["reason"] and "not retried" in record["reason"]
    assert record["function"] == "on_registry_event"
    assert record["attempts"] == 1


def test_gives_up_after_the_retry_window_and_records_why(make_bus, clock, tmp_path):
    start = clock.now
    with fake_host([503]) as server:
        bus = make_bus(host_url(server), give_up_after_s=0.5)
        bus.publish(RUN_COMPLETED, "experiments/e/runs/r", {})
        attempted_at = run_until_idle(bus, clock)
        assert bus.flush(timeout_s=10)
    [record] = undelivered(tmp_path)
    assert record["reason"].startswith("gave up after")
    assert "HTTP 503" in record["reason"]
    assert record["attempts"] == len(server.requests) >= 3
    # 50, 100, 200 ms apart; one more 200 ms wait would end past the 500 ms window: given up at 350 ms.
    assert attempted_at == [start, start + ms(50), start + ms(150), start + ms(350)]
    assert record["reason"].startswith("gave up after 4 attempts")
    assert record["at"] == (start + ms(350)).isoformat()


def test_a_slow_retry_does_not_hold_back_other_events(make_bus, clock, tmp_path):
    # Event Grid delivers events independently; one event's backoff must not delay the next.
    start = clock.now
    with fake_host([500, 202]) as server:
        bus = make_bus(host_url(server), first_backoff_s=1.0, max_backoff_s=1.0)
        first = bus.publish(RUN_COMPLETED, "experiments/e/runs/1", {})
        second = bus.publish(RUN_COMPLETED, "experiments/e/runs/2", {})
        assert bus.deliver_due() == 2  # the first fails, the second is delivered at once
        assert bus.next_due() == start + timedelta(seconds=1)
        assert run_until_idle(bus, clock) == [start + timedelta(seconds=1)]
        assert bus.flush(timeout_s=10)
    delivered = [r["body"][0]["id"] for r in server.requests if r["status"] == 202]
    assert delivered == [second, first]


def test_nothing_is_attempted_before_it_is_due(make_bus, clock):
    with fake_host([500, 202]) as server:
        bus = make_bus(host_url(server), first_backoff_s=2.0, max_backoff_s=2.0)
        bus.publish(RUN_COMPLETED, "experiments/e/runs/r", {})
        assert bus.deliver_due() == 1
        clock.advance(seconds=1.999)
        assert bus.deliver_due() == 0
        clock.advance(seconds=0.001)
        assert bus.deliver_due() == 1
    assert [r["status"] for r in server.requests] == [500, 202]
    assert bus.next_due() is None


def test_event_times_come_from_the_injected_clock(make_bus, clock):
    with fake_host([202]) as server:
        bus = make_bus(host_url(server))
        bus.publish(RUN_COMPLETED, "experiments/e/runs/r", {})
        clock.advance(minutes=5)  # delivered later: the event keeps the time it was published at
        bus.deliver_due()
    [event] = server.requests[0]["body"]
    assert event["eventTime"] == event_time(clock.now - timedelta(minutes=5))


def test_close_records_what_was_not_delivered_and_refuses_new_events(make_bus, tmp_path):
    bus = make_bus(f"http://127.0.0.1:{free_port()}")
    event_id = bus.publish(RUN_COMPLETED, "experiments/e/runs/r", {})
    assert bus.deliver_due() == 1  # refused: a retry is scheduled
    bus.close(timeout_s=0)
    [record] = undelivered(tmp_path)
    assert record["event"]["id"] == event_id
    assert "closed before delivery" in record["reason"]
    assert "ConnectionError" in record["reason"]
    with pytest.raises(RuntimeError, match="closed"):
        bus.publish(RUN_COMPLETED, "experiments/e/runs/r", {})


def test_flush_returns_false_when_time_runs_out(make_bus):
    bus = make_bus(f"http://127.0.0.1:{free_port()}")
    bus.publish(RUN_COMPLETED, "experiments/e/runs/r", {})
    assert bus.deliver_due() == 1
    assert bus.flush(timeout_s=0) is False  # it gives up instead of waiting for the retries


def test_the_background_thread_delivers_with_retries_on_the_real_clock(tmp_path):
    """What the host runs: no fake clock, a thread that waits for each retry."""
    with fake_host([500, 202]) as server:
        bus = LocalEventBus(tmp_path, host_url(server), first_backoff_s=0.01, request_timeout_s=5.0)
        try:
            event_id = bus.publish(RUN_COMPLETED, "experiments/e/runs/r", {})
            assert bus.flush(timeout_s=30)
        finally:
            bus.close(timeout_s=0)
    assert [(r["status"], r["body"][0]["id"]) for r in server.requests] == [(500, event_id), (202, event_id)]
    assert undelivered(tmp_path) == []
