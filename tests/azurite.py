"""Azurite's Table service for tests: the real emulator (npm azurite, installed by `npm ci`), never a mock.

``azurite_table()`` yields a connection string. With AZURITE_TABLE_CONNECTION_STRING set (CI
started Azurite already) it yields that; otherwise it starts node_modules/.bin/azurite-table on
a free port of 127.0.0.1, in memory, waits until the port accepts connections and stops it at
the end.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ENV_CONNECTION_STRING = "AZURITE_TABLE_CONNECTION_STRING"
ROOT = Path(__file__).resolve().parents[1]
AZURITE_TABLE = ROOT / "node_modules" / ".bin" / "azurite-table"
HOST = "127.0.0.1"
# Azurite's well-known development account (public, documented; not a secret).
ACCOUNT = "devstoreaccount1"
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
START_TIMEOUT = 30.0


class AzuriteUnavailable(RuntimeError):
    """Azurite is not installed or did not start."""


def connection_string(port: int, host: str = HOST) -> str:
    return (
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
        f"TableEndpoint=http://{host}:{port}/{ACCOUNT};"
    )


def command(port: int) -> list[str]:
    return [
        str(AZURITE_TABLE),
        "--tableHost",
        HOST,
        "--tablePort",
        str(port),
        "--inMemoryPersistence",  # nothing on disk (it cannot be combined with --location)
        "--silent",  # no access log
        "--skipApiVersionCheck",  # the SDK may speak a newer API version than this Azurite knows
        "--loose",
        "--disableTelemetry",
    ]


@contextlib.contextmanager
def azurite_table(timeout: float = START_TIMEOUT) -> Iterator[str]:
    from_env = os.environ.get(ENV_CONNECTION_STRING, "").strip()
    if from_env:
        yield from_env
        return
    if not AZURITE_TABLE.exists():
        raise AzuriteUnavailable(
            f"Azurite is not installed ({AZURITE_TABLE.relative_to(ROOT)} is missing): run `npm ci` in {ROOT} "
            f"(Node.js 20), or set {ENV_CONNECTION_STRING} to a running Azurite's Table connection string"
        )
    with tempfile.TemporaryDirectory(prefix="azurite-") as workdir:
        process, port = _start(Path(workdir), timeout)
        try:
            yield connection_string(port)
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _start(workdir: Path, timeout: float) -> tuple[subprocess.Popen[bytes], int]:
    log_path = workdir / "azurite.log"
    for _attempt in range(3):  # another process may take the free port before Azurite binds it
        port = _free_port()
        with log_path.open("wb") as log:
            process = subprocess.Popen(command(port), cwd=workdir, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                break
            if _accepts(port):
                return process, port
            time.sleep(0.1)
        else:
            process.kill()
            process.wait()
            raise AzuriteUnavailable(
                f"Azurite did not accept connections on {HOST}:{port} within {timeout:.0f} s; "
                f"its output: {_tail(log_path)}"
            )
        output = _tail(log_path)
        if "EADDRINUSE" not in output:
            raise AzuriteUnavailable(f"Azurite exited with code {process.returncode}: {output}")
    raise AzuriteUnavailable(f"Azurite could not bind a free port: {_tail(log_path)}")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def _accepts(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((HOST, port)) == 0


def _tail(path: Path, chars: int = 2000) -> str:
    text = path.read_text(errors="replace").strip() if path.exists() else ""
    return text[-chars:] or "(nothing)"
