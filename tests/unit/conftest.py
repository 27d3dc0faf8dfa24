"""The unit layer opens no socket and starts no process: this guard makes that a fact, not a habit.

Any attempt fails the test with a message saying to move it to tests/integration/. Unix socket
pairs (asyncio's self-pipe inside Starlette's TestClient) are in-process and stay allowed.
"""

from __future__ import annotations

import os
import platform
import socket
import subprocess
from typing import Any

import pytest


def _refuse(what: str) -> Any:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"a unit test {what}: move it to tests/integration/ (or use a fake)")

    return refuse


@pytest.fixture(autouse=True)
def no_network_no_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    original_init = socket.socket.__init__

    def inet_refused(self: socket.socket, family: int = -1, *args: Any, **kwargs: Any) -> None:
        if family in (socket.AF_INET, socket.AF_INET6, -1):
            raise AssertionError("a unit test opened a network socket: move it to tests/integration/ (or use a fake)")
        original_init(self, family, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "__init__", inet_refused)
    # azure-core builds its user agent from platform.platform(), whose first call runs `uname -p`:
    # a fixed answer keeps SDK-client tests free of processes whatever order they run in.
    monkeypatch.setattr(platform, "platform", lambda *args, **kwargs: "Linux-unit-tests")
    monkeypatch.setattr(subprocess.Popen, "__init__", _refuse("started a process"))
    for spawn in ("system", "posix_spawn", "posix_spawnp", "fork", "forkpty"):  # the ways around Popen
        if hasattr(os, spawn):
            monkeypatch.setattr(os, spawn, _refuse("started a process"))
    monkeypatch.setattr(socket, "create_connection", _refuse("opened a network connection"))
