"""Retraining on new data: which blobs count, and how a burst of them becomes one release.

A Storage ``BlobCreated`` under the configured container and prefix opens a *window* (the first
blob) or joins the open one. The window is a release in state ``collecting`` plus a work item due at
``opened + debounce`` (both durable, in the store); when it is due, the release takes the newest blob
of the window as its training data and starts like any other. A window never moves its end: a steady
stream of blobs starts one release per debounce period, never none.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from functions.domain.events import blob_of_subject
from functions.domain.ids import release_id

LOCAL_CONTAINER = "training-data"  # locally: $MLOPS_HOME/training-data, `mlops trigger data`
DATA_REQUESTER = "mlops-data"  # never a person's identity: any allowed approver may approve
CLOSE_WINDOW = "close_data_window"  # the work item's kind
# A release lists at most this many blobs (each ~300 bytes of its document); later ones are counted.
MAX_LISTED_BLOBS = 100
# Storage's documented container names: 3-63 of a-z, 0-9 and single hyphens, starting with a letter or digit.
_CONTAINER = re.compile(r"[a-z0-9](?:[a-z0-9]|-(?!-)){2,62}")


class DataTriggerError(ValueError):
    """The data trigger's settings are malformed; the message names the setting."""


@dataclass(frozen=True)
class DataTrigger:
    container: str
    prefix: str = ""
    debounce: timedelta = timedelta(minutes=5)

    def __post_init__(self) -> None:
        if not _CONTAINER.fullmatch(self.container) or self.container.endswith("-"):
            raise DataTriggerError(
                f"MLOPS_DATA_CONTAINER {self.container[:70]!r} is not a container name "
                "(3-63 of a-z, 0-9 and single hyphens, starting and ending with a letter or digit)"
            )
        if self.prefix.startswith("/") or len(self.prefix) > 1024:
            raise DataTriggerError("MLOPS_DATA_PREFIX is a blob name prefix: no leading '/', at most 1024 characters")

    def blob_name(self, subject: str) -> str | None:
        """The blob's name when ``subject`` (a BlobCreated subject) is under the container and prefix."""
        blob = blob_of_subject(subject)
        if blob is None or blob[0] != self.container or not blob[1].startswith(self.prefix):
            return None
        return blob[1]

    @property
    def window_key(self) -> str:
        """The work item of this container and prefix's open window (one at a time)."""
        where = hashlib.sha256(f"{self.container}/{self.prefix}".encode()).hexdigest()[:16]
        return f"data-window-{where}"


def subject_for(container: str, name: str) -> str:
    return f"/blobServices/default/containers/{container}/blobs/{name}"


def window_release_id(opened: datetime, event_id: str) -> str:
    """``rel-data-20261207t101500-3fa2c1``: the moment the window opened and the blob that opened it."""
    return release_id("data", f"{opened:%Y%m%dt%H%M%S}-{hashlib.sha256(event_id.encode()).hexdigest()[:6]}")


def seen_key(event_id: str) -> str:
    """The spent-nonce record that says a BlobCreated was counted (its window may be closed by now)."""
    return "blob-event:" + hashlib.sha256(event_id.encode()).hexdigest()


def window_trigger(trigger: DataTrigger, opened: datetime) -> dict[str, Any]:
    return {
        "kind": "data",
        "container": trigger.container,
        "prefix": trigger.prefix,
        "window": {"opened_at": opened.isoformat(), "closes_at": (opened + trigger.debounce).isoformat()},
        "blobs": [],
        "blob_count": 0,
        "requester": DATA_REQUESTER,
        "reason": f"new data in {trigger.container}/{trigger.prefix}",
    }


def add_blob(trigger: dict[str, Any], blob: dict[str, Any]) -> None:
    """Record ``blob`` in a window's trigger: listed up to MAX_LISTED_BLOBS, always counted, and the
    newest (by event time, then arrival) kept as ``newest``."""
    trigger["blob_count"] = int(trigger.get("blob_count") or 0) + 1
    listed = trigger.setdefault("blobs", [])
    if len(listed) < MAX_LISTED_BLOBS:
        listed.append(blob)
    newest = trigger.get("newest")
    if newest is None or str(blob.get("eventTime") or "") >= str(newest.get("eventTime") or ""):
        trigger["newest"] = blob


def close(trigger: dict[str, Any]) -> str:
    """The window's training data: the newest blob's URL (recorded as ``trainingData``)."""
    newest = trigger["newest"]
    trigger["trainingData"] = str(newest["url"])
    return str(newest["name"])
