"""How a model's files are found and fetched, the same on every platform."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from functions.domain.refs import ModelRef

# The estimator file ml_pipeline.train writes and score.py loads.
MODEL_FILE = "model.joblib"

# ``model_files(model, directory)`` puts the model's files in ``directory`` (e.g. a registry download).
ModelFiles = Callable[[ModelRef, Path], None]
