"""WebhookTarget against a real HTTP receiver on 127.0.0.1: what arrives, and how each failure reads.

Every failure must name the target and never its URL: a webhook URL is a credential, so the test
URL carries a ``sig`` query parameter as Teams Workflows URLs do, and no message may quote it.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import traceback
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from functions.domain.notifications import TARGET_FORMATS, Fact, Notification
from platforms.common.notify.webhook import NotificationFailed, Targets, WebhookTarget
from tests.doubles.http_server import serving
from tests.doubles.payload_schemas import validator

pytestmark = pytest.mark.integration
SECRET = "SECRET123"
PATH = "/workflows/0a1b2c3d4e/triggers/manual/paths/invoke"
QUERY = f"api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sig={SECRET}"
NOTIFICATION = Notification(
    kind="approval_requested",
    release_id="rel-7",
    state="awaiting_approval",
    title="Release rel-7 awaits approval",
    summary="Candidate beats champion <by 2%> & more.",
    url="https://mlops.example.com/releases/rel-7",
    at="2025-01-02T03:04:05+00:00",
    facts=(Fact("State", "awaiting approval"), Fact("Model", "diabetes:7")),
    evidence={"promote": True, "metric": "rmse", "champion": 55.1, "candidate": 53.9},
    lineage={"model": "diabetes:7"},
)


class Receiver(ThreadingHTTPServer):
    """Records each POST and answers with ``status`` (and ``body``) after ``delay_s``."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.status = 200
        self.body = b"ok"
        self.location = ""
        self.delay_s = 0.0
        self.stop_waiting = threading.Event()
        self.received: list[dict[str, Any]] = []

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}{PATH}?{QUERY}"

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up (the timeout test) breaks the pipe; that is expected, not news."""


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append({"path": self.path, "headers": dict(self.headers.items()), "body": body})
        if self.server.delay_s:
            self.server.stop_waiting.wait(self.server.delay_s)
        self.send_response(self.server.status)
        if self.server.location:
            self.send_header("Location", self.server.location)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(self.server.body)))
        self.end_headers()
        self.wfile.write(self.server.body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    with serving(server):
        try:
            yield server
        finally:
            server.stop_waiting.set()


def assert_keeps_the_url_secret(error: NotificationFailed, url: str) -> None:
    # The whole traceback, as a log would print it: no chained requests error may quote the URL either.
    printed = "".join(traceback.format_exception(error))
    host_port = url.split("://", 1)[1].split("/", 1)[0]
    for leak in (url, SECRET, QUERY, PATH, host_port):
        assert leak not in str(error), f"{leak!r} in {error}"
        assert leak not in printed, f"{leak!r} in the traceback"


@pytest.mark.parametrize("format_name", TARGET_FORMATS)
def test_each_format_arrives_as_documented_json(receiver: Receiver, format_name: str) -> None:
    WebhookTarget(f"{format_name}-ops", format_name, receiver.url).send(NOTIFICATION)
    (request,) = receiver.received
    assert request["path"] == f"{PATH}?{QUERY}"
    assert request["headers"]["Content-Type"] == "application/json"
    payload = json.loads(request["body"].decode("utf-8"))
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator(format_name).iter_errors(payload)]
    assert not errors
    if format_name == "json":
        assert payload["releaseId"] == "rel-7" and payload["summary"] == NOTIFICATION.summary
    if format_name == "slack":
        assert "&lt;by 2%&gt; &amp; more" in payload["blocks"][1]["text"]["text"]


def test_targets_deliver_to_the_named_webhook(receiver: Receiver) -> None:
    targets = Targets({"teams-ops": WebhookTarget("teams-ops", "teams", receiver.url)})
    targets.send("teams-ops", NOTIFICATION)
    assert len(receiver.received) == 1


def test_a_server_error_names_the_target_and_quotes_the_body_not_the_url(receiver: Receiver) -> None:
    receiver.status = 500
    receiver.body = f"boom\nwhile posting to {receiver.url} with sig={SECRET}".encode()
    with pytest.raises(NotificationFailed) as caught:
        WebhookTarget("teams-ops", "teams", receiver.url).send(NOTIFICATION)
    assert str(caught.value).startswith("teams-ops: HTTP 500: boom while posting to")
    assert_keeps_the_url_secret(caught.value, receiver.url)


def test_a_redirect_is_a_failure_and_is_not_followed(receiver: Receiver) -> None:
    receiver.status = 302
    receiver.location = f"http://127.0.0.1:{receiver.server_address[1]}/elsewhere"
    with pytest.raises(NotificationFailed) as caught:
        WebhookTarget("slack-ops", "slack", receiver.url).send(NOTIFICATION)
    assert str(caught.value) == "slack-ops: HTTP 302 (redirects are not followed)"
    assert [r["path"] for r in receiver.received] == [f"{PATH}?{QUERY}"]  # nothing went to /elsewhere
    assert_keeps_the_url_secret(caught.value, receiver.url)


def test_a_refused_connection_names_the_target_and_only_the_error_type() -> None:
    with socket.socket() as probe:  # a port that was free a moment ago, and that nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}{PATH}?{QUERY}"
    with pytest.raises(NotificationFailed) as caught:
        WebhookTarget("json-ops", "json", url, timeout_s=2).send(NOTIFICATION)
    assert str(caught.value) == "json-ops: could not reach the target (ConnectionError)"
    assert_keeps_the_url_secret(caught.value, url)


def test_a_slow_receiver_times_out_within_the_bound(receiver: Receiver) -> None:
    receiver.delay_s = 5.0
    started = time.monotonic()
    with pytest.raises(NotificationFailed) as caught:
        WebhookTarget("teams-ops", "teams", receiver.url, timeout_s=0.3).send(NOTIFICATION)
    assert time.monotonic() - started < 3.0
    assert str(caught.value) == "teams-ops: could not reach the target (ReadTimeout)"
    assert_keeps_the_url_secret(caught.value, receiver.url)
