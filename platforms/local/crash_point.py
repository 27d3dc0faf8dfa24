"""MLOPS_LOCAL_CRASH_AFTER: the host kills itself (SIGKILL, as kill -9) right after a given save.

For the crash-matrix tests only (tests/e2e/test_crash_matrix.py): ``step[#n][@releases]`` names the
timeline entry whose n-th save (default the first) ends the process, for releases whose id matches the
shell pattern ``releases`` (default every release). Committed before the kill, so what the next host
finds is exactly what a host killed at that step boundary leaves behind. It fires once: the spec is
written to ``fired`` first, and a host started again with the same spec does not die again.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import signal
from collections.abc import Callable
from pathlib import Path

from functions.domain.release import Release
from functions.settings import CRASH_POINT

logger = logging.getLogger("mlops.crash_point")


def crash_after(spec: str, fired: Path, kill: Callable[[], None] | None = None) -> Callable[[Release], None]:
    """A store's after-save hook that kills this process once ``spec``'s save happened (once: ``fired``)."""
    match = CRASH_POINT.match(spec)
    if match is None:
        raise ValueError(f"not a crash point: {spec!r}")
    step, nth, releases = match["step"], int(match["nth"] or 1), match["releases"] or "*"

    def die() -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    def after_save(release: Release) -> None:
        if not fnmatch.fnmatchcase(release.id, releases):
            return
        if sum(1 for entry in release.timeline if entry["step"] == step) != nth:
            return
        if fired.exists() and fired.read_text() == spec:
            return  # this crash happened already: a host restarted with the same switch carries on
        fired.write_text(spec)
        logger.warning("MLOPS_LOCAL_CRASH_AFTER=%s: killing the host after saving %s", spec, release.id)
        (kill or die)()

    return after_save
