"""Finding and stopping the local platform's background processes by pid.

Servers and the production router are started in their own session (``start_new_session``),
so each is the leader of a process group holding its workers: stopping the group stops them
all, and a pid that is not a session leader cannot be one of ours (the pid was reused).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path


def pid_alive(pid: int | None) -> bool:
    if not pid or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    # An exited child nobody has reaped still answers kill(pid, 0); Linux tells us its state.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[:1] == ["Z"]


def stop_process_group(pid: int, child: subprocess.Popen[bytes] | None = None, timeout_s: float = 10.0) -> bool:
    """SIGTERM the process group led by ``pid``, SIGKILL it after ``timeout_s``; True if it was running.

    ``child`` is the Popen handle when this process started it, so the exit is reaped.
    """

    def running() -> bool:
        return child.poll() is None if child is not None else pid_alive(pid)

    if not running():
        return False
    try:
        if os.getsid(pid) != pid:
            return False  # not a session leader: the pid now belongs to some other process
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + timeout_s
    while running() and time.monotonic() < deadline:
        time.sleep(0.05)
    if running():
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        if child is not None:
            child.wait(timeout=timeout_s)
    return True


def log_tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
