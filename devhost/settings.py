"""Where local state lives: $MLOPS_HOME, default ./.mlops."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
SCORE_SCRIPT = REPO_ROOT / "scoring" / "score.py"


def mlops_home() -> Path:
    return Path(os.environ.get("MLOPS_HOME", ".mlops")).resolve()
