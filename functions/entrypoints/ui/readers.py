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
from http.cookies import CookieError, SimpleCookie

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
    cookie = _cookie(headers.get("cookie", ""))
    if not cookie:
        return Found(None)
    try:
        identity = sessions.session_identity(secret(), cookie, now_s)
    except sessions.Refused as exc:
        log.info("ui: session cookie refused: %s", exc)
        return Found(None, stale_session=True)
    return Found(Principal(identity, provider="local", method="session"))


def _easy_auth(headers: dict[str, str], settings: Settings) -> Principal | None:
    if not settings.easy_auth_enabled() or not easy_auth.present(headers):
        return None
    try:
        return easy_auth.principal_from_headers(headers)
    except easy_auth.BadPrincipal as exc:
        log.warning("ui: App Service Authentication principal refused: %s", exc)
        return None


def _cookie(header: str) -> str:
    if not header or len(header) > 8192:
        return ""
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(header)
    except CookieError:
        return ""
    morsel = jar.get(sessions.COOKIE)
    return morsel.value if morsel is not None else ""
