"""A local endpoint: the real Azure ML inference server serving score.py on 127.0.0.1."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

from platforms.common.readiness import http_ok

LAUNCHER = Path(__file__).with_name("azmlinfsrv_loopback.py")
DEFAULT_STARTUP_TIMEOUT_S = 90.0


class InferenceServerError(RuntimeError):
    """The server did not come up; the message carries the tail of its log."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class InferenceServer:
    """Start with ``start()`` (or ``with``); ``score_url`` is ready once it returns."""

    def __init__(
        self,
        entry_script: Path,
        model_dir: Path,
        log_file: Path,
        port: int | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.entry_script = Path(entry_script).resolve()
        self.model_dir = Path(model_dir).resolve()
        self.log_file = Path(log_file)
        self.port = port or free_port()
        self.extra_env = env or {}
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def score_url(self) -> str:
        return f"{self.url}/score"

    def start(self, timeout_s: float = DEFAULT_STARTUP_TIMEOUT_S) -> InferenceServer:
        """Launch the server and wait until it answers its health route."""
        self.launch()
        self._wait_until_healthy(timeout_s)
        return self

    def launch(self) -> InferenceServer:
        """Start the process and return at once (a deployer follows its health on its own)."""
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "AZUREML_MODEL_DIR": str(self.model_dir), **self.extra_env}
        command = [
            sys.executable,
            str(LAUNCHER),
            "--entry_script",
            str(self.entry_script),
            "--model_dir",
            str(self.model_dir),
            "--port",
            str(self.port),
        ]
        with open(self.log_file, "ab") as log:
            self.process = subprocess.Popen(
                command,
                cwd=self.entry_script.parent,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C in the parent's terminal is the parent's to handle
            )
        return self

    def _wait_until_healthy(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise InferenceServerError(
                    f"azmlinfsrv exited with code {self.process.returncode} during start-up:\n{self.log_tail()}"
                )
            if http_ok(self.url + "/", timeout_s=1.0):
                return
            time.sleep(0.1)
        self.stop()
        raise InferenceServerError(f"azmlinfsrv not healthy on {self.url} after {timeout_s:.0f} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, timeout_s: float = 10.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=timeout_s)

    def __enter__(self) -> InferenceServer:
        return self.start() if self.process is None else self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
