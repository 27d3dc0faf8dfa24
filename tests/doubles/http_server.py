"""Running a stdlib HTTP server on 127.0.0.1 in a thread for the length of a test."""

from __future__ import annotations

import socketserver
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TypeVar

Served = TypeVar("Served", bound=socketserver.BaseServer)


@contextmanager
def serving(server: Served) -> Iterator[Served]:
    """Serve ``server`` (any socketserver) in a thread; shut it down and close it afterwards."""
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
