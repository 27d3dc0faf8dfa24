"""Who is deciding, proven: the one place a decision route turns a request into a Principal.

Tried in order:

1. App Service Authentication (Easy Auth) headers, only when the platform says it is on
   (WEBSITE_AUTH_ENABLED "True"); otherwise the headers are the caller's own words and are ignored;
2. the local CLI's signature (X-MLOps-Identity / -Timestamp / -Signature), only on the local platform,
   with the key in $MLOPS_HOME: method "cli", provider "local";
3. a signed link (X-MLOps-Link): method "link", provider "mlops". With another credential on the same
   request the link must name that person (else 403, "minted for someone else").

The body's ``by`` (or anything else in it) is never an identity. No credential, a malformed one, a
bad signature or a forged link is 401; a link that expired 410, one for another release or action
403, one used already 409. Refusals go to the log (never the release's timeline: nobody proven did
anything), without a signature, token or secret.

``identify`` checks without side effects; ``Proof.spend`` then uses a link up (so a route can refuse
a malformed request first without burning the link); ``authenticate`` does both.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit

import azure.functions as func

from functions.domain.approval import Principal
from functions.entrypoints.identity import easy_auth, local_signature, signed_links
from functions.ports import ReleaseStore
from functions.settings import Settings

log = logging.getLogger("mlops.identity")

CREDENTIALS = (
    f"App Service Authentication, a signed link ({signed_links.LINK_HEADER}) or, locally, the mlops CLI's signature"
)


class AuthenticationFailed(Exception):
    """The request does not prove who decides (``status`` 401), or its link cannot be used (403, 409, 410)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Proof:
    principal: Principal
    link: signed_links.Link | None = None

    def spend(self, store: ReleaseStore, release_id: str = "") -> None:
        """Use the link up, if the proof has one: AuthenticationFailed(409) when it was used already."""
        if self.link is None:
            return
        try:
            signed_links.spend(store, self.link)
        except signed_links.LinkRefused as exc:
            raise _refused(exc.status, str(exc), release_id, "link") from None


def authenticate(
    req: func.HttpRequest, settings: Settings, store: ReleaseStore, now_s: int, *, release_id: str, action: str
) -> Principal:
    """The proven principal deciding ``action`` ("approve" / "decline") on ``release_id``; a link is spent."""
    proof = identify(req, settings, now_s, release_id=release_id, action=action)
    proof.spend(store, release_id)
    return proof.principal


def identify(req: func.HttpRequest, settings: Settings, now_s: int, *, release_id: str, action: str) -> Proof:
    """Check the request's credentials (see the module docstring); nothing is spent or written."""
    headers = {name.lower(): value for name, value in req.headers.items()}
    principal = _easy_auth(headers, settings, release_id) or _cli(req, headers, settings, now_s, release_id)
    token = headers.get(signed_links.LINK_HEADER.lower())
    if token is None:
        if principal is None:
            raise _refused(401, f"authentication required: {CREDENTIALS}", release_id, "none")
        return Proof(principal)
    try:
        secret = link_secret(settings)
    except local_signature.BadSignature as exc:
        raise _refused(503, str(exc), release_id, "link") from None
    try:
        link = signed_links.verify(secret, token, now_s, release_id, action)
    except signed_links.LinkRefused as exc:
        raise _refused(exc.status, str(exc), release_id, "link") from None
    if principal is None:
        return Proof(Principal(link.identity, provider="mlops", method="link"), link)
    if not principal.is_identity(link.identity):
        raise _refused(403, f"the link was minted for someone else, not {principal.name}", release_id, "link")
    return Proof(principal, link)


def _easy_auth(headers: Mapping[str, str], settings: Settings, release_id: str) -> Principal | None:
    if not easy_auth.present(headers):
        return None
    if settings.platform != "azure" or not settings.easy_auth_enabled():
        # Anyone can send these headers to an app whose platform authentication is off.
        log.warning("release %r: ignored %s* headers: App Service Authentication is not on (WEBSITE_AUTH_ENABLED)",
                    release_id, easy_auth.PRINCIPAL_HEADER)  # fmt: skip
        return None
    try:
        return easy_auth.principal_from_headers(headers)
    except easy_auth.BadPrincipal as exc:
        raise _refused(401, str(exc), release_id, "easy_auth") from None


def _cli(
    req: func.HttpRequest, headers: Mapping[str, str], settings: Settings, now_s: int, release_id: str
) -> Principal | None:
    if local_signature.SIGNATURE_HEADER.lower() not in headers:
        return None
    if settings.platform != "local":
        log.warning("release %r: ignored a CLI signature: it is accepted on the local platform only", release_id)
        return None
    try:
        key = local_signature.load_or_create_key(settings.home)
    except local_signature.BadSignature as exc:  # the host's own key file is damaged: not the caller's fault
        raise _refused(503, str(exc), release_id, "cli") from None
    # The CLI signs the path as it sends it (percent-encoded, no query); a host may hand the URL over
    # decoded (Starlette does), so the path re-encoded is tried too: the same resource either way.
    path = urlsplit(req.url).path
    problem: local_signature.BadSignature | None = None
    for candidate in dict.fromkeys((path, quote(unquote(path), safe="/"))):
        try:
            signed = local_signature.verify(key, req.method, candidate, headers, req.get_body(), now_s)
        except local_signature.BadSignature as exc:
            problem = problem or exc
            continue
        return None if signed is None else Principal(signed.identity, provider="local", method="cli")
    raise _refused(401, str(problem), release_id, "cli")


def link_secret(settings: Settings) -> bytes:
    """The key links are signed with (signed_links.mint / verify): locally the CLI's key in $MLOPS_HOME, on
    Azure MLOPS_LINK_SECRET (b"" when unset or an unresolved Key Vault reference: every link is refused)."""
    if settings.platform == "local":
        return local_signature.load_or_create_key(settings.home)
    return settings.link_secret().encode()


def _refused(status: int, reason: str, release_id: str, method: str) -> AuthenticationFailed:
    log.warning("release %r: decision refused (%d, credential %s): %s", release_id, status, method, reason)
    return AuthenticationFailed(status, reason)
