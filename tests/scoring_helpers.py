"""Loading scoring/score.py the way azmlinfsrv does: as a file, not a package module."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

SCORE_PY = Path(__file__).resolve().parent.parent / "scoring" / "score.py"


def load_score_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("score_under_test", SCORE_PY)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
