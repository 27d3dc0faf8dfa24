"""Live scoring traffic for the demo and the tests: a bounded stream of requests to production's URL.

One background thread posts rows of the training data (1-5 per request) to the production router at
a steady rate, for at most ``max_requests`` requests or until stopped, and counts who answered each
one (the router's ``x-mlops-release`` header, ``answered()``), so a caller can check who served it.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

import requests

ANSWERED_BY = "x-mlops-release"


class LiveTraffic:
    def __init__(
        self, production_url: str, rows: list[list[float]], rate_per_s: float = 40.0, max_requests: int = 20_000
    ) -> None:
        self.production_url = production_url
        self.rows = rows
        self.interval_s = 1.0 / rate_per_s
        self.max_requests = max_requests
        self.sent = 0
        self.failed = 0
        self._answered: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="live-traffic", daemon=True)

    def __enter__(self) -> LiveTraffic:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def answered(self) -> Counter[str]:
        """How many requests each deployment answered ("error": a 5xx, "unreachable": no answer)."""
        with self._lock:
            return Counter(self._answered)

    def _run(self) -> None:
        session = requests.Session()
        number = 0
        while not self._stop.is_set() and number < self.max_requests:
            started = time.monotonic()
            size = 1 + number % 5
            body = {"data": [self.rows[(number * 7 + i) % len(self.rows)] for i in range(size)]}
            number += 1
            try:
                response = session.post(self.production_url, json=body, timeout=10)
                who = response.headers.get(ANSWERED_BY, "") if response.status_code < 500 else "error"
            except requests.RequestException:
                who = "unreachable"
            with self._lock:
                self.sent += 1
                self.failed += who in ("error", "unreachable")
                self._answered[who] += 1
            self._stop.wait(max(0.0, self.interval_s - (time.monotonic() - started)))
        session.close()
