"""Retraining on new data: a burst of BlobCreated within the debounce window starts one release, on the newest blob."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta

import pytest

from functions.domain.data_trigger import DataTrigger, DataTriggerError, subject_for
from functions.domain.release import State
from functions.links import Links
from functions.service.orchestrator import Orchestrator
from functions.service.results import Outcome
from functions.settings import Settings, SettingsError
from tests.doubles.clock import Clock
from tests.doubles.ports import Calls, fake_ports

FUNCTION = "on_storage_event"
TRIGGER = DataTrigger("training-data", "diabetes/", timedelta(minutes=5))


def service(trigger: DataTrigger | None = TRIGGER) -> tuple[Orchestrator, Calls, Clock]:
    calls, clock = Calls(), Clock()
    return Orchestrator(fake_ports(calls), links=Links(), clock=clock, data_trigger=trigger), calls, clock


def blob_created(name: str, clock: Clock, *, container: str = "training-data", size: int = 4096,
                 event_id: str | None = None) -> dict:  # fmt: skip
    """A BlobCreated as Event Grid delivers it (Event Grid schema)."""
    return {
        "id": event_id or str(uuid.uuid4()),
        "topic": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/stmlops",
        "subject": subject_for(container, name),
        "eventType": "Microsoft.Storage.BlobCreated",
        "eventTime": clock().isoformat(),
        "data": {
            "api": "PutBlob",
            "clientRequestId": "6d79dbfb-0e37-4fc4-981f-442c9ca65760",
            "requestId": "831e1650-001e-001b-66ab-eeb76e000000",
            "eTag": "0x8D4BCC2E4835CD0",
            "contentType": "text/csv",
            "contentLength": size,
            "blobType": "BlockBlob",
            "url": f"https://stmlops.blob.core.windows.net/{container}/{name}",
            "sequencer": "00000000000004420000000000028963",
            "storageDiagnostics": {"batchId": "b68529f3-68cd-4744-baa4-3c0498ec19f0"},
        },
        "dataVersion": "",
        "metadataVersion": "1",
    }


def data_releases(orchestrator: Orchestrator) -> list:
    return [r for r in orchestrator.ports.store.list(limit=100) if r.trigger.get("kind") == "data"]


def test_three_blobs_within_the_window_start_one_release_trained_on_the_newest():
    orchestrator, calls, clock = service()
    for minute, name in enumerate(["diabetes/a.csv", "diabetes/b.csv", "diabetes/c.csv"]):
        assert orchestrator.receive(FUNCTION, blob_created(name, clock)) is Outcome.HANDLED
        clock.advance(minutes=1 + minute)  # 0, +1, +3 minutes: all within 5 minutes of the first
    (release,) = data_releases(orchestrator)
    assert release.state is State.COLLECTING and release.trigger["blob_count"] == 3
    assert calls.count("submit") == 0  # nothing trains while the window is open
    orchestrator.reconcile()  # 6 minutes after the first blob: still open? no, it closed at +5
    release = orchestrator.get_release(release.id)
    assert release.state is State.TRAINING and calls.count("submit") == 1
    assert [b["name"] for b in release.trigger["blobs"]] == ["diabetes/a.csv", "diabetes/b.csv", "diabetes/c.csv"]
    assert release.trigger["trainingData"] == "https://stmlops.blob.core.windows.net/training-data/diabetes/c.csv"
    assert release.trigger["requester"] == "mlops-data"
    steps = [entry["step"] for entry in release.timeline]
    assert steps[:5] == ["collecting", "data_arrived", "data_arrived", "data_arrived", "data_window_closed"]


def test_the_window_closes_at_its_own_time_not_at_the_last_blob():
    orchestrator, calls, clock = service()
    orchestrator.receive(FUNCTION, blob_created("diabetes/a.csv", clock))
    clock.advance(minutes=4, seconds=59)
    orchestrator.receive(FUNCTION, blob_created("diabetes/b.csv", clock))
    orchestrator.reconcile()
    assert calls.count("submit") == 0
    clock.advance(seconds=1)
    orchestrator.reconcile()
    assert calls.count("submit") == 1
    clock.advance(seconds=1)
    orchestrator.receive(FUNCTION, blob_created("diabetes/c.csv", clock))  # after the close: a new window
    windows = data_releases(orchestrator)
    assert len(windows) == 2 and {r.state for r in windows} == {State.TRAINING, State.COLLECTING}


def test_a_redelivered_blob_event_is_a_duplicate_while_its_window_is_open_and_after_it_closed():
    orchestrator, calls, clock = service()
    event = blob_created("diabetes/a.csv", clock)
    assert orchestrator.receive(FUNCTION, event) is Outcome.HANDLED
    assert orchestrator.receive(FUNCTION, event) is Outcome.DUPLICATE
    clock.advance(minutes=6)
    orchestrator.reconcile()
    assert orchestrator.receive(FUNCTION, event) is Outcome.DUPLICATE
    (release,) = data_releases(orchestrator)
    assert release.trigger["blob_count"] == 1 and calls.count("submit") == 1


def test_blobs_racing_to_open_the_window_share_one():
    """Eight blobs delivered at once on eight threads: one window, every blob in it."""
    orchestrator, _, clock = service()
    events = [blob_created(f"diabetes/part-{i}.csv", clock) for i in range(8)]
    outcomes: list[Outcome] = []
    threads = [threading.Thread(target=lambda e=e: outcomes.append(orchestrator.receive(FUNCTION, e))) for e in events]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    (release,) = data_releases(orchestrator)
    assert outcomes.count(Outcome.HANDLED) == 8
    assert sorted(b["name"] for b in release.trigger["blobs"]) == sorted(f"diabetes/part-{i}.csv" for i in range(8))


@pytest.mark.parametrize(
    ("name", "container", "size"),
    [("other/a.csv", "training-data", 10), ("diabetes/a.csv", "logs", 10), ("diabetes/empty.csv", "training-data", 0)],
)
def test_blobs_outside_the_container_and_prefix_or_empty_are_ignored(name, container, size):
    orchestrator, _, clock = service()
    outcome = orchestrator.receive(FUNCTION, blob_created(name, clock, container=container, size=size))
    assert outcome is Outcome.IGNORED and data_releases(orchestrator) == []


def test_with_the_data_trigger_off_blobs_start_nothing():
    orchestrator, _, clock = service(trigger=None)
    assert orchestrator.receive(FUNCTION, blob_created("diabetes/a.csv", clock)) is Outcome.IGNORED


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"subject": "/containers/x"}, "subject must be"),
        ({"data": {"contentLength": 3}}, "has no url"),
        ({"data": {"url": "https://x/y", "contentLength": "big"}}, "contentLength must be"),
    ],
)
def test_a_malformed_blob_event_is_dead_lettered(change, reason):
    orchestrator, _, clock = service()
    event = blob_created("diabetes/a.csv", clock) | change
    assert orchestrator.receive(FUNCTION, event) is Outcome.DEAD_LETTERED
    assert reason in orchestrator.dead_letters(10)[0].reason


def test_a_blob_event_at_another_function_is_dead_lettered():
    orchestrator, _, clock = service()
    assert orchestrator.receive("on_ml_event", blob_created("diabetes/a.csv", clock)) is Outcome.DEAD_LETTERED


def test_a_window_lists_a_bounded_number_of_blobs_and_counts_all():
    orchestrator, _, clock = service()
    for i in range(105):
        orchestrator.receive(FUNCTION, blob_created(f"diabetes/{i:03d}.csv", clock))
        clock.advance(seconds=1)
    (release,) = data_releases(orchestrator)
    assert release.trigger["blob_count"] == 105 and len(release.trigger["blobs"]) == 100
    assert release.trigger["newest"]["name"] == "diabetes/104.csv"


def test_the_settings_turn_it_on_and_name_a_bad_value():
    local = Settings.from_env({"MLOPS_PLATFORM": "local"})
    assert local.data_trigger == DataTrigger("training-data", "", timedelta(minutes=5))
    assert Settings.from_env({"MLOPS_PLATFORM": "local", "MLOPS_DATA_CONTAINER": "off"}).data_trigger is None
    env = {"MLOPS_PLATFORM": "local", "MLOPS_DATA_CONTAINER": "ml", "MLOPS_DATA_DEBOUNCE_SECONDS": "60"}
    with pytest.raises(SettingsError, match="MLOPS_DATA_CONTAINER 'ml' is not a container name"):
        Settings.from_env(env)
    env["MLOPS_DATA_CONTAINER"] = "new-data"
    assert Settings.from_env(env).data_trigger == DataTrigger("new-data", "", timedelta(seconds=60))
    with pytest.raises(SettingsError, match="MLOPS_DATA_DEBOUNCE_SECONDS"):
        Settings.from_env({**env, "MLOPS_DATA_DEBOUNCE_SECONDS": "-1"})
    with pytest.raises(DataTriggerError, match="no leading"):
        DataTrigger("new-data", "/x")


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("file:///etc/passwd", "does not name the blob of the subject"),
        ("https://stmlops.blob.core.windows.net/training-data/diabetes/other.csv", "does not name the blob"),
        ("ftp://stmlops/training-data/diabetes/new.csv", "must be an https (or local file) URL"),
        ("/training-data/diabetes/new.csv", "not relative"),
    ],
)
def test_a_blob_whose_url_is_not_the_subjects_blob_is_dead_lettered_and_trains_nothing(url, why):
    orchestrator, calls, clock = service()
    event = blob_created("diabetes/new.csv", clock)
    event["data"]["url"] = url
    assert orchestrator.receive("on_storage_event", event) is Outcome.DEAD_LETTERED
    (letter,) = orchestrator.ports.store.dead_letters()
    assert why in letter.reason and data_releases(orchestrator) == [] and calls.count("submit") == 0


def test_a_local_file_url_of_the_subjects_blob_is_taken():
    orchestrator, _, clock = service()
    event = blob_created("diabetes/new.csv", clock)
    event["data"]["url"] = "file:///home/me/.mlops/training-data/diabetes/new%2Ecsv"
    assert orchestrator.receive("on_storage_event", event) is Outcome.HANDLED
