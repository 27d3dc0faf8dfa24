"""Bad events and bounded growth, as a bounded attack on a local host found them (issue: hardening, part 1).

Each defect class has its test here, against the service with fake ports (the SQLite and Table Storage
adapters keep the same promises in tests/contract/test_release_store_contract.py):
- invalid Unicode (a lone surrogate) in an event's id, type or data: a recorded dead letter, not a crash;
- training parameters nested hundreds deep, or too large: a dead letter, never a release stuck in queued;
- envelope fields of the wrong type: a dead letter naming the field;
- a dead letter keeps a bounded excerpt with the size and sha256 of the whole; the API pages them;
- thousands of redeliveries of one event: counted on one timeline entry, the document bounded;
- an event parked for a release that never comes: visible through the API, expired into a dead letter.
"""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from typing import Any

import azure.functions as func
import pytest

from functions import bootstrap
from functions.domain import input_limits
from functions.domain.release import State
from functions.entrypoints import http_api
from functions.links import Links
from functions.service.orchestrator import Orchestrator
from functions.service.results import Outcome
from functions.settings import Settings, SettingsError
from tests import payloads as p
from tests.doubles.clock import Clock
from tests.doubles.ports import Calls, fake_ports

RELEASE = "rel-generic-1234"


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> tuple[Orchestrator, Clock]:
    clock = Clock()
    orchestrator = Orchestrator(fake_ports(Calls()), links=Links(), clock=clock)
    monkeypatch.setattr(bootstrap, "context", lambda: orchestrator.ctx)
    return orchestrator, clock


def letters(orchestrator: Orchestrator) -> list[Any]:
    return orchestrator.ctx.ports.store.dead_letters(limit=1000)


def nested(depth: int) -> dict[str, Any]:
    document: dict[str, Any] = {}
    for _ in range(depth - 1):
        document = {"a": document}
    return document


def get(route: str, params: dict[str, str] | None = None) -> func.HttpRequest:
    return func.HttpRequest("GET", f"http://127.0.0.1:7071/api/{route}", body=b"", params=params or {})


def answer(response: func.HttpResponse) -> tuple[int, Any]:
    return response.status_code, json.loads(response.get_body())


# ---- invalid Unicode ------------------------------------------------------------------


@pytest.mark.parametrize("where", ["id", "eventType", "data"])
def test_a_lone_surrogate_anywhere_in_an_event_is_dead_lettered_with_its_reason(world, where):
    orchestrator, _ = world
    event = p.build_completed("1234")
    if where == "data":
        event["data"]["sourceVersion"] = "abc\ud800"
    else:
        event[where] = event[where] + "\udc00"
    assert orchestrator.receive("on_build_event", event) is Outcome.DEAD_LETTERED
    (letter,) = letters(orchestrator)
    assert "not valid Unicode" in letter.reason
    # Everything kept is text a UTF-8 store can write: the surrogate is escaped, never stored raw.
    for text in (letter.event_id, letter.event_type, letter.reason, letter.excerpt):
        text.encode("utf-8")
    assert "\\udc00" in letter.excerpt or "\\ud800" in letter.excerpt
    assert orchestrator.ctx.ports.store.list() == []


# ---- parameters and envelope fields -----------------------------------------------------


@pytest.mark.parametrize(
    ("parameters", "why"),
    [
        (nested(600), "nested deeper than 32 levels"),  # the whole event's depth limit
        (nested(6), "parameters is nested deeper than 4 levels"),
        ({f"p{i}": i for i in range(101)}, "more than 100 entries"),
        ({"weights": ["x" * 1000] * 20}, "larger than 16384 bytes"),
        (["alpha", 1], "parameters must be an object"),
    ],
    ids=["600-deep", "5-deep", "101-entries", "20-KB", "a-list"],
)
def test_training_parameters_that_are_not_a_few_hyperparameters_are_dead_lettered(world, parameters, why):
    orchestrator, _ = world
    outcome = orchestrator.receive("on_build_event", p.build_completed("1234", parameters=parameters))
    assert outcome is Outcome.DEAD_LETTERED
    assert why in letters(orchestrator)[0].reason
    # No release was created, so none can sit in queued with every reconcile pass submitting another job.
    assert orchestrator.ctx.ports.store.list() == []
    assert orchestrator.reconcile().get("retried", 0) == 0


def test_ordinary_parameters_still_start_a_release(world):
    orchestrator, _ = world
    parameters = {"alpha": 0.1, "grid": {"depth": [2, 4], "solver": {"name": "lbfgs"}}}
    assert orchestrator.receive("on_build_event", p.build_completed("1234", parameters=parameters)) is Outcome.HANDLED
    assert orchestrator.ctx.ports.store.get(RELEASE).trigger["parameters"] == parameters


@pytest.mark.parametrize(
    ("field", "value", "why"),
    [
        ("eventTime", 12345, "field time must be a string"),
        ("subject", {"a": 1}, "field subject must be a string"),
        ("topic", ["x"], "field source must be a string"),
        ("id", "e" * 257, "event id is longer than 256 characters"),
        ("id", 7, "event has no id"),
        ("data", "not an object", "event data must be an object"),
    ],
)
def test_envelope_fields_of_the_wrong_type_are_dead_lettered_naming_them(world, field, value, why):
    orchestrator, _ = world
    event = {**p.build_completed("1234"), field: value}
    assert orchestrator.receive("on_build_event", event) is Outcome.DEAD_LETTERED
    assert why in letters(orchestrator)[0].reason


def test_events_without_an_id_are_each_recorded(world):
    orchestrator, _ = world
    for build in ("1", "2"):
        event = p.build_completed(build)
        del event["id"]
        assert orchestrator.receive("on_build_event", event) is Outcome.DEAD_LETTERED
    assert len({letter.event_id for letter in letters(orchestrator)}) == 2  # told apart by their content


def test_an_event_over_event_grids_size_limit_is_dead_lettered(world):
    orchestrator, _ = world
    event = p.build_completed("1234")
    event["data"]["notes"] = ["x" * 60_000] * 20  # 1.2 MB, in strings each within the string limit
    assert orchestrator.receive("on_build_event", event) is Outcome.DEAD_LETTERED
    assert "more than Event Grid's limit of 1048576" in letters(orchestrator)[0].reason


# ---- dead letters: bounded, paged -------------------------------------------------------------


def test_a_dead_letter_keeps_an_excerpt_with_the_size_and_sha256_of_the_whole(world):
    orchestrator, _ = world
    event = {**p.build_completed("1234"), "eventType": "Nobody.Handles.This"}
    event["data"]["padding"] = ["y" * 50_000] * 10
    orchestrator.receive("on_build_event", event)
    (letter,) = letters(orchestrator)
    whole = json.dumps(event, ensure_ascii=True).encode()
    assert letter.size == len(whole) and letter.sha256 == hashlib.sha256(whole).hexdigest()
    assert len(letter.excerpt) == input_limits.DEAD_LETTER_EXCERPT_CHARS and whole.decode().startswith(letter.excerpt)
    assert letter.truncated
    view = letter.to_json()
    assert len(json.dumps(view)) < 3 * 1024 and view["truncated"] is True


def test_the_dead_letters_api_is_paged_newest_first(world):
    orchestrator, _ = world
    for n in range(120):
        orchestrator.receive("on_build_event", {"id": f"e{n:03d}", "eventType": "Bad.Type", "data": {}})
    seen: list[str] = []
    params: dict[str, str] = {"limit": "50"}
    pages = 0
    while True:
        status, page = answer(http_api.dead_letters(get("dead-letters", params)))
        assert status == 200 and len(page["dead_letters"]) <= 50
        seen += [letter["event_id"] for letter in page["dead_letters"]]
        pages += 1
        if page["next"] is None:
            break
        params = {"limit": "50", "before": page["next"]}
    assert pages == 3 and seen == [f"e{n:03d}" for n in reversed(range(120))]


@pytest.mark.parametrize("route", ["dead-letters", "parked"])
@pytest.mark.parametrize(
    "params",
    [{"limit": "9" * 5000}, {"limit": "0"}, {"before": "abc"}, {"before": "1" * 21}, {"before": "-1"}],
    ids=["5000-digits", "zero", "letters", "21-digits", "negative"],
)
def test_paged_listings_refuse_bad_limits_and_cursors_with_400(world, route, params):
    handler = http_api.dead_letters if route == "dead-letters" else http_api.parked_events
    status, body = answer(handler(get(route, params)))
    assert status == 400 and isinstance(body["error"], str)


# ---- bounded growth ---------------------------------------------------------------------------


def test_three_thousand_redeliveries_are_counted_and_the_document_stays_bounded(world):
    orchestrator, _ = world
    build = p.build_completed("1234")
    orchestrator.receive("on_build_event", build)
    orchestrator.receive("on_build_event", build)
    after_one = len(json.dumps(orchestrator.ctx.ports.store.get(RELEASE).to_json()))
    for _ in range(3000):
        assert orchestrator.receive("on_build_event", build) is Outcome.DUPLICATE
    release = orchestrator.ctx.ports.store.get(RELEASE)
    (duplicate,) = [entry for entry in release.timeline if entry["step"] == "duplicate_event"]
    assert duplicate["count"] == 3001 and "last_at" in duplicate
    assert len(json.dumps(release.to_json())) < after_one + 100  # the count's digits, not 3,000 entries


def test_redeliveries_in_turn_of_many_events_are_counted_one_entry_each(world):
    orchestrator, _ = world
    orchestrator.receive("on_build_event", p.build_completed("1234"))
    events = [p.model_registered(n, RELEASE) for n in range(30)]  # more events than a recent window would see
    for event in events:
        orchestrator.receive("on_ml_event", event)
    for _ in range(70):
        for event in events:
            assert orchestrator.receive("on_ml_event", event) is Outcome.DUPLICATE
    release = orchestrator.ctx.ports.store.get(RELEASE)
    duplicates = [entry for entry in release.timeline if entry["step"] == "duplicate_event"]
    assert len(duplicates) == 30 and {entry["count"] for entry in duplicates} == {70}
    assert len(release.handled_events) == len(set(release.handled_events)) == 31  # a redelivery adds no id


@pytest.mark.parametrize("raw", ["0", "-1", "inf", "nan", "8761", "1e8", "soon"])
def test_the_parked_event_ttl_must_be_a_sane_number_of_hours(raw):
    with pytest.raises(SettingsError, match="MLOPS_PARKED_EVENT_TTL_HOURS"):
        Settings.from_env({"MLOPS_PARKED_EVENT_TTL_HOURS": raw})
    assert Settings.from_env({"MLOPS_PARKED_EVENT_TTL_HOURS": "0.5"}).parked_event_ttl == timedelta(minutes=30)


# ---- parked events: visible, and they expire ----------------------------------------------------


def test_an_event_for_a_release_that_never_comes_is_listed_then_expires_into_a_dead_letter(world):
    orchestrator, clock = world
    early = p.run_completed("job-1", "rel-generic-never")
    assert orchestrator.receive("on_ml_event", early) is Outcome.PARKED
    status, page = answer(http_api.parked_events(get("parked")))
    assert status == 200 and page["next"] is None
    (listed,) = page["parked"]
    assert listed["release_id"] == "rel-generic-never" and listed["event_id"] == early["id"]
    assert listed["event_type"] == "Microsoft.MachineLearningServices.RunCompleted"
    assert listed["expires_at"] == "2026-11-27T12:00:00+00:00"  # parked at noon, 24 h by default

    clock.advance(hours=23)
    assert orchestrator.reconcile()["parked_expired"] == 0
    clock.advance(hours=2)
    assert orchestrator.reconcile()["parked_expired"] == 1
    assert answer(http_api.parked_events(get("parked")))[1]["parked"] == []
    (letter,) = letters(orchestrator)
    assert letter.event_id == early["id"] and letter.function == "on_ml_event"
    assert (
        "rel-generic-never, which does not exist" in letter.reason and "MLOPS_PARKED_EVENT_TTL_HOURS" in letter.reason
    )
    assert json.loads(letter.excerpt)["data"]["runId"] == "job-1"  # a small event is kept whole
    assert orchestrator.reconcile()["parked_expired"] == 0  # once


def test_an_early_event_whose_release_comes_in_time_is_handled_not_expired(world):
    orchestrator, clock = world
    run = p.run_completed("job-1", RELEASE)
    assert orchestrator.receive("on_ml_event", run) is Outcome.PARKED
    clock.advance(hours=1)
    orchestrator.receive("on_build_event", p.build_completed("1234"))
    assert orchestrator.ctx.ports.store.parked() == []  # replayed when its release came
    clock.advance(hours=30)
    assert orchestrator.reconcile()["parked_expired"] == 0 and letters(orchestrator) == []
    assert orchestrator.ctx.ports.store.get(RELEASE).state != State.QUEUED
