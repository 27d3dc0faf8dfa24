"""Getting a registered model's files onto local disk (for the image build context and tests)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from functions.domain.refs import ModelRef
from platforms.common.model_files import MODEL_FILE


def download_model(ml_client: Any, model: ModelRef, target: Path) -> None:
    """Download ``model`` and put its files (model.joblib, model_card.json...) directly in ``target``.

    ``ml_client.models.download`` nests the files under ``<target>/<name>/...``; score.py finds the
    model either way, but a flat layout keeps the image's AZUREML_MODEL_DIR simple.
    """
    target.mkdir(parents=True, exist_ok=True)
    staging = target / ".download"
    ml_client.models.download(name=model.name, version=str(model.version), download_path=str(staging))
    found = sorted(staging.rglob(MODEL_FILE))
    if not found:
        raise FileNotFoundError(f"model {model.name}:{model.version} has no {MODEL_FILE}")
    for item in found[0].parent.iterdir():
        destination = target / item.name
        if item.is_dir():
            shutil.copytree(item, destination, dirs_exist_ok=True)
        else:
            shutil.copy2(item, destination)
    shutil.rmtree(staging, ignore_errors=True)
