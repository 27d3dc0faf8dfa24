"""Host instances on this machine: a process, named by host name, boot, pid namespace, pid and start time.

The start time (``/proc/<pid>/stat``) makes the name unique: a pid the system reused later belongs to
a process that started later, so a claim of a dead host never looks alive because of it. A name from
an earlier boot of this machine is gone. A name from another machine, or another pid namespace (two
containers sharing a $MLOPS_HOME see different pids), cannot be checked from here: None, its claim
waits its timeout.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

from platforms.local.processes import pid_alive, process_started

PREFIX = "local"


class ProcessInstances:
    """Instances port: ``local:<host name>:<boot id>:<pid namespace>:<pid>:<start ticks>``."""

    def __init__(self, pid: int | None = None) -> None:
        self.hostname = socket.gethostname()
        self.boot, self.namespace = _boot_id(), _pid_namespace()
        pid = pid or os.getpid()
        self._current = f"{PREFIX}:{self.hostname}:{self.boot}:{self.namespace}:{pid}:{process_started(pid)}"

    def current(self) -> str:
        return self._current

    def alive(self, instance: str) -> bool | None:
        prefix, hostname, boot, namespace, pid, started = [*instance.split(":"), "", "", "", "", ""][:6]
        if prefix != PREFIX or hostname != self.hostname or not pid.isdecimal() or not started.isdecimal():
            return None
        if boot != self.boot:
            return False  # this machine rebooted since: every process of then has ended
        if namespace != self.namespace:
            return None  # another container's pids mean nothing here
        return pid_alive(int(pid)) and process_started(int(pid)) == int(started)  # a zombie has ended


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip().replace("-", "")
    except OSError:
        return "unknown-boot"


def _pid_namespace() -> str:
    try:
        return str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        return "unknown-ns"
