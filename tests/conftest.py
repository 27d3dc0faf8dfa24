"""Shared fixtures: the diabetes data, and a regressor and a classifier trained once per test session."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from ml_pipeline.dataset import load_dataset
from ml_pipeline.train import train


@pytest.fixture(scope="session")
def diabetes() -> pd.DataFrame:
    return load_dataset("diabetes")


@pytest.fixture(scope="session")
def trained_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Ridge(alpha=0.4) on the diabetes data, the default model. Treat it as read-only."""
    output = tmp_path_factory.mktemp("model")
    train("diabetes", output)
    return output


@pytest.fixture(scope="session")
def classifier_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """LogisticRegression (the classification default) on breast_cancer. Treat it as read-only."""
    output = tmp_path_factory.mktemp("classifier")
    train("breast_cancer", output)
    return output


@pytest.fixture
def write_csv(tmp_path: Path):
    def write(frame: pd.DataFrame, name: str = "data.csv") -> Path:
        path = tmp_path / name
        frame.to_csv(path, index=False)
        return path

    return write
