"""The local host answers only itself: no decision from another site, no request for another name.

A page open in the user's browser can send a request to http://127.0.0.1:7071 (a form POST with
text/plain needs no CORS preflight), and a hostile DNS name can be re-pointed at 127.0.0.1 (DNS
rebinding) so that its pages read the host's answers as their own. Two checks, before any route
runs, stop both:

- **Host**: every request must name one of the host's own authorities (``127.0.0.1:PORT`` or
  ``localhost:PORT``, or what ``build_host(allowed_authorities=...)`` was given). Anything else is 403,
  whatever the method: a rebound name could otherwise read releases, not only change them.
- **Origin**: a state-changing request (POST, PUT, PATCH, DELETE, on /api/, /admin/ and the Event Grid
  webhook alike) that carries an ``Origin`` must come from the host's own origin
  (``http://127.0.0.1:PORT`` or ``http://localhost:PORT``); ``Origin: null`` and other sites are 403.
  Without an Origin (the CLI, the local event bus, curl, tests) it passes, unless the browser's
  ``Sec-Fetch-Site`` says it came from another site.

Refusals are the host's JSON errors, ``{"error": "..."}``. Azure's front end does this job on Azure;
this is the laptop's equivalent, not a replacement for proof of identity (the entry layer's job).
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from devhost.conversion import error_response

STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CROSS_SITE_FETCH = frozenset({"cross-site", "same-site"})  # Sec-Fetch-Site values that are not this origin


def loopback_authorities(port: int) -> tuple[str, ...]:
    """The names the host answers to when it serves 127.0.0.1:port."""
    return (f"127.0.0.1:{port}", f"localhost:{port}")


def normal_authority(authority: str) -> str:
    """``host:port`` in lower case, with HTTP's default port 80 when none is given."""
    value = authority.strip().lower()
    _, colon, port = value.rpartition(":")
    return value if colon and port.isdecimal() else f"{value}:80"


def checked_authorities(authorities: Iterable[str]) -> tuple[str, ...]:
    """``authorities`` stripped; ValueError unless each is a ``host[:port]`` name (no scheme, no path)."""
    names = tuple(authority.strip() for authority in authorities)
    if not names or any(not name or "/" in name or "@" in name for name in names):
        raise ValueError(f"allowed_authorities must be host:port names like 127.0.0.1:7071, got {names!r}")
    return names


class SameSiteGuard:
    """ASGI middleware: 403 for a request to another name (Host) or a state change from another site (Origin)."""

    def __init__(self, app: ASGIApp, allowed_authorities: Iterable[str]) -> None:
        self.app = app
        self.shown = checked_authorities(allowed_authorities)
        self.allowed = frozenset(normal_authority(authority) for authority in self.shown)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (refusal := self.refusal(scope["method"], Headers(scope=scope))):
            await error_response(403, refusal)(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def refusal(self, method: str, headers: Headers) -> str | None:
        """Why the request is refused, or None when it is for this host and from no other site."""
        host = headers.get("host", "")
        if normal_authority(host) not in self.allowed:
            return (f"refused: Host {host!r} is not this host ({' or '.join(self.shown)}); "
                    "a page on another name may not call it (DNS rebinding)")  # fmt: skip
        if method.upper() not in STATE_CHANGING:
            return None
        origin = headers.get("origin")
        if origin is not None:
            if self.own_origin(origin):
                return None
            return (f"refused: a {method.upper()} from another site (Origin {origin!r}); "
                    f"only http://{' or http://'.join(self.shown)} may change anything here")  # fmt: skip
        fetch_site = headers.get("sec-fetch-site", "").strip().lower()
        if fetch_site in CROSS_SITE_FETCH:
            return f"refused: a {method.upper()} from another site (Sec-Fetch-Site {fetch_site})"
        return None

    def own_origin(self, origin: str) -> bool:
        try:
            parts = urlsplit(origin.strip())
        except ValueError:
            return False
        if parts.scheme.lower() != "http" or parts.path not in ("", "/") or parts.query or "@" in parts.netloc:
            return False
        return bool(parts.netloc) and normal_authority(parts.netloc) in self.allowed
