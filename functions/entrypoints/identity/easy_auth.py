"""App Service Authentication ("Easy Auth"): the principal the platform proved, from its request headers.

When Authentication is on, App Service validates the caller's token and injects (documented in
"Work with user identities in Azure App Service authentication"):

    X-MS-CLIENT-PRINCIPAL        base64 of {"auth_typ": "aad", "name_typ": "...", "role_typ": "...",
                                            "claims": [{"typ": "...", "val": "..."}, ...]}
    X-MS-CLIENT-PRINCIPAL-NAME   a readable name (UPN or email)
    X-MS-CLIENT-PRINCIPAL-ID     the provider's id of the caller (Entra: the object id)
    X-MS-CLIENT-PRINCIPAL-IDP    the provider ("aad")

External requests cannot set them *when Authentication is on*; otherwise anyone can, so they are read
only when the platform's app setting WEBSITE_AUTH_ENABLED is "True" (Settings.easy_auth_enabled).

The name is ``preferred_username``, else the UPN claim, else the claim ``name_typ`` names, else the
-NAME header; the object id the ``objectidentifier`` (or ``oid``) claim, else the -ID header; the
provider ``auth_typ``, else the -IDP header; groups the ``groups`` claims. A user in more groups
than a token holds gets a groups overage instead (``_claim_names`` naming ``groups``, or
``hasgroups``): groups are then unknown (None), and group approval fails closed.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any

from functions.domain.approval import Principal
from functions.entrypoints.limits import RequestLimits, RequestRejected, parse_json

PRINCIPAL_HEADER = "X-MS-CLIENT-PRINCIPAL"
NAME_HEADER = "X-MS-CLIENT-PRINCIPAL-NAME"
ID_HEADER = "X-MS-CLIENT-PRINCIPAL-ID"
IDP_HEADER = "X-MS-CLIENT-PRINCIPAL-IDP"
HEADERS = (PRINCIPAL_HEADER, NAME_HEADER, ID_HEADER, IDP_HEADER)

NAME_CLAIMS = ("preferred_username", "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn", "upn")
OBJECT_ID_CLAIMS = ("http://schemas.microsoft.com/identity/claims/objectidentifier", "oid")
GROUP_CLAIMS = ("groups", "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups")
# Headers are at most a few KiB (App Service caps the whole request's headers); a bigger one is not its.
MAX_HEADER_CHARS = 64 * 1024
_LIMITS = RequestLimits(max_body_bytes=MAX_HEADER_CHARS, max_json_depth=8, max_string_chars=16 * 1024)


class BadPrincipal(ValueError):
    """The Easy Auth headers are there but malformed or name nobody (HTTP 401); never echoes them."""


def present(headers: Mapping[str, str]) -> bool:
    """Whether the request carries any X-MS-CLIENT-PRINCIPAL* header."""
    lowered = {name.lower() for name in headers}
    return any(header.lower() in lowered for header in HEADERS)


def principal_from_headers(headers: Mapping[str, str]) -> Principal | None:
    """The principal the headers describe; None when there are none; BadPrincipal when they are malformed.

    Call it only when the platform's Authentication is on (see the module docstring)."""
    lowered = {name.lower(): value for name, value in headers.items()}
    encoded = lowered.get(PRINCIPAL_HEADER.lower())
    name_header = (lowered.get(NAME_HEADER.lower()) or "").strip()
    id_header = (lowered.get(ID_HEADER.lower()) or "").strip()
    idp_header = (lowered.get(IDP_HEADER.lower()) or "").strip()
    if encoded is None:
        if not (name_header or id_header):
            return None
        if not name_header:
            raise BadPrincipal(f"{ID_HEADER} without {NAME_HEADER} or {PRINCIPAL_HEADER} names nobody")
        # No claims: the groups are not known, so group rules fail closed.
        return Principal(name_header, id_header, idp_header, "easy_auth", None)
    document = decode(encoded)
    claims = _claims(document)

    def first(types: tuple[str, ...]) -> str:
        for wanted in types:
            for typ, val in claims:
                if typ.lower() == wanted.lower() and val.strip():
                    return val.strip()
        return ""

    if any(typ.lower() == "idtyp" and val.strip().lower() == "app" for typ, val in claims):
        # An application's own token (client credentials, e.g. a CI service connection) is not a person.
        raise BadPrincipal("an application token cannot decide on a release: sign in as a person")
    name_typ = _text(document.get("name_typ"))
    name = first(NAME_CLAIMS) or (first((name_typ,)) if name_typ else "") or name_header
    if not name:
        raise BadPrincipal(f"{PRINCIPAL_HEADER} has no name claim (preferred_username, upn or name_typ's)")
    object_id = first(OBJECT_ID_CLAIMS) or id_header
    provider = _text(document.get("auth_typ")) or idp_header
    return Principal(name, object_id, provider, "easy_auth", _groups(claims))


def decode(encoded: str) -> dict[str, Any]:
    """The decoded X-MS-CLIENT-PRINCIPAL document (a JSON object); BadPrincipal for anything else."""
    value = encoded.strip()
    if not value or len(value) > MAX_HEADER_CHARS:
        raise BadPrincipal(f"{PRINCIPAL_HEADER} is empty or too long")
    padded = value + "=" * (-len(value) % 4)
    try:
        raw = base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError):
        try:
            raw = base64.urlsafe_b64decode(padded)
        except (binascii.Error, ValueError):
            raise BadPrincipal(f"{PRINCIPAL_HEADER} is not base64") from None
    try:
        document = parse_json(raw, _LIMITS, what=PRINCIPAL_HEADER)
    except RequestRejected:
        raise BadPrincipal(f"{PRINCIPAL_HEADER} is not base64 of a JSON object within limits") from None
    if not isinstance(document, dict):
        raise BadPrincipal(f"{PRINCIPAL_HEADER} is not a JSON object")
    return document


def _claims(document: Mapping[str, Any]) -> list[tuple[str, str]]:
    claims = document.get("claims", [])
    if not isinstance(claims, list):
        raise BadPrincipal(f"{PRINCIPAL_HEADER}: claims must be a list of {{typ, val}}")
    found = []
    for claim in claims:
        if not isinstance(claim, Mapping):
            raise BadPrincipal(f"{PRINCIPAL_HEADER}: claims must be a list of {{typ, val}}")
        typ, val = _text(claim.get("typ")), _text(claim.get("val"))
        if typ:
            found.append((typ, val))
    return found


def _groups(claims: list[tuple[str, str]]) -> tuple[str, ...] | None:
    """The group object ids; None for a groups overage (the provider sent a pointer, not the groups)."""
    for typ, val in claims:
        kind = typ.lower()
        if kind == "hasgroups" and val.strip().lower() in ("true", "1"):
            return None
        if kind == "_claim_names" and _names_groups(val):
            return None
    wanted = {g.lower() for g in GROUP_CLAIMS}
    return tuple(dict.fromkeys(val.strip() for typ, val in claims if typ.lower() in wanted and val.strip()))


def _names_groups(value: str) -> bool:
    """``_claim_names`` is JSON ({"groups": "src1"}); should it not parse, any mention of groups counts."""
    try:
        names = json.loads(value)
    except ValueError:
        return "groups" in value.lower()
    if isinstance(names, Mapping):
        return any(str(key).lower() == "groups" for key in names)
    return "groups" in value.lower()


def _text(value: Any) -> str:
    """A claim value as text: strings as they are, numbers and booleans as JSON spells them."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return json.dumps(value)
    return ""
