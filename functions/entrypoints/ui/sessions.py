"""The page's own credentials: a one-time login link, the session cookie it sets, and per-form tokens.

All three are this app's signed tokens (identity/tokens.py) with a ``purpose`` of their own:

- **login** (locally, minted by `mlops ui` with the key in $MLOPS_HOME): ``identity``, ``expires``
  (10 minutes), ``nonce``; used once (the nonce is spent in the release store).
- **session**: the cookie ``mlops_session`` the login sets (HttpOnly, SameSite=Strict, Path=/api/ui;
  Secure over https), for ``identity`` until ``expires`` (8 hours). Azure needs none: App Service
  Authentication has its own session.
- **form**: every approve or decline form carries one, for the page's ``reader``, one ``release`` and
  one ``action``, until ``expires`` (2 hours), spent when the decision counts; another site cannot
  mint one, so it cannot make a signed-in browser decide (besides SameSite and the origin check).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from functions.entrypoints.identity import tokens
from functions.entrypoints.identity.authenticate import AuthenticationFailed as Refused
from functions.ports import ReleaseStore

COOKIE = "mlops_session"
COOKIE_PATH = "/api/ui"
LOGIN_SECONDS = 10 * 60
SESSION_SECONDS = 8 * 60 * 60
FORM_SECONDS = 2 * 60 * 60
ACTIONS = ("approve", "decline", "rollback")

_LOGIN = {"purpose": str, "identity": str, "expires": int, "nonce": str}
_SESSION = {"purpose": str, "identity": str, "expires": int, "sid": str}
_FORM = {"purpose": str, "reader": str, "release": str, "action": str, "expires": int, "nonce": str}


@dataclass(frozen=True)
class FormToken:
    reader: str
    release: str
    action: str
    expires: int
    nonce: str


def mint_login(secret: bytes, identity: str, now_s: int, nonce: str | None = None) -> str:
    """A one-time link token that signs ``identity`` in (what `mlops ui` puts in the URL it opens)."""
    if not identity.strip():
        raise ValueError("a login names a person")
    document = {"purpose": "login", "identity": identity.strip(), "expires": now_s + LOGIN_SECONDS,
                "nonce": nonce or secrets.token_urlsafe(18)}  # fmt: skip
    return tokens.seal(secret, document)


def use_login(secret: bytes, token: str, now_s: int, store: ReleaseStore) -> str:
    """The identity a login token signs in, spending it: 401 forged, 410 expired, 409 used already."""
    document = _open(secret, token, "login", _LOGIN, now_s, LOGIN_SECONDS, "the sign-in link")
    expires_at = datetime.fromtimestamp(document["expires"], UTC).isoformat()
    if not store.spend_nonce(f"login:{document['nonce']}", expires_at):
        raise Refused(409, "the sign-in link has been used already; run `mlops ui` for a new one")
    return str(document["identity"])


def mint_session(secret: bytes, identity: str, now_s: int) -> str:
    document = {"purpose": "session", "identity": identity, "expires": now_s + SESSION_SECONDS,
                "sid": secrets.token_urlsafe(12)}  # fmt: skip
    return tokens.seal(secret, document)


def session_identity(secret: bytes, cookie: str, now_s: int) -> str:
    """Who the session cookie signs in (Refused when it is forged or over)."""
    return str(_open(secret, cookie, "session", _SESSION, now_s, SESSION_SECONDS, "the session")["identity"])


def session_cookie(token: str, *, secure: bool, max_age: int = SESSION_SECONDS) -> str:
    """The Set-Cookie value: HttpOnly (no script reads it), SameSite=Strict (no other site sends it)."""
    attributes = [f"{COOKIE}={token}", f"Path={COOKIE_PATH}", f"Max-Age={max_age}", "HttpOnly", "SameSite=Strict"]
    if secure:
        attributes.append("Secure")
    return "; ".join(attributes)


def mint_form(secret: bytes, reader: str, release_id: str, action: str, now_s: int) -> str:
    if action not in ACTIONS:
        raise ValueError(f"action must be one of {', '.join(ACTIONS)}")
    document = {"purpose": "form", "reader": reader, "release": release_id, "action": action,
                "expires": now_s + FORM_SECONDS, "nonce": secrets.token_urlsafe(18)}  # fmt: skip
    return tokens.seal(secret, document)


def check_form(secret: bytes, token: str, now_s: int, release_id: str, action: str) -> FormToken:
    """The form token if it is ours, current, and for this release and action (whose it is: the caller's
    check). 403 for anything else: a form this app did not serve is another site's request."""
    document = _open(secret, token, "form", _FORM, now_s, FORM_SECONDS, "the form", forged_status=403)
    form = FormToken(document["reader"], document["release"], document["action"], document["expires"],
                     document["nonce"])  # fmt: skip
    if form.release != release_id or form.action != action:
        raise Refused(403, "the form was served for another release or action; reload the page")
    return form


def spend_form(store: ReleaseStore, form: FormToken) -> None:
    expires_at = datetime.fromtimestamp(form.expires, UTC).isoformat()
    if not store.spend_nonce(f"form:{form.nonce}", expires_at):
        raise Refused(409, "this form was sent already; reload the page to decide again")


def _open(
    secret: bytes,
    token: str,
    purpose: str,
    fields: dict[str, type],
    now_s: int,
    lifetime_s: int,
    what: str,
    *,
    forged_status: int = 401,
) -> dict[str, Any]:
    try:
        document = tokens.unseal(secret, token, what)
    except tokens.BadToken as exc:
        raise Refused(forged_status, str(exc)) from None
    if set(document) != set(fields) or document.get("purpose") != purpose:
        raise Refused(forged_status, f"{what} is not one of this page's tokens")
    if tokens.malformed_field(document, fields) is not None:
        raise Refused(forged_status, f"{what} is malformed")
    if now_s >= document["expires"]:
        raise Refused({"login": 410, "session": 401}.get(purpose, 403), f"{what} has expired")
    if document["expires"] - now_s > lifetime_s:
        raise Refused(forged_status, f"{what} claims a longer life than this page gives")
    return document
