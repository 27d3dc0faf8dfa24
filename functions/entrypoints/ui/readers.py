"""Who reads the page, proven: App Service Authentication on Azure, the session cookie locally.

On Azure the X-MS-CLIENT-PRINCIPAL* headers count only when the platform says its Authentication is
on (else anyone could send them); an application token is not a person and reads nothing. Locally the
``mlops_session`` cookie the one-time sign-in link set: a forged or expired one is nobody (and is
cleared). The approval rules judge this Principal exactly as they judge the API's callers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import azure.functions as func

from functions.domain.approval import Principal
from functions.entrypoints.identity import easy_auth
from functions.entrypoints.ui import sessions
from functions.settings import Settings

log = logging.getLogger("mlops.ui")


@dataclass(frozen=True)
class Found:
    principal: Principal | None
    stale_session: bool = False  # a cookie that no longer signs anyone in: the answer clears it


def reader(req: func.HttpRequest, settings: Settings, now_s: int, secret: Callable[[], bytes]) -> Found:
    headers = {name.lower(): value for name, value in req.headers.items()}
    if settings.platform == "azure":
        return Found(_easy_auth(headers, settings))
    candidates = _session_cookies(headers.get("cookie", ""))
    if not candidates:
        return Found(None)
    key = secret()
    for cookie in candidates:  # another app on this host may set one too (cookies ignore ports): any valid one
        try:
            identity = sessions.session_identity(key, cookie, now_s)
        except sessions.Refused as exc:
            log.info("ui: a session cookie refused: %s", exc)
            continue
        return Found(Principal(identity, provider="local", method="session"))
    return Found(None, stale_session=True)


def _easy_auth(headers: dict[str, str], settings: Settings) -> Principal | None:
    if not settings.easy_auth_enabled() or not easy_auth.present(headers):
        return None
    try:
        return easy_auth.principal_from_headers(headers)
    except easy_auth.BadPrincipal as exc:
        log.warning("ui: App Service Authentication principal refused: %s", exc)
        return None


def _session_cookies(header: str, limit: int = 8) -> list[str]:
    """Every ``mlops_session`` value in a Cookie header. Split by hand: http.cookies stops at the first
    cookie it dislikes, and other apps on 127.0.0.1 (any port) send theirs in the same header."""
    if len(header) > 16384:
        return []
    found = []
    for pair in header.split(";"):
        name, equals, value = pair.strip().partition("=")
        if equals and name == sessions.COOKIE and value.strip():
            found.append(value.strip().strip('"'))
    return found[:limit]
