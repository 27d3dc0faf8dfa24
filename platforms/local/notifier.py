"""Notifications on the local platform: a JSON-lines file a user can tail (`mlops notifications`)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from functions.domain.notifications import Notification
from platforms.local.files import append_jsonl, utc_now

logger = logging.getLogger("mlops.notify")

NOTIFICATIONS_FILE = "notifications.jsonl"
FILE_TARGET = "file"  # its name among the notification targets


class NotificationFile:
    """A notification channel: ``<home>/notifications.jsonl`` gets ``{"sent_at": ..., **notification}`` per send."""

    inline = True  # an append to a local file: tried within the invocation

    def __init__(self, home: Path) -> None:
        self.path = Path(home) / NOTIFICATIONS_FILE

    def send(self, notification: Notification) -> None:
        append_jsonl(self.path, {"sent_at": utc_now(), **notification.to_json()})
        logger.info("%s: %s: %s", notification.release_id, notification.title, notification.summary)


def read_notifications(home: Path) -> Iterator[dict[str, Any]]:
    """The file's records, oldest first; a line that is not a notification (torn, hand-edited) is skipped."""
    path = Path(home) / NOTIFICATIONS_FILE
    if not path.exists():
        return
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict) and isinstance(record.get("release_id"), str) and "title" in record:
                yield record
