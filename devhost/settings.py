"""Paths the local tooling needs; settings of the app itself live in functions/settings.py."""

from platforms.local.paths import REPO_ROOT, SCORE_SCRIPT

__all__ = ["REPO_ROOT", "SCORE_SCRIPT"]
