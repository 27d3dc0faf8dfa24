"""The local host's Event Grid webhook and admin route under bad input (issue: hardening, part 1).

Event Grid's own limits bound a delivery (functions/domain/input_limits.py): 1 MiB, 5,000 events; the host
reads JSON no deeper than Json.NET's 64 levels. Past them: 413 or 400, which Event Grid does not retry,
never a 500. An event the worker cannot turn into its trigger argument (an eventTime of the wrong type or
format) is recorded in the host's dead-letter file alone; the rest of its batch is delivered.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from devhost.eventgrid_webhook import EVENT_GRID_WEBHOOK as WEBHOOK
from devhost.host import build_host
from functions.domain.input_limits import DEAD_LETTER_EXCERPT_CHARS, MAX_WEBHOOK_BODY_BYTES
from tests import payloads as p
from tests.fixtures import sample_function_app as sample

NOTIFY = {"aeg-event-type": "Notification", "content-type": "application/json"}


@pytest.fixture
def dead_letter_file(tmp_path: Path) -> Path:
    return tmp_path / "undelivered.jsonl"


@pytest.fixture
def client(dead_letter_file: Path) -> Iterator[TestClient]:
    app = build_host(sample.app, run_timers=False, dead_letters=dead_letter_file)
    with TestClient(app, base_url="http://127.0.0.1:7071") as client:
        yield client


def post(client: TestClient, body: bytes, function: str = "ModelRegistered") -> Any:
    return client.post(WEBHOOK, params={"functionName": function}, content=body, headers=NOTIFY)


def received() -> set[str]:
    return {event.id for _, event in sample.EVENTS}


def recorded(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_a_body_over_event_grids_batch_limit_is_413_before_it_is_parsed(client):
    answer = post(client, b"[" + b" " * (10 * 1024 * 1024) + b"]")
    assert answer.status_code == 413 and str(MAX_WEBHOOK_BODY_BYTES) in answer.json()["error"]


def test_json_nested_ten_thousand_deep_is_400_not_a_recursion_error(client):
    answer = post(client, b"[" * 10_000 + b"]" * 10_000)
    assert answer.status_code == 400 and "nested deeper than 64" in answer.json()["error"]
    assert post(client, b"[" * 65 + b"]" * 65).status_code == 400  # past the decoder's depth or not


def test_more_than_five_thousand_events_is_400(client):
    answer = post(client, json.dumps([{"id": str(n)} for n in range(5001)]).encode())
    assert answer.status_code == 400 and "at most 5000 events" in answer.json()["error"]


@pytest.mark.parametrize("event_time", [12345, "yesterday", ["2026-12-04"]], ids=["int", "words", "list"])
def test_an_event_time_the_worker_cannot_read_is_dead_lettered_alone(client, dead_letter_file, event_time):
    good, bad = p.model_registered_envelope(), p.model_registered_envelope()
    bad["eventTime"] = event_time
    answer = post(client, json.dumps([bad, good]).encode())
    assert answer.status_code == 202  # no retry storm: the batch is acknowledged
    assert good["id"] in received() and bad["id"] not in received()
    (letter,) = recorded(dead_letter_file)
    assert letter["event_id"] == bad["id"] and letter["function"] == "ModelRegistered"
    assert letter["reason"].startswith("cannot become the trigger argument")
    assert letter["size"] > 0 and len(letter["sha256"]) == 64 and len(letter["excerpt"]) <= DEAD_LETTER_EXCERPT_CHARS


def test_a_failing_function_still_gives_500_so_event_grid_retries(client):
    answer = post(client, json.dumps([p.model_registered_envelope(fail=True)]).encode())
    assert answer.status_code == 500  # a crash of the app is not the event's fault: retried, as on Azure


@pytest.mark.parametrize(
    "body",
    [b"[" * 10_000 + b"]" * 10_000, json.dumps({"input": {"id": "x", "eventType": "T", "eventTime": 5}}).encode()],
    ids=["10000-deep", "bad-event-time"],
)
def test_the_admin_route_answers_bad_input_with_400(client, body):
    answer = client.post("/admin/functions/ModelRegistered", content=body, headers={"content-type": "application/json"})
    assert answer.status_code == 400 and isinstance(answer.json()["error"], str)


def test_the_admin_route_refuses_a_body_over_the_event_limit(client):
    body = json.dumps({"input": {"id": str(uuid.uuid4()), "data": "x" * (2 * 1024 * 1024)}}).encode()
    answer = client.post("/admin/functions/ModelRegistered", content=body, headers={"content-type": "application/json"})
    assert answer.status_code == 413
