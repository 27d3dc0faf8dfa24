"""Small file primitives for state under $MLOPS_HOME: atomic JSON documents and JSON-lines logs.

Several threads (and the CLI in another process) read these files while the host writes them,
so a document is never written in place: it goes to a temporary file beside it and replaces
the old one with ``os.replace``, which readers see as all-or-nothing.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

_append_lock = threading.Lock()


def utc_now() -> str:
    """An ISO 8601 UTC timestamp for records, e.g. 2026-11-26T13:00:00.123456+00:00."""
    return datetime.now(UTC).isoformat()


def write_json_atomic(path: Path, document: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(document, handle, indent=2)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def read_json(path: Path, default: Any = None) -> Any:
    """The document at ``path``, or ``default`` when the file does not exist."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return default
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON ({exc}); fix or remove it") from None


def append_jsonl(path: Path, record: dict[str, Any]) -> None:
    """Append one JSON line; one ``write`` per line keeps lines whole between processes (O_APPEND)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(record, default=str) + "\n"
    with _append_lock, open(path, "a", encoding="utf-8") as handle:
        handle.write(line)
