"""ACI staging followed with the real readiness probe (platforms.common.readiness.http_ok) and the real
clock: each look is one GET of the group's health route, whatever the server does, and never a wait.
The group's FQDN is pointed at 127.0.0.1, where a stand-in for azmlinfsrv listens on the scoring
port (the unit tests script the probe instead)."""

from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest

from functions.domain.refs import Operation
from platforms.azure.staging import SCORING_PORT, AciStaging, group_name
from tests.doubles.azure_mgmt import FakeContainerInstanceClient
from tests.doubles.http_server import serving
from tests.unit.test_azure_staging import IMAGE, MODEL, RELEASE, SETTINGS

pytestmark = pytest.mark.integration


class StandIn(BaseHTTPRequestHandler):
    """azmlinfsrv's ``GET /``: 503 until score.py's init() ran (``ready``), then 200."""

    ready: ClassVar[threading.Event] = threading.Event()
    seen: ClassVar[list[str]] = []

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        StandIn.seen.append(self.path)
        self.send_response(200 if StandIn.ready.is_set() else 503)
        self.send_header("Content-Length", "0")
        self.end_headers()


def port_is_free() -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as HTTPServer binds: TIME_WAIT is fine
        try:
            probe.bind(("127.0.0.1", SCORING_PORT))
        except OSError:
            return False
    return True


@pytest.fixture
def staged() -> tuple[AciStaging, Operation]:
    """The release's group, provisioned, its FQDN on 127.0.0.1; the default (real) readiness probe."""
    if not port_is_free():
        pytest.skip(f"port {SCORING_PORT} is in use on this machine")
    client = FakeContainerInstanceClient()
    staging = AciStaging(SETTINGS, client)
    operation = staging.begin_staging(RELEASE, IMAGE, MODEL)
    client.container_groups.groups[(SETTINGS.aci_resource_group, group_name(RELEASE))].ip_address.fqdn = "127.0.0.1"
    return staging, operation


def test_each_look_is_one_probe_until_the_server_answers_200(staged: tuple[AciStaging, Operation]) -> None:
    staging, operation = staged
    StandIn.ready.clear()
    StandIn.seen.clear()
    httpd = ThreadingHTTPServer(("127.0.0.1", SCORING_PORT), StandIn)
    httpd.daemon_threads = True
    with serving(httpd):
        waiting = staging.follow(operation)
        StandIn.ready.set()
        progress = staging.follow(operation)

    assert waiting.state == "running" and f"http://127.0.0.1:{SCORING_PORT}/ to answer 200" in waiting.detail
    assert progress.state == "succeeded" and progress.endpoint is not None
    assert progress.endpoint.scoring_url == f"http://127.0.0.1:{SCORING_PORT}/score"
    assert StandIn.seen == ["/", "/"]  # one GET per look, no retries inside


def test_a_look_at_a_group_nothing_answers_on_returns_at_once(staged: tuple[AciStaging, Operation]) -> None:
    staging, operation = staged

    started = time.monotonic()
    progress = staging.follow(operation)  # connection refused: the container is still starting

    assert progress.state == "running"
    assert time.monotonic() - started < 2  # one refused GET, not a poll until some deadline
