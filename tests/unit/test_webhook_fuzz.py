"""A Hypothesis fuzz of the Event Grid webhook: function_app.py behind the local host, on fake ports.

Every generated delivery (valid events of every type we take, then mutated: fields dropped or given
values of the wrong type, invalid Unicode, deep nesting, huge strings and numbers, whole bodies that are
not events) must get no 5xx, and every event of an acknowledged batch must end one of these ways: handled,
ignored (also duplicate, stale, parked: recorded on its release) or dead-lettered, by the app (its
dead letter is in the store) or by the host (it could not become the trigger argument: its record is in the
host's dead-letter file). Bodies over Event Grid's limits are 400 or 413, which Event Grid does not retry.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from devhost.eventgrid_webhook import EVENT_GRID_WEBHOOK
from devhost.host import build_host
from functions import bootstrap
from functions.domain.events import wire_id
from functions.domain.refs import DeadLetter
from functions.links import Links
from functions.service import delivery
from functions.service.orchestrator import Orchestrator
from functions.service.results import Outcome
from functions.settings import (
    DEFAULT_FOLLOW_SCHEDULE,
    DEFAULT_RECONCILE_SCHEDULE,
    FOLLOW_SCHEDULE_SETTING,
    RECONCILE_SCHEDULE_SETTING,
)
from tests import payloads as p
from tests.doubles.ports import Calls, fake_ports

FUNCTIONS = ("on_build_event", "on_ml_event", "on_registry_event", "on_storage_event")
NOTIFY = {"aeg-event-type": "Notification", "content-type": "application/json"}
BLOB = {
    "id": "blob-1",
    "eventType": "Microsoft.Storage.BlobCreated",
    "subject": "/blobServices/default/containers/training-data/blobs/diabetes/new.csv",
    "eventTime": "2026-12-04T01:00:00Z",
    "dataVersion": "",
    "topic": "/subscriptions/x/resourceGroups/y/providers/Microsoft.Storage/storageAccounts/z",
    "data": {"api": "PutBlob", "blobType": "BlockBlob", "contentLength": 10, "url": "http://x/new.csv"},
}
VALID = [
    p.build_completed("1234"),
    p.build_completed("77", parameters={"alpha": 0.5}),
    p.run_completed("job-1", "rel-generic-1234"),
    p.run_status_changed("job-1", "rel-generic-1234"),
    p.model_registered(3, "rel-generic-1234"),
    p.image_pushed("1-rel-generic-1234"),
    p.image_deleted(),
    BLOB,
]

surrogates = st.text(st.characters(categories=["Cs"]), min_size=1, max_size=3)
weird_text = st.one_of(
    st.text(max_size=40), surrogates, st.text(max_size=40).map(lambda s: s + "\ud800"), st.just("x" * 70_000)
)
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=10**30), st.floats(allow_nan=False), weird_text
)
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)  # fmt: skip
deep = st.integers(min_value=30, max_value=60).map(lambda depth: json.loads("[" * depth + "1" + "]" * depth))
values = st.one_of(json_values, deep, weird_text)
ENVELOPE = ("id", "eventType", "subject", "eventTime", "dataVersion", "topic", "data")


@st.composite
def mutated_event(draw: st.DrawFn) -> Any:
    event: Any = json.loads(json.dumps(draw(st.sampled_from(VALID))))
    event["id"] = f"{event.get('id')}-{draw(st.integers(0, 10**6))}"
    for _ in range(draw(st.integers(0, 3))):
        if not isinstance(event, dict):
            break  # replaced whole: nothing left to mutate
        where = draw(st.sampled_from(("envelope", "data", "drop", "whole")))
        if where == "envelope":
            event[draw(st.sampled_from(ENVELOPE))] = draw(values)
        elif where == "data" and isinstance(event.get("data"), dict):
            keys = [*event["data"], "parameters", "runTags", "blobType"]
            event["data"][draw(st.sampled_from(keys))] = draw(values)
        elif where == "drop":
            event.pop(draw(st.sampled_from(ENVELOPE)), None)
        else:
            event = draw(values)
    return event


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, Orchestrator, Path, list[Any]]]:
    patch = pytest.MonkeyPatch()
    patch.setenv(RECONCILE_SCHEDULE_SETTING, DEFAULT_RECONCILE_SCHEDULE)
    patch.setenv(FOLLOW_SCHEDULE_SETTING, DEFAULT_FOLLOW_SCHEDULE)
    orchestrator = Orchestrator(fake_ports(Calls()), links=Links())
    patch.setattr(bootstrap, "context", lambda: orchestrator.ctx)
    outcomes: list[Any] = []
    receive = delivery.receive

    def recording(ctx: Any, function_name: str, payload: Any) -> Outcome:
        outcome = receive(ctx, function_name, payload)
        outcomes.append((payload, outcome))
        return outcome

    patch.setattr(delivery, "receive", recording)
    import function_app

    dead_letters = tmp_path_factory.mktemp("host") / "undelivered.jsonl"
    app = build_host(function_app.app, run_timers=False, dead_letters=dead_letters)
    with TestClient(app, base_url="http://127.0.0.1:7071") as client:
        yield client, orchestrator, dead_letters, outcomes
    patch.undo()


def letter_key(payload: Any) -> str:
    """The key the app keeps a dead letter under: the event's id, or one made from its content."""
    return DeadLetter.of(wire_id(payload), "", "", "", "", payload).event_id


def host_letters(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(function=st.sampled_from(FUNCTIONS), batch=st.lists(mutated_event(), min_size=1, max_size=4))
def test_every_delivery_is_acknowledged_and_ends_handled_ignored_or_dead_lettered(world, function, batch):
    client, orchestrator, dead_letter_file, outcomes = world
    outcomes.clear()
    hosted_before = host_letters(dead_letter_file)
    body = json.dumps(batch).encode()  # ensure_ascii: a lone surrogate travels as \ud800, as over the wire
    answer = client.post(EVENT_GRID_WEBHOOK, params={"functionName": function}, content=body, headers=NOTIFY)
    assert answer.status_code < 500, answer.text
    if answer.status_code != 202:
        assert answer.status_code in (400, 413) and isinstance(answer.json()["error"], str)
        assert not all(isinstance(event, dict) for event in batch)  # only a body that is not events is refused
        return
    # Each event reached the app once (its outcome recorded) or was dead-lettered by the host.
    assert len(outcomes) + host_letters(dead_letter_file) - hosted_before == len(batch)
    store = orchestrator.ctx.ports.store
    letters = {letter.event_id for letter in store.dead_letters(limit=100_000)}
    parked = {entry.event_id for entry in store.parked(limit=100_000)}
    handled = {event_id for release in store.list(limit=100_000) for event_id in release.handled_events}
    for payload, outcome in outcomes:
        assert isinstance(outcome, Outcome)
        if outcome is Outcome.DEAD_LETTERED:
            assert letter_key(payload) in letters
        elif outcome is Outcome.PARKED:  # kept, or replayed at once because its release moved meanwhile
            assert payload["id"] in parked | handled


def test_the_fuzz_reaches_every_ending(world):
    """The generator is not vacuous: valid events are handled, broken ones dead-lettered by app and host."""
    client, _, dead_letter_file, outcomes = world
    outcomes.clear()
    broken_time = {**p.model_registered(3, "rel-generic-1234"), "id": "t-1", "eventTime": 5}
    surrogate = {**p.build_completed("9"), "id": "s-\ud800"}
    body = json.dumps([p.build_completed("4321"), surrogate, broken_time]).encode()
    before = host_letters(dead_letter_file)
    answer = client.post(EVENT_GRID_WEBHOOK, params={"functionName": "on_build_event"}, content=body, headers=NOTIFY)
    assert answer.status_code == 202
    assert [outcome for _, outcome in outcomes] == [Outcome.HANDLED, Outcome.DEAD_LETTERED]
    assert host_letters(dead_letter_file) == before + 1
