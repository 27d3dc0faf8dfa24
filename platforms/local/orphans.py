"""What a dead host left behind: processes of a home that no record accounts for.

The local platform writes down every process it starts (servers and the router in deployments.json,
training jobs in jobs/*/status.json). A process that carries the home's owner mark
(platforms/local/processes.py) but none of those records lost its record: a host killed between
starting it and writing it down. Nothing will ever follow or stop it, so it is stopped.
"""

from __future__ import annotations

import logging
from pathlib import Path

from platforms.local.deployer import STATE_FILE
from platforms.local.files import read_json
from platforms.local.processes import OwnedProcess, pid_alive, stop_owned

logger = logging.getLogger("mlops.orphans")


def recorded_groups(home: Path) -> set[int]:
    """The process groups the home's records account for: the router, the servers, running jobs."""
    home = Path(home)
    state = read_json(home / STATE_FILE, default=None) or {}
    pids = {int(entry["pid"]) for entry in (state.get("servers") or {}).values() if entry.get("pid")}
    if (state.get("router") or {}).get("pid"):
        pids.add(int(state["router"]["pid"]))
    for status_path in (home / "jobs").glob("*/status.json"):
        status = read_json(status_path) or {}
        if status.get("state") == "running" and status.get("pid"):
            pids.add(int(status["pid"]))
    return {pid for pid in pids if pid_alive(pid)}


def stop_orphans(home: Path, keep_groups: set[int] | frozenset[int] = frozenset()) -> list[OwnedProcess]:
    """Stop the home's processes no record accounts for (and not in ``keep_groups``); what was stopped."""
    stopped = stop_owned(home, keep_groups=recorded_groups(home) | set(keep_groups))
    for process in stopped:
        logger.warning("stopped pid %d (%s): no record of this home accounts for it", process.pid, process.command)
    return stopped
