"""The local host's HTTP routes, index, admin API and same-site guard on tests/fixtures/sample_function_app.py,
in-process.

Starlette's TestClient drives the ASGI app directly (no socket, no server). Timers are off here (their
loop is tested on a fake clock in test_timers.py, under uvicorn in tests/integration/test_host_serving.py).
Each call returns once the app is done, including the run an admin call starts after its 202.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import azure.functions as func
import pytest
from starlette.testclient import TestClient

from devhost import conversion
from devhost import host as host_module
from devhost.eventgrid_webhook import EVENT_GRID_WEBHOOK as WEBHOOK
from devhost.host import build_host, serve
from devhost.site_guard import loopback_authorities, normal_authority
from tests import payloads as p
from tests.fixtures import sample_function_app as sample

BASE_URL = "http://127.0.0.1:7071"  # what build_host answers to by default (serve()'s default port)


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with TestClient(build_host(sample.app, run_timers=False), base_url=BASE_URL) as client:
        yield client


def _event() -> dict[str, Any]:
    return p.model_registered_envelope()


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


# --- Only this host, and no state change from another site (devhost/site_guard.py) -----------------------


def _approvals() -> int:
    return len(sample.APPROVALS)


def test_a_cross_site_form_post_is_403_before_the_function_runs(client: TestClient) -> None:
    before = _approvals()
    # What a page on another site can send without a CORS preflight: a form, text/plain, its Origin.
    headers = {"Origin": "http://evil.example", "Content-Type": "text/plain"}
    answer = client.post("/api/items/1/approve", content=b'{"approver": "mallory"}', headers=headers)

    assert answer.status_code == 403
    assert "another site" in answer.json()["error"] and "evil.example" in answer.json()["error"]
    assert _approvals() == before


@pytest.mark.parametrize(
    "origin",
    [
        "null",  # a sandboxed frame or a file:// page
        "http://127.0.0.1:8080",  # another port on this machine is another site
        "https://127.0.0.1:7071",  # another scheme
        "http://localhost.evil.example:7071",
        "http://127.0.0.1:7071/path",  # not an origin at all
        "",
    ],
)
def test_any_origin_but_the_hosts_own_is_refused_for_a_state_change(client: TestClient, origin: str) -> None:
    before = _approvals()
    answer = client.post("/api/items/1/approve", json={"approver": "mallory"}, headers={"Origin": origin})
    assert answer.status_code == 403 and "error" in answer.json()
    assert _approvals() == before


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
def test_every_state_changing_method_is_guarded(client: TestClient, method: str) -> None:
    path = "/api/orders/12/lines" if method == "PUT" else "/api/health"
    answer = client.request(method, path, headers={"Origin": "http://evil.example"})
    assert answer.status_code == 403


def test_the_admin_api_refuses_another_site_too(client: TestClient) -> None:
    ticks = len(sample.TICKS)
    answer = client.post("/admin/functions/tick", json={"input": ""}, headers={"Origin": "http://evil.example"})
    assert answer.status_code == 403
    assert len(sample.TICKS) == ticks


def test_sec_fetch_site_from_another_site_is_refused_without_an_origin(client: TestClient) -> None:
    answer = client.post("/api/items/1/approve", json={"approver": "x"}, headers={"Sec-Fetch-Site": "cross-site"})
    assert answer.status_code == 403


@pytest.mark.parametrize(
    "headers",
    [
        {},  # the CLI, the local event bus, curl
        {"Origin": "http://127.0.0.1:7071"},
        {"Origin": "http://LOCALHOST:7071", "Sec-Fetch-Site": "same-origin"},
        {"Sec-Fetch-Site": "none"},  # typed into the address bar
    ],
)
def test_same_origin_and_no_origin_state_changes_pass(client: TestClient, headers: dict[str, str]) -> None:
    before = _approvals()
    answer = client.post("/api/items/1/approve", json={"approver": "ana"}, headers=headers)
    assert answer.status_code == 201, answer.text
    assert _approvals() == before + 1


def test_a_cross_site_read_is_left_to_the_browser(client: TestClient) -> None:
    # No CORS headers come back, so the page cannot read the answer; the Host check stops rebinding.
    answer = client.get("/api/items/2", headers={"Origin": "http://evil.example"})
    assert answer.status_code == 200
    assert "access-control-allow-origin" not in answer.headers


@pytest.mark.parametrize("host", ["evil.example:7071", "evil.example", "127.0.0.1:7072", "127.0.0.1", "0.0.0.0:7071"])
def test_a_request_for_another_name_is_403_dns_rebinding(client: TestClient, host: str) -> None:
    before = _approvals()
    posted = client.post("/api/items/1/approve", json={"approver": "mallory"}, headers={"Host": host})
    read = client.get("/api/items/2", headers={"Host": host})
    index = client.get("/", headers={"Host": host})

    for answer in (posted, read, index):
        assert answer.status_code == 403
        assert "DNS rebinding" in answer.json()["error"] and "127.0.0.1:7071" in answer.json()["error"]
    assert _approvals() == before


def test_localhost_is_the_same_host(client: TestClient) -> None:
    answer = client.post("/api/items/1/approve", json={"approver": "ana"}, headers={"Host": "localhost:7071"})
    assert answer.status_code == 201


def test_the_allowed_authorities_are_the_ones_given() -> None:
    host = build_host(sample.app, run_timers=False, allowed_authorities=loopback_authorities(8123))
    with TestClient(host, base_url="http://localhost:8123") as other:
        assert other.get("/api/items").status_code == 200
        same = other.post("/api/items/1/approve", json={"approver": "ana"}, headers={"Origin": "http://localhost:8123"})
        assert same.status_code == 201
        default_port = other.post("/api/items/1/approve", json={"approver": "ana"}, headers={"Host": "127.0.0.1:7071"})
        assert default_port.status_code == 403


def test_allowed_authorities_must_be_names() -> None:
    for bad in ((), ("http://127.0.0.1:7071",), ("",)):
        with pytest.raises(ValueError, match="allowed_authorities"):
            build_host(sample.app, run_timers=False, allowed_authorities=bad)


def test_serve_answers_to_the_port_it_binds(monkeypatch: pytest.MonkeyPatch) -> None:
    served: list[Any] = []
    monkeypatch.setattr(host_module.uvicorn, "run", lambda app, **kwargs: served.append((app, kwargs)))
    serve(sample.app, port=8124, run_timers=False)

    ((app, kwargs),) = served
    assert kwargs["host"] == "127.0.0.1" and kwargs["port"] == 8124
    with TestClient(app, base_url="http://127.0.0.1:8124") as on_port:
        assert on_port.post("/api/items/1/approve", json={"approver": "ana"}).status_code == 201
        assert on_port.get("/api/items", headers={"Host": "127.0.0.1:7071"}).status_code == 403


@pytest.mark.parametrize(
    ("authority", "normal"),
    [("127.0.0.1:7071", "127.0.0.1:7071"), ("LocalHost:80", "localhost:80"), ("testserver", "testserver:80"),
     ("[::1]", "[::1]:80"), ("[::1]:7071", "[::1]:7071"), (" 127.0.0.1:7071 ", "127.0.0.1:7071")],
)  # fmt: skip
def test_authorities_compare_in_lower_case_with_the_default_port(authority: str, normal: str) -> None:
    assert normal_authority(authority) == normal
