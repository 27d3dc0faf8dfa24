"""Finding and stopping the local platform's background processes by pid, and by owner.

Servers, the production router and training jobs are started in their own session
(``start_new_session``), so each is the leader of a process group holding its workers: stopping the
group stops them all, and a pid that is not a session leader cannot be one of ours (the pid was reused).

Every process the platform starts carries ``MLOPS_OWNER_HOME=<$MLOPS_HOME>`` in its environment
(``owned_env``), and its children inherit it. Linux shows a process's starting environment in
``/proc/<pid>/environ``, so ``owned_processes`` finds every process of a home whatever records were
lost: a host killed with SIGKILL between starting a process and writing it down leaves no orphan that
``mlops down`` or the next ``mlops up`` cannot find.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

OWNER_ENV = "MLOPS_OWNER_HOME"


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


def owned_env(home: Path, env: Mapping[str, str]) -> dict[str, str]:
    """``env`` with the owner mark of ``home``: the process and its children belong to that home."""
    return {**env, OWNER_ENV: str(Path(home).resolve())}


@dataclass(frozen=True)
class OwnedProcess:
    pid: int
    pgid: int
    sid: int
    started: int | None  # start ticks: a pid reused later is not this process
    command: str

    @property
    def leads_group(self) -> bool:
        return self.pid == self.pgid


def owned_processes(home: Path, proc: Path = Path("/proc")) -> list[OwnedProcess]:
    """Every live process whose environment carries ``home``'s owner mark (this process excluded)."""
    mark = f"{OWNER_ENV}={Path(home).resolve()}".encode()
    found = []
    for entry in proc.iterdir():
        if not entry.name.isdecimal() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
            pid = int(entry.name)
            pgid, sid = os.getpgid(pid), os.getsid(pid)
        except (OSError, ProcessLookupError):
            continue  # gone meanwhile, or not ours to read
        if mark in environ.split(b"\0") and not _is_zombie(pid):
            found.append(OwnedProcess(pid, pgid, sid, process_started(pid), command))
    return found


def stop_owned(home: Path, keep_groups: Iterable[int] = (), timeout_s: float = 10.0) -> list[OwnedProcess]:
    """Stop every process group of ``home`` except ``keep_groups``: SIGTERM, SIGKILL after ``timeout_s``.

    Whole groups, so a server's workers go with it; a marked process in a group that is not its own
    (the host run from a terminal) is signalled alone, never its group. Nothing in the caller's own
    session is touched (the shell it runs in, its job). Returns what was running.
    """
    keep, own_session = set(keep_groups), os.getsid(0)
    found = [p for p in owned_processes(home) if p.pgid not in keep and p.sid != own_session]
    groups = {p.pgid for p in found if p.leads_group}
    loners = [p.pid for p in found if p.pgid not in groups]
    for group in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(group, signal.SIGTERM)
    for pid in loners:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and any(pid_alive(p.pid) for p in found):
        time.sleep(0.05)  # an exited child nobody reaped is a zombie: pid_alive counts it gone
    for process in found:
        if pid_alive(process.pid) and process_started(process.pid) == process.started:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(process.pid, signal.SIGKILL)
    return found


def process_started(pid: int) -> int | None:
    """When ``pid`` started, in clock ticks since boot (``/proc/<pid>/stat`` field 22); None if gone.

    A pid and its start time name one process: a reused pid has a later start."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rpartition(")")[2].split()[19])
