"""The local stand-in for the training-data container: ``$MLOPS_HOME/<container>/`` holds its blobs.

A file under it is a blob whose name is its path relative to that folder (``diabetes/new.csv``); putting
one there is what Storage's BlobCreated reports. `mlops trigger data FILE` copies a file in and sends the
event; `mlops up` watches the folder (FolderWatcher) and sends it for files dropped there by hand. Both
derive the event id from the file's name, size and modification time, so the second of them is a
duplicate, not another blob.
"""

from __future__ import annotations

import hashlib
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from functions.domain.data_trigger import DataTrigger, subject_for
from platforms.local.events import build_event

BLOB_CREATED = "Microsoft.Storage.BlobCreated"
# A file is sent once it has kept its size and time for one poll (not while it is being written).
Signature = tuple[int, int]


def container_dir(home: Path, trigger: DataTrigger) -> Path:
    return Path(home) / trigger.container


def put(home: Path, trigger: DataTrigger, source: Path) -> Path:
    """Copy ``source`` into the container under the prefix (a prefix ending in "/" is a folder)."""
    target = container_dir(home, trigger) / f"{trigger.prefix}{source.name}"
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{uuid.uuid4().hex[:6]}.partial")
    shutil.copyfile(source, partial)
    partial.replace(target)  # whole or not at all: the watcher never sends half a file
    return target


def blob_created(home: Path, trigger: DataTrigger, path: Path) -> dict[str, Any]:
    """The BlobCreated Event Grid would deliver for ``path`` (a file inside the container folder)."""
    root = container_dir(home, trigger).resolve()
    resolved = path.resolve()
    name = resolved.relative_to(root).as_posix()
    stat = resolved.stat()
    identity = f"{name}|{stat.st_size}|{stat.st_mtime_ns}"
    data = {
        "api": "PutBlob",
        "contentType": "text/csv" if name.endswith(".csv") else "application/octet-stream",
        "contentLength": stat.st_size,
        "blobType": "BlockBlob",
        "eTag": "0x" + hashlib.sha256(identity.encode()).hexdigest()[:15].upper(),
        "url": resolved.as_uri(),
        "sequencer": f"{stat.st_mtime_ns:032d}",
    }
    event_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"mlops-local-blob:{root}:{identity}"))
    return build_event(BLOB_CREATED, subject_for(trigger.container, name), data, event_id)


class FolderWatcher:
    """Finds files that appeared or changed under the container and prefix since the last poll.

    Files there when the watcher starts are not new data (they were seen, or put there while no host ran:
    `mlops trigger data` sends those). Hidden and partial files are skipped.
    """

    def __init__(self, home: Path, trigger: DataTrigger, send: Callable[[dict[str, Any]], None]) -> None:
        self.home, self.trigger, self.send = Path(home), trigger, send
        self.sent: dict[Path, Signature] = dict(self._files())
        self.pending: dict[Path, Signature] = {}

    def _files(self) -> list[tuple[Path, Signature]]:
        root = container_dir(self.home, self.trigger)
        found = []
        for path in root.rglob("*") if root.is_dir() else ():
            relative = path.relative_to(root).as_posix()
            if not relative.startswith(self.trigger.prefix) or path.name.startswith("."):
                continue
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue
            if path.is_file() and stat.st_size > 0:
                found.append((path, (stat.st_size, stat.st_mtime_ns)))
        return found

    def poll(self) -> list[Path]:
        """Send every file that is new or changed and has not changed since the previous poll; a send that
        raises is tried again on the next poll."""
        sent = []
        current = dict(self._files())
        for path, signature in current.items():
            if self.sent.get(path) == signature:
                continue
            if self.pending.get(path) != signature:
                self.pending[path] = signature  # seen once: send when it is the same next time
                continue
            self.send(blob_created(self.home, self.trigger, path))  # raises: not marked, sent again next poll
            self.sent[path] = signature
            self.pending.pop(path, None)
            sent.append(path)
        return sent
