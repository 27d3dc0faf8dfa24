"""Reading and writing the small JSON documents the steps exchange."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ml_pipeline.errors import PipelineInputError


def read_json(path: str | Path, what: str = "JSON file") -> Any:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise PipelineInputError(f"{what} not found: {path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise PipelineInputError(f"{what} {path} is not valid JSON: {exc}") from None


def write_json(path: Path, document: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, sort_keys=False) + "\n")
