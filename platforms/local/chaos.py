"""MLOPS_LOCAL_EVENT_CHAOS: the local event bus misbehaving the ways Event Grid may, on purpose.

For the chaos tests (tests/e2e/test_event_chaos.py): of the events the bus publishes, a given share is
dropped, duplicated (the same event id delivered twice), delayed by ``delay_s``, or reordered (held back
a random part of ``delay_s``, so events published after it overtake it). Draws come from one seeded
generator, so a run can be repeated. Only events about releases that already exist are dropped: an
event that creates a release (a build, a blob) leaves nothing for reconcile to recover when lost.
Every decision other than a plain delivery is appended to ``<home>/chaos.jsonl``.
"""

from __future__ import annotations

import random
import threading
from pathlib import Path
from typing import Any

from platforms.local.files import append_jsonl, utc_now

CHAOS_FILE = "chaos.jsonl"
# Events that create a release (or a data window): never dropped.
CREATING_TYPES = frozenset({"MLOps.BuildCompleted", "Microsoft.Storage.BlobCreated"})


class EventChaos:
    """Decides, per published event, after how many seconds each copy of it is delivered."""

    def __init__(self, home: Path, settings: dict[str, Any]) -> None:
        self.log = Path(home) / CHAOS_FILE
        self.drop = float(settings.get("drop", 0.0))
        self.duplicate = float(settings.get("duplicate", 0.0))
        self.delay = float(settings.get("delay", 0.0))
        self.reorder = float(settings.get("reorder", 0.0))
        self.delay_s = float(settings.get("delay_s", 2.0))
        self._random = random.Random(int(settings.get("seed", 0)))
        self._lock = threading.Lock()

    def deliveries(self, event: dict[str, Any]) -> list[float]:
        """The delays (seconds) of the copies of ``event`` to deliver: [] drops it, [0.0] is normal."""
        with self._lock:
            draw = self._random.random
            if event.get("eventType") not in CREATING_TYPES and draw() < self.drop:
                return self._said("dropped", event, [])
            delays = [0.0]
            if draw() < self.delay:
                delays = self._said("delayed", event, [self.delay_s])
            elif draw() < self.reorder:
                delays = self._said("reordered", event, [round(draw() * self.delay_s, 3)])
            if draw() < self.duplicate:
                delays = self._said("duplicated", event, [*delays, round(draw() * self.delay_s, 3)])
            return delays

    def _said(self, action: str, event: dict[str, Any], delays: list[float]) -> list[float]:
        append_jsonl(self.log, {"at": utc_now(), "action": action, "id": event.get("id"),
                                "eventType": event.get("eventType"), "subject": event.get("subject"),
                                "delays_s": delays})  # fmt: skip
        return delays
