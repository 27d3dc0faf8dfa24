"""The local host's HTTP routes, index and admin API on tests/fixtures/sample_function_app.py, in-process.

Starlette's TestClient drives the ASGI app directly (no socket, no server). Timers are off here (their
loop is tested on a fake clock in test_timers.py, under uvicorn in tests/integration/test_host_serving.py).
Each call returns once the app is done, including the run an admin call starts after its 202.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import azure.functions as func
import pytest
from starlette.testclient import TestClient

from devhost import conversion
from devhost.eventgrid_webhook import EVENT_GRID_WEBHOOK as WEBHOOK
from devhost.host import build_host, serve
from tests.fixtures import sample_function_app as sample

BASE_URL = "http://testserver"  # TestClient's


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with TestClient(build_host(sample.app, run_timers=False), base_url=BASE_URL) as client:
        yield client


def _event() -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "topic": "/subscriptions/x/resourceGroups/y/providers/Microsoft.MachineLearningServices/workspaces/ws",
        "subject": "models/diabetes-ridge/versions/3",
        "eventType": "Microsoft.MachineLearningServices.ModelRegistered",
        "eventTime": "2024-05-01T12:00:00.123456Z",
        "data": {"modelName": "diabetes-ridge", "modelVersion": "3"},
        "dataVersion": "2",
        "metadataVersion": "1",
    }


# --- Admin invocation, timers off --------------------------------------------------------------------


@pytest.fixture(scope="class")
def no_timer_runs_yet() -> None:
    sample.TICKS.clear()
    sample.STARTUP_RUNS.clear()


@pytest.mark.usefixtures("no_timer_runs_yet")
class TestTimersOff:
    def test_admin_invokes_a_timer_function_once(self, client: TestClient) -> None:
        answer = client.post("/admin/functions/tick", json={"input": ""})

        assert answer.status_code == 202
        assert len(sample.TICKS) == 1
        assert sample.TICKS[0].past_due is False
        assert not sample.STARTUP_RUNS, "timers are off: run_on_startup must not fire"

    def test_admin_invokes_an_event_grid_function(self, client: TestClient) -> None:
        event = _event()
        answer = client.post("/admin/functions/ModelRegistered", json={"input": event})
        assert answer.status_code == 202
        assert event["id"] in [e.id for name, e in sample.EVENTS if name == "ModelRegistered"]

    @pytest.mark.parametrize(
        ("path", "body", "status"),
        [
            ("/admin/functions/NoSuchFunction", {"input": ""}, 404),
            ("/admin/functions/get_item", {"input": ""}, 400),
            ("/admin/functions/ModelRegistered", {"input": 5}, 400),
            ("/admin/functions/ModelRegistered", {"input": "not json"}, 400),
            ("/admin/functions/ModelRegistered", ["not", "an", "object"], 400),
        ],
    )
    def test_admin_rejects_what_it_cannot_run(self, client: TestClient, path: str, body: Any, status: int) -> None:
        answer = client.post(path, json=body)
        assert answer.status_code == status
        assert "error" in answer.json()

    def test_timers_stay_off(self, client: TestClient) -> None:
        assert len(sample.TICKS) <= 1  # only the admin invocation above
        assert not sample.STARTUP_RUNS


# --- HTTP triggers --------------------------------------------------------------------------------------


def test_route_parameters_query_and_headers_reach_the_function(client: TestClient) -> None:
    answer = client.get("/api/items/2", params={"verbose": "yes"}, headers={"X-Trace": "abc"})

    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    assert answer.headers["x-item-id"] == "2"
    body = answer.json()
    assert body["item"] == {"id": "2", "name": "ridge-v2"}
    assert body["query"] == {"verbose": "yes"}
    assert body["x-trace"] == "abc"
    assert body["url"] == f"{BASE_URL}/api/items/2?verbose=yes"


def test_async_function_and_literal_route(client: TestClient) -> None:
    answer = client.get("/api/items")
    assert answer.status_code == 200
    assert answer.json()["items"] == ["1", "2"]


def test_literal_segments_win_over_parameters(client: TestClient) -> None:
    assert client.get("/api/items/special").json() == {"special": True}
    assert client.get("/api/ITEMS/Special/").json() == {"special": True}


def test_post_body_status_and_headers_round_trip(client: TestClient) -> None:
    answer = client.post("/api/items/1/approve", json={"approver": "ana"})

    assert answer.status_code == 201
    assert answer.headers["location"] == "/api/items/1"
    assert answer.json() == {"id": "1", "approver": "ana", "method": "POST"}


def test_function_status_code_is_passed_through(client: TestClient) -> None:
    answer = client.get("/api/items/9")
    assert answer.status_code == 404
    assert answer.json() == {"error": "no item 9"}


def test_mimetype_charset_and_cookies(client: TestClient) -> None:
    answer = client.get("/api/plain")
    assert answer.status_code == 203
    assert answer.headers["content-type"] == "text/html; charset=latin-1"
    assert answer.content == b"<p>hi</p>"
    assert answer.cookies["seen"] == "1"


def test_default_route_is_the_function_name_and_str_return_is_text(client: TestClient) -> None:
    for method in ("GET", "POST", "DELETE"):
        answer = client.request(method, "/api/health")
        assert answer.status_code == 200
        assert answer.text == "healthy"
        assert answer.headers["content-type"] == "text/plain; charset=utf-8"


def test_wrong_method_is_405_with_allow(client: TestClient) -> None:
    answer = client.delete("/api/items/1/approve")
    assert answer.status_code == 405
    assert answer.headers["allow"] == "POST"
    assert "error" in answer.json()


@pytest.mark.parametrize("path", ["/api/nothing-here", "/api/items/1/approve/extra", "/api/orders/abc", "/nowhere"])
def test_unknown_route_is_404_json(client: TestClient, path: str) -> None:
    answer = client.get(path)
    assert answer.status_code == 404
    assert "error" in answer.json()


def test_constrained_and_optional_parameters(client: TestClient) -> None:
    with_part = client.put("/api/orders/12/lines")
    without_part = client.get("/api/orders/12")
    assert with_part.json() == {"route_params": {"number": "12", "part": "lines"}}
    assert without_part.json() == {"route_params": {"number": "12"}}


def test_an_exception_in_the_function_is_500_json(client: TestClient) -> None:
    answer = client.get("/api/boom")
    assert answer.status_code == 500
    error = answer.json()["error"]
    assert "Functions.boom" in error
    assert "RuntimeError: the handler blew up" in error


def test_index_lists_the_functions(client: TestClient) -> None:
    functions = {entry["name"]: entry for entry in client.get("/").json()["functions"]}

    assert functions["approve_item"] == {
        "name": "approve_item",
        "trigger": "httpTrigger",
        "route": "/api/items/{id}/approve",
        "methods": ["POST"],
    }
    assert functions["ModelRegistered"]["webhook"] == f"{WEBHOOK}?functionName=ModelRegistered"
    assert functions["tick"] == {
        "name": "tick",
        "trigger": "timerTrigger",
        "schedule": "*/1 * * * * *",
        "runOnStartup": False,
    }


# --- Start-up checks ------------------------------------------------------------------------------------


def test_serve_refuses_to_bind_anything_but_loopback() -> None:
    with pytest.raises(ValueError, match=r"127\.0\.0\.1"):
        serve(sample.app, host="0.0.0.0")


def test_an_app_that_does_not_index_is_refused_at_build_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_SUCH_SCHEDULE_SETTING", raising=False)
    app = func.FunctionApp()

    @app.timer_trigger(schedule="%NO_SUCH_SCHEDULE_SETTING%", arg_name="timer")
    def nightly(timer: func.TimerRequest) -> None: ...

    with pytest.raises(ValueError, match="does not index") as refused:
        build_host(app)
    assert "cannot load the nightly function" in str(refused.value)
    assert "app setting 'NO_SUCH_SCHEDULE_SETTING', which is not set" in str(refused.value)


def test_a_body_past_the_hosts_limit_is_413_before_it_is_buffered(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(conversion, "MAX_HOST_BODY_BYTES", 32)
    declared = client.post("/api/items/1/approve", content=b"x" * 33)
    streamed = client.post("/api/items/1/approve", content=iter([b"x" * 20, b"x" * 20]))  # chunked
    for response in (declared, streamed):
        assert response.status_code == 413
        assert response.json() == {"error": "the request body is larger than the host's limit of 32 bytes"}
    assert client.post("/api/items/1/approve", json={"approver": "ana"}).status_code == 201
