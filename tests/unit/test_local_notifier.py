"""LocalNotifier: one JSON line per notification under home, and a log record."""

from __future__ import annotations

import json
import logging

from platforms.local.notifier import LocalNotifier


def test_notification_is_appended_and_logged(tmp_path, caplog):
    notifier = LocalNotifier(tmp_path)
    with caplog.at_level(logging.INFO, logger="mlops.notify"):
        notifier.notify("rel-1", "approval requested for release rel-1", "POST /api/releases/rel-1/approve")
        notifier.notify("rel-2", "release rel-2 is live", "")
    lines = [json.loads(line) for line in (tmp_path / "notifications.jsonl").read_text().splitlines()]
    assert [(n["release_id"], n["subject"]) for n in lines] == [
        ("rel-1", "approval requested for release rel-1"),
        ("rel-2", "release rel-2 is live"),
    ]
    assert lines[0]["body"] == "POST /api/releases/rel-1/approve"
    assert lines[0]["at"].endswith("+00:00")
    assert "approval requested for release rel-1" in caplog.text
    assert "POST /api/releases/rel-1/approve" in caplog.text
