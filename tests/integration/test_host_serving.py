"""The devhost serving tests/fixtures/sample_function_app.py with uvicorn on 127.0.0.1, timers on.

Only what needs a real server is here: a function calling back into the host over HTTP, and timers
firing on the real clock under uvicorn's lifespan. Everything else about the host runs in-process
(tests/unit/test_host_app.py, test_eventgrid_webhook.py, test_routes.py, test_timers.py).

The socket is bound and listening before uvicorn starts, so requests wait in its backlog instead of
the test polling for start-up; timer runs are awaited on the sample app's condition variable, with a
deadline only as a guard against a hang.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta

import azure.functions as func
import pytest
import requests
import uvicorn
from azure.functions.timer import TimerRequest as WorkerTimerRequest

from devhost.host import build_host
from devhost.site_guard import loopback_authorities
from tests.fixtures import sample_function_app as sample

pytestmark = pytest.mark.integration

GUARD_S = 10  # fails a hung test; a passing one never waits this long


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))  # the port is ours from here on: no race with other processes
    sock.listen()
    port = sock.getsockname()[1]
    app = build_host(sample.app, run_timers=True, allowed_authorities=loopback_authorities(port))
    config = uvicorn.Config(app, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=GUARD_S)
        sock.close()
        assert not thread.is_alive(), "the host did not shut down"


def _wait_for_timer_runs(runs: list[func.TimerRequest], count: int) -> None:
    with sample.RECORDED:
        assert sample.RECORDED.wait_for(lambda: len(runs) >= count, timeout=GUARD_S), f"fewer than {count} runs"


def test_a_sync_function_can_call_back_into_the_host(base_url: str) -> None:
    answer = requests.get(f"{base_url}/api/proxy/1", timeout=GUARD_S)
    assert answer.status_code == 200
    assert answer.json() == {"status": 200, "upstream": answer.json()["upstream"]}
    assert answer.json()["upstream"]["item"]["name"] == "ridge-v1"


def test_the_timer_fires_on_its_own_every_second(base_url: str) -> None:
    seen = len(sample.TICKS)
    _wait_for_timer_runs(sample.TICKS, seen + 2)

    latest = sample.TICKS[-1]
    assert isinstance(latest, func.TimerRequest)
    assert isinstance(latest, WorkerTimerRequest)  # the worker's class, which carries the schedule fields
    assert latest.past_due is False
    assert latest.schedule == {"AdjustForDST": True}
    # As on the host: the status the previous run saved, so Next is the occurrence now running.
    previous = datetime.fromisoformat(latest.schedule_status["Last"])
    current = datetime.fromisoformat(latest.schedule_status["Next"])
    assert current - previous == timedelta(seconds=1)
    assert current.microsecond == 0
    assert datetime.fromisoformat(latest.schedule_status["LastUpdated"]) >= previous


def test_run_on_startup_runs_once_at_start(base_url: str) -> None:
    _wait_for_timer_runs(sample.STARTUP_RUNS, 1)
    assert len(sample.STARTUP_RUNS) == 1
    assert sample.STARTUP_RUNS[0].past_due is False
