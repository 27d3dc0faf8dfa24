"""The devhost serving tests/fixtures/sample_function_app.py over real HTTP on 127.0.0.1.

uvicorn runs the host in a background thread: first with timers off (class-scoped, for admin
invocation, torn down before the rest), then with timers on for the rest of the module. The sample
functions record into module-level lists the tests read. Waits are polls with deadlines.
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import azure.functions as func
import pytest
import requests
import uvicorn

from devhost.host import PAST_DUE_TOLERANCE, RouteTemplate, build_host, following_occurrence, is_past_due, serve
from tests.fixtures import sample_function_app as sample

pytestmark = pytest.mark.integration

WEBHOOK = "/runtime/webhooks/eventgrid"


def _run_server(run_timers: bool) -> Iterator[str]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))  # the port is ours from here on: no race with other processes
    port = sock.getsockname()[1]
    config = uvicorn.Config(build_host(sample.app, run_timers=run_timers), log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    _wait_for(lambda: server.started, timeout=10, what="uvicorn to start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
        assert not thread.is_alive(), "the host did not shut down"


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    yield from _run_server(run_timers=True)


def _wait_for(condition: Callable[[], Any], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


def _event(fail: bool = False) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "topic": "/subscriptions/x/resourceGroups/y/providers/Microsoft.MachineLearningServices/workspaces/ws",
        "subject": "models/diabetes-ridge/versions/3",
        "eventType": "Microsoft.MachineLearningServices.ModelRegistered",
        "eventTime": "2024-05-01T12:00:00.123456Z",
        "data": {"modelName": "diabetes-ridge", "modelVersion": "3", "fail": fail},
        "dataVersion": "2",
        "metadataVersion": "1",
    }


def _cloud_event() -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": "/subscriptions/x/resourceGroups/y/providers/Microsoft.MachineLearningServices/workspaces/ws",
        "type": "Microsoft.MachineLearningServices.ModelDeployed",
        "time": "2024-05-01T12:00:00Z",
        "subject": "endpoints/diabetes/deployments/blue",
        "data": {"endpoint": "diabetes"},
        "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    }


def _notify(base_url: str, function: str, body: Any, event_type: str | None = "Notification") -> requests.Response:
    headers = {"aeg-event-type": event_type} if event_type is not None else {}
    return requests.post(
        f"{base_url}{WEBHOOK}", params={"functionName": function}, json=body, headers=headers, timeout=5
    )


def _received(function: str) -> list[str]:
    return [event.id for name, event in sample.EVENTS if name == function]


# --- Timers off: admin invocation (runs first, so no timer of the main host interferes) -----------------


@pytest.fixture(scope="class")
def quiet_url() -> Iterator[str]:
    sample.TICKS.clear()
    sample.STARTUP_RUNS.clear()
    yield from _run_server(run_timers=False)


class TestTimersOff:
    def test_admin_invokes_a_timer_function_once(self, quiet_url: str) -> None:
        answer = requests.post(f"{quiet_url}/admin/functions/tick", json={"input": ""}, timeout=5)

        assert answer.status_code == 202
        _wait_for(lambda: sample.TICKS, timeout=5, what="the invoked timer function")
        assert len(sample.TICKS) == 1
        assert sample.TICKS[0].past_due is False
        assert not sample.STARTUP_RUNS, "timers are off: run_on_startup must not fire"

    def test_admin_invokes_an_event_grid_function(self, quiet_url: str) -> None:
        event = _event()
        answer = requests.post(f"{quiet_url}/admin/functions/ModelRegistered", json={"input": event}, timeout=5)
        assert answer.status_code == 202
        _wait_for(lambda: event["id"] in _received("ModelRegistered"), timeout=5, what="the invoked function")

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
    def test_admin_rejects_what_it_cannot_run(self, quiet_url: str, path: str, body: Any, status: int) -> None:
        answer = requests.post(f"{quiet_url}{path}", json=body, timeout=5)
        assert answer.status_code == status
        assert "error" in answer.json()

    def test_timers_stay_off(self, quiet_url: str) -> None:
        assert len(sample.TICKS) <= 1  # only the admin invocation above
        assert not sample.STARTUP_RUNS


# --- Event Grid webhook ---------------------------------------------------------------------------------


def test_subscription_validation_returns_the_code_without_invoking(base_url: str) -> None:
    before = len(sample.EVENTS)
    validation = {
        "id": "2d1781af-3a4c-4d7c-bd0c-e34b19da4e66",
        "topic": "/subscriptions/x",
        "subject": "",
        "data": {"validationCode": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6", "validationUrl": "https://example"},
        "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent",
        "eventTime": "2024-05-01T12:00:00Z",
        "dataVersion": "2",
    }

    answer = _notify(base_url, "ModelRegistered", [validation], event_type="SubscriptionValidation")

    assert answer.status_code == 200
    assert answer.json() == {"validationResponse": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6"}
    assert len(sample.EVENTS) == before


def test_subscription_validation_without_a_code_is_a_bad_request(base_url: str) -> None:
    answer = _notify(base_url, "ModelRegistered", [{"id": "1", "data": {}}], event_type="SubscriptionValidation")
    assert answer.status_code == 400
    assert "validationCode" in answer.json()["error"]


def test_notification_with_one_event_object_invokes_once(base_url: str) -> None:
    event = _event()

    answer = _notify(base_url, "ModelRegistered", event)

    assert answer.status_code == 202
    assert _received("ModelRegistered").count(event["id"]) == 1
    delivered = next(e for name, e in sample.EVENTS if e.id == event["id"])
    assert isinstance(delivered, func.EventGridEvent)
    assert delivered.event_type == event["eventType"]
    assert delivered.subject == event["subject"]
    assert delivered.get_json()["modelVersion"] == "3"
    assert delivered.event_time == datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)


def test_notification_with_an_array_invokes_once_per_event(base_url: str) -> None:
    events = [_event(), _event(), _event()]

    answer = _notify(base_url, "ModelRegistered", events)

    assert answer.status_code == 202
    received = _received("ModelRegistered")
    assert [received.count(event["id"]) for event in events] == [1, 1, 1]


def test_function_name_is_case_insensitive(base_url: str) -> None:
    event = _event()
    assert _notify(base_url, "modelregistered", [event]).status_code == 202
    assert event["id"] in _received("ModelRegistered")


def test_a_failing_event_gives_500_and_the_rest_of_the_batch_still_runs(base_url: str) -> None:
    first, failing, last = _event(), _event(fail=True), _event()

    answer = _notify(base_url, "ModelRegistered", [first, failing, last])

    assert answer.status_code == 500
    error = answer.json()["error"]
    assert failing["id"] in error
    assert "ValueError" in error
    assert "1 of 3" in error
    received = _received("ModelRegistered")
    assert {first["id"], failing["id"], last["id"]} <= set(received)


def test_unsubscribe_is_accepted(base_url: str) -> None:
    before = len(sample.EVENTS)
    answer = _notify(base_url, "ModelRegistered", [_event()], event_type="Unsubscribe")
    assert answer.status_code == 202
    assert len(sample.EVENTS) == before


@pytest.mark.parametrize("event_type", [None, "SomethingElse", ""])
def test_missing_or_unknown_event_type_header_is_a_bad_request(base_url: str, event_type: str | None) -> None:
    before = len(sample.EVENTS)
    answer = _notify(base_url, "ModelRegistered", [_event()], event_type=event_type)
    assert answer.status_code == 400
    assert "aeg-event-type" in answer.json()["error"]
    assert len(sample.EVENTS) == before


@pytest.mark.parametrize("function", ["NoSuchFunction", "get_item", "tick"])
def test_unknown_or_non_event_grid_function_is_not_found(base_url: str, function: str) -> None:
    answer = _notify(base_url, function, [_event()])
    assert answer.status_code == 404
    assert function in answer.json()["error"]


def test_missing_function_name_is_not_found(base_url: str) -> None:
    answer = requests.post(
        f"{base_url}{WEBHOOK}", json=[_event()], headers={"aeg-event-type": "Notification"}, timeout=5
    )
    assert answer.status_code == 404


@pytest.mark.parametrize("body", [b"not json", b"", b"42", b'["a", "b"]', b'[{"id": "1"}, 3]'])
def test_a_body_that_is_not_event_json_is_a_bad_request(base_url: str, body: bytes) -> None:
    before = len(sample.EVENTS)
    answer = requests.post(
        f"{base_url}{WEBHOOK}",
        params={"functionName": "ModelRegistered"},
        data=body,
        headers={"aeg-event-type": "Notification", "Content-Type": "application/json"},
        timeout=5,
    )
    assert answer.status_code == 400
    assert "error" in answer.json()
    assert len(sample.EVENTS) == before


def test_cloud_events_reach_the_function_as_cloud_event_objects(base_url: str) -> None:
    to_annotated_cloud_event, to_annotated_grid_event = _cloud_event(), _cloud_event()

    assert _notify(base_url, "on_deployment_event", to_annotated_cloud_event).status_code == 202
    assert _notify(base_url, "ModelRegistered", [to_annotated_grid_event]).status_code == 202

    for function, sent in [
        ("on_deployment_event", to_annotated_cloud_event),
        ("ModelRegistered", to_annotated_grid_event),
    ]:
        delivered = next(e for name, e in sample.EVENTS if name == function and e.id == sent["id"])
        assert isinstance(delivered, func.CloudEvent)
        assert delivered.type == sent["type"]
        assert delivered.source == sent["source"]
        assert delivered.get_json() == {"endpoint": "diabetes"}
        assert delivered.extension_attrs == {"traceparent": sent["traceparent"]}


def test_options_abuse_protection_handshake_echoes_the_origin(base_url: str) -> None:
    origin = {"WebHook-Request-Origin": "eventgrid.azure.net"}
    for params in [{}, {"functionName": "on_deployment_event"}]:
        answer = requests.options(f"{base_url}{WEBHOOK}", params=params, headers=origin, timeout=5)
        assert answer.status_code == 200
        assert answer.headers["WebHook-Allowed-Origin"] == "eventgrid.azure.net"

    assert requests.options(f"{base_url}{WEBHOOK}", timeout=5).status_code == 400
    unknown = requests.options(f"{base_url}{WEBHOOK}", params={"functionName": "nope"}, headers=origin, timeout=5)
    assert unknown.status_code == 404


def test_other_methods_on_the_webhook_are_refused_as_json(base_url: str) -> None:
    answer = requests.get(f"{base_url}{WEBHOOK}", params={"functionName": "ModelRegistered"}, timeout=5)
    assert answer.status_code == 405
    assert "error" in answer.json()


# --- HTTP triggers --------------------------------------------------------------------------------------


def test_route_parameters_query_and_headers_reach_the_function(base_url: str) -> None:
    answer = requests.get(f"{base_url}/api/items/2", params={"verbose": "yes"}, headers={"X-Trace": "abc"}, timeout=5)

    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    assert answer.headers["x-item-id"] == "2"
    body = answer.json()
    assert body["item"] == {"id": "2", "name": "ridge-v2"}
    assert body["query"] == {"verbose": "yes"}
    assert body["x-trace"] == "abc"
    assert body["url"] == f"{base_url}/api/items/2?verbose=yes"


def test_async_function_and_literal_route(base_url: str) -> None:
    answer = requests.get(f"{base_url}/api/items", timeout=5)
    assert answer.status_code == 200
    assert answer.json()["items"] == ["1", "2"]


def test_literal_segments_win_over_parameters(base_url: str) -> None:
    assert requests.get(f"{base_url}/api/items/special", timeout=5).json() == {"special": True}
    assert requests.get(f"{base_url}/api/ITEMS/Special/", timeout=5).json() == {"special": True}


def test_post_body_status_and_headers_round_trip(base_url: str) -> None:
    answer = requests.post(f"{base_url}/api/items/1/approve", json={"approver": "ana"}, timeout=5)

    assert answer.status_code == 201
    assert answer.headers["location"] == "/api/items/1"
    assert answer.json() == {"id": "1", "approver": "ana", "method": "POST"}


def test_function_status_code_is_passed_through(base_url: str) -> None:
    answer = requests.get(f"{base_url}/api/items/9", timeout=5)
    assert answer.status_code == 404
    assert answer.json() == {"error": "no item 9"}


def test_mimetype_charset_and_cookies(base_url: str) -> None:
    answer = requests.get(f"{base_url}/api/plain", timeout=5)
    assert answer.status_code == 203
    assert answer.headers["content-type"] == "text/html; charset=latin-1"
    assert answer.content == b"<p>hi</p>"
    assert answer.cookies["seen"] == "1"


def test_default_route_is_the_function_name_and_str_return_is_text(base_url: str) -> None:
    for method in ("GET", "POST", "DELETE"):
        answer = requests.request(method, f"{base_url}/api/health", timeout=5)
        assert answer.status_code == 200
        assert answer.text == "healthy"
        assert answer.headers["content-type"] == "text/plain; charset=utf-8"


def test_wrong_method_is_405_with_allow(base_url: str) -> None:
    answer = requests.delete(f"{base_url}/api/items/1/approve", timeout=5)
    assert answer.status_code == 405
    assert answer.headers["allow"] == "POST"
    assert "error" in answer.json()


@pytest.mark.parametrize("path", ["/api/nothing-here", "/api/items/1/approve/extra", "/api/orders/abc", "/nowhere"])
def test_unknown_route_is_404_json(base_url: str, path: str) -> None:
    answer = requests.get(f"{base_url}{path}", timeout=5)
    assert answer.status_code == 404
    assert "error" in answer.json()


def test_constrained_and_optional_parameters(base_url: str) -> None:
    with_part = requests.put(f"{base_url}/api/orders/12/lines", timeout=5)
    without_part = requests.get(f"{base_url}/api/orders/12", timeout=5)
    assert with_part.json() == {"route_params": {"number": "12", "part": "lines"}}
    assert without_part.json() == {"route_params": {"number": "12"}}


def test_an_exception_in_the_function_is_500_json(base_url: str) -> None:
    answer = requests.get(f"{base_url}/api/boom", timeout=5)
    assert answer.status_code == 500
    error = answer.json()["error"]
    assert "Functions.boom" in error
    assert "RuntimeError: the handler blew up" in error


def test_a_sync_function_can_call_back_into_the_host(base_url: str) -> None:
    answer = requests.get(f"{base_url}/api/proxy/1", timeout=10)
    assert answer.status_code == 200
    assert answer.json() == {"status": 200, "upstream": answer.json()["upstream"]}
    assert answer.json()["upstream"]["item"]["name"] == "ridge-v1"


def test_index_lists_the_functions(base_url: str) -> None:
    functions = {entry["name"]: entry for entry in requests.get(f"{base_url}/", timeout=5).json()["functions"]}

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


# --- Timers and admin invocation ------------------------------------------------------------------------


def test_the_timer_fires_on_its_own_every_second(base_url: str) -> None:
    seen = len(sample.TICKS)
    _wait_for(lambda: len(sample.TICKS) >= seen + 2, timeout=5, what="two timer ticks")

    latest = sample.TICKS[-1]
    assert isinstance(latest, func.TimerRequest)
    assert latest.past_due is False
    assert latest.schedule == {"AdjustForDST": True}
    # As on the host: the status the previous run saved, so Next is the occurrence now running.
    previous = datetime.fromisoformat(latest.schedule_status["Last"])
    current = datetime.fromisoformat(latest.schedule_status["Next"])
    assert current - previous == timedelta(seconds=1)
    assert current.microsecond == 0
    assert datetime.fromisoformat(latest.schedule_status["LastUpdated"]) >= previous


def test_run_on_startup_runs_once_at_start(base_url: str) -> None:
    _wait_for(lambda: sample.STARTUP_RUNS, timeout=5, what="the run-on-startup timer")
    assert len(sample.STARTUP_RUNS) == 1
    assert sample.STARTUP_RUNS[0].past_due is False


# --- Route templates, schedule arithmetic, serve() guard ------------------------------------------------


@pytest.mark.parametrize(
    ("template", "path", "expected"),
    [
        ("items/{id:int:min(1)}", "/items/3", {"id": "3"}),
        ("items/{id:int:min(1)}", "/items/0", None),
        ("items/{id:range(1,9)}", "/items/10", None),
        ("tags/{tag:alpha:maxlength(3)}", "/tags/abc", {"tag": "abc"}),
        ("tags/{tag:alpha:maxlength(3)}", "/tags/abcd", None),
        (
            "runs/{run:guid}",
            "/runs/8a7c3e5e-6d1f-4c1b-9f5e-2b0a3c4d5e6f",
            {"run": "8a7c3e5e-6d1f-4c1b-9f5e-2b0a3c4d5e6f"},
        ),
        ("runs/{run:guid}", "/runs/nope", None),
        ("flags/{on:bool}", "/flags/True", {"on": "True"}),
        ("pages/{page=1}", "/pages", {"page": "1"}),
        ("files/{*path}", "/files/a/b/c.txt", {"path": "a/b/c.txt"}),
        ("files/{*path}", "/files", {}),
        ("models/{name}.{version}", "/models/ridge.3", {"name": "ridge", "version": "3"}),
        ("/Models/latest/", "/models/LATEST", {}),
    ],
)
def test_route_templates(template: str, path: str, expected: dict[str, str] | None) -> None:
    assert RouteTemplate.parse(template).match(path) == expected


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("items/{id:regex(^\\d+$)}", "not supported"),
        ("items/{id:min(x)}", "bad arguments"),
        ("items/{id:length(1,2,3)}", "bad arguments"),
        ("items/{id?}/details", "may only be the last segment"),
        ("items/{id", "unbalanced braces"),
    ],
)
def test_bad_route_templates_are_refused(template: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RouteTemplate.parse(template)


def test_literal_then_constrained_then_plain_then_catch_all() -> None:
    templates = ["items/{*rest}", "items/{id}", "items/{id:int}", "items/special"]
    ordered = sorted(templates, key=lambda template: RouteTemplate.parse(template).precedence)
    assert ordered == ["items/special", "items/{id:int}", "items/{id}", "items/{*rest}"]


def test_on_time_run_is_not_past_due_and_schedules_the_next_occurrence() -> None:
    due = datetime(2024, 1, 1, 12, 0, 0, tzinfo=UTC)
    fired_at = due + timedelta(milliseconds=30)
    assert not is_past_due(due, fired_at)
    assert following_occurrence("0 */5 * * * *", due, fired_at) == due + timedelta(minutes=5)


def test_late_run_is_past_due_and_missed_occurrences_fold_into_it() -> None:
    due = datetime(2024, 1, 1, 12, 0, 0, tzinfo=UTC)
    fired_at = due + timedelta(seconds=7, milliseconds=500)  # occurrences at :01 ... :07 were missed
    assert is_past_due(due, fired_at)
    assert not is_past_due(due, due + PAST_DUE_TOLERANCE)
    assert following_occurrence("*/1 * * * * *", due, fired_at) == due + timedelta(seconds=8)


def test_serve_refuses_to_bind_anything_but_loopback() -> None:
    with pytest.raises(ValueError, match=r"127\.0\.0\.1"):
        serve(sample.app, host="0.0.0.0")
