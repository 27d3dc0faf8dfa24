"""/runtime/webhooks/eventgrid of the local host on tests/fixtures/sample_function_app.py, through TestClient.

The requests go to the ASGI app in-process (no socket, no server); each call returns once the app has
finished, so what the functions recorded is there to read at once.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import azure.functions as func
import httpx2
import pytest
from starlette.testclient import TestClient

from devhost.eventgrid_webhook import EVENT_GRID_WEBHOOK as WEBHOOK
from devhost.host import build_host
from tests import payloads as p
from tests.fixtures import sample_function_app as sample


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with TestClient(build_host(sample.app, run_timers=False), base_url="http://127.0.0.1:7071") as client:
        yield client


def _event(fail: bool = False) -> dict[str, Any]:
    return p.model_registered_envelope(fail=fail)


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


def _notify(client: TestClient, function: str, body: Any, event_type: str | None = "Notification") -> httpx2.Response:
    headers = {"aeg-event-type": event_type} if event_type is not None else {}
    return client.post(WEBHOOK, params={"functionName": function}, json=body, headers=headers)


def _received(function: str) -> list[str]:
    return [event.id for name, event in sample.EVENTS if name == function]


def test_subscription_validation_returns_the_code_without_invoking(client: TestClient) -> None:
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

    answer = _notify(client, "ModelRegistered", [validation], event_type="SubscriptionValidation")

    assert answer.status_code == 200
    assert answer.json() == {"validationResponse": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6"}
    assert len(sample.EVENTS) == before


def test_subscription_validation_without_a_code_is_a_bad_request(client: TestClient) -> None:
    answer = _notify(client, "ModelRegistered", [{"id": "1", "data": {}}], event_type="SubscriptionValidation")
    assert answer.status_code == 400
    assert "validationCode" in answer.json()["error"]


def test_notification_with_one_event_object_invokes_once(client: TestClient) -> None:
    event = _event()

    answer = _notify(client, "ModelRegistered", event)

    assert answer.status_code == 202
    assert _received("ModelRegistered").count(event["id"]) == 1
    delivered = next(e for name, e in sample.EVENTS if e.id == event["id"])
    assert isinstance(delivered, func.EventGridEvent)
    assert delivered.event_type == event["eventType"]
    assert delivered.subject == event["subject"]
    assert delivered.get_json()["modelVersion"] == "3"
    assert delivered.event_time == datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)


def test_notification_with_an_array_invokes_once_per_event(client: TestClient) -> None:
    events = [_event(), _event(), _event()]

    answer = _notify(client, "ModelRegistered", events)

    assert answer.status_code == 202
    received = _received("ModelRegistered")
    assert [received.count(event["id"]) for event in events] == [1, 1, 1]


def test_function_name_is_case_insensitive(client: TestClient) -> None:
    event = _event()
    assert _notify(client, "modelregistered", [event]).status_code == 202
    assert event["id"] in _received("ModelRegistered")


def test_a_failing_event_gives_500_and_the_rest_of_the_batch_still_runs(client: TestClient) -> None:
    first, failing, last = _event(), _event(fail=True), _event()

    answer = _notify(client, "ModelRegistered", [first, failing, last])

    assert answer.status_code == 500
    error = answer.json()["error"]
    assert failing["id"] in error
    assert "ValueError" in error
    assert "1 of 3" in error
    received = _received("ModelRegistered")
    assert {first["id"], failing["id"], last["id"]} <= set(received)


def test_unsubscribe_is_accepted(client: TestClient) -> None:
    before = len(sample.EVENTS)
    answer = _notify(client, "ModelRegistered", [_event()], event_type="Unsubscribe")
    assert answer.status_code == 202
    assert len(sample.EVENTS) == before


@pytest.mark.parametrize("event_type", [None, "SomethingElse", ""])
def test_missing_or_unknown_event_type_header_is_a_bad_request(client: TestClient, event_type: str | None) -> None:
    before = len(sample.EVENTS)
    answer = _notify(client, "ModelRegistered", [_event()], event_type=event_type)
    assert answer.status_code == 400
    assert "aeg-event-type" in answer.json()["error"]
    assert len(sample.EVENTS) == before


@pytest.mark.parametrize("function", ["NoSuchFunction", "get_item", "tick"])
def test_unknown_or_non_event_grid_function_is_not_found(client: TestClient, function: str) -> None:
    answer = _notify(client, function, [_event()])
    assert answer.status_code == 404
    assert function in answer.json()["error"]


def test_missing_function_name_is_not_found(client: TestClient) -> None:
    answer = client.post(WEBHOOK, json=[_event()], headers={"aeg-event-type": "Notification"})
    assert answer.status_code == 404


@pytest.mark.parametrize("body", [b"not json", b"", b"42", b'["a", "b"]', b'[{"id": "1"}, 3]'])
def test_a_body_that_is_not_event_json_is_a_bad_request(client: TestClient, body: bytes) -> None:
    before = len(sample.EVENTS)
    answer = client.post(
        WEBHOOK,
        params={"functionName": "ModelRegistered"},
        content=body,
        headers={"aeg-event-type": "Notification", "Content-Type": "application/json"},
    )
    assert answer.status_code == 400
    assert "error" in answer.json()
    assert len(sample.EVENTS) == before


def test_cloud_events_reach_the_function_as_cloud_event_objects(client: TestClient) -> None:
    to_annotated_cloud_event, to_annotated_grid_event = _cloud_event(), _cloud_event()

    assert _notify(client, "on_deployment_event", to_annotated_cloud_event).status_code == 202
    assert _notify(client, "ModelRegistered", [to_annotated_grid_event]).status_code == 202

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


def test_options_abuse_protection_handshake_echoes_the_origin(client: TestClient) -> None:
    origin = {"WebHook-Request-Origin": "eventgrid.azure.net"}
    params: dict[str, str]
    for params in [{}, {"functionName": "on_deployment_event"}]:
        answer = client.options(WEBHOOK, params=params, headers=origin)
        assert answer.status_code == 200
        assert answer.headers["WebHook-Allowed-Origin"] == "eventgrid.azure.net"

    assert client.options(WEBHOOK).status_code == 400
    unknown = client.options(WEBHOOK, params={"functionName": "nope"}, headers=origin)
    assert unknown.status_code == 404


def test_other_methods_on_the_webhook_are_refused_as_json(client: TestClient) -> None:
    answer = client.get(WEBHOOK, params={"functionName": "ModelRegistered"})
    assert answer.status_code == 405
    assert "error" in answer.json()


def test_a_browser_post_from_another_site_is_refused_and_invokes_nothing(client: TestClient) -> None:
    event = _event()
    answer = client.post(
        WEBHOOK, params={"functionName": "ModelRegistered"}, content=json.dumps([event]),
        headers={"aeg-event-type": "Notification", "Origin": "http://evil.example", "Content-Type": "text/plain"},
    )  # fmt: skip
    assert answer.status_code == 403 and "another site" in answer.json()["error"]
    assert event["id"] not in _received("ModelRegistered")


def test_a_delivery_for_another_host_name_is_refused(client: TestClient) -> None:
    event = _event()
    answer = client.post(
        WEBHOOK, params={"functionName": "ModelRegistered"}, json=[event],
        headers={"aeg-event-type": "Notification", "Host": "rebound.evil.example:7071"},
    )  # fmt: skip
    assert answer.status_code == 403
    assert event["id"] not in _received("ModelRegistered")


def test_the_local_bus_posts_without_an_origin_and_from_its_own_origin(client: TestClient) -> None:
    plain, own = _event(), _event()
    assert _notify(client, "ModelRegistered", [plain]).status_code == 202
    answer = client.post(
        WEBHOOK, params={"functionName": "ModelRegistered"}, json=[own],
        headers={"aeg-event-type": "Notification", "Origin": "http://localhost:7071"},
    )  # fmt: skip
    assert answer.status_code == 202
    assert {plain["id"], own["id"]} <= set(_received("ModelRegistered"))
