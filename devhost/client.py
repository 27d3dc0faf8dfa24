"""Talking to a running host over HTTP: the release API and the Event Grid webhook."""

from __future__ import annotations

import json
from typing import Any

import requests

from functions.settings import Settings


class HostError(RuntimeError):
    """The host answered with an error, or is not running."""


class HostClient:
    def __init__(self, base_url: str | None = None, timeout_s: float = 300.0) -> None:
        self.base_url = (base_url or Settings.from_env().host_url).rstrip("/")
        self.timeout_s = timeout_s

    def _call(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
        url = f"{self.base_url}{path}"
        try:
            response = requests.request(
                method, url, data=None if body is None else json.dumps(body), timeout=self.timeout_s,
                headers={"Content-Type": "application/json", **(headers or {})},
            )  # fmt: skip
        except requests.ConnectionError:
            raise HostError(f"no host at {self.base_url}: start it with `mlops up`") from None
        if response.status_code >= 400:
            try:
                message = response.json().get("error") or response.text
            except ValueError:
                message = response.text
            raise HostError(f"{method} {path} -> {response.status_code}: {message}")
        return response.json() if response.content else None

    def healthy(self) -> bool:
        try:
            return requests.get(f"{self.base_url}/api/health", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def releases(self, limit: int = 50) -> list[dict[str, Any]]:
        return self._call("GET", f"/api/releases?limit={limit}")["releases"]

    def release(self, release_id: str) -> dict[str, Any]:
        return self._call("GET", f"/api/releases/{release_id}")

    def approve(self, release_id: str, by: str, comment: str = "") -> dict[str, Any]:
        return self._call("POST", f"/api/releases/{release_id}/approve", {"by": by, "comment": comment})

    def reject(self, release_id: str, by: str, comment: str) -> dict[str, Any]:
        return self._call("POST", f"/api/releases/{release_id}/reject", {"by": by, "comment": comment})

    def dead_letters(self) -> list[dict[str, Any]]:
        return self._call("GET", "/api/dead-letters")["dead_letters"]

    def deliver(self, function_name: str, events: list[dict[str, Any]]) -> None:
        """POST events to the webhook the way Event Grid does."""
        self._call(
            "POST", f"/runtime/webhooks/eventgrid?functionName={function_name}", events,
            {"aeg-event-type": "Notification"},
        )  # fmt: skip
