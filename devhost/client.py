"""Talking to a running host over HTTP: the release API and the Event Grid webhook.

Decisions (approve, reject) carry a Proof (devhost/signing.py): the headers that prove who decides,
computed over the exact method, path and body bytes this client sends. The body is only the comment.

Dead letters and parked events come a page at a time (``limit``, then ``before`` the page's ``next``
cursor); a host older than paging answers dead letters in one list with whole payloads, read the same way.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlencode

import requests

from devhost.signing import Proof
from functions.domain.input_limits import DEAD_LETTER_EXCERPT_CHARS, DEFAULT_PAGE
from functions.settings import Settings

ROLLBACK_PATH = "/api/production/rollback"
FOLLOWED_STATES = frozenset({"promoting", "deploying_staging"})  # states whose operations the timer follows


class HostError(RuntimeError):
    """The host answered with an error (``status``), or is not running (``status`` None)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class HostClient:
    def __init__(self, base_url: str | None = None, timeout_s: float = 300.0) -> None:
        self.base_url = (base_url or Settings.from_env().host_url).rstrip("/")
        self.timeout_s = timeout_s

    def _call(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
        proof: Proof | None = None,
    ) -> Any:  # fmt: skip
        url = f"{self.base_url}{path}"
        data = None if body is None else json.dumps(body).encode()
        sent = {"Content-Type": "application/json", **(headers or {})}
        if proof is not None:
            sent |= proof(method, path, data or b"")  # over exactly what goes out
        try:
            response = requests.request(method, url, data=data, timeout=self.timeout_s, headers=sent)
        except requests.ConnectionError:
            raise HostError(f"no host at {self.base_url}: start it with `mlops up`") from None
        if response.status_code >= 400:
            try:
                message = response.json().get("error") or response.text
            except (ValueError, AttributeError):
                message = response.text
            raise HostError(f"{method} {path} -> {response.status_code}: {message}", response.status_code)
        return response.json() if response.content else None

    def healthy(self) -> bool:
        try:
            return requests.get(f"{self.base_url}/api/health", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def releases(self, limit: int = 50) -> list[dict[str, Any]]:
        return self._call("GET", f"/api/releases?limit={limit}")["releases"]

    def release(self, release_id: str) -> dict[str, Any]:
        return self._call("GET", release_path(release_id))

    def approve(self, release_id: str, proof: Proof, comment: str = "") -> dict[str, Any]:
        """POST .../approve as whoever ``proof`` proves; the answer is the release."""
        return self._call("POST", release_path(release_id, "approve"), {"comment": comment}, proof=proof)

    def reject(self, release_id: str, proof: Proof, comment: str) -> dict[str, Any]:
        """POST .../reject (decline) as whoever ``proof`` proves; the answer is the release."""
        return self._call("POST", release_path(release_id, "reject"), {"comment": comment}, proof=proof)

    def rollback(self, proof: Proof, comment: str, to: str | None = None) -> dict[str, Any]:
        """POST /api/production/rollback as whoever ``proof`` proves; the answer is the new release."""
        body: dict[str, Any] = {"comment": comment} | ({"to": to} if to else {})
        return self._call("POST", ROLLBACK_PATH, body, proof=proof)

    def follow(
        self, release_id: str, on_entry: Callable[[dict[str, Any]], None], timeout_s: float, interval_s: float = 0.5
    ) -> dict[str, Any]:
        """Poll the release until it is no longer promoting (or ``timeout_s`` passed), telling ``on_entry``
        each timeline entry that is new since the first look; the release as last seen."""
        release = self.release(release_id)
        seen = len(release["timeline"])
        deadline = time.monotonic() + timeout_s
        while release["state"] in FOLLOWED_STATES and time.monotonic() < deadline:
            time.sleep(interval_s)
            release = self.release(release_id)
            for entry in release["timeline"][seen:]:
                on_entry(entry)
            seen = len(release["timeline"])
        return release

    def dead_letters(self) -> list[dict[str, Any]]:
        """The newest page of dead letters, newest first."""
        return self.dead_letters_page()["dead_letters"]

    def dead_letters_page(self, limit: int = DEFAULT_PAGE, before: str | None = None) -> dict[str, Any]:
        """``{"dead_letters": [...], "next": cursor or None}``: up to ``limit`` letters, older than ``before``."""
        answer = self._call("GET", page_path("/api/dead-letters", limit, before))
        return {"dead_letters": [with_excerpt(letter) for letter in answer["dead_letters"]], "next": answer.get("next")}

    def parked_page(self, limit: int = DEFAULT_PAGE, before: str | None = None) -> dict[str, Any]:
        """``{"parked": [...], "next": cursor or None}``: events waiting for their release to be ready for them."""
        answer = self._call("GET", page_path("/api/parked", limit, before))
        return {"parked": answer["parked"], "next": answer.get("next")}

    def deliver(self, function_name: str, events: list[dict[str, Any]]) -> None:
        """POST events to the webhook the way Event Grid does."""
        self._call(
            "POST", f"/runtime/webhooks/eventgrid?functionName={function_name}", events,
            {"aeg-event-type": "Notification"},
        )  # fmt: skip


def release_path(release_id: str, action: str | None = None) -> str:
    """/api/releases/{id}[/action], the id percent-encoded, so the path signed is the path sent."""
    path = f"/api/releases/{quote(release_id, safe='')}"
    return f"{path}/{action}" if action else path


def page_path(path: str, limit: int, before: str | None) -> str:
    """``path?limit=N[&before=CURSOR]``, the cursor percent-encoded (it is the host's, opaque)."""
    return f"{path}?{urlencode({'limit': limit} | ({'before': before} if before else {}))}"


def with_excerpt(letter: dict[str, Any]) -> dict[str, Any]:
    """A dead letter as a paging host sends it. An older host sent the whole event as ``payload``: the
    excerpt is cut from it here, and the size and digest of the host's own text stay unknown (None)."""
    if "excerpt" in letter or "payload" not in letter:
        return letter
    text = json.dumps(letter["payload"])
    return {**letter, "excerpt": text[:DEAD_LETTER_EXCERPT_CHARS], "truncated": len(text) > DEAD_LETTER_EXCERPT_CHARS,
            "size": None,
            "sha256": None}  # fmt: skip
