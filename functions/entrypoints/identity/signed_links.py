"""Signed action links: a single-use token that lets one named person approve or decline one release.

    payload = base64url(JSON {"release": ID, "action": "approve" | "decline", "identity": UPN/email,
                              "expires": Unix seconds, "nonce": random})
    token   = payload + "." + base64url(HMAC-SHA256(secret, payload))        (base64url without padding)

It is presented on the state-changing POST (never in a URL a proxy logs) in the header

    X-MLOps-Link: <token>

and answers: forged or garbled 401; expired 410; minted for another release or action than the
route 403; used already 409 (the nonce is spent in the release store, ReleaseStore.spend_nonce).
A token expiring more than functions.ports.MAX_TOKEN_LIFETIME after it is presented is refused (401),
which lets the stores forget old nonces without a clock. The secret is MLOPS_LINK_SECRET on Azure
(a Key Vault reference; unresolved counts as unset) and the local key in $MLOPS_HOME locally.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from functions.entrypoints.identity import tokens
from functions.ports import MAX_TOKEN_LIFETIME, ReleaseStore

LINK_HEADER = "X-MLOps-Link"
ACTIONS = ("approve", "decline")
_FIELDS = {"release": str, "action": str, "identity": str, "expires": int, "nonce": str}


class LinkRefused(Exception):
    """A link that cannot be used; ``status`` is the answer. The message never holds the token."""

    status = 401


class ForgedLink(LinkRefused):
    """Not a token this app signed (or garbled on the way)."""


class ExpiredLink(LinkRefused):
    status = 410


class WrongLink(LinkRefused):
    """Signed, but for another release, another action or another person."""

    status = 403


class SpentLink(LinkRefused):
    status = 409


@dataclass(frozen=True)
class Link:
    release: str
    action: str
    identity: str
    expires: int  # Unix seconds
    nonce: str

    @property
    def expires_at(self) -> str:
        return datetime.fromtimestamp(self.expires, UTC).isoformat()


def mint(secret: bytes, release_id: str, action: str, identity: str, expires_s: int, nonce: str | None = None) -> str:
    """A token for ``identity`` to ``action`` ("approve" or "decline") release ``release_id`` until ``expires_s``."""
    if action not in ACTIONS:
        raise ValueError(f"action must be one of {', '.join(ACTIONS)}, got {action!r}")
    if not secret:
        raise ValueError("a link needs a secret")
    if not release_id or not identity.strip():
        raise ValueError("a link names a release and a person")
    document = {
        "release": release_id,
        "action": action,
        "identity": identity.strip(),
        "expires": int(expires_s),
        "nonce": nonce or secrets.token_urlsafe(18),
    }
    return tokens.seal(secret, document)


def verify(secret: bytes, token: str, now_s: int, release_id: str | None = None, action: str | None = None) -> Link:
    """The link ``token`` carries if this app signed it and it has not expired (and, when given, it is for
    ``release_id`` and ``action``). ForgedLink (401), ExpiredLink (410), WrongLink (403); spending it is
    ``spend``'s job, so a link refused for another reason stays usable."""
    if not secret:
        raise ForgedLink("signed links are not configured here")
    try:
        document = tokens.unseal(secret, token, LINK_HEADER)
    except tokens.BadToken as exc:
        raise ForgedLink(str(exc)) from None
    link = _parse(document)
    if now_s >= link.expires:
        raise ExpiredLink("the link has expired")
    if link.expires - now_s > MAX_TOKEN_LIFETIME.total_seconds():
        raise ForgedLink(f"the link is valid for longer than {MAX_TOKEN_LIFETIME.days} days; links are not")
    if release_id is not None and link.release != release_id:
        raise WrongLink("the link is for another release")
    if action is not None and link.action != action:
        raise WrongLink(f"the link is to {link.action}, not to {action}")
    return link


def spend(store: ReleaseStore, link: Link) -> None:
    """Use the link up; SpentLink (409) when it was used already."""
    if not store.spend_nonce(link.nonce, link.expires_at):
        raise SpentLink("the link has been used already")


def _parse(document: dict[str, Any]) -> Link:
    if set(document) != set(_FIELDS):
        raise ForgedLink("the link's payload has the wrong fields")
    if (name := tokens.malformed_field(document, _FIELDS)) is not None:
        raise ForgedLink(f"the link's {name} is malformed")
    if document["action"] not in ACTIONS:
        raise ForgedLink("the link's action is unknown")
    return Link(**document)
