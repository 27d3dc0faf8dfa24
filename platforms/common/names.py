"""Names the platforms derive from release ids and job names."""

from __future__ import annotations

import re

_NOT_IN_JOB_NAMES = re.compile(r"[^A-Za-z0-9_-]+")
JOB_NAME_PART_LIMIT = 60


def job_name_part(text: str, limit: int = JOB_NAME_PART_LIMIT) -> str:
    """``text`` as part of an Azure ML job name (letters, digits, '-' and '_'), at most ``limit`` characters.

    Runs of other characters become one '-', leading and trailing '-' go; "release" if nothing is left.
    """
    return _NOT_IN_JOB_NAMES.sub("-", text).strip("-")[:limit] or "release"
