"""Release store on SQLite (WAL): safe for concurrent handlers in threads and processes.

Each save is a compare-and-set on the record's version inside one transaction, so two
handlers that loaded the same version cannot both write; the loser gets ConcurrencyError.

The outbox is the ``work`` table, keyed by the item's key (adding a key twice keeps the first),
with an index on ``due_at`` (ISO UTC text, which sorts as time) for the timer's "what is due".
A claim is a compare-and-set on the item's version inside a write transaction, so of two
workers that loaded the same item exactly one gets it.

Spent nonces of single-use tokens are the ``nonces`` table (INSERT OR IGNORE: of two spenders one
inserts); each spend drops those that expired long enough before it (functions.ports.forgettable_before).
"""

from __future__ import annotations

import builtins
import json
import sqlite3
import threading
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from functions.domain.events import wire_type
from functions.domain.refs import DeadLetter, ParkedEvent, WorkItem
from functions.domain.release import Release
from functions.ports import ConcurrencyError, forgettable_before, utc_iso
from platforms.local.sqlite_db import immediate_transaction, while_locked

SCHEMA = """
CREATE TABLE IF NOT EXISTS releases (
    id TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    state TEXT NOT NULL,
    created_at TEXT NOT NULL,
    document TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS releases_created ON releases (created_at);
CREATE INDEX IF NOT EXISTS releases_state ON releases (state, created_at);
CREATE TABLE IF NOT EXISTS parked_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    release_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    payload TEXT NOT NULL,
    parked_at TEXT NOT NULL DEFAULT '',
    event_type TEXT NOT NULL DEFAULT '',
    UNIQUE (release_id, event_id)
);
CREATE TABLE IF NOT EXISTS dead_letters (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL,
    function TEXT NOT NULL,
    event_type TEXT NOT NULL,
    reason TEXT NOT NULL,
    received_at TEXT NOT NULL,
    payload TEXT NOT NULL,
    UNIQUE (event_id, function)
);
CREATE TABLE IF NOT EXISTS work (
    key TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    release_id TEXT NOT NULL,
    payload TEXT NOT NULL,
    due_at TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    last_error TEXT NOT NULL,
    version INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS work_due ON work (due_at, key);
CREATE INDEX IF NOT EXISTS work_release ON work (release_id, due_at);
CREATE TABLE IF NOT EXISTS nonces (
    nonce TEXT PRIMARY KEY,
    expires_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS nonces_expiry ON nonces (expires_at);
"""
_WORK_COLUMNS = "key, kind, release_id, payload, due_at, attempts, last_error, version"


_LAST_POSITION = 2**63 - 1  # SQLite's largest INTEGER


def _position(cursor: str | None) -> int:
    """A page cursor (the row's seq, as the store handed it out) as the bound of the next page; one past
    any seq (a cursor no page handed out, or none) is the same as the start."""
    return min(int(cursor), _LAST_POSITION) if cursor else _LAST_POSITION


def _add_parked_columns(connection: sqlite3.Connection) -> None:
    """Stores made before parked events expired have no parked_at: they start their clock now."""
    columns = {row[1] for row in connection.execute("PRAGMA table_info(parked_events)")}
    for column in ("parked_at", "event_type"):
        if column not in columns:
            connection.execute(f"ALTER TABLE parked_events ADD COLUMN {column} TEXT NOT NULL DEFAULT ''")
    connection.execute("UPDATE parked_events SET parked_at = ? WHERE parked_at = ''", (datetime.now(UTC).isoformat(),))
    connection.execute("CREATE INDEX IF NOT EXISTS parked_age ON parked_events (parked_at, seq)")


class SqliteReleaseStore:
    def __init__(self, path: Path, after_save: Callable[[Release], None] | None = None) -> None:
        self.path = Path(path)
        # Called with each release once its create or save committed (the crash tests' kill switch).
        self.after_save = after_save
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._connections: list[tuple[threading.Thread, sqlite3.Connection]] = []
        self._connections_lock = threading.Lock()
        with self._connect() as connection:
            connection.executescript(SCHEMA)
            _add_parked_columns(connection)

    def _connect(self) -> sqlite3.Connection:
        # One connection per thread: sqlite3 connections must not be used across threads. The host's
        # worker threads come and go, so a new connection first closes those of threads that ended
        # (left to the garbage collector, each kept two file descriptors open for minutes: the soak).
        connection = getattr(self._local, "connection", None)
        if connection is None:
            self._close_connections_of_ended_threads()
            connection = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            connection.execute("PRAGMA busy_timeout=30000")
            while_locked(lambda: connection.execute("PRAGMA journal_mode=WAL"))  # see sqlite_db.connect
            connection.execute("PRAGMA synchronous=NORMAL")
            self._local.connection = connection
            with self._connections_lock:
                self._connections.append((threading.current_thread(), connection))
        return connection

    def _close_connections_of_ended_threads(self) -> None:
        kept: list[tuple[threading.Thread, sqlite3.Connection]] = []
        ended: list[tuple[threading.Thread, sqlite3.Connection]] = []
        with self._connections_lock:
            for pair in self._connections:
                (kept if pair[0].is_alive() else ended).append(pair)
            self._connections = kept
        for _, connection in ended:
            connection.close()  # its thread is gone: nobody else uses it (check_same_thread=False allows this)

    def open_connections(self) -> int:
        """How many connections this store holds (one per thread that used it and has not ended)."""
        with self._connections_lock:
            return len(self._connections)

    def _write_transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        """This thread's connection inside BEGIN IMMEDIATE (sqlite_db.immediate_transaction)."""
        return immediate_transaction(self._connect())

    def get(self, release_id: str) -> Release | None:
        row = self._connect().execute("SELECT document, version FROM releases WHERE id = ?", (release_id,)).fetchone()
        return _release(row) if row else None

    def create(self, release: Release) -> bool:
        release.version = 1
        document = json.dumps(release.to_json())
        cursor = self._connect().execute(
            "INSERT OR IGNORE INTO releases (id, version, state, created_at, document) VALUES (?, 1, ?, ?, ?)",
            (release.id, release.state.value, release.created_at, document),
        )
        if cursor.rowcount == 0:
            release.version = 0
            return False
        if self.after_save:
            self.after_save(release)
        return True

    def save(self, release: Release) -> None:
        expected = release.version
        release.version = expected + 1
        cursor = self._connect().execute(
            "UPDATE releases SET version = ?, state = ?, document = ? WHERE id = ? AND version = ?",
            (release.version, release.state.value, json.dumps(release.to_json()), release.id, expected),
        )
        if cursor.rowcount != 1:
            release.version = expected
            raise ConcurrencyError(f"release {release.id} changed since version {expected}")
        if self.after_save:
            self.after_save(release)

    def list(self, limit: int = 100, states: Iterable[str] | None = None) -> builtins.list[Release]:
        query = "SELECT document, version FROM releases"
        params: list[Any] = []
        wanted = list(states or [])
        if wanted:
            query += f" WHERE state IN ({', '.join('?' for _ in wanted)})"
            params.extend(wanted)
        query += " ORDER BY created_at DESC, id DESC LIMIT ?"
        params.append(limit)
        return [_release(row) for row in self._connect().execute(query, params)]

    def park(self, release_id: str, event_id: str, payload: dict[str, Any], parked_at: str) -> None:
        event_type = wire_type(payload)
        self._connect().execute(
            "INSERT OR IGNORE INTO parked_events (release_id, event_id, payload, parked_at, event_type) "
            "VALUES (?, ?, ?, ?, ?)",
            (release_id, event_id, json.dumps(payload), utc_iso(parked_at), event_type),
        )

    def take_parked(self, release_id: str) -> builtins.list[dict[str, Any]]:
        with self._write_transaction() as connection:
            rows = connection.execute(
                "SELECT seq, payload FROM parked_events WHERE release_id = ? ORDER BY seq", (release_id,)
            ).fetchall()
            connection.execute("DELETE FROM parked_events WHERE release_id = ?", (release_id,))
        return [json.loads(payload) for _, payload in rows]

    def parked(self, limit: int = 100, before: str | None = None) -> builtins.list[ParkedEvent]:
        rows = self._connect().execute(
            "SELECT seq, release_id, event_id, event_type, parked_at FROM parked_events "
            "WHERE seq < ? ORDER BY seq DESC LIMIT ?",
            (_position(before), limit),
        )
        return [ParkedEvent(r, e, t, at, str(seq)) for seq, r, e, t, at in rows]

    def parked_before(self, cutoff: str, limit: int = 100) -> builtins.list[tuple[ParkedEvent, dict[str, Any]]]:
        rows = self._connect().execute(
            "SELECT seq, release_id, event_id, event_type, parked_at, payload FROM parked_events "
            "WHERE parked_at < ? ORDER BY parked_at, seq LIMIT ?",
            (utc_iso(cutoff), limit),
        )
        return [(ParkedEvent(r, e, t, at, str(seq)), json.loads(payload)) for seq, r, e, t, at, payload in rows]

    def unpark(self, release_id: str, event_id: str) -> bool:
        cursor = self._connect().execute(
            "DELETE FROM parked_events WHERE release_id = ? AND event_id = ?", (release_id, event_id)
        )
        return cursor.rowcount == 1

    def add_dead_letter(self, letter: DeadLetter) -> bool:
        cursor = self._connect().execute(
            "INSERT OR IGNORE INTO dead_letters (event_id, function, event_type, reason, received_at, payload) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (
                letter.event_id,
                letter.function,
                letter.event_type,
                letter.reason,
                letter.received_at,
                json.dumps(letter.stored()),
            ),
        )
        return cursor.rowcount == 1

    def dead_letters(self, limit: int = 100, before: str | None = None) -> builtins.list[DeadLetter]:
        rows = self._connect().execute(
            "SELECT seq, event_id, event_type, function, reason, received_at, payload FROM dead_letters "
            "WHERE seq < ? ORDER BY seq DESC LIMIT ?",
            (_position(before), limit),
        )
        return [
            DeadLetter.from_stored(event_id, event_type, function, reason, received_at, json.loads(kept), str(seq))
            for seq, event_id, event_type, function, reason, received_at, kept in rows
        ]

    # ---- the outbox -----------------------------------------------------------------
    def add_work(self, item: WorkItem) -> bool:
        payload = json.dumps(item.payload)
        cursor = self._connect().execute(
            f"INSERT OR IGNORE INTO work ({_WORK_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, 1)",
            (item.key, item.kind, item.release_id, payload, item.due_at, item.attempts, item.last_error),
        )
        return cursor.rowcount == 1

    def due_work(self, now: str, limit: int = 100) -> builtins.list[WorkItem]:
        rows = self._connect().execute(
            f"SELECT {_WORK_COLUMNS} FROM work WHERE due_at <= ? ORDER BY due_at, key LIMIT ?", (now, limit)
        )
        return [_work(row) for row in rows]

    def claim_work(self, item: WorkItem, lease_until: str) -> WorkItem | None:
        with self._write_transaction() as connection:
            cursor = connection.execute(
                "UPDATE work SET due_at = ?, attempts = attempts + 1, version = version + 1 "
                "WHERE key = ? AND version = ?",
                (lease_until, item.key, item.version),
            )
            if cursor.rowcount != 1:
                return None  # changed or finished by another worker since it was loaded
            row = connection.execute(f"SELECT {_WORK_COLUMNS} FROM work WHERE key = ?", (item.key,)).fetchone()
        return _work(row)

    def retry_work(self, item: WorkItem, due_at: str, error: str) -> None:
        # Conditional like a claim: when the lease ran out and another worker claimed the item,
        # that worker's outcome counts, not this stale one.
        self._connect().execute(
            "UPDATE work SET due_at = ?, last_error = ?, version = version + 1 WHERE key = ? AND version = ?",
            (due_at, error, item.key, item.version),
        )

    def finish_work(self, item: WorkItem) -> bool:
        done = self._connect().execute("DELETE FROM work WHERE key = ? AND version = ?", (item.key, item.version))
        return done.rowcount > 0

    def pending_work(self, release_id: str | None = None, limit: int = 100) -> builtins.list[WorkItem]:
        where, params = ("WHERE release_id = ? ", [release_id]) if release_id is not None else ("", [])
        query = f"SELECT {_WORK_COLUMNS} FROM work {where}ORDER BY due_at, key LIMIT ?"
        return [_work(row) for row in self._connect().execute(query, [*params, limit])]

    # ---- single-use tokens ----------------------------------------------------------
    def spend_nonce(self, nonce: str, expires_at: str) -> bool:
        expires_at = utc_iso(expires_at)
        connection = self._connect()
        spent = connection.execute(
            "INSERT OR IGNORE INTO nonces (nonce, expires_at) VALUES (?, ?)", (nonce, expires_at)
        ).rowcount
        connection.execute("DELETE FROM nonces WHERE expires_at < ?", (forgettable_before(expires_at),))
        return spent == 1

    def nonce_spent(self, nonce: str) -> bool:
        row = self._connect().execute("SELECT 1 FROM nonces WHERE nonce = ?", (nonce,)).fetchone()
        return row is not None


def _work(row: tuple[Any, ...]) -> WorkItem:
    key, kind, release_id, payload, due_at, attempts, last_error, version = row
    return WorkItem(key, kind, release_id, json.loads(payload), due_at, attempts, last_error, version)


def _release(row: tuple[str, int]) -> Release:
    document, version = row
    release = Release.from_json(json.loads(document), copy_document=False)
    release.version = version
    return release
