"""Loading a dataset: a built-in scikit-learn data set or a CSV with one row per example."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

from ml_pipeline.errors import PipelineInputError

if TYPE_CHECKING:
    import pandas as pd

BUILTIN_DIABETES = "diabetes"
BUILTIN_BREAST_CANCER = "breast_cancer"
# Built-in data sets (they ship inside scikit-learn: no download) and the task each one poses.
BUILTIN_DATASETS = {BUILTIN_DIABETES: "regression", BUILTIN_BREAST_CANCER: "classification"}
TASKS = ("regression", "classification")
DEFAULT_TARGET = "target"


def default_task(source: str) -> str:
    """The task a data source poses when nobody says: the built-in set's own, else regression."""
    return BUILTIN_DATASETS.get(source, "regression")


def load_dataset(source: str) -> pd.DataFrame:
    """Return the dataset named by ``source``: a built-in name (``diabetes``, ``breast_cancer``) or a CSV path."""
    import pandas as pd

    if source == BUILTIN_DIABETES:
        from sklearn.datasets import load_diabetes

        return load_diabetes(as_frame=True).frame
    if source == BUILTIN_BREAST_CANCER:
        from sklearn.datasets import load_breast_cancer

        return load_breast_cancer(as_frame=True).frame
    path = Path(source)
    if not path.is_file():
        raise PipelineInputError(f"data file not found: {source}")
    try:
        frame = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise PipelineInputError(f"data file is empty: {source}") from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise PipelineInputError(f"cannot read {source} as CSV: {first_line}") from None
    if frame.empty:
        raise PipelineInputError(f"data file has no rows: {source}")
    return frame


def feature_columns(frame: pd.DataFrame, target: str) -> list[str]:
    """Every column except the target, in file order."""
    return [str(column) for column in frame.columns if column != target]


def require_target(frame: pd.DataFrame, target: str) -> None:
    if target not in frame.columns:
        raise PipelineInputError(
            f"target column {target!r} not found; columns are: {', '.join(map(str, frame.columns))}"
        )


def data_fingerprint(frame: pd.DataFrame) -> str:
    """A sha256 over column names and values, stable across runs and file formats."""
    import pandas as pd

    digest = hashlib.sha256()
    digest.update("\x1f".join(map(str, frame.columns)).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()
