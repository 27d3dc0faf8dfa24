"""`mlops up`'s port check (devhost/commands_host.py _port_free) against real sockets on 127.0.0.1.

A host that just stopped leaves its connections in TIME_WAIT for about a minute; uvicorn binds over them
(SO_REUSEADDR), so the check must say the port is free. A live listener must still make it say in use.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from devhost.commands_host import _port_free

pytestmark = pytest.mark.integration


def _listener(reuse_address: bool) -> socket.socket:
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if reuse_address:  # as uvicorn's listening socket has it
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen()
    return server


@pytest.fixture
def port_in_time_wait() -> Iterator[int]:
    """A port whose server accepted a connection and closed it first, then stopped listening."""
    server = _listener(reuse_address=True)
    port = server.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    accepted, _ = server.accept()
    accepted.close()  # the side that closes first is the one left in TIME_WAIT: here, the server's
    client.close()
    server.close()
    yield port


def test_a_port_left_in_time_wait_by_a_stopped_server_is_free(port_in_time_wait: int) -> None:
    # The scenario is real: a probe without SO_REUSEADDR (the old check) still trips on the TIME_WAIT.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as plain, pytest.raises(OSError):
        plain.bind(("127.0.0.1", port_in_time_wait))

    assert _port_free(port_in_time_wait)


@pytest.mark.parametrize("reuse_address", [True, False])
def test_a_port_with_a_live_listener_is_in_use(reuse_address: bool) -> None:
    with _listener(reuse_address) as server:
        assert not _port_free(server.getsockname()[1])
