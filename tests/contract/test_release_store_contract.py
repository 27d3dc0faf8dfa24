"""The ReleaseStore contract, run against SQLite and against Azure Table Storage on Azurite.

The outbox tests run against the in-memory fake of tests/doubles too (the ``outbox`` fixtures).
"""

from __future__ import annotations

import dataclasses
import json
import threading
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from functions.domain.refs import DeadLetter, WorkItem
from functions.domain.release import Release, State
from functions.ports import MAX_TOKEN_LIFETIME, ConcurrencyError, ReleaseStore
from tests.contract.conftest import StoreFactory, delete_tables

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
# Characters a Table key may not hold (/ \ # ? control characters), the escape character itself,
# and a quote and non-ASCII text for good measure.
AWKWARD = "evt/1\\2#3?4\t5\x006\x7f7\x858%2F9'ü🚀"


def race(target: Callable[..., None], arguments: Iterable[tuple[Any, ...]]) -> None:
    """Run ``target(*args)`` for each ``args`` in its own thread, all at once, and wait for them (60 s each)."""
    threads = [threading.Thread(target=target, args=args) for args in arguments]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)


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

    race(writer, [(f"w{i}", s) for i, s in enumerate(stores)])
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
PARKED_AT = NOW.isoformat()


def event(event_id: str, size: int = 0) -> dict[str, Any]:
    return {"id": event_id, "eventType": "Microsoft.MachineLearningServices.RunCompleted", "data": {"pad": "p" * size}}


def test_parked_events_come_back_oldest_first_once(store: ReleaseStore) -> None:
    store.park("rel-1", "e1", event("e1"), PARKED_AT)
    store.park("rel-1", AWKWARD, event(AWKWARD, size=100_000), PARKED_AT)  # a large one, and an id keys may not hold
    store.park("rel-1", "e1", event("e1"), PARKED_AT)  # delivered twice: parked once
    store.park("rel-1", "e3", event("e3"), PARKED_AT)
    store.park("rel-2", "e1", event("e1"), PARKED_AT)  # another release's

    assert [p["id"] for p in store.take_parked("rel-1")] == ["e1", AWKWARD, "e3"]
    assert store.take_parked("rel-1") == []
    assert store.take_parked("rel-9") == []
    assert store.take_parked("rel-2") == [event("e1")]


def test_a_taken_event_can_be_parked_again(store: ReleaseStore) -> None:
    store.park("rel-1", "e1", event("e1"), PARKED_AT)
    store.park("rel-1", "e2", event("e2"), PARKED_AT)
    assert [p["id"] for p in store.take_parked("rel-1")] == ["e1", "e2"]

    store.park("rel-1", "e1", event("e1"), PARKED_AT)  # its replay failed: the orchestrator parks it again
    assert store.take_parked("rel-1") == [event("e1")]


def test_concurrent_takers_get_each_parked_event_once(open_store: StoreFactory) -> None:
    first, second = open_store(), open_store()
    ids = [f"e{i:02d}" for i in range(12)]
    for event_id in ids:
        first.park("rel-1", event_id, event(event_id), PARKED_AT)
    start = threading.Barrier(2, timeout=30)
    taken: list[list[dict[str, Any]]] = [[], []]

    def take(index: int, store: ReleaseStore) -> None:
        start.wait()
        taken[index] = store.take_parked("rel-1")

    race(take, [(i, s) for i, s in enumerate((first, second))])

    together = [p["id"] for p in taken[0] + taken[1]]
    assert sorted(together) == ids
    for batch in taken:
        assert [p["id"] for p in batch] == sorted(p["id"] for p in batch)  # each batch oldest first
    assert first.take_parked("rel-1") == []


def test_parked_events_are_listed_newest_first_in_pages(listing_store: ReleaseStore) -> None:
    store = listing_store
    for n in range(5):
        store.park(f"rel-{n % 2}", f"e{n}", event(f"e{n}"), at(n))
    first = store.parked(limit=3)
    assert [(p.release_id, p.event_id) for p in first] == [("rel-0", "e4"), ("rel-1", "e3"), ("rel-0", "e2")]
    assert first[0].event_type == "Microsoft.MachineLearningServices.RunCompleted"
    assert first[0].parked_at == at(4)
    rest = store.parked(limit=3, before=first[-1].cursor)
    assert [p.event_id for p in rest] == ["e1", "e0"]
    assert store.parked(limit=3, before=rest[-1].cursor) == []


def test_parked_events_older_than_a_cutoff_come_with_their_payloads_and_unpark_once(
    listing_store: ReleaseStore,
) -> None:
    store = listing_store
    store.park("rel-1", "old", event("old", size=100_000), at(-120))
    store.park("rel-2", AWKWARD, event(AWKWARD), at(-61))
    store.park("rel-1", "new", event("new"), at(-1))
    found = store.parked_before(at(-60))
    assert [(entry.release_id, entry.event_id) for entry, _ in found] == [("rel-1", "old"), ("rel-2", AWKWARD)]
    assert found[0][1] == event("old", size=100_000)
    assert store.unpark("rel-1", "old") is True
    assert store.unpark("rel-1", "old") is False  # gone already: another worker expired it
    assert store.unpark("rel-2", AWKWARD) is True
    assert store.parked_before(at(-60)) == []
    assert [p["id"] for p in store.take_parked("rel-1")] == ["new"]


def test_an_event_parked_before_parked_at_was_kept_is_aged_by_its_timestamp(
    azurite_connection_string: str,
) -> None:
    """Table Storage: a parked entity written by an older version has no parked_at (SQLite fills it in)."""
    from azure.data.tables import TableServiceClient

    from platforms.azure.table_store import TableReleaseStore, next_sequence, split_json

    prefix = f"t{uuid.uuid4().hex[:20]}"
    service = TableServiceClient.from_connection_string(azurite_connection_string)
    store = TableReleaseStore(service, prefix)
    try:
        old = {"PartitionKey": "rel-1", "RowKey": "e1", "event_id": "e1", "seq": next_sequence()}
        service.get_table_client(f"{prefix}parked").create_entity(
            {**old, **split_json(json.dumps(event("e1")), what="x")}
        )
        (listed,) = store.parked()
        assert listed.release_id == "rel-1" and listed.parked_at.startswith(str(datetime.now(UTC).year))
        assert store.parked_before((datetime.now(UTC) - timedelta(hours=1)).isoformat()) == []
        ((entry, payload),) = store.parked_before((datetime.now(UTC) + timedelta(minutes=5)).isoformat())
        assert entry.event_id == "e1" and payload == event("e1")
    finally:
        from tests.contract.conftest import delete_tables

        delete_tables(azurite_connection_string, prefix)


# ---- dead letters -----------------------------------------------------------------------
def letter(event_id: str, function: str, payload: Any = None, reason: str = "bad") -> DeadLetter:
    return DeadLetter.of(event_id, "Some.Event", function, reason, NOW.isoformat(), payload)


def test_a_dead_letter_is_kept_once_per_event_and_function(listing_store: ReleaseStore) -> None:
    store = listing_store
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


def test_dead_letters_are_newest_first_with_bounded_excerpts(listing_store: ReleaseStore) -> None:
    store = listing_store
    payloads: list[Any] = [
        {"id": "e0", "nested": {"a": [1, 2]}},
        "not even an object",
        None,
        {"id": "e3", "pad": "q" * 100_000},  # over 64 KiB: kept as its excerpt, size and sha256
        ["a", "list"],
    ]
    for i, payload in enumerate(payloads):
        assert store.add_dead_letter(letter(f"e{i}", "on_build", payload, reason=f"reason {i}"))

    letters = store.dead_letters()
    assert [d.event_id for d in letters] == ["e4", "e3", "e2", "e1", "e0"]
    assert [json.loads(d.excerpt) for d in letters if d.event_id != "e3"] == [
        ["a", "list"],
        None,
        "not even an object",
        payloads[0],
    ]
    big = letters[1]
    assert big.truncated and big.size == len(json.dumps(payloads[3])) and len(big.excerpt) == 2048
    assert dataclasses.replace(letters[0], cursor="") == letter("e4", "on_build", ["a", "list"], reason="reason 4")
    assert [d.event_id for d in store.dead_letters(limit=2)] == ["e4", "e3"]


def test_dead_letters_page_by_cursor(listing_store: ReleaseStore) -> None:
    store = listing_store
    for n in range(7):
        store.add_dead_letter(letter(f"e{n}", "on_build"))
    pages, before = [], None
    while page := store.dead_letters(limit=3, before=before):
        pages.append([d.event_id for d in page])
        before = page[-1].cursor
    assert pages == [["e6", "e5", "e4"], ["e3", "e2", "e1"], ["e0"]]


def test_a_dead_letter_of_text_that_is_not_valid_unicode_is_kept_escaped(listing_store: ReleaseStore) -> None:
    store = listing_store
    bad = letter("evt\ud800", "on_build", {"id": "evt\ud800", "data": {"x": "\udc00"}}, reason="lone \ud800")
    assert store.add_dead_letter(bad)
    (kept,) = store.dead_letters()
    assert kept.event_id == "evt\\ud800" and kept.reason == "lone \\ud800" and "\\udc00" in kept.excerpt


def test_a_dead_letter_payload_that_is_not_json_is_kept_as_text(store: ReleaseStore) -> None:
    assert store.add_dead_letter(letter("e1", "on_build", {"when": NOW}))
    (kept,) = store.dead_letters()
    assert json.loads(kept.excerpt) == {"when": str(NOW)}


# ---- the outbox --------------------------------------------------------------------------
def at(minutes: float = 0) -> str:
    """NOW plus ``minutes`` as the outbox writes times: ISO 8601 UTC, which sorts as text."""
    return (NOW + timedelta(minutes=minutes)).isoformat()


def work(key: str, due: float = 0, release_id: str = "rel-1", payload: dict[str, Any] | None = None) -> WorkItem:
    return WorkItem(key, "notify", release_id, {"key": key} if payload is None else payload, at(due))


def keys(items: list[WorkItem]) -> list[str]:
    return [item.key for item in items]


def claim(store: ReleaseStore, item: WorkItem, lease_until: str) -> WorkItem:
    claimed = store.claim_work(item, lease_until)
    assert claimed is not None, f"{item.key} could not be claimed"
    return claimed


def test_adding_a_key_twice_keeps_the_first_item(outbox: ReleaseStore) -> None:
    payload = {"to": "team", "nested": {"list": [1, 2.5, None, True], "text": "naïve ☃ 🚀"}, "pad": "p" * 100_000}
    first = work(f"notify:{AWKWARD}", payload=payload)  # over 64 KiB, and a key Table keys may not hold

    assert outbox.add_work(first) is True
    assert outbox.add_work(dataclasses.replace(first, kind="other", due_at=at(-5), payload={"to": "x"})) is False
    assert outbox.add_work(work("notify:rel-1:other")) is True

    kept = [item for item in outbox.pending_work() if item.key == first.key]
    assert [dataclasses.replace(item, version=first.version) for item in kept] == [first]
    assert (kept[0].attempts, kept[0].last_error) == (0, "")


def test_due_work_is_what_is_due_by_now_earliest_first(outbox: ReleaseStore) -> None:
    for key, due in [("c", 5), ("a", -10), ("d", 0), ("b", -10), ("e", 60)]:
        assert outbox.add_work(work(key, due))

    assert keys(outbox.due_work(at(0))) == ["a", "b", "d"]  # due at `now` is due; the same time: by key
    assert keys(outbox.due_work(at(5))) == ["a", "b", "d", "c"]
    assert keys(outbox.due_work(at(5), limit=2)) == ["a", "b"]  # the earliest, not the first added
    assert keys(outbox.due_work(at(59))) == ["a", "b", "d", "c"]
    assert keys(outbox.due_work(at(24 * 60))) == ["a", "b", "d", "c", "e"]
    assert outbox.due_work(at(-11)) == []
    (earliest, _) = outbox.due_work(at(-10))
    assert earliest == dataclasses.replace(work("a", -10), version=earliest.version)  # as it was added


def test_of_two_claims_of_one_loaded_item_exactly_one_wins(outbox: ReleaseStore) -> None:
    outbox.add_work(work("w1", payload={"subject": "approve rel-1"}))
    (loaded,) = outbox.due_work(at(0))

    claimed = claim(outbox, loaded, at(5))
    assert outbox.claim_work(loaded, at(10)) is None  # the same loaded copy again: someone has it

    assert (claimed.key, claimed.kind, claimed.release_id, claimed.payload) == ("w1", "notify", "rel-1", loaded.payload)
    assert (claimed.due_at, claimed.attempts, claimed.last_error) == (at(5), 1, "")
    assert claimed.version != loaded.version
    assert outbox.pending_work() == [claimed]


def test_a_claimed_item_is_not_due_until_its_lease_ends(outbox: ReleaseStore) -> None:
    outbox.add_work(work("w1"))
    outbox.add_work(work("w2", 1))
    (first, _) = outbox.due_work(at(1))
    claimed = claim(outbox, first, at(5))

    assert keys(outbox.due_work(at(1))) == ["w2"]
    assert keys(outbox.due_work(at(4))) == ["w2"]
    assert keys(outbox.due_work(at(5))) == ["w2", "w1"]  # the lease ran out: the worker died, say

    (expired,) = [item for item in outbox.due_work(at(5)) if item.key == "w1"]
    assert expired == claimed
    again = claim(outbox, expired, at(10))
    assert again.attempts == 2
    assert outbox.claim_work(claimed, at(15)) is None  # the first worker's copy is stale now


def test_a_finish_from_a_worker_whose_lease_ran_out_leaves_the_item_to_its_new_holder(outbox: ReleaseStore) -> None:
    outbox.add_work(work("w1"))
    (loaded,) = outbox.due_work(at(0))
    slow = claim(outbox, loaded, at(5))
    (expired,) = outbox.due_work(at(5))
    fast = claim(outbox, expired, at(10))

    assert outbox.finish_work(slow) is False  # the slow worker cannot delete what the fast one holds
    assert outbox.pending_work() == [fast]
    assert outbox.finish_work(fast) is True and outbox.pending_work() == []


def test_claiming_an_item_that_is_gone_or_was_never_added_gives_none(outbox: ReleaseStore) -> None:
    outbox.add_work(work("w1"))
    (loaded,) = outbox.due_work(at(0))
    assert outbox.finish_work(claim(outbox, loaded, at(1))) is True

    assert outbox.claim_work(loaded, at(5)) is None
    assert outbox.claim_work(work("never-added"), at(5)) is None
    assert outbox.pending_work() == []


def test_retry_puts_a_claimed_item_back_with_its_error_and_keeps_the_attempts(outbox: ReleaseStore) -> None:
    outbox.add_work(work("w1"))
    (loaded,) = outbox.due_work(at(0))
    claimed = claim(outbox, loaded, at(5))

    outbox.retry_work(claimed, at(30), "HTTP 503: 'try later' ☃")

    assert outbox.due_work(at(29)) == []
    (retried,) = outbox.due_work(at(30))
    assert (retried.due_at, retried.last_error, retried.attempts) == (at(30), "HTTP 503: 'try later' ☃", 1)
    assert (retried.kind, retried.release_id, retried.payload) == (loaded.kind, loaded.release_id, loaded.payload)
    assert outbox.claim_work(claimed, at(40)) is None  # the retry changed it: the claimed copy is stale

    second = claim(outbox, retried, at(35))
    assert (second.attempts, second.last_error) == (2, "HTTP 503: 'try later' ☃")  # kept until the next retry


def test_a_retry_from_a_worker_whose_lease_ran_out_changes_nothing(outbox: ReleaseStore) -> None:
    outbox.add_work(work("w1"))
    (loaded,) = outbox.due_work(at(0))
    slow = claim(outbox, loaded, at(5))
    (expired,) = outbox.due_work(at(5))
    fast = claim(outbox, expired, at(10))  # another worker took it over when the lease ran out

    outbox.retry_work(slow, at(60), "the slow worker's error")

    assert outbox.pending_work() == [fast]


def test_finish_removes_an_item_and_is_idempotent(outbox: ReleaseStore) -> None:
    outbox.add_work(work("w1"))
    outbox.add_work(work("w2"))
    (first, _) = outbox.due_work(at(0))
    claimed = claim(outbox, first, at(5))

    assert outbox.finish_work(claimed) is True
    assert outbox.finish_work(claimed) is False  # done twice (a retried timer run): no error, nothing left
    assert outbox.finish_work(work("never-added")) is False

    assert keys(outbox.pending_work()) == ["w2"]
    assert keys(outbox.due_work(at(60))) == ["w2"]
    outbox.retry_work(claimed, at(10), "late")  # a retry of a finished item does not bring it back
    assert outbox.claim_work(claimed, at(10)) is None
    assert keys(outbox.pending_work()) == ["w2"]


def test_pending_work_is_every_item_not_done_of_one_release_or_of_all(outbox: ReleaseStore) -> None:
    outbox.add_work(work("a", 30, "rel-1"))
    outbox.add_work(work("b", -5, "rel-2"))
    outbox.add_work(work("c", 0, "rel-1"))
    outbox.add_work(work("d", 90, "rel-o'brien"))  # a quote in a filter value
    (leased,) = [item for item in outbox.due_work(at(0)) if item.key == "c"]
    claim(outbox, leased, at(45))  # claimed items are pending too, by their lease

    assert keys(outbox.pending_work()) == ["b", "a", "c", "d"]
    assert keys(outbox.pending_work(limit=2)) == ["b", "a"]
    assert keys(outbox.pending_work("rel-1")) == ["a", "c"]
    assert keys(outbox.pending_work("rel-1", limit=1)) == ["a"]
    assert keys(outbox.pending_work("rel-o'brien")) == ["d"]
    assert outbox.pending_work("rel-9") == []
    assert outbox.pending_work(release_id=None) == outbox.pending_work()


@pytest.mark.parametrize("workers", ["one store object", "a store object each"])
def test_two_workers_racing_to_claim_one_item_exactly_one_gets_it(open_outbox: StoreFactory, workers: str) -> None:
    shared = open_outbox()
    shared.add_work(work("w1"))
    stores = [shared, shared] if workers == "one store object" else [open_outbox(), open_outbox()]
    both_loaded = threading.Barrier(2, timeout=30)
    results: dict[str, WorkItem | None] = {}
    errors: list[BaseException] = []

    def worker(name: str, store: ReleaseStore) -> None:
        try:
            (item,) = store.due_work(at(0))
            both_loaded.wait()  # both hold the same version before either claims
            results[name] = store.claim_work(item, at(5))
        except BaseException as exc:
            errors.append(exc)

    race(worker, [(f"w{i}", s) for i, s in enumerate(stores)])
    assert not errors, errors
    assert sorted(results) == ["w0", "w1"]
    winners = [claimed for claimed in results.values() if claimed is not None]
    assert len(winners) == 1
    assert shared.pending_work() == winners
    assert winners[0].attempts == 1


def test_two_timers_draining_the_outbox_claim_each_item_once(open_outbox: StoreFactory) -> None:
    first, second = open_outbox(), open_outbox()
    all_keys = [f"w{i:02d}" for i in range(12)]
    for key in all_keys:
        first.add_work(work(key))
    start = threading.Barrier(2, timeout=30)
    claimed: list[list[str]] = [[], []]

    def drain(index: int, store: ReleaseStore) -> None:
        start.wait()
        for item in store.due_work(at(0)):
            if (won := store.claim_work(item, at(5))) is not None:
                claimed[index].append(won.key)

    race(drain, [(i, s) for i, s in enumerate((first, second))])

    assert sorted(claimed[0] + claimed[1]) == all_keys
    assert first.due_work(at(0)) == []
    assert [item.attempts for item in first.pending_work()] == [1] * len(all_keys)


# ---- single-use tokens: spent nonces ---------------------------------------------------------
def expiry(hours: float) -> str:
    return (NOW + timedelta(hours=hours)).isoformat()


def test_a_nonce_is_spent_once(open_outbox: StoreFactory) -> None:
    first, second = open_outbox(), open_outbox()
    assert first.spend_nonce("n-1", expiry(1)) is True
    assert first.spend_nonce("n-1", expiry(1)) is False
    assert second.spend_nonce("n-1", expiry(1)) is False  # another worker sees it spent
    assert second.spend_nonce("n-2", expiry(1)) is True
    assert first.spend_nonce(AWKWARD, expiry(1)) is True and first.spend_nonce(AWKWARD, expiry(1)) is False
    assert first.spend_nonce("n-3", "2025-03-01T13:00:00Z") is True  # any ISO spelling of UTC
    assert first.spend_nonce("n-3", "2025-03-01T13:00:00+00:00") is False


def test_spent_nonces_are_not_work(open_outbox: StoreFactory) -> None:
    store = open_outbox()
    store.spend_nonce("n-1", expiry(-1000))
    assert store.pending_work() == [] and store.due_work(at(10**6)) == []


@pytest.mark.parametrize("workers", ["one store object", "a store object each"])
def test_of_two_racing_spenders_exactly_one_spends(open_outbox: StoreFactory, workers: str) -> None:
    shared = open_outbox()
    stores = [shared, shared] if workers == "one store object" else [open_outbox(), open_outbox()]
    start = threading.Barrier(2, timeout=30)
    results: list[bool] = []
    errors: list[BaseException] = []

    def spender(store: ReleaseStore) -> None:
        try:
            start.wait()
            results.append(store.spend_nonce("n-race", expiry(1)))
        except BaseException as exc:
            errors.append(exc)

    race(spender, [(s,) for s in stores])
    assert not errors, errors
    assert sorted(results) == [False, True]


def test_a_spent_nonce_is_kept_while_any_token_with_it_could_still_be_valid(open_outbox: StoreFactory) -> None:
    """Forgotten only once a newer spend expires more than MAX_TOKEN_LIFETIME (and an hour) after it."""
    open_outbox().spend_nonce("old", expiry(0))
    open_outbox().spend_nonce("recent", expiry(2))
    later = MAX_TOKEN_LIFETIME.total_seconds() / 3600 + 1.5  # hours: "old" is forgettable, "recent" is not
    open_outbox().spend_nonce("new", expiry(later))
    checker = open_outbox()
    assert checker.spend_nonce("recent", expiry(2)) is False
    assert checker.spend_nonce("new", expiry(later)) is False
    # "old" expired long before any token the store can still be shown was minted: it was forgotten
    # (the table does not grow forever); a token carrying it is refused as expired before the store is asked.
    assert checker.spend_nonce("old", expiry(0)) is True


# ---- Table Storage only -----------------------------------------------------------------
def test_table_store_splits_large_documents_and_refuses_oversized_ones(azurite_connection_string: str) -> None:
    from azure.data.tables import TableServiceClient

    from platforms.azure.table_store import PART_CHARS, DocumentTooLarge, TableReleaseStore

    prefix = f"t{uuid.uuid4().hex[:20]}"
    store = TableReleaseStore(TableServiceClient.from_connection_string(azurite_connection_string), prefix)
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
        delete_tables(azurite_connection_string, prefix)


def test_table_store_keeps_a_work_item_in_its_own_table_within_property_limits(azurite_connection_string: str) -> None:
    from azure.data.tables import TableServiceClient

    from platforms.azure.table_store import MAX_REASON_CHARS, PART_CHARS, WORK_PARTITION, TableReleaseStore

    prefix = f"t{uuid.uuid4().hex[:20]}"
    store = TableReleaseStore(TableServiceClient.from_connection_string(azurite_connection_string), prefix)
    service = TableServiceClient.from_connection_string(azurite_connection_string)
    try:
        assert store.add_work(work("w1", payload={"pad": "p" * 100_000}))
        raw = service.get_table_client(f"{prefix}work").get_entity(WORK_PARTITION, "w1")
        assert raw["parts"] == 4 and all(len(raw[f"doc{i}"]) <= PART_CHARS for i in range(raw["parts"]))
        assert (raw["due_at"], raw["release_id"], raw["attempts"]) == (at(0), "rel-1", 0)

        (loaded,) = store.due_work(at(0))
        store.retry_work(claim(store, loaded, at(5)), at(10), "e" * 100_000)  # e.g. a long traceback
        (retried,) = store.pending_work()
        assert retried.last_error == "e" * MAX_REASON_CHARS
        assert retried.payload == {"pad": "p" * 100_000}
    finally:
        delete_tables(azurite_connection_string, prefix)
