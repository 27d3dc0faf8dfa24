"""POST /releases/{id}/approve and /reject: who decides is proven (Easy Auth, a signed link, the local CLI's
signature), never read from the body; every answer the issue "Approval as a real control" lists."""

from __future__ import annotations

import base64
import json
import logging
from datetime import timedelta
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest

from functions import bootstrap
from functions.domain.approval import ApprovalPolicy
from functions.domain.ids import image_tag, release_id_for_build
from functions.domain.release import State
from functions.entrypoints import http_api
from functions.entrypoints.identity import local_signature, signed_links
from functions.links import Links
from functions.settings import Settings
from tests import payloads as p
from tests.doubles.clock import Clock
from tests.doubles.followed import Followed
from tests.doubles.ports import Calls, InMemoryReleaseStore, fake_ports

RELEASE = release_id_for_build("1234")
OTHER = release_id_for_build("5678")
LINK_SECRET = "link-secret-0123456789abcdef"
BOB_OID = "7f3c2a10-1b2c-4d5e-8f90-0a1b2c3d4e5f"
GROUP = "0e2d9d4c-6b1a-4f3e-9a8b-7c6d5e4f3a2b"


class World:
    def __init__(self, monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
        self.monkeypatch = monkeypatch
        self.home = home
        self.clock = Clock()
        self.use(ApprovalPolicy(), promote_inline=True)
        self.settings(platform="local")

    def use(self, policy: ApprovalPolicy, promote_inline: bool = True) -> None:
        """A fresh orchestrator with ``policy``, its release awaiting approval (requested by alice@example.com)."""
        self.orchestrator = Followed(
            fake_ports(Calls()), links=Links(), approval_policy=policy, promote_inline=promote_inline, clock=self.clock
        )
        self.monkeypatch.setattr(bootstrap, "context", lambda: self.orchestrator.ctx)
        tag = image_tag("1", RELEASE)
        self.orchestrator.receive("on_build_event", p.build_completed("1234"))
        self.orchestrator.receive("on_ml_event", p.run_completed(f"job-{RELEASE}", RELEASE))
        self.orchestrator.receive("on_ml_event", p.model_registered(1, RELEASE))
        self.orchestrator.receive("on_registry_event", p.image_pushed(tag))
        assert self.release().state == State.AWAITING_APPROVAL

    def settings(self, platform: str, **env: str) -> Settings:
        values = {"MLOPS_PLATFORM": platform, "MLOPS_HOME": str(self.home), **env}
        settings = Settings.from_env(values)
        self.monkeypatch.setattr(bootstrap, "settings", lambda: settings)
        return settings

    def azure(self, **env: str) -> Settings:
        return self.settings("azure", **{"WEBSITE_AUTH_ENABLED": "True", "MLOPS_LINK_SECRET": LINK_SECRET, **env})

    @property
    def store(self) -> InMemoryReleaseStore:
        store = self.orchestrator.ports.store
        assert isinstance(store, InMemoryReleaseStore)
        return store

    def release(self, release_id: str = RELEASE) -> Any:
        release = self.orchestrator.ports.store.get(release_id)
        assert release is not None
        return release

    def now_s(self) -> int:
        return int(self.clock().timestamp())

    def link(self, identity: str, action: str = "approve", release_id: str = RELEASE, hours: float = 1) -> str:
        secret = local_signature.load_or_create_key(self.home) if self.local else LINK_SECRET.encode()
        return signed_links.mint(secret, release_id, action, identity, self.now_s() + int(hours * 3600))

    @property
    def local(self) -> bool:
        return bootstrap.settings().platform == "local"


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> World:
    return World(monkeypatch, tmp_path / "mlops-home")


def route(action: str) -> str:
    return "approve" if action == "approve" else "reject"


def post(
    action: str,
    body: dict[str, Any] | bytes | None = None,
    headers: dict[str, str] | None = None,
    release_id: str = RELEASE,
    content_type: str | None = "application/json",
) -> func.HttpRequest:
    raw = body if isinstance(body, bytes) else json.dumps(body if body is not None else {}).encode()
    sent = {"Content-Type": content_type} if content_type else {}
    return func.HttpRequest(
        "POST",
        f"http://127.0.0.1:7071/api/releases/{release_id}/{route(action)}",
        headers={**sent, **(headers or {})},
        body=raw,
        route_params={"id": release_id},
    )


def call(request: func.HttpRequest) -> tuple[int, dict[str, Any]]:
    handler = http_api.approve_release if request.url.endswith("/approve") else http_api.decline_release
    response = handler(request)
    assert response.mimetype == "application/json"
    return response.status_code, json.loads(response.get_body())


def signed(world: World, action: str, identity: str, body: dict[str, Any], key: bytes | None = None, skew: int = 0):
    raw = json.dumps(body).encode()
    key = key if key is not None else local_signature.load_or_create_key(world.home)
    path = f"/api/releases/{RELEASE}/{route(action)}"
    headers = local_signature.sign(key, "POST", path, identity, raw, world.now_s() + skew)
    return post(action, raw, headers)


def client_principal(name: str, oid: str = BOB_OID, groups: tuple[str, ...] = (), overage: bool = False) -> str:
    """X-MS-CLIENT-PRINCIPAL as App Service Authentication sends it (Microsoft Entra, claims mapped)."""
    claims = [
        {"typ": "http://schemas.microsoft.com/identity/claims/objectidentifier", "val": oid},
        {"typ": "preferred_username", "val": name},
        {"typ": "name", "val": name.split("@")[0].title()},
        *({"typ": "groups", "val": group} for group in groups),
    ]
    if overage:
        claims.append({"typ": "_claim_names", "val": json.dumps({"groups": "src1"})})
    document = {
        "auth_typ": "aad",
        "claims": claims,
        "name_typ": "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
        "role_typ": "http://schemas.microsoft.com/ws/2008/06/identity/claims/role",
    }
    return base64.b64encode(json.dumps(document).encode()).decode()


def easy_auth_headers(name: str, **kw: Any) -> dict[str, str]:
    return {
        "X-MS-CLIENT-PRINCIPAL": client_principal(name, **kw),
        "X-MS-CLIENT-PRINCIPAL-NAME": name,
        "X-MS-CLIENT-PRINCIPAL-ID": kw.get("oid", BOB_OID),
        "X-MS-CLIENT-PRINCIPAL-IDP": "aad",
    }


def untouched(world: World, before: Any) -> bool:
    """Nothing about the release changed: no decision, no refusal in the timeline."""
    return world.release().to_json() == before.to_json()


# ---- no credential ------------------------------------------------------------------------------
@pytest.mark.parametrize("action", ["approve", "decline"])
def test_no_credential_is_a_401_and_nothing_is_recorded(world, action):
    before = world.release()
    status, answer = call(post(action, {"comment": "ship it"}))
    assert status == 401 and "authentication required" in answer["error"]
    assert untouched(world, before)


@pytest.mark.parametrize("action", ["approve", "decline"])
def test_a_bare_by_in_the_body_is_a_401(world, action):
    before = world.release()
    status, _ = call(post(action, {"by": "bob@example.com", "comment": "trust me"}))
    assert status == 401
    assert untouched(world, before)


def test_by_is_ignored_even_beside_a_real_credential(world):
    status, answer = call(signed(world, "approve", "bob@example.com", {"by": "mallory@example.com"}))
    assert status == 202 and answer["state"] == "promoting"  # the follow timer carries it on
    (approval,) = world.release().approvals()
    assert approval["name"] == "bob@example.com" and approval["method"] == "cli"


# ---- content type -------------------------------------------------------------------------------
@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None, "application/jsonx"])
def test_anything_but_json_is_a_415(world, content_type):
    status, answer = call(post("approve", {"comment": ""}, content_type=content_type))
    assert status == 415 and "application/json" in answer["error"]


def test_json_with_a_charset_is_json(world):
    raw = b"{}"
    path = f"/api/releases/{RELEASE}/approve"
    headers = local_signature.sign(
        local_signature.load_or_create_key(world.home), "POST", path, "bob@example.com", raw, world.now_s()
    )
    request = post("approve", raw, headers, content_type="Application/JSON; charset=utf-8")
    assert call(request)[0] == 202


def test_the_content_type_is_checked_before_the_limits_and_the_limits_before_authentication(world):
    assert call(post("approve", b"{not json", content_type="text/plain"))[0] == 415
    status, answer = call(post("approve", b"{not json"))
    assert status == 400 and "must be JSON" in answer["error"]
    assert call(post("approve", b"[]"))[0] == 400
    assert call(post("approve", {"comment": 3}))[0] == 400


# ---- Easy Auth --------------------------------------------------------------------------------
def test_a_forged_client_principal_without_website_auth_enabled_is_a_401(world, caplog):
    world.settings("azure", MLOPS_LINK_SECRET=LINK_SECRET)  # App Service Authentication is off
    before = world.release()
    with caplog.at_level(logging.WARNING, "mlops.identity"):
        status, _ = call(post("approve", {}, easy_auth_headers("bob@example.com")))
    assert status == 401 and untouched(world, before)
    assert "App Service Authentication is not on" in caplog.text


def test_locally_client_principal_headers_are_never_trusted(world):
    world.settings("local", WEBSITE_AUTH_ENABLED="False")
    assert call(post("approve", {}, easy_auth_headers("bob@example.com")))[0] == 401


def test_an_easy_auth_principal_approves_with_its_name_object_id_and_provider(world):
    world.azure()
    status, answer = call(post("approve", {"comment": "looks good"}, easy_auth_headers("bob@example.com")))
    assert status == 202 and answer["state"] == "promoting"  # the follow timer carries it on
    (approval,) = world.release().approvals()
    assert approval["name"] == "bob@example.com" and approval["object_id"] == BOB_OID
    assert (approval["provider"], approval["method"], approval["comment"]) == ("aad", "easy_auth", "looks good")


def test_website_auth_enabled_is_read_in_any_case(world):
    world.settings("azure", WEBSITE_AUTH_ENABLED="true")
    assert call(post("approve", {}, easy_auth_headers("bob@example.com")))[0] == 202


@pytest.mark.parametrize(
    "header",
    ["%%%not base64%%%", base64.b64encode(b"not json").decode(), base64.b64encode(b"[1, 2]").decode(),
     base64.b64encode(b'{"claims": "nope"}').decode(), base64.b64encode(b'{"auth_typ": "aad", "claims": []}').decode()],
    ids=["not-base64", "not-json", "not-an-object", "claims-not-a-list", "names-nobody"],
)  # fmt: skip
def test_a_malformed_client_principal_is_a_401_not_a_500(world, header):
    world.azure()
    before = world.release()
    status, answer = call(post("approve", {}, {"X-MS-CLIENT-PRINCIPAL": header}))
    assert status == 401 and "X-MS-CLIENT-PRINCIPAL" in answer["error"]
    assert untouched(world, before)


def test_a_groups_overage_fails_group_approval_closed(world):
    world.use(ApprovalPolicy(approvers=(f"group:{GROUP}",)))
    world.azure()
    status, answer = call(post("approve", {}, easy_auth_headers("bob@example.com", groups=(GROUP,), overage=True)))
    assert status == 403 and "did not list their groups" in answer["error"]
    assert world.release().state == State.AWAITING_APPROVAL
    assert world.release().timeline[-1]["step"] == "approve_refused"  # an authenticated refusal is recorded


def test_a_listed_group_approves(world):
    world.use(ApprovalPolicy(approvers=(f"group:{GROUP}",)))
    world.azure()
    assert call(post("approve", {}, easy_auth_headers("bob@example.com", groups=(GROUP,))))[0] == 202


# ---- the local CLI's signature ------------------------------------------------------------------
def test_a_cli_signed_decision_is_the_signed_identity(world):
    status, answer = call(signed(world, "decline", "bob@example.com", {"comment": "metrics regressed"}))
    assert status == 200 and answer["state"] == "declined"
    assert world.release().approval["declined_by"]["method"] == "cli"
    assert world.release().approval["declined_by"]["provider"] == "local"


def test_a_cli_signature_with_a_wrong_key_is_a_401(world):
    before = world.release()
    status, answer = call(signed(world, "approve", "bob@example.com", {}, key=b"another home's key"))
    assert status == 401 and "does not match" in answer["error"]
    assert untouched(world, before)


@pytest.mark.parametrize("skew", [-local_signature.WINDOW_S - 1, local_signature.WINDOW_S + 1])
def test_a_cli_signature_with_a_stale_timestamp_is_a_401(world, skew):
    status, answer = call(signed(world, "approve", "bob@example.com", {}, skew=skew))
    assert status == 401 and "timestamp" in answer["error"]


def test_a_cli_signature_over_another_body_is_a_401(world):
    request = signed(world, "approve", "bob@example.com", {"comment": "a"})
    tampered = func.HttpRequest(
        "POST", request.url, headers=dict(request.headers), body=b'{"comment": "b"}', route_params=request.route_params
    )
    assert call(tampered)[0] == 401


def test_a_cli_signature_over_the_percent_encoded_path_matches_a_host_that_decodes_it(world):
    raw = b"{}"
    key = local_signature.load_or_create_key(world.home)
    headers = local_signature.sign(key, "POST", "/api/releases/rel%20x/approve", "bob@example.com", raw, world.now_s())
    request = func.HttpRequest(
        "POST",
        "http://127.0.0.1:7071/api/releases/rel x/approve",  # as devhost (Starlette) hands the URL over
        headers={"Content-Type": "application/json", **headers},
        body=raw,
        route_params={"id": "rel x"},
    )
    assert call(request)[0] == 404  # authenticated; there is no such release


def test_a_cli_signature_is_not_a_credential_on_azure(world):
    world.azure()
    assert call(signed(world, "approve", "bob@example.com", {}))[0] == 401


# ---- signed links ---------------------------------------------------------------------------------
def test_a_link_approves_as_the_person_it_was_minted_for_once(world):
    token = world.link("bob@example.com")
    status, answer = call(post("approve", {}, {"X-MLOps-Link": token}))
    assert status == 202 and answer["state"] == "promoting"  # the follow timer carries it on
    (approval,) = world.release().approvals()
    assert (approval["name"], approval["method"]) == ("bob@example.com", "link")
    status, answer = call(post("approve", {}, {"X-MLOps-Link": token}))
    assert status == 409 and "not awaiting_approval" in answer["error"]  # judged first: the release moved on


def test_a_replayed_link_is_a_409_even_before_the_release_moved_on(world):
    world.use(ApprovalPolicy(required_approvals=2))
    token = world.link("bob@example.com")
    assert call(post("approve", {}, {"X-MLOps-Link": token}))[0] == 200
    assert world.release().state == State.AWAITING_APPROVAL  # one of two
    status, answer = call(post("approve", {}, {"X-MLOps-Link": token}))
    assert status == 409 and "has approved it already" in answer["error"]
    assert len(world.release().approvals()) == 1


def test_a_link_is_spent_only_by_a_decision_that_counts(world):
    """A decision the policy refuses keeps the link unspent (its nonce is still free in the store)."""
    world.use(ApprovalPolicy(approvers=("carol@example.com",)))
    token = world.link("bob@example.com")
    assert call(post("approve", {}, {"X-MLOps-Link": token}))[0] == 403  # bob is no approver
    nonce = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "==="))["nonce"]
    assert world.orchestrator.ctx.ports.store.spend_nonce(nonce, "2099-01-01T00:00:00+00:00") is True


@pytest.mark.parametrize(
    "garble",
    [
        lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),  # another signature
        lambda t: "e30" + t[t.index(".") :],  # another payload ({}) under the same signature
        lambda t: t.replace(".", ""),
        lambda t: "not a token",
        lambda t: t + "é",
        lambda t: "",
    ],
    ids=["signature", "payload", "no-dot", "garbage", "non-ascii", "empty"],
)
def test_a_forged_or_garbled_link_is_a_401(world, garble):
    before = world.release()
    status, _ = call(post("approve", {}, {"X-MLOps-Link": garble(world.link("bob@example.com"))}))
    assert status == 401 and untouched(world, before)


def test_a_link_minted_with_another_key_is_a_401(world):
    token = signed_links.mint(b"someone else's key", RELEASE, "approve", "bob@example.com", world.now_s() + 60)
    assert call(post("approve", {}, {"X-MLOps-Link": token}))[0] == 401


def test_an_expired_link_is_a_410(world):
    token = world.link("bob@example.com", hours=1)
    world.clock.advance(hours=1)
    before = world.release()
    status, answer = call(post("approve", {}, {"X-MLOps-Link": token}))
    assert status == 410 and "expired" in answer["error"]
    assert untouched(world, before)


def test_a_link_for_another_release_or_action_is_a_403(world):
    assert call(post("approve", {}, {"X-MLOps-Link": world.link("bob@example.com", release_id=OTHER)}))[0] == 403
    status, answer = call(post("approve", {}, {"X-MLOps-Link": world.link("bob@example.com", action="decline")}))
    assert status == 403 and "to decline, not to approve" in answer["error"]
    status, _ = call(post("decline", {"comment": "no"}, {"X-MLOps-Link": world.link("bob@example.com")}))
    assert status == 403
    assert world.release().state == State.AWAITING_APPROVAL


def test_a_link_refused_for_its_route_stays_usable_on_its_own(world):
    token = world.link("bob@example.com", action="decline")
    assert call(post("approve", {}, {"X-MLOps-Link": token}))[0] == 403
    assert call(post("decline", {"comment": "not this one"}, {"X-MLOps-Link": token}))[0] == 200


def test_a_link_minted_for_someone_else_than_the_signed_in_person_is_a_403(world):
    world.azure()
    headers = {**easy_auth_headers("carol@example.com", oid="c0c0c0c0-0000-4000-8000-000000000000")}
    headers["X-MLOps-Link"] = world.link("bob@example.com")
    status, answer = call(post("approve", {}, headers))
    assert status == 403 and "minted for someone else" in answer["error"]
    assert world.release().state == State.AWAITING_APPROVAL


def test_a_link_beside_the_same_person_s_credential_counts_as_theirs_and_is_spent(world):
    world.azure()
    token = world.link(BOB_OID)  # a link may name the object id
    status, _ = call(post("approve", {}, {**easy_auth_headers("bob@example.com"), "X-MLOps-Link": token}))
    assert status == 202
    assert world.release().approvals()[0]["method"] == "easy_auth"
    assert len(world.store.nonces) == 1  # the link was spent too
    assert call(post("approve", {}, {**easy_auth_headers("bob@example.com"), "X-MLOps-Link": token}))[0] == 409


def test_on_azure_links_need_the_link_secret(world):
    world.settings("azure", MLOPS_LINK_SECRET="@Microsoft.KeyVault(SecretUri=https://v.vault.azure.net/secrets/x)")
    token = signed_links.mint(b"@Microsoft.KeyVault(", RELEASE, "approve", "bob@example.com", world.now_s() + 60)
    assert call(post("approve", {}, {"X-MLOps-Link": token}))[0] == 401
    world.settings("azure")
    assert call(post("approve", {}, {"X-MLOps-Link": token}))[0] == 401


def test_on_azure_a_link_signed_with_the_link_secret_decides(world):
    world.azure(WEBSITE_AUTH_ENABLED="False")
    assert call(post("approve", {}, {"X-MLOps-Link": world.link("bob@example.com")}))[0] == 202


# ---- decline's comment ----------------------------------------------------------------------------
def test_declining_without_a_comment_is_a_400_and_does_not_spend_the_link(world):
    token = world.link("bob@example.com", action="decline")
    status, answer = call(post("decline", {}, {"X-MLOps-Link": token}))
    assert status == 400 and "comment" in answer["error"]
    assert call(post("decline", {"comment": "   "}, {"X-MLOps-Link": token}))[0] == 400
    assert call(post("decline", {"comment": "drift"}, {"X-MLOps-Link": token}))[0] == 200


def test_the_policy_may_let_a_decline_go_without_a_comment(world):
    world.use(ApprovalPolicy(comment_required_to_decline=False))
    assert call(signed(world, "decline", "bob@example.com", {}))[0] == 200


def test_an_unauthenticated_decline_without_a_comment_is_a_401_not_a_400(world):
    assert call(post("decline", {"by": "bob@example.com"}))[0] == 401


# ---- the service's answers --------------------------------------------------------------------
def test_a_release_that_does_not_exist_is_a_404(world):
    token = world.link("bob@example.com", release_id=OTHER)
    assert call(post("approve", {}, {"X-MLOps-Link": token}, release_id=OTHER))[0] == 404


def test_self_approval_and_a_non_approver_are_a_403(world):
    status, answer = call(signed(world, "approve", "alice@example.com", {}))  # alice started the release
    assert status == 403 and "self-approval" in answer["error"]
    world.use(ApprovalPolicy(approvers=("carol@example.com",)))
    status, answer = call(signed(world, "approve", "bob@example.com", {}))
    assert status == 403 and "not an approver" in answer["error"]
    assert world.release().timeline[-1]["step"] == "approve_refused"


def test_the_same_approver_twice_and_a_decided_release_are_a_409(world):
    world.use(ApprovalPolicy(required_approvals=2))
    assert call(signed(world, "approve", "bob@example.com", {}))[0] == 200
    assert call(signed(world, "approve", "bob@example.com", {}))[0] == 409
    assert call(signed(world, "decline", "carol@example.com", {"comment": "no"}))[0] == 200
    assert call(signed(world, "approve", "dave@example.com", {}))[0] == 409


def test_past_the_deadline_is_a_410_and_the_release_is_expired(world):
    world.clock.advance(hours=73)
    status, _ = call(signed(world, "approve", "bob@example.com", {}))
    assert status == 410
    assert world.release().state == State.EXPIRED


def test_a_promotion_that_goes_on_after_the_response_is_a_202(world):
    world.use(ApprovalPolicy(), promote_inline=False)
    status, answer = call(signed(world, "approve", "bob@example.com", {}))
    assert status == 202 and answer["state"] == "promoting"


# ---- the log, never the timeline -----------------------------------------------------------------
def test_refusals_are_logged_without_tokens_signatures_or_secrets(world, caplog):
    token = world.link("bob@example.com")
    forged = token[:-4] + "AAAA"
    bad_signature = signed(world, "approve", "bob@example.com", {}, key=b"wrong")
    before = world.release()
    with caplog.at_level(logging.DEBUG):
        call(post("approve", {}, {"X-MLOps-Link": forged}))
        call(bad_signature)
        call(post("approve", {"by": "bob@example.com"}))
        world.clock.advance(hours=2)
        call(post("approve", {}, {"X-MLOps-Link": token}))
    assert untouched(world, before)
    assert len([r for r in caplog.records if r.name == "mlops.identity"]) == 4
    signature = bad_signature.headers["x-mlops-signature"]
    for secret in (token, forged, token.split(".")[1], signature, LINK_SECRET, local_signature.load_or_create_key(
        world.home).decode()):  # fmt: skip
        assert secret not in caplog.text


def test_a_link_valid_for_more_than_30_days_is_refused(world):
    """So a store may forget nonces that expired 30 days before a newer one (functions.ports)."""
    assert call(post("approve", {}, {"X-MLOps-Link": world.link("bob@example.com", hours=24 * 31)}))[0] == 401
    assert call(post("approve", {}, {"X-MLOps-Link": world.link("bob@example.com", hours=24 * 30)}))[0] == 202


def test_the_decision_body_shape_is_documented_without_by():
    assert "by" not in json.loads(http_api.DECISION_BODY)
    assert timedelta(days=30) == signed_links.MAX_TOKEN_LIFETIME


# ---- POST /api/production/rollback: the same protection as a decision --------------------------------
def rollback_request(body: dict[str, Any] | bytes, headers: dict[str, str] | None = None,
                     content_type: str = "application/json") -> func.HttpRequest:  # fmt: skip
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return func.HttpRequest("POST", "http://127.0.0.1:7071/api/production/rollback",
                            headers={"Content-Type": content_type, **(headers or {})}, body=raw)  # fmt: skip


def rollback_call(request: func.HttpRequest) -> tuple[int, dict[str, Any]]:
    response = http_api.rollback(request)
    assert response.mimetype == "application/json"
    return response.status_code, json.loads(response.get_body())


def signed_rollback(world: World, identity: str, body: dict[str, Any]) -> func.HttpRequest:
    raw = json.dumps(body).encode()
    key = local_signature.load_or_create_key(world.home)
    return rollback_request(raw, local_signature.sign(key, "POST", "/api/production/rollback", identity, raw,
                                                      world.now_s()))  # fmt: skip


def test_a_rollback_needs_json_a_proven_identity_and_a_comment(world):
    assert rollback_call(rollback_request(b"comment=x", content_type="text/plain"))[0] == 415
    status, answer = rollback_call(rollback_request({"comment": "why"}))
    assert status == 401 and "authentication required" in answer["error"]
    assert rollback_call(signed_rollback(world, "bob@example.com", {"comment": "  "}))[0] == 400
    assert rollback_call(signed_rollback(world, "bob@example.com", {"comment": "why", "to": 7}))[0] == 400
    status, answer = rollback_call(signed_rollback(world, "bob@example.com", {"comment": "why"}))
    assert status == 409 and "nothing to roll back to" in answer["error"]  # proven and judged: no earlier version


def test_a_signed_link_cannot_roll_production_back(world):
    """Links are minted for one release's decision; one for approving is refused here, and stays unspent."""
    world.azure()
    status, answer = rollback_call(
        rollback_request({"comment": "why"}, {"X-MLOps-Link": world.link("bob@example.com")})
    )
    assert status == 403 and "the link is for another release" in answer["error"]
    assert len(world.store.nonces) == 0  # refused before anything was spent


def test_a_rollback_by_someone_the_policy_does_not_name_is_403(world):
    world.use(ApprovalPolicy(approvers=("carol@example.com",)))
    status, answer = rollback_call(signed_rollback(world, "bob@example.com", {"comment": "why"}))
    assert status == 403 and "not an approver who may roll production back" in answer["error"]
