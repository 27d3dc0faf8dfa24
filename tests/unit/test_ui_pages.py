"""The approval page (functions/entrypoints/ui): who reads it, what it shows, and what its forms may do.

Requests go through the function app's own handlers (function_app.py) with the fake ports; the real
browser tests are in tests/e2e/test_approval_page.py.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlencode, urlsplit

import azure.functions as func
import pytest

import function_app
from functions.domain.approval import ApprovalPolicy
from functions.domain.release import State
from functions.entrypoints.identity import local_signature
from functions.entrypoints.ui import sessions
from functions.service import commands
from functions.service.invocations import invocation
from tests import payloads as p
from tests.unit.test_http_api_decisions import LINK_SECRET, RELEASE, World, client_principal

ORIGIN = "http://127.0.0.1:7071"


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch, tmp_path) -> World:
    return World(monkeypatch, tmp_path / "mlops-home")


def key(world: World) -> bytes:
    return local_signature.load_or_create_key(world.home) if world.local else LINK_SECRET.encode()


def cookie_for(world: World, identity: str) -> dict[str, str]:
    return {"Cookie": f"{sessions.COOKIE}={sessions.mint_session(key(world), identity, world.now_s())}"}


def get(
    path: str, headers: dict[str, str] | None = None, params: dict[str, str] | None = None, **route: str
) -> func.HttpRequest:
    parts = urlsplit(path)
    query = params if params is not None else {k: v[0] for k, v in parse_qs(parts.query).items()}
    return func.HttpRequest(
        "GET", f"{ORIGIN}{parts.path}", headers=headers or {}, params=query, route_params=route, body=b""
    )


def page(handler, request: func.HttpRequest) -> tuple[int, str, func.HttpResponse]:
    response = handler(request)
    return response.status_code, response.get_body().decode(), response


def open_release(world: World, identity: str, release_id: str = RELEASE) -> tuple[int, str, func.HttpResponse]:
    request = get(f"/api/ui/releases/{release_id}", cookie_for(world, identity), id=release_id)
    return page(function_app.ui_release, request)


def form_token(body: str, action: str) -> str:
    route = "approve" if action == "approve" else "reject"
    match = re.search(
        rf'action="/api/ui/releases/[^"]+/{route}">\s*<input type="hidden" name="token" value="([^"]+)"', body
    )
    assert match, f"no {action} form on the page"
    return match.group(1)


def decide(
    world: World, identity: str, action: str, comment: str = "", *, token: str | None = None,
    headers: dict[str, str] | None = None, content_type: str = "application/x-www-form-urlencoded",
) -> tuple[int, str, func.HttpResponse]:  # fmt: skip
    if token is None:
        _, body, _ = open_release(world, identity)
        token = form_token(body, action)
    fields = urlencode({"comment": comment, "token": token}).encode()
    sent = {"Content-Type": content_type, "Origin": ORIGIN, "Sec-Fetch-Site": "same-origin",
            **cookie_for(world, identity), **(headers or {})}  # fmt: skip
    route = "approve" if action == "approve" else "reject"
    request = func.HttpRequest("POST", f"{ORIGIN}/api/ui/releases/{RELEASE}/{route}", headers=sent, body=fields,
                               route_params={"id": RELEASE})  # fmt: skip
    handler = function_app.ui_approve if action == "approve" else function_app.ui_decline
    return page(handler, request)


# ---- who reads ---------------------------------------------------------------------------------
def test_no_session_locally_is_a_401_page_that_says_how_to_sign_in(world):
    status, body, response = page(function_app.ui_releases, get("/api/ui"))
    assert status == 401 and response.mimetype == "text/html"
    assert "mlops ui" in body and RELEASE not in body


def test_on_azure_a_reader_without_a_principal_is_sent_to_easy_auth(world):
    world.azure()
    status, _, response = page(function_app.ui_release, get(f"/api/ui/releases/{RELEASE}", id=RELEASE))
    assert status == 302
    assert (
        response.headers["Location"] == f"/.auth/login/aad?post_login_redirect_uri=%2Fapi%2Fui%2Freleases%2F{RELEASE}"
    )


def test_on_azure_easy_auth_headers_count_only_when_the_platform_turned_it_on(world):
    headers = {"X-MS-CLIENT-PRINCIPAL": client_principal("bob@example.com")}
    world.azure()
    assert page(function_app.ui_releases, get("/api/ui", headers))[0] == 200
    world.settings("azure", MLOPS_LINK_SECRET=LINK_SECRET)  # WEBSITE_AUTH_ENABLED unset: headers are forgeable
    status, body, _ = page(function_app.ui_releases, get("/api/ui", headers))
    assert status == 503 and "App Service Authentication" in body


def test_a_forged_or_expired_session_is_nobody_and_is_cleared(world):
    forged = {"Cookie": f"{sessions.COOKIE}={sessions.mint_session(b'another-key', 'bob@example.com', world.now_s())}"}
    status, _, response = page(function_app.ui_releases, get("/api/ui", forged))
    assert status == 401 and "Max-Age=0" in response.headers["Set-Cookie"]
    old = cookie_for(world, "bob@example.com")
    world.clock.advance(seconds=sessions.SESSION_SECONDS)
    assert page(function_app.ui_releases, get("/api/ui", old))[0] == 401


# ---- the one-time sign-in link ----------------------------------------------------------------------
def test_the_sign_in_link_sets_a_strict_http_only_session_once(world):
    token = sessions.mint_login(key(world), "bob@example.com", world.now_s())
    status, _, response = page(function_app.ui_login, get(f"/api/ui/login?token={token}"))
    assert status == 303 and response.headers["Location"] == "/api/ui"
    cookie = response.headers["Set-Cookie"]
    for attribute in ("HttpOnly", "SameSite=Strict", "Path=/api/ui", f"Max-Age={sessions.SESSION_SECONDS}"):
        assert attribute in cookie
    session = cookie.split(";", 1)[0]
    listed = page(function_app.ui_releases, get("/api/ui", {"Cookie": session}))
    assert listed[0] == 200 and "Signed in as <strong>bob@example.com</strong>" in listed[1]
    again = page(function_app.ui_login, get(f"/api/ui/login?token={token}"))
    assert again[0] == 409 and "used already" in again[1]


@pytest.mark.parametrize(
    ("make", "status"),
    [
        (lambda k, now: sessions.mint_login(k, "bob@example.com", now - sessions.LOGIN_SECONDS), 410),
        (lambda k, now: sessions.mint_login(b"not-the-key", "bob@example.com", now), 401),
        (lambda k, now: sessions.mint_session(k, "bob@example.com", now), 401),  # a session is not a login
        (lambda k, now: "garbage", 401),
    ],
)
def test_sign_in_links_that_are_not_usable(world, make, status):
    token = make(key(world), world.now_s())
    code, body, response = page(function_app.ui_login, get(f"/api/ui/login?token={token}"))
    assert code == status and "Set-Cookie" not in response.headers and "mlops ui" in body


@pytest.mark.parametrize(
    ("next_path", "location"),
    [(f"/api/ui/releases/{RELEASE}", f"/api/ui/releases/{RELEASE}"), ("https://evil.example/", "/api/ui"),
     ("//evil.example/api/ui", "/api/ui"), ("/api/releases", "/api/ui")],
)  # fmt: skip
def test_the_sign_in_link_goes_on_only_to_this_page(world, next_path, location):
    token = sessions.mint_login(key(world), "bob@example.com", world.now_s())
    query = urlencode({"token": token, "next": next_path})
    assert page(function_app.ui_login, get(f"/api/ui/login?{query}"))[2].headers["Location"] == location


# ---- what it shows ---------------------------------------------------------------------------------
def test_the_list_filters_by_state_and_sends_no_script_and_a_strict_policy(world):
    status, body, response = page(function_app.ui_releases, get("/api/ui", cookie_for(world, "bob@example.com")))
    assert status == 200 and RELEASE in body and "awaiting approval (1)" in body
    assert "<script" not in body and "http://" not in body.replace(ORIGIN, "")  # nothing from elsewhere
    csp = response.headers["Content-Security-Policy"]
    found = re.search(r"'nonce-([^']+)'", csp)
    assert found is not None
    nonce = found.group(1)
    assert f'<style nonce="{nonce}">' in body and "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert response.headers["X-Frame-Options"] == "DENY" and response.headers["Cache-Control"] == "no-store"
    live = page(function_app.ui_releases, get("/api/ui?state=live", cookie_for(world, "bob@example.com")))
    assert live[0] == 200 and RELEASE not in live[1].split("<table", 1)[-1] and "No releases live yet" in live[1]
    assert page(function_app.ui_releases, get("/api/ui?state=nonsense", cookie_for(world, "bob@example.com")))[0] == 400


def test_the_release_page_shows_the_evidence_lineage_checks_tests_and_who_may_approve(world):
    status, body, _ = open_release(world, "bob@example.com")
    assert status == 200
    assert '<svg xmlns="http://www.w3.org/2000/svg" class="chart"' in body and 'role="img"' in body
    assert '<title id="metric-bars-title">mse: champion and challenger</title>' in body
    for heading in (
        "Evidence",
        "Data checks",
        "Staging tests",
        "Trigger and lineage",
        "Approvals",
        "Decide",
        "Timeline",
    ):
        assert f">{heading}</h2>" in body
    assert "3f2a9c1d0e4b5a6978877665544332211aabbccd" in body  # the commit
    assert "schema" in body and "within bounds" in body  # a data check
    assert "anyone who signs in except alice@example.com, who started it" in body
    assert '<label for="approve-comment">' in body and '<label for="decline-comment">' in body
    assert form_token(body, "approve") != form_token(body, "decline")


def test_the_difference_chart_draws_every_interval_level_against_the_threshold(world):
    release = world.release()
    release.gate = _gate_with_champion()
    world.orchestrator.ports.store.save(release)
    _, body, _ = open_release(world, "bob@example.com")
    svg = body.split('id="difference"', 1)[1].split("</svg>", 1)[0]
    for level in ("80%", "90%", "95% (the gate's)", "99%"):
        assert level in svg
    assert "threshold +0" in svg and 'class="threshold"' in svg and 'class="zero"' in svg
    assert '<desc id="difference-desc">Improvement in mse +20' in body
    table = body.split('<th scope="col">Against the threshold</th>', 1)[1].split("</table>", 1)[0]
    assert table.count("does not clear") == 1 and table.count(">clears<") == 3  # only the 99% interval misses


def test_a_rejected_release_says_why_and_has_no_forms(world):
    world.orchestrator.receive("on_build_event", p.build_completed("777"))
    rejected = next(r for r in world.orchestrator.ports.store.list() if r.id != RELEASE)
    rejected.gate = {**_gate_with_champion(), "promote": False, "reason": "not better: mse improvement -5"}
    rejected.state = State.REJECTED
    world.orchestrator.ports.store.save(rejected)
    status, body, _ = open_release(world, "bob@example.com", rejected.id)
    assert status == 200 and "Rejected by the gate:</strong> not better: mse improvement -5" in body
    assert 'name="token"' not in body


def test_text_from_the_record_is_escaped(world):
    status, _, _ = decide(world, "bob@example.com", "approve", '<script>alert("x")</script> & more')
    assert status == 303
    _, shown, _ = open_release(world, "carol@example.com")
    assert "<script>alert" not in shown and "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; more" in shown


def test_a_redelivered_event_shows_once_with_its_count(world):
    again = p.build_completed("1234", event_id="b-again")
    for _ in range(4):  # one to start it, if it were new; then three redeliveries
        world.orchestrator.receive("on_build_event", again)
    _, shown, _ = open_release(world, "carol@example.com")
    assert shown.count("delivered again") == 1 and "(×3, last " in shown


# ---- deciding from the page --------------------------------------------------------------------------
def test_approving_from_the_page_is_the_policy_judged_command(world):
    status, _, response = decide(world, "bob@example.com", "approve", "the interval clears")
    assert status == 303 and response.headers["Location"] == f"/api/ui/releases/{RELEASE}"
    release = world.release()
    assert release.state == State.PROMOTING
    [approval] = release.approvals()
    assert (approval["name"], approval["method"], approval["provider"]) == ("bob@example.com", "session", "local")
    assert approval["comment"] == "the interval clears"


def test_self_approval_is_a_readable_refusal_and_the_form_stays_usable(world):
    _, body, _ = open_release(world, "alice@example.com")
    assert "The policy will refuse your approval: alice@example.com started this release" in body
    token = form_token(body, "approve")
    status, refused, _ = decide(world, "alice@example.com", "approve", "mine", token=token)
    assert status == 403 and 'role="alert"' in refused
    assert "Your approval was refused: alice@example.com started this release and may not approve it" in refused
    assert world.release().state == State.AWAITING_APPROVAL
    assert any(e["step"] == "approve_refused" and "via session" in e["detail"] for e in world.release().timeline)


def test_with_two_required_the_first_approval_leaves_it_waiting(world):
    world.use(ApprovalPolicy(required_approvals=2))
    assert decide(world, "bob@example.com", "approve", "one")[0] == 303
    assert world.release().state == State.AWAITING_APPROVAL
    _, body, _ = open_release(world, "bob@example.com")
    assert "1 of 2</strong>" in body and "You have approved this release; it waits for someone else." in body
    assert "and not bob@example.com again" in body
    assert decide(world, "carol@example.com", "approve", "two")[0] == 303
    assert world.release().state == State.PROMOTING


def test_declining_needs_a_comment_and_records_the_reason(world):
    status, body, _ = decide(world, "bob@example.com", "decline", "")
    assert status == 400 and "comment" in body and world.release().state == State.AWAITING_APPROVAL
    assert decide(world, "bob@example.com", "decline", "drift in s5")[0] == 303
    release = world.release()
    assert release.state == State.DECLINED and release.approval["comment"] == "drift in s5"


def test_a_form_is_used_once(world):
    world.use(ApprovalPolicy(required_approvals=2))
    _, body, _ = open_release(world, "bob@example.com")
    token = form_token(body, "approve")
    assert decide(world, "bob@example.com", "approve", token=token)[0] == 303
    assert decide(world, "bob@example.com", "approve", token=token)[0] == 409
    form = sessions.check_form(key(world), token, world.now_s(), RELEASE, "approve")
    assert not world.store.spend_nonce(f"form:{form.nonce}", "2099-01-01T00:00:00+00:00")  # spent by the decision


@pytest.mark.parametrize(
    ("headers", "why"),
    [({"Origin": "https://evil.example"}, "another site"), ({"Origin": "null"}, "another site"),
     ({"Sec-Fetch-Site": "cross-site"}, "another site"), ({"Sec-Fetch-Site": "same-site"}, "another site")],
)  # fmt: skip
def test_a_decision_from_another_site_is_refused(world, headers, why):
    status, body, _ = decide(world, "bob@example.com", "approve", headers=headers)
    assert status == 403 and why in body and world.release().state == State.AWAITING_APPROVAL


def test_forms_that_are_not_this_readers_or_this_decisions(world):
    _, body, _ = open_release(world, "bob@example.com")
    bobs_approve, bobs_decline = form_token(body, "approve"), form_token(body, "decline")
    assert decide(world, "carol@example.com", "approve", token=bobs_approve)[0] == 403  # served to bob
    assert decide(world, "bob@example.com", "approve", token=bobs_decline)[0] == 403  # another action
    forged = sessions.mint_form(b"not-the-key", "bob@example.com", RELEASE, "approve", world.now_s())
    assert decide(world, "bob@example.com", "approve", token=forged)[0] == 403
    assert decide(world, "bob@example.com", "approve", token="")[0] == 403
    world.clock.advance(seconds=sessions.FORM_SECONDS)
    status, expired, _ = decide(world, "bob@example.com", "approve", token=bobs_approve)
    assert status == 403 and "expired" in expired
    assert world.release().state == State.AWAITING_APPROVAL


def test_not_a_form_or_no_session(world):
    _, body, _ = open_release(world, "bob@example.com")
    token = form_token(body, "approve")
    assert decide(world, "bob@example.com", "approve", token=token, content_type="application/json")[0] == 415
    request = func.HttpRequest("POST", f"{ORIGIN}/api/ui/releases/{RELEASE}/approve",
                               headers={"Content-Type": "application/x-www-form-urlencoded"},
                               body=urlencode({"token": token}).encode(), route_params={"id": RELEASE})  # fmt: skip
    assert page(function_app.ui_approve, request)[0] == 401
    assert decide(world, "bob@example.com", "approve", "x" * 2001, token=token)[0] == 400
    assert world.release().state == State.AWAITING_APPROVAL


def test_too_late_is_410_on_the_page(world):
    world.clock.advance(hours=73)  # past the deadline; the timer has not expired it yet
    status, shown, _ = decide(world, "bob@example.com", "approve")
    assert status == 410 and "Too late" in shown and world.release().state == State.EXPIRED


def test_on_azure_deciding_needs_the_link_secret(world):
    headers = {"X-MS-CLIENT-PRINCIPAL": client_principal("bob@example.com")}
    world.settings("azure", WEBSITE_AUTH_ENABLED="True")
    request = get(f"/api/ui/releases/{RELEASE}", headers, id=RELEASE)
    status, body, _ = page(function_app.ui_release, request)
    assert status == 200 and 'name="token"' not in body and "MLOPS_LINK_SECRET" in body
    world.azure()
    _, body, _ = page(function_app.ui_release, request)
    token = form_token(body, "approve")
    fields = urlencode({"comment": "ok", "token": token}).encode()
    post = func.HttpRequest("POST", f"https://app.example.net/api/ui/releases/{RELEASE}/approve", body=fields,
                            headers={"Content-Type": "application/x-www-form-urlencoded", **headers,
                                     "Origin": "https://app.example.net"}, route_params={"id": RELEASE})  # fmt: skip
    status, _, _ = page(function_app.ui_approve, post)
    assert status == 303 and world.release().state == State.PROMOTING
    assert world.release().approvals()[0]["method"] == "easy_auth"


# ---- helpers -------------------------------------------------------------------------------------
def _gate_with_champion() -> dict:
    """A gate record as the service writes it, with a champion and the report's four interval levels."""
    differences = {"mse": {"estimate": -20.0, "direction": "lower_is_better",
                           "intervals": {"0.8": [-30.0, -10.0], "0.9": [-33.0, -7.0], "0.95": [-36.0, -4.0],
                                         "0.99": [-42.0, 2.0]}}}  # fmt: skip
    evidence = {"policy": {"mode": "superiority", "metric": "mse"}, "n": 88, "metric": "mse", "candidate": 3500.0,
                "champion": 3520.0, "improvement": 20.0, "interval": [4.0, 36.0], "confidence": 0.95,
                "threshold": 0.0}  # fmt: skip
    metrics = {"candidate": {"mse": 3500.0, "r2": 0.4}, "champion": {"mse": 3520.0, "r2": 0.39}}
    evaluation = {"n": 88, "metrics": metrics, "differences": differences}
    return {"promote": True, "reason": "better: mse improvement +20", "evidence": evidence, "evaluation": evaluation}


# ---- review findings: odd cookies, odd links, odd numbers ---------------------------------------------
def test_the_session_survives_other_apps_cookies_and_a_planted_one(world):
    good = cookie_for(world, "bob@example.com")["Cookie"]
    for header in (f'j={{"a":1}}; {good}', f"x=y z; {good}", f"c=é; {good}", f'q="unterminated; {good}',
                   f"{good}; mlops_session=planted-junk", f"mlops_session=planted-junk; {good}"):  # fmt: skip
        status, body, _ = page(function_app.ui_releases, get("/api/ui", {"Cookie": header}))
        assert status == 200 and "bob@example.com" in body, header


@pytest.mark.parametrize("next_path", ["/api/ui\r\nX-Injected: y", "/api/ui/\u2603", "/api/ui\tx", "/api/ui x"])
def test_a_next_that_is_not_one_plain_line_goes_to_the_list_and_still_signs_in(world, next_path):
    token = sessions.mint_login(key(world), "bob@example.com", world.now_s())
    status, _, response = page(function_app.ui_login, get("/api/ui/login", params={"token": token, "next": next_path}))
    assert status == 303 and response.headers["Location"] == "/api/ui"


def test_a_gate_with_numbers_that_are_not_finite_is_shown_without_charts(world):
    release = world.release()
    gate = _gate_with_champion()
    gate["evidence"]["improvement"] = float("nan")
    gate["evaluation"]["differences"]["mse"]["intervals"]["0.99"] = [float("-inf"), 2.0]
    release.gate = gate
    world.orchestrator.ports.store.save(release)
    status, body, _ = open_release(world, "bob@example.com")
    assert status == 200 and 'id="difference"' not in body and "Every metric on the held-out rows" in body


def test_signing_out_clears_the_cookie_and_is_refused_from_another_site(world):
    _, body, _ = page(function_app.ui_releases, get("/api/ui", cookie_for(world, "bob@example.com")))
    assert 'action="/api/ui/logout"' in body
    request = func.HttpRequest("POST", f"{ORIGIN}/api/ui/logout", headers={"Origin": ORIGIN}, body=b"")
    status, _, response = page(function_app.ui_logout, request)
    assert status == 200 and "Max-Age=0" in response.headers["Set-Cookie"]
    evil = func.HttpRequest("POST", f"{ORIGIN}/api/ui/logout", headers={"Origin": "https://evil.example"}, body=b"")
    assert page(function_app.ui_logout, evil)[0] == 403


# ---- rolling back from the page ---------------------------------------------------------------------
def superseded_first_release(world: World) -> str:
    """RELEASE (model 1) went live, then OTHER (model 2) took its place; OTHER's id."""
    from functions.domain.approval import Principal
    from functions.domain.ids import image_tag, release_id_for_build
    from functions.domain.refs import ModelRef

    orchestrator, ports = world.orchestrator, world.orchestrator.ports
    bob = Principal("bob@example.com", provider="local", method="cli")
    assert orchestrator.approve(RELEASE, bob, "").state == State.LIVE
    other = release_id_for_build("5678")
    ports.registry.by_release[other] = ModelRef("diabetes-model", "2", "/m/2", {"release_id": other})  # type: ignore[attr-defined]
    orchestrator.receive("on_build_event", p.build_completed("5678"))
    orchestrator.receive("on_ml_event", p.run_completed(f"job-{other}", other))
    orchestrator.receive("on_registry_event", p.image_pushed(image_tag("2", other)))
    assert orchestrator.approve(other, bob, "").state == State.LIVE
    first = world.release()
    assert first.state == State.SUPERSEDED
    ports.images.pushed[first.image["tag"]] = ports.images.build(RELEASE, ports.registry.by_release[RELEASE])  # type: ignore[attr-defined]
    return other


def rollback_post(world: World, identity: str, token: str, comment: str, origin: str = ORIGIN) -> func.HttpRequest:
    fields = urlencode({"comment": comment, "token": token}).encode()
    sent = {"Content-Type": "application/x-www-form-urlencoded", "Origin": origin, **cookie_for(world, identity)}
    return func.HttpRequest("POST", f"{ORIGIN}/api/ui/releases/{RELEASE}/rollback", headers=sent, body=fields,
                            route_params={"id": RELEASE})  # fmt: skip


def rollback_token(body: str) -> str:
    match = re.search(r'/rollback">\s*<input type="hidden" name="token" value="([^"]+)"', body)
    assert match, "no rollback form on the page"
    return match.group(1)


def test_a_version_that_served_before_can_be_put_back_from_its_page(world):
    other = superseded_first_release(world)
    _, live_page, _ = open_release(world, "carol@example.com", other)
    assert "/rollback" not in live_page  # what serves now is no rollback target
    _, body, _ = open_release(world, "carol@example.com")
    assert "Put this version back in production" in body
    status, _, response = page(function_app.ui_rollback, rollback_post(world, "carol@example.com",
                                                                        rollback_token(body), "2 drifts"))  # fmt: skip
    assert status == 303
    rollback_id = response.headers["Location"].rsplit("/", 1)[-1]
    rolled = world.orchestrator.get_release(rollback_id)
    assert rolled.trigger["to"] == RELEASE and rolled.trigger["from"] == other
    assert (rolled.approval or {})["approvals"][0]["method"] == "session"
    world.orchestrator.follow(passes=4)
    assert world.orchestrator.get_release(rollback_id).state == State.LIVE


def test_a_rollback_from_the_page_needs_a_comment_its_own_form_and_this_site(world):
    superseded_first_release(world)
    _, body, _ = open_release(world, "carol@example.com")
    token = rollback_token(body)
    status, shown, _ = page(function_app.ui_rollback, rollback_post(world, "carol@example.com", token, " "))
    assert status == 400 and "comment" in shown
    status, _, _ = page(function_app.ui_rollback, rollback_post(world, "dave@example.com", token, "why"))
    assert status == 403  # served to carol, not to dave
    evil = rollback_post(world, "carol@example.com", token, "why", origin="https://evil.example")
    assert page(function_app.ui_rollback, evil)[0] == 403
    assert [r.trigger.get("kind") for r in world.orchestrator.list_releases(50)].count("rollback") == 0


def test_the_page_renders_at_every_stage_of_a_promotion(world):
    """Each state the follow timer leaves a promotion in (beside, tested, traffic moving, live, rolled
    back) is a page, not a 500; while a step is in flight it says so and reloads itself."""
    from functions.domain.approval import Principal

    orchestrator, ports = world.orchestrator, world.orchestrator.ports
    ports.deployer.hold = True
    bob = Principal("bob@example.com", provider="local", method="cli")
    commands.approve(orchestrator.ctx, RELEASE, bob, "")  # the service's approve: nothing followed yet
    seen = []
    for _ in range(3):  # beside in flight; tested, traffic moving; live
        status, body, _ = open_release(world, "carol@example.com")
        assert status == 200, body
        seen.append((world.release().state.value, 'http-equiv="refresh"' in body, "Tests passed" in body))
        ports.deployer.settle()
        with invocation("follow_operations"):
            orchestrator.follow()
    status, body, _ = open_release(world, "carol@example.com")
    seen.append((world.release().state.value, 'http-equiv="refresh"' in body, "live at" in body))
    assert seen == [("promoting", True, False), ("promoting", True, True), ("live", False, True),
                    ("live", False, True)]  # fmt: skip
    assert 'role="status"' not in body and "(in follow_operations:" in body  # the timeline names the timer


def test_a_rolled_back_release_page_says_no_traffic_moved(world):
    from functions.domain.approval import Principal

    orchestrator, ports = world.orchestrator, world.orchestrator.ports
    ports.tester.failing_urls.add(f"production-{RELEASE}")
    orchestrator.approve(RELEASE, Principal("bob@example.com", provider="local", method="cli"), "")
    status, body, _ = open_release(world, "carol@example.com")
    assert status == 200 and world.release().state == State.ROLLED_BACK
    assert "Tests failed" in body and "No traffic moved: production kept serving what it served." in body


def test_a_rollout_shows_each_step_with_what_it_served_and_its_analysis(world):
    from functions.domain.analysis import analyse
    from functions.domain.approval import Principal
    from functions.domain.refs import Evidence, Served
    from functions.domain.rollout import RolloutPolicy
    from functions.service.unit_of_work import update

    orchestrator, ports = world.orchestrator, world.orchestrator.ports
    ports.deployer.hold = True
    commands.approve(orchestrator.ctx, RELEASE, Principal("bob@example.com", provider="local", method="cli"), "")
    policy = RolloutPolicy.from_mapping({"window_s": 1, "min_requests": 5})
    pairs = tuple((100.0, 100.0 + (400.0 if i % 2 else 0.0)) for i in range(10))
    served = Served(10, 0, (4.0,) * 10, ())
    evidence = Evidence({"rel-old": Served(30, 0, (4.0,) * 30)}, {RELEASE: served}, {RELEASE: pairs}, "test")
    verdict = analyse(policy.steps[0], evidence, RELEASE, "rel-old", policy, waited_out=False)
    now = orchestrator.ctx.clock()

    def rolled_back(release):
        release.rollout_planned(now, "rel-old", policy.to_json(), policy.describe())
        release.rollout_step_begun(now, 0, "mirrored")
        release.rollout_step_holding(now, 0, {"seq": 1})
        release.rollout_step_analysed(now, 0, verdict)

    update(orchestrator.ctx, world.release(), State.PROMOTING, rolled_back)
    status, body, _ = open_release(world, "carol@example.com")
    assert status == 200 and world.release().state == State.ROLLED_BACK
    assert "The rollout against rel-old" in body and "shadow 50%" in body and "canary 100%" in body
    assert "5/10 mirrored rows diverge (50.0%" in body and '<span class="fail">failed</span>' in body
    assert body.count("<td>pending</td>") == 3
