"""functions.entrypoints.identity.easy_auth: App Service Authentication's principal headers, as documented
("Work with user identities in Azure App Service authentication": X-MS-CLIENT-PRINCIPAL is base64 of
{auth_typ, claims: [{typ, val}], name_typ, role_typ}, beside -NAME, -ID and -IDP)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from functions.domain.approval import ApprovalPolicy, Principal
from functions.entrypoints.identity.easy_auth import BadPrincipal, present, principal_from_headers
from functions.settings import Settings

OID = "00000000-0000-0000-0000-000000000abc"
UPN_CLAIM = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn"
OID_CLAIM = "http://schemas.microsoft.com/identity/claims/objectidentifier"
EMAIL_CLAIM = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress"


def encoded(document: Any) -> str:
    return base64.b64encode(json.dumps(document).encode()).decode()


def entra(*claims: tuple[str, Any], name_typ: str = EMAIL_CLAIM) -> dict[str, Any]:
    """A decoded X-MS-CLIENT-PRINCIPAL for a Microsoft Entra sign-in (claims after App Service's mapping)."""
    return {
        "auth_typ": "aad",
        "claims": [{"typ": typ, "val": val} for typ, val in claims],
        "name_typ": name_typ,
        "role_typ": "http://schemas.microsoft.com/ws/2008/06/identity/claims/role",
    }


DOCUMENTED = entra(
    ("aud", "5d5c6b1e-0000-4000-8000-000000000001"),
    ("iss", "https://login.microsoftonline.com/72f988bf-0000-4000-8000-000000000002/v2.0"),
    ("name", "Bob Example"),
    (OID_CLAIM, OID),
    ("preferred_username", "bob@contoso.com"),
    (EMAIL_CLAIM, "bob.example@contoso.com"),
    ("groups", "g-1"),
    ("groups", "g-2"),
    ("ver", "2.0"),
)


def headers(document: Any, **extra: str) -> dict[str, str]:
    return {"X-MS-CLIENT-PRINCIPAL": encoded(document), **extra}


def test_the_documented_shape_gives_name_object_id_provider_and_groups():
    principal = principal_from_headers(
        headers(DOCUMENTED, **{"X-MS-CLIENT-PRINCIPAL-NAME": "bob@contoso.com", "X-MS-CLIENT-PRINCIPAL-IDP": "aad"})
    )
    assert principal == Principal("bob@contoso.com", OID, "aad", "easy_auth", ("g-1", "g-2"))


def test_header_names_are_matched_in_any_case():
    lowered = {"x-ms-client-principal": encoded(DOCUMENTED)}
    assert principal_from_headers(lowered) == principal_from_headers(headers(DOCUMENTED))
    assert present(lowered) and present({"X-Ms-Client-Principal-Name": "x"}) and not present({"Authorization": "x"})


def test_the_name_falls_back_to_the_upn_claim_then_name_typ_s_claim_then_the_name_header():
    by_upn = principal_from_headers(headers(entra((UPN_CLAIM, "upn@contoso.com"), (EMAIL_CLAIM, "e@contoso.com"))))
    assert by_upn is not None and by_upn.name == "upn@contoso.com"
    by_name_typ = principal_from_headers(headers(entra((EMAIL_CLAIM, "e@contoso.com"))))
    assert by_name_typ is not None and by_name_typ.name == "e@contoso.com"
    by_header = principal_from_headers(headers(entra(("name", "Bob")), **{"X-MS-CLIENT-PRINCIPAL-NAME": "h@x.com"}))
    assert by_header is not None and by_header.name == "h@x.com"


def test_object_id_from_the_short_oid_claim_or_the_id_header_and_provider_from_the_idp_header():
    short = principal_from_headers(headers(entra(("preferred_username", "a@x.com"), ("oid", "oid-1"))))
    assert short is not None and short.object_id == "oid-1"
    document = {"claims": [{"typ": "preferred_username", "val": "a@x.com"}]}
    fallback = principal_from_headers(
        headers(document, **{"X-MS-CLIENT-PRINCIPAL-ID": "id-2", "X-MS-CLIENT-PRINCIPAL-IDP": "github"})
    )
    assert fallback is not None and (fallback.object_id, fallback.provider) == ("id-2", "github")


@pytest.mark.parametrize(
    "overage",
    [("_claim_names", json.dumps({"groups": "src1"})), ("hasgroups", "true")],
    ids=["_claim_names", "hasgroups"],
)
def test_a_groups_overage_gives_unknown_groups(overage):
    document = entra(
        ("preferred_username", "bob@contoso.com"),
        (OID_CLAIM, OID),
        overage,
        (
            "_claim_sources",
            json.dumps({"src1": {"endpoint": "https://graph.microsoft.com/v1.0/users/x/getMemberObjects"}}),
        ),
    )
    principal = principal_from_headers(headers(document))
    assert principal is not None and principal.groups is None
    policy = ApprovalPolicy(approvers=("group:g-1",), unknown_requester="allow")
    assert "did not list their groups" in (policy.refusal(principal, None) or "")


def test_claim_names_for_something_else_is_not_a_groups_overage():
    document = entra(("preferred_username", "a@x.com"), ("_claim_names", json.dumps({"wids": "src2"})), ("groups", "g"))
    principal = principal_from_headers(headers(document))
    assert principal is not None and principal.groups == ("g",)


def test_no_groups_claim_is_no_groups_and_name_headers_alone_are_unknown_groups():
    principal = principal_from_headers(headers(entra(("preferred_username", "a@x.com"))))
    assert principal is not None and principal.groups == ()
    only_headers = principal_from_headers({"X-MS-CLIENT-PRINCIPAL-NAME": "a@x.com", "X-MS-CLIENT-PRINCIPAL-ID": "i"})
    assert only_headers == Principal("a@x.com", "i", "", "easy_auth", None)


def test_no_headers_is_no_principal():
    assert principal_from_headers({"Content-Type": "application/json"}) is None


def test_unpadded_base64_and_numeric_claim_values_are_read():
    document = {"auth_typ": "aad", "claims": [{"typ": "preferred_username", "val": "a@x.com"}, {"typ": "n", "val": 5}]}
    unpadded = encoded(document).rstrip("=")
    principal = principal_from_headers({"X-MS-CLIENT-PRINCIPAL": unpadded})
    assert principal is not None and principal.name == "a@x.com"


@pytest.mark.parametrize(
    "value",
    [
        "",
        "%%%",
        base64.b64encode(b"\xff\xfe").decode(),
        encoded([1]),
        encoded({"claims": {"typ": "x"}}),
        encoded({"claims": ["x"]}),
        encoded({"claims": [{"typ": "name", "val": "Bob"}]}),  # no name claim, no name header
        encoded({"claims": [[[[[[[[[[[[]]]]]]]]]]]]}),
        "A" * 70_000,
    ],
)
def test_malformed_headers_are_bad_principals(value):
    with pytest.raises(BadPrincipal) as caught:
        principal_from_headers({"X-MS-CLIENT-PRINCIPAL": value})
    assert "X-MS-CLIENT-PRINCIPAL" in str(caught.value) and (not value or value[:8] not in str(caught.value))


def test_an_id_header_alone_names_nobody():
    with pytest.raises(BadPrincipal):
        principal_from_headers({"X-MS-CLIENT-PRINCIPAL-ID": "i"})


@pytest.mark.parametrize(("value", "on"), [("True", True), ("true", True), (" TRUE ", True), ("False", False),
                                           ("1", False), ("", False), (None, False)])  # fmt: skip
def test_the_headers_are_trusted_only_when_website_auth_enabled_is_true(value, on):
    env = {} if value is None else {"WEBSITE_AUTH_ENABLED": value}
    assert Settings.from_env(env).easy_auth_enabled() is on


def test_an_application_token_is_not_a_person():
    """A CI service connection can get an app-only token for the app's audience: it may not decide."""
    document = {"auth_typ": "aad", "claims": [{"typ": "idtyp", "val": "app"}, {"typ": "name", "val": "ci-bot"},
                                              {"typ": "oid", "val": "oid-ci"}]}  # fmt: skip
    encoded = base64.b64encode(json.dumps(document).encode()).decode()
    with pytest.raises(BadPrincipal, match="application token"):
        principal_from_headers({"X-MS-CLIENT-PRINCIPAL": encoded})
