"""Where the project's own files are, for adapters that run them (pipeline steps, score.py)."""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
SCORING_DIR = REPO_ROOT / "scoring"
SCORE_SCRIPT = SCORING_DIR / "score.py"
