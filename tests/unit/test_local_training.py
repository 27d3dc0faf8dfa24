"""LocalTraining without running a job (the jobs themselves: tests/integration/test_local_training.py)."""

from __future__ import annotations

from pathlib import Path

from platforms.local.training import LocalTraining
from tests.doubles.publisher import RecordingPublisher


def test_unknown_job(tmp_path: Path) -> None:
    status = LocalTraining(tmp_path, RecordingPublisher()).status("train-nope")
    assert status.state == "unknown"
    assert "train-nope" in status.detail
