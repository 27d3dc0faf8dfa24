"""A fresh release store per test, once per implementation: "sqlite" and "table" (Azurite).

The outbox, parked-event and dead-letter listing tests run against the in-memory fake of tests/doubles
as well ("memory"): the service's unit tests rely on it behaving like the real stores.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from functions.ports import ReleaseStore
from platforms.local.store import SqliteReleaseStore
from tests.azurite import AzuriteUnavailable, azurite_table
from tests.doubles.ports import InMemoryReleaseStore

StoreFactory = Callable[[], ReleaseStore]
TABLE_SUFFIXES = ("", "parked", "deadletters", "work")


@pytest.fixture(scope="session")
def azurite_connection_string() -> Iterator[str]:
    """One Azurite for the session (each test gets its own tables). Fails, never skips, without it."""
    with contextlib.ExitStack() as stack:
        try:
            connection_string = stack.enter_context(azurite_table())
        except AzuriteUnavailable as exc:
            problem = str(exc)
        else:
            yield connection_string
            return
    pytest.fail(problem, pytrace=False)


def delete_tables(connection_string: str, prefix: str) -> None:
    from azure.data.tables import TableServiceClient

    service = TableServiceClient.from_connection_string(connection_string)
    for suffix in TABLE_SUFFIXES:
        service.delete_table(f"{prefix}{suffix}")


def _stores(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    """Store objects on one fresh storage of ``kind``: each call is another worker, as it were."""
    if kind == "memory":
        shared = InMemoryReleaseStore()  # its storage is the object: every "worker" gets the same one
        yield lambda: shared
        return
    if kind == "sqlite":
        yield lambda: SqliteReleaseStore(tmp_path / "releases.db")
        return
    from azure.data.tables import TableServiceClient

    from platforms.azure.table_store import TableReleaseStore

    connection_string = request.getfixturevalue("azurite_connection_string")
    prefix = f"t{uuid.uuid4().hex[:20]}"
    yield lambda: TableReleaseStore(TableServiceClient.from_connection_string(connection_string), prefix)
    delete_tables(connection_string, prefix)


@pytest.fixture(params=["sqlite", "table"])
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    """Opens another store object on the same (fresh) storage: a second worker, as it were."""
    yield from _stores(request.param, request, tmp_path)


@pytest.fixture
def store(open_store: StoreFactory) -> ReleaseStore:
    return open_store()


@pytest.fixture(params=["sqlite", "table", "memory"])
def open_outbox(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    """Like ``open_store``, for the outbox tests, which the in-memory fake must pass too."""
    yield from _stores(request.param, request, tmp_path)


@pytest.fixture
def outbox(open_outbox: StoreFactory) -> ReleaseStore:
    return open_outbox()


@pytest.fixture(params=["sqlite", "table", "memory"])
def listing_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ReleaseStore]:
    """A store for the parked-event and dead-letter listings, which the in-memory fake must keep too."""
    stores = _stores(request.param, request, tmp_path)
    yield next(stores)()
    with contextlib.suppress(StopIteration):
        next(stores)
