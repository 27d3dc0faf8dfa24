"""The local training-data container: `mlops trigger data` and the watched folder send the BlobCreated Storage would."""

from __future__ import annotations

import contextlib
import os
from datetime import timedelta
from pathlib import Path

from functions.domain import events as ev
from functions.domain.data_trigger import DataTrigger
from platforms.local.data_folder import FolderWatcher, blob_created, put
from platforms.local.training import LocalTraining

TRIGGER = DataTrigger("training-data", "diabetes/", timedelta(seconds=30))


def test_a_file_put_in_the_container_is_a_blob_created_event_the_app_parses(tmp_path: Path):
    source = tmp_path / "new.csv"
    source.write_text("age,target\n1,2\n")
    blob = put(tmp_path / "home", TRIGGER, source)
    assert blob == tmp_path / "home" / "training-data" / "diabetes" / "new.csv"
    event = ev.parse_event(blob_created(tmp_path / "home", TRIGGER, blob))
    assert isinstance(event, ev.BlobCreated) and event.size == 15
    assert TRIGGER.blob_name(event.subject) == "diabetes/new.csv"
    assert event.url == blob.resolve().as_uri()
    # The same file gives the same event id (the CLI and the watcher agree); a changed one another.
    assert blob_created(tmp_path / "home", TRIGGER, blob)["id"] == event.id
    blob.write_text("age,target\n1,2\n3,4\n")
    assert blob_created(tmp_path / "home", TRIGGER, blob)["id"] != event.id


def test_the_watcher_sends_new_files_once_they_are_whole_and_not_what_was_there_at_start(tmp_path: Path):
    folder = tmp_path / "training-data" / "diabetes"
    folder.mkdir(parents=True)
    (folder / "old.csv").write_text("a\n1\n")
    sent: list[dict] = []
    watcher = FolderWatcher(tmp_path, TRIGGER, sent.append)
    assert watcher.poll() == []
    (folder / "new.csv").write_text("a\n1\n")
    (folder / ".hidden.csv").write_text("a\n1\n")
    (tmp_path / "training-data" / "elsewhere.csv").write_text("a\n1\n")  # outside the prefix
    assert watcher.poll() == []  # seen once: sent when it has not changed by the next poll
    assert watcher.poll() == [folder / "new.csv"] and len(sent) == 1
    assert watcher.poll() == []
    (folder / "new.csv").write_text("a\n1\n2\n")
    os.utime(folder / "new.csv", ns=(1, 2))
    watcher.poll()
    assert watcher.poll() == [folder / "new.csv"] and len(sent) == 2


def test_a_failed_send_is_tried_again_on_the_next_poll(tmp_path: Path):
    (tmp_path / "training-data" / "diabetes").mkdir(parents=True)
    attempts: list[dict] = []

    def flaky(event: dict) -> None:
        attempts.append(event)
        if len(attempts) == 1:
            raise ConnectionError("host starting")

    watcher = FolderWatcher(tmp_path, TRIGGER, flaky)
    (tmp_path / "training-data" / "diabetes" / "x.csv").write_text("a\n1\n")
    watcher.poll()
    with contextlib.suppress(ConnectionError):
        watcher.poll()
    assert watcher.poll() and len(attempts) == 2 and attempts[0]["id"] == attempts[1]["id"]


def test_local_training_trains_on_the_windows_blob(tmp_path: Path):
    training = LocalTraining(tmp_path, publisher=None, data="diabetes")  # type: ignore[arg-type]
    csv = tmp_path / "training-data" / "new data.csv"
    assert training.data_for({"trainingData": csv.as_uri()}) == str(csv)
    assert training.data_for({"kind": "build"}) == "diabetes"
