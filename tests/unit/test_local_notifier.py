"""The local notification file: one JSON line per notification under home, read back by `mlops notifications`."""

from __future__ import annotations

import json
import logging

from functions.domain.notifications import Fact, Notification
from platforms.local.notifier import NotificationFile, read_notifications


def note(release_id: str, title: str) -> Notification:
    return Notification("live", release_id, "live", title, "serving", f"http://h/api/ui/releases/{release_id}",
                        "2026-12-02T00:00:00+00:00", (Fact("Model", "m:1"),), {"metric": "mse"})  # fmt: skip


def test_notifications_are_appended_logged_and_read_back(tmp_path, caplog):
    channel = NotificationFile(tmp_path)
    with caplog.at_level(logging.INFO, logger="mlops.notify"):
        channel.send(note("rel-1", "Release rel-1 awaits approval"))
        channel.send(note("rel-2", "Release rel-2 is live"))
    lines = [json.loads(line) for line in (tmp_path / "notifications.jsonl").read_text().splitlines()]
    assert [(n["release_id"], n["title"]) for n in lines] == [
        ("rel-1", "Release rel-1 awaits approval"),
        ("rel-2", "Release rel-2 is live"),
    ]
    assert lines[0]["sent_at"].endswith("+00:00") and lines[0]["facts"] == [{"name": "Model", "value": "m:1"}]
    assert Notification.from_json({k: v for k, v in lines[0].items() if k != "sent_at"}) == note(
        "rel-1", "Release rel-1 awaits approval"
    )
    assert "Release rel-1 awaits approval" in caplog.text


def test_reading_skips_torn_and_foreign_lines(tmp_path):
    NotificationFile(tmp_path).send(note("rel-1", "t"))
    with open(tmp_path / "notifications.jsonl", "a") as handle:
        handle.write('{"release_id": "rel-2", "ti\n[1, 2]\n{"subject": "old format"}\n')
    assert [r["release_id"] for r in read_notifications(tmp_path)] == ["rel-1"]
    assert list(read_notifications(tmp_path / "nowhere")) == []
