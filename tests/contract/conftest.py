"""A fresh release store per test, once per implementation: "sqlite" and "table" (Azurite)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from functions.ports import ReleaseStore
from platforms.local.store import SqliteReleaseStore
from tests.azurite import AzuriteUnavailable, azurite_table

StoreFactory = Callable[[], ReleaseStore]


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


@pytest.fixture(params=["sqlite", "table"])
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    """Opens another store object on the same (fresh) storage: a second worker, as it were."""
    if request.param == "sqlite":
        yield lambda: SqliteReleaseStore(tmp_path / "releases.db")
        return
    from azure.data.tables import TableServiceClient

    from platforms.azure.table_store import TableReleaseStore

    connection_string = request.getfixturevalue("azurite_connection_string")
    prefix = f"t{uuid.uuid4().hex[:20]}"
    yield lambda: TableReleaseStore.from_connection_string(connection_string, prefix)
    service = TableServiceClient.from_connection_string(connection_string)
    for name in (prefix, f"{prefix}parked", f"{prefix}deadletters"):
        service.delete_table(name)


@pytest.fixture
def store(open_store: StoreFactory) -> ReleaseStore:
    return open_store()
