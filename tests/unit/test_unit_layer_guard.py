"""tests/unit/conftest.py refuses sockets and processes, so the unit layer stays honest."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest
import requests


def test_a_network_socket_is_refused():
    with pytest.raises(AssertionError, match="network socket: move it to tests/integration/"):
        socket.socket(socket.AF_INET, socket.SOCK_STREAM)


def test_an_http_request_is_refused():
    with pytest.raises(AssertionError, match="network socket"):
        requests.get("http://127.0.0.1:9/", timeout=1)


def test_a_process_is_refused():
    with pytest.raises(AssertionError, match="started a process"):
        subprocess.run([sys.executable, "-c", "0"], check=False)


def test_os_level_process_starts_are_refused_too():
    with pytest.raises(AssertionError, match="started a process"):
        os.system("true")
    with pytest.raises(AssertionError, match="started a process"):
        os.fork()


def test_an_in_process_socket_pair_is_allowed():
    left, right = socket.socketpair()  # asyncio's self-pipe (Starlette's TestClient) needs these
    left.close()
    right.close()
