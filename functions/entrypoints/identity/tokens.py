"""The one token format this app signs: base64url(JSON) "." base64url(HMAC-SHA256(secret, payload)).

Signed links (signed_links.py) and the page's login links, session cookies and form tokens
(entrypoints/ui/sessions.py) are all this shape. Each kind has its own exact set of fields (the
page's kinds also a "purpose"), and each reader accepts only its own set, so one kind can never be
presented as another.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from typing import Any

MAX_TOKEN_CHARS = 4096


class BadToken(ValueError):
    """Not a token this app signed, garbled, or of another kind. The message never holds the token."""


def seal(secret: bytes, document: dict[str, Any]) -> str:
    if not secret:
        raise ValueError("a token needs a secret")
    payload = b64(json.dumps(document, separators=(",", ":"), sort_keys=True).encode())
    return f"{payload}.{b64(mac(secret, payload))}"


def unseal(secret: bytes, token: str, what: str) -> dict[str, Any]:
    """The signed JSON object ``token`` carries; BadToken naming ``what`` when it is not one of ours."""
    if not secret:
        raise BadToken(f"{what}s are not configured here")
    token = token.strip()
    payload, dot, signature = token.partition(".")
    if not dot or not payload or not signature or len(token) > MAX_TOKEN_CHARS or not token.isascii():
        raise BadToken(f"{what} is not a token")
    try:
        given = unb64(signature)
    except ValueError:
        raise BadToken(f"{what} is not a token") from None
    if not hmac.compare_digest(given, mac(secret, payload)):
        raise BadToken(f"{what} was not signed by this app (or was changed)")
    try:
        document: Any = json.loads(unb64(payload))
    except (ValueError, UnicodeDecodeError):
        raise BadToken(f"{what}'s payload is not JSON") from None  # signed garbage: only by the key holder
    if not isinstance(document, dict):
        raise BadToken(f"{what}'s payload has the wrong fields")
    return document


def malformed_field(document: dict[str, Any], fields: dict[str, type]) -> str | None:
    """The first of ``fields`` that is missing, of the wrong type, a bool or blank text; None when all fit."""
    for name, kind in fields.items():
        value = document.get(name)
        if not isinstance(value, kind) or isinstance(value, bool) or (isinstance(value, str) and not value.strip()):
            return name
    return None


def mac(secret: bytes, payload: str) -> bytes:
    return hmac.new(secret, payload.encode("ascii"), hashlib.sha256).digest()


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def unb64(text: str) -> bytes:
    if not text.isascii():
        raise ValueError("not base64url")
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    except binascii.Error:
        raise ValueError("not base64url") from None
