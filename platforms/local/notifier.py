"""Notifications on the local platform: a JSON-lines file a user can tail, and a log line."""

from __future__ import annotations

import logging
from pathlib import Path

from platforms.local.files import append_jsonl, utc_now

logger = logging.getLogger("mlops.notify")

NOTIFICATIONS_FILE = "notifications.jsonl"


class LocalNotifier:
    """Notifier port: ``<home>/notifications.jsonl`` gets one ``{at, release_id, subject, body}`` per call."""

    def __init__(self, home: Path) -> None:
        self.path = Path(home) / NOTIFICATIONS_FILE

    def notify(self, release_id: str, subject: str, body: str) -> None:
        append_jsonl(self.path, {"at": utc_now(), "release_id": release_id, "subject": subject, "body": body})
        logger.info("%s: %s — %s", release_id, subject, body)
