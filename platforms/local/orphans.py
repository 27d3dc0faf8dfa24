"""What a dead host left behind: processes of a home that no record accounts for.

The local platform writes down every process it starts (servers and the router in deployments.json,
training jobs in jobs/*/status.json). A process that carries the home's owner mark
(platforms/local/processes.py) but none of those records lost its record: a host killed between
starting it and writing it down. Nothing will ever follow or stop it, so it is stopped.
"""

from __future__ import annotations

import logging
from pathlib import Path

from platforms.local.deployer import LocalDeployer
from platforms.local.processes import OwnedProcess, pid_alive, stop_owned
from platforms.local.training import running_jobs

logger = logging.getLogger("mlops.orphans")


def recorded_groups(home: Path) -> set[int]:
    """The process groups the home's records account for: the router, the servers, running jobs."""
    pids = LocalDeployer(home).recorded_pids()
    pids |= {int(status["pid"]) for _, status in running_jobs(home) if status.get("pid")}
    return {pid for pid in pids if pid_alive(pid)}


def stop_orphans(home: Path) -> list[OwnedProcess]:
    """Stop the home's processes no record accounts for; what was stopped."""
    stopped = stop_owned(home, keep_groups=recorded_groups(home))
    for process in stopped:
        logger.warning("stopped pid %d (%s): no record of this home accounts for it", process.pid, process.command)
    return stopped
