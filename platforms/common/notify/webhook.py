"""Posting notifications to webhooks, and the Notifier port over a set of named targets.

A webhook URL is a credential (whoever holds a Teams or Slack webhook URL can post to the channel,
and many carry a signature in the query string), so no message, error or repr here contains one:
errors name the target instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol
from urllib.parse import parse_qsl, quote, urlsplit

from functions.domain.notifications import Notification
from platforms.common.notify.formats import FORMATS, encode, render

if TYPE_CHECKING:
    import requests

DEFAULT_TIMEOUT_S = 10.0
BODY_EXCERPT_CHARS = 200
BODY_READ_BYTES = 4096
# Parts of a URL shorter than this ("api", "v1", "https") are no secret, and removing them from an
# error body would only garble it.
MIN_SECRET_CHARS = 6


class NotificationFailed(Exception):
    """A notification did not reach its target. The message names the target, never its URL."""


class Channel(Protocol):
    def send(self, n: Notification) -> None:
        """Deliver ``n``, or raise."""


class WebhookTarget:
    """One webhook that takes ``format_name`` payloads (teams, slack or json) by POST."""

    def __init__(
        self,
        name: str,
        format_name: str,
        url: str,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        session: requests.Session | None = None,
    ) -> None:
        if format_name not in FORMATS:
            raise ValueError(f"{name}: unknown notification format {format_name!r}")
        self.name = name
        self.format_name = format_name
        self._url = url
        self.timeout_s = timeout_s
        self._session = session

    def __repr__(self) -> str:
        return f"WebhookTarget(name={self.name!r}, format_name={self.format_name!r})"

    def send(self, n: Notification) -> None:
        """POST ``n`` rendered in this target's format; NotificationFailed unless the answer is 2xx."""
        import requests  # lazily: the app's start-up does not pay for it

        body = encode(render(self.format_name, n))
        post = self._session.post if self._session is not None else requests.post
        try:
            response = post(
                self._url,
                data=body,
                headers={"Content-Type": "application/json"},
                timeout=self.timeout_s,
                allow_redirects=False,  # a redirect would carry the message somewhere nobody configured
                stream=True,  # an error body is read only as far as its excerpt needs
            )
            with response:
                status = response.status_code
                if 200 <= status < 300:
                    return
                if 300 <= status < 400:
                    raise NotificationFailed(f"{self.name}: HTTP {status} (redirects are not followed)")
                text = _start_of_body(response)
        except NotificationFailed:
            raise
        except Exception as error:  # requests' and urllib3's (LocationParseError...) alike
            # Only the type: their messages quote the URL (or its host), and with it the credential.
            raise NotificationFailed(f"{self.name}: could not reach the target ({type(error).__name__})") from None
        raise NotificationFailed(f"{self.name}: HTTP {status}: {_excerpt(text, self._url)}")


class Targets:
    """The Notifier port over named channels (webhooks, the local file, a topic), in their given order."""

    def __init__(self, channels: Mapping[str, Channel]) -> None:
        self._channels = dict(channels)

    def targets(self) -> list[str]:
        return list(self._channels)

    def sends_inline(self, target: str) -> bool:
        """Channels that say ``inline = True`` (a local file, the platform's topic) are quick enough to try
        inside the invocation; a webhook (up to its timeout) waits for the timer's pass instead."""
        return bool(getattr(self._channels.get(target), "inline", False))

    def send(self, target: str, notification: Notification) -> None:
        channel = self._channels.get(target)
        if channel is None:
            raise NotificationFailed(f"no notification target named {target!r}")
        channel.send(notification)


def _start_of_body(response: requests.Response) -> str:
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_content(chunk_size=1024):
        chunks.append(chunk)
        size += len(chunk)
        if size >= BODY_READ_BYTES:
            break
    start = b"".join(chunks)[:BODY_READ_BYTES]
    try:
        return start.decode(response.encoding or "utf-8", errors="replace")
    except LookupError:  # a charset Python does not know
        return start.decode("utf-8", errors="replace")


def _excerpt(text: str, url: str) -> str:
    """The start of an error body, printable and on one line, with anything of the URL it echoes removed."""
    for secret in _parts_of(url):
        text = text.replace(secret, "…")
    printable = "".join(char if char.isprintable() else " " for char in text)
    return " ".join(printable.split())[:BODY_EXCERPT_CHARS] or "(no body)"


def _parts_of(url: str) -> list[str]:
    """The URL and the parts of it that may be its credential (Slack's is in the path, a Teams
    Workflows URL's in the query's sig), longest first so a part never hides inside a longer one."""
    parts = urlsplit(url)
    found = {url, parts.query, parts.path, parts.netloc, f"{parts.netloc}{parts.path}"}
    found.update(segment for segment in parts.path.split("/") if len(segment) >= MIN_SECRET_CHARS)
    found.update(value for _, value in parse_qsl(parts.query) if len(value) >= MIN_SECRET_CHARS)
    found.update(quote(value, safe="") for value in list(found))  # as a receiver might echo it, encoded
    return sorted((part for part in found if len(part) >= MIN_SECRET_CHARS), key=len, reverse=True)
