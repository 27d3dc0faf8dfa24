"""The ReleaseStore contract, run against SQLite and against Azure Table Storage on Azurite."""

from __future__ import annotations

import json
import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from functions.ports import ConcurrencyError, ReleaseStore
from functions.domain.refs import DeadLetter
from functions.domain.release import Release, State
from tests.contract.conftest import StoreFactory

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
# Characters a Table key may not hold (/ \ # ? control characters), the escape character itself,
# and a quote and non-ASCII text for good measure.
AWKWARD = "evt/1\\2#3?4\t5\x006\x7f7\x858%2F9'ü🚀"


def full_release(release_id: str = "rel-full", timeline_entries: int = 400) -> Release:
    """Every field set; the timeline makes the JSON several times 64 KiB."""
    release = Release.create(
        release_id,
        {"kind": "build", "buildId": "42", "buildNumber": "20250301.1", "sourceVersion": "a" * 40},
        {"alpha": 0.4, "nested": {"list": [1, 2.5, None, True], "text": "naïve ☃"}},
        NOW,
    )
    release.state = State.AWAITING_APPROVAL
    release.updated_at = "2025-03-01T12:30:00+00:00"
    release.step_started_at = "2025-03-01T12:20:00+00:00"
    release.step_attempts = 2
    release.job = {"name": "job-1", "portal_url": "https://ml.azure.com/runs/job-1"}
    release.candidate = {"metrics": {"rmse": 53.1}, "model": {"name": "diabetes-model", "version": "7"}}
    release.champion = {"name": "diabetes-model", "version": "6", "location": "azureml://x", "tags": {}}
    release.gate = {"promote": True, "reason": "better", "evaluation": {"n": 442}}
    release.image = {"repository": "diabetes-scoring", "tag": "7-rel-full", "digest": "sha256:" + "b" * 64}
    release.staging = {"endpoint": {"scoring_url": "http://staging/score"}, "tests": [], "passed": True}
    release.approval = {"requested_at": "2025-03-01T12:30:00+00:00", "deadline": "2025-03-04", "decision": None}
    release.production = {"endpoint": {"scoring_url": "http://prod/score"}, "passed": False, "rolled_back_to": None}
    release.error = "nothing yet, but a string with 'quotes' and \"double quotes\""
    for i in range(timeline_entries):
        release.note(NOW + timedelta(seconds=i), "step_error", f"attempt {i}: Größe überschritten 🚀 " + "x" * 200)
    release.handled_events = [f"event-{i}" for i in range(50)]
    return release


def make(release_id: str, created: datetime, state: State = State.QUEUED) -> Release:
    release = Release.create(release_id, {"kind": "manual", "reason": "test"}, {}, created)
    release.state = state
    return release


def created(store: ReleaseStore, release: Release) -> Release:
    assert store.create(release)
    return release


# ---- releases ---------------------------------------------------------------------------
def test_create_then_get_returns_every_field(store: ReleaseStore) -> None:
    release = full_release()
    assert len(json.dumps(release.to_json())) > 2 * 64 * 1024  # three properties on Table Storage

    assert store.create(release) is True
    assert release.version == 1

    loaded = store.get(release.id)
    assert loaded is not None
    assert loaded.to_json() == release.to_json()
    assert loaded.version == 1
    assert loaded.state is State.AWAITING_APPROVAL


def test_get_of_an_unknown_release_is_none(store: ReleaseStore) -> None:
    assert store.get("rel-nope") is None


def test_create_twice_returns_false_and_keeps_the_first(store: ReleaseStore) -> None:
    first = created(store, make("rel-1", NOW))
    second = make("rel-1", NOW + timedelta(hours=1), State.TRAINING)

    assert store.create(second) is False
    assert second.version == 0

    loaded = store.get("rel-1")
    assert loaded is not None
    assert loaded.to_json() == first.to_json()


def test_save_bumps_the_version(store: ReleaseStore) -> None:
    created(store, make("rel-1", NOW))
    release = store.get("rel-1")
    assert release is not None

    release.note(NOW, "one", "first change")
    store.save(release)
    assert release.version == 2
    release.note(NOW, "two", "second change")
    store.save(release)
    assert release.version == 3

    loaded = store.get("rel-1")
    assert loaded is not None
    assert loaded.version == 3
    assert [entry["step"] for entry in loaded.timeline] == ["created", "one", "two"]


def test_a_document_can_grow_past_64_kib_and_shrink_again(store: ReleaseStore) -> None:
    release = created(store, make("rel-1", NOW))
    for i in range(600):
        release.note(NOW, "noise", f"{i} " + "y" * 300)
    store.save(release)
    loaded = store.get("rel-1")
    assert loaded is not None
    assert loaded.to_json() == release.to_json()

    loaded.timeline = loaded.timeline[:1]
    store.save(loaded)  # fewer parts than before: none of the old ones may linger
    again = store.get("rel-1")
    assert again is not None
    assert again.to_json() == loaded.to_json()
    assert again.version == 3


def test_a_copy_of_a_loaded_release_saves_like_the_original(store: ReleaseStore) -> None:
    """The orchestrator saves copies (Release.from_json(release.to_json())), as it does in _update."""
    created(store, make("rel-1", NOW))
    loaded = store.get("rel-1")
    assert loaded is not None
    copy = Release.from_json(loaded.to_json())
    copy.note(NOW, "copy", "saved from a copy")
    store.save(copy)

    assert copy.version == 2
    with pytest.raises(ConcurrencyError):
        store.save(loaded)  # the original is now stale


def test_a_stale_save_raises_and_writes_nothing(store: ReleaseStore) -> None:
    created(store, make("rel-1", NOW))
    fresh, stale = store.get("rel-1"), store.get("rel-1")
    assert fresh is not None and stale is not None
    fresh.note(NOW, "fresh", "wins")
    store.save(fresh)

    stale.note(NOW, "stale", "must not be written")
    stale.state = State.FAILED
    with pytest.raises(ConcurrencyError):
        store.save(stale)
    assert stale.version == 1  # unchanged, so the caller knows what it had

    loaded = store.get("rel-1")
    assert loaded is not None
    assert loaded.version == 2
    assert loaded.state is State.QUEUED
    assert [entry["step"] for entry in loaded.timeline] == ["created", "fresh"]
    assert store.list(states=[State.FAILED.value]) == []


def test_a_release_loaded_through_one_store_object_saves_through_another(open_store: StoreFactory) -> None:
    """Workers share the storage, not the store object (nor anything it remembers)."""
    first, second = open_store(), open_store()
    created(first, make("rel-1", NOW))
    loaded, stale = first.get("rel-1"), first.get("rel-1")
    assert loaded is not None and stale is not None
    loaded.note(NOW, "second", "saved by the other store object")
    second.save(loaded)
    assert loaded.version == 2

    with pytest.raises(ConcurrencyError):
        first.save(stale)
    again = first.get("rel-1")
    assert again is not None
    assert [entry["step"] for entry in again.timeline] == ["created", "second"]


def test_saving_a_release_that_was_never_created_raises(store: ReleaseStore) -> None:
    with pytest.raises(ConcurrencyError):
        store.save(make("rel-ghost", NOW))
    assert store.get("rel-ghost") is None


@pytest.mark.parametrize("workers", ["one store object", "a store object each"])
def test_two_writers_racing_on_one_release_one_wins_the_other_retries(open_store: StoreFactory, workers: str) -> None:
    shared = open_store()
    created(shared, make("rel-1", NOW))
    stores = [shared, shared] if workers == "one store object" else [open_store(), open_store()]
    both_loaded = threading.Barrier(2, timeout=30)
    first_round: dict[str, str] = {}
    errors: list[BaseException] = []

    def writer(name: str, store: ReleaseStore) -> None:
        try:
            release = store.get("rel-1")
            assert release is not None
            both_loaded.wait()  # both hold version 1 before either writes
            release.note(NOW, name, f"change by {name}")
            release.params[name] = True
            try:
                store.save(release)
                first_round[name] = "won"
                return
            except ConcurrencyError:
                first_round[name] = "conflict"
            for _ in range(5):  # what the orchestrator does: reload, apply the change again, save
                release = store.get("rel-1")
                assert release is not None
                release.note(NOW, name, f"change by {name}")
                release.params[name] = True
                try:
                    store.save(release)
                    return
                except ConcurrencyError:
                    continue
            raise AssertionError(f"{name} never saved")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(f"w{i}", s)) for i, s in enumerate(stores)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert sorted(first_round.values()) == ["conflict", "won"]

    final = shared.get("rel-1")
    assert final is not None
    assert final.version == 3
    assert final.params == {"w0": True, "w1": True}
    assert sorted(entry["step"] for entry in final.timeline[1:]) == ["w0", "w1"]


def test_list_is_newest_first_and_filters_by_state(store: ReleaseStore) -> None:
    hour = timedelta(hours=1)
    created(store, make("rel-a", NOW, State.LIVE))
    created(store, make("rel-b", NOW + hour, State.TRAINING))
    created(store, make("rel-c", NOW + 2 * hour, State.AWAITING_APPROVAL))
    created(store, make("rel-d", NOW + 3 * hour, State.TRAINING))
    created(store, make("rel-e", NOW + 3 * hour, State.FAILED))  # same moment as rel-d: the id decides

    assert [r.id for r in store.list()] == ["rel-e", "rel-d", "rel-c", "rel-b", "rel-a"]
    assert [r.id for r in store.list(limit=2)] == ["rel-e", "rel-d"]
    assert [r.id for r in store.list(states=["training"])] == ["rel-d", "rel-b"]
    assert [r.id for r in store.list(states=["training", "live"])] == ["rel-d", "rel-b", "rel-a"]
    assert [r.id for r in store.list(limit=1, states=["training", "live"])] == ["rel-d"]
    assert [r.id for r in store.list(states=[])] == ["rel-e", "rel-d", "rel-c", "rel-b", "rel-a"]
    assert store.list(states=["superseded"]) == []
    assert all(r.version == 1 for r in store.list())

    moved = store.get("rel-b")
    assert moved is not None
    moved.state = State.REGISTERING
    store.save(moved)
    assert [r.id for r in store.list(states=["training"])] == ["rel-d"]
    assert [(r.id, r.version) for r in store.list(states=["registering"])] == [("rel-b", 2)]


def test_list_filters_on_many_states_at_once(store: ReleaseStore) -> None:
    states = list(State)
    for i, state in enumerate(states):
        created(store, make(f"rel-{i:02d}", NOW + timedelta(minutes=i), state))
    every = [s.value for s in states] + [f"no-such-state-{i}" for i in range(20)]  # more than one filter holds

    assert [r.id for r in store.list(states=every)] == [f"rel-{i:02d}" for i in reversed(range(len(states)))]


def test_a_release_from_list_can_be_saved(store: ReleaseStore) -> None:
    created(store, make("rel-1", NOW, State.AWAITING_APPROVAL))
    (listed,) = store.list(states=["awaiting_approval"])
    listed.state = State.SUPERSEDED
    store.save(listed)

    loaded = store.get("rel-1")
    assert loaded is not None
    assert (loaded.state, loaded.version) == (State.SUPERSEDED, 2)


# ---- parked events ----------------------------------------------------------------------
def event(event_id: str, size: int = 0) -> dict[str, Any]:
    return {"id": event_id, "eventType": "Microsoft.MachineLearningServices.RunCompleted", "data": {"pad": "p" * size}}


def test_parked_events_come_back_oldest_first_once(store: ReleaseStore) -> None:
    store.park("rel-1", "e1", event("e1"))
    store.park("rel-1", AWKWARD, event(AWKWARD, size=100_000))  # a large one, and an id keys may not hold
    store.park("rel-1", "e1", event("e1"))  # delivered twice: parked once
    store.park("rel-1", "e3", event("e3"))
    store.park("rel-2", "e1", event("e1"))  # another release's

    assert [p["id"] for p in store.take_parked("rel-1")] == ["e1", AWKWARD, "e3"]
    assert store.take_parked("rel-1") == []
    assert store.take_parked("rel-9") == []
    assert store.take_parked("rel-2") == [event("e1")]


def test_a_taken_event_can_be_parked_again(store: ReleaseStore) -> None:
    store.park("rel-1", "e1", event("e1"))
    store.park("rel-1", "e2", event("e2"))
    assert [p["id"] for p in store.take_parked("rel-1")] == ["e1", "e2"]

    store.park("rel-1", "e1", event("e1"))  # its replay failed: the orchestrator parks it again
    assert store.take_parked("rel-1") == [event("e1")]


def test_concurrent_takers_get_each_parked_event_once(open_store: StoreFactory) -> None:
    first, second = open_store(), open_store()
    ids = [f"e{i:02d}" for i in range(12)]
    for event_id in ids:
        first.park("rel-1", event_id, event(event_id))
    start = threading.Barrier(2, timeout=30)
    taken: list[list[dict[str, Any]]] = [[], []]

    def take(index: int, store: ReleaseStore) -> None:
        start.wait()
        taken[index] = store.take_parked("rel-1")

    threads = [threading.Thread(target=take, args=(i, s)) for i, s in enumerate((first, second))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    together = [p["id"] for p in taken[0] + taken[1]]
    assert sorted(together) == ids
    for batch in taken:
        assert [p["id"] for p in batch] == sorted(p["id"] for p in batch)  # each batch oldest first
    assert first.take_parked("rel-1") == []


# ---- dead letters -----------------------------------------------------------------------
def letter(event_id: str, function: str, payload: Any = None, reason: str = "bad") -> DeadLetter:
    return DeadLetter(event_id, "Some.Event", function, reason, NOW.isoformat(), payload)


def test_a_dead_letter_is_kept_once_per_event_and_function(store: ReleaseStore) -> None:
    assert store.add_dead_letter(letter("e1", "on_run")) is True
    assert store.add_dead_letter(letter("e1", "on_run", reason="again")) is False
    assert store.add_dead_letter(letter("e1", "on_image")) is True
    assert store.add_dead_letter(letter("e2", "on_run")) is True
    assert store.add_dead_letter(letter(AWKWARD, "on_run")) is True
    assert store.add_dead_letter(letter(AWKWARD, "on_run")) is False
    # Distinct ids stay distinct after escaping: "evt/1" and the text "evt%2F1".
    assert store.add_dead_letter(letter("evt/1", "on_run")) is True
    assert store.add_dead_letter(letter("evt%2F1", "on_run")) is True
    assert store.add_dead_letter(letter("x", "fn/with#odd?chars")) is True
    assert store.add_dead_letter(letter("x", "fn/with#odd?chars")) is False

    kept = {(d.event_id, d.function) for d in store.dead_letters()}
    assert kept == {
        ("e1", "on_run"),
        ("e1", "on_image"),
        ("e2", "on_run"),
        (AWKWARD, "on_run"),
        ("evt/1", "on_run"),
        ("evt%2F1", "on_run"),
        ("x", "fn/with#odd?chars"),
    }
    (first,) = [d for d in store.dead_letters() if d.event_id == "e1" and d.function == "on_run"]
    assert first.reason == "bad"


def test_dead_letters_are_newest_first_with_their_payloads(store: ReleaseStore) -> None:
    payloads: list[Any] = [
        {"id": "e0", "nested": {"a": [1, 2]}},
        "not even an object",
        None,
        {"id": "e3", "pad": "q" * 100_000},  # over 64 KiB
        ["a", "list"],
    ]
    for i, payload in enumerate(payloads):
        assert store.add_dead_letter(letter(f"e{i}", "on_build", payload, reason=f"reason {i}"))

    letters = store.dead_letters()
    assert [d.event_id for d in letters] == ["e4", "e3", "e2", "e1", "e0"]
    assert [d.payload for d in letters] == list(reversed(payloads))
    assert letters[0] == DeadLetter("e4", "Some.Event", "on_build", "reason 4", NOW.isoformat(), ["a", "list"])
    assert [d.event_id for d in store.dead_letters(limit=2)] == ["e4", "e3"]


def test_a_dead_letter_payload_that_is_not_json_is_kept_as_text(store: ReleaseStore) -> None:
    assert store.add_dead_letter(letter("e1", "on_build", {"when": NOW}))
    (kept,) = store.dead_letters()
    assert kept.payload == {"when": str(NOW)}


# ---- Table Storage only -----------------------------------------------------------------
def test_table_store_splits_large_documents_and_refuses_oversized_ones(azurite_connection_string: str) -> None:
    from azure.data.tables import TableServiceClient

    from platforms.azure.table_store import PART_CHARS, DocumentTooLarge, TableReleaseStore

    prefix = f"t{uuid.uuid4().hex[:20]}"
    store = TableReleaseStore.from_connection_string(azurite_connection_string, prefix)
    service = TableServiceClient.from_connection_string(azurite_connection_string)
    try:
        release = full_release("rel-big")
        created(store, release)
        raw = service.get_table_client(prefix).get_entity("release", "rel-big")
        assert raw["parts"] == 5  # ~135,000 characters in properties of at most 32,000
        assert all(len(raw[f"doc{i}"]) <= PART_CHARS for i in range(raw["parts"]))
        assert (raw["state"], raw["created_at"], raw["version"]) == ("awaiting_approval", release.created_at, 1)

        loaded = store.get("rel-big")
        assert loaded is not None
        loaded.note(NOW, "huge", "z" * 500_000)  # more than one entity holds
        with pytest.raises(DocumentTooLarge):
            store.save(loaded)
        assert loaded.version == 1
        unchanged = store.get("rel-big")
        assert unchanged is not None
        assert unchanged.to_json() == release.to_json()
        with pytest.raises(DocumentTooLarge):
            store.create(full_release("rel-huge", timeline_entries=3000))
        assert store.get("rel-huge") is None
    finally:
        for name in (prefix, f"{prefix}parked", f"{prefix}deadletters"):
            service.delete_table(name)
