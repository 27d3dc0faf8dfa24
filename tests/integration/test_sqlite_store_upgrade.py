"""A SQLite store written before parked events expired and dead letters kept excerpts still opens and reads."""

from __future__ import annotations

import gc
import json
import os
import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

from platforms.local.store import SqliteReleaseStore

OLD_SCHEMA = """
CREATE TABLE parked_events (seq INTEGER PRIMARY KEY AUTOINCREMENT, release_id TEXT NOT NULL,
    event_id TEXT NOT NULL, payload TEXT NOT NULL, UNIQUE (release_id, event_id));
CREATE TABLE dead_letters (seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL, function TEXT NOT NULL,
    event_type TEXT NOT NULL, reason TEXT NOT NULL, received_at TEXT NOT NULL, payload TEXT NOT NULL,
    UNIQUE (event_id, function));
"""


def test_an_old_store_gets_parked_times_from_now_and_reads_whole_payloads_as_excerpts(tmp_path: Path) -> None:
    path = tmp_path / "releases.db"
    with sqlite3.connect(path) as connection:
        connection.executescript(OLD_SCHEMA)
        event = {"id": "e1", "eventType": "Microsoft.ContainerRegistry.ImagePushed", "data": {"pad": "x" * 5000}}
        connection.execute(
            "INSERT INTO parked_events (release_id, event_id, payload) VALUES ('rel-1', 'e1', ?)", (json.dumps(event),)
        )
        connection.execute(
            "INSERT INTO dead_letters (event_id, function, event_type, reason, received_at, payload) "
            "VALUES ('d1', 'on_build_event', 'X', 'bad', '2026-11-01T00:00:00+00:00', ?)",
            (json.dumps(event),),
        )
    before = datetime.now(UTC)
    store = SqliteReleaseStore(path)

    (parked,) = store.parked()
    assert parked.release_id == "rel-1" and before - timedelta(seconds=5) <= datetime.fromisoformat(parked.parked_at)
    assert store.parked_before(before.isoformat()) == []  # its clock starts at the upgrade, not at once
    (letter,) = store.dead_letters()
    assert letter.size == len(json.dumps(event)) and letter.truncated and len(letter.excerpt) == 2048
    assert store.take_parked("rel-1") == [event]


def test_connections_of_threads_that_ended_are_closed_not_left_to_the_collector(tmp_path):
    store = SqliteReleaseStore(tmp_path / "releases.db")
    gc.disable()  # the collector must not be what closes them
    try:
        for _ in range(20):
            worker = threading.Thread(target=lambda: store.list(limit=1))
            worker.start()
            worker.join()
        store.list(limit=1)  # this thread's connection closes those of the 20 that ended
        fds = [os.readlink(f"/proc/self/fd/{fd}") for fd in os.listdir("/proc/self/fd") if _readable(fd)]
        assert sum(1 for target in fds if target.startswith(str(tmp_path / "releases.db"))) <= 6
        assert store.open_connections() <= 2
    finally:
        gc.enable()


def _readable(fd: str) -> bool:
    try:
        os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return False
    return True
