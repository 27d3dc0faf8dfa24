"""SQLite connections for the local registry and image index: WAL, a busy timeout, explicit transactions.

Each call opens its own connection (sqlite3 connections must not cross threads); WAL lets the
CLI read while the host writes, and ``BEGIN IMMEDIATE`` takes the write lock up front so two
writers queue on the busy timeout instead of failing half-way through a read-modify-write.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path

BUSY_TIMEOUT_MS = 30_000


def connect(path: Path, schema: str) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
    connection.row_factory = sqlite3.Row
    connection.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    # Switching a new database to WAL takes an exclusive lock without calling the busy handler, so
    # several first connections at once can get "database is locked" at once: wait for it here.
    while_locked(lambda: connection.execute("PRAGMA journal_mode=WAL"))
    while_locked(lambda: connection.executescript(schema))
    return connection


def while_locked(action: Callable[[], object]) -> None:
    """Run ``action``, waiting (up to the busy timeout) while SQLite says the database is locked."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            action()
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


@contextmanager
def immediate_transaction(connection: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``connection`` inside BEGIN IMMEDIATE (the write lock taken up front): committed when the block
    ends, rolled back if it raises."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield connection
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")


@contextmanager
def write_transaction(path: Path, schema: str) -> Iterator[sqlite3.Connection]:
    """A new connection inside BEGIN IMMEDIATE, closed afterwards."""
    with closing(connect(path, schema)) as connection, immediate_transaction(connection):
        yield connection


@contextmanager
def read_connection(path: Path, schema: str) -> Iterator[sqlite3.Connection]:
    with closing(connect(path, schema)) as connection:
        yield connection
