"""The approval page over HTTP: GET /api/ui (releases), GET /api/ui/releases/{id} (one, with its
evidence and the decision forms), POST .../approve and .../reject (the forms), GET /api/ui/login
(the local one-time sign-in link), POST /api/ui/logout.

Who reads is proven (readers.py): App Service Authentication on Azure (no principal: a redirect to
/.auth/login/aad), the session cookie locally (none: how to sign in, 401). A decision needs, besides
that, the form's own signed token (sessions.py) for this reader, release and action, and a browser
request from this origin (Origin / Sec-Fetch-Site); then it is the same command as the API's, judged
by the same approval policy. Refusals are pages that say why, with the status the API would give.
Pages have no script and no external asset; the CSP allows only their own nonce-tagged style.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import azure.functions as func

from functions import bootstrap
from functions.domain.approval import Principal
from functions.domain.release import Release, State
from functions.entrypoints.identity import local_signature
from functions.entrypoints.identity.authenticate import link_secret
from functions.entrypoints.limits import RequestLimits, RequestRejected, check_body_size, query_words, route_word
from functions.entrypoints.ui import readers, sessions, view
from functions.entrypoints.ui.render import render
from functions.ports import ConcurrencyError
from functions.service import commands
from functions.service.context import Context
from functions.service.invocations import invocation
from functions.service.results import Conflict, Forbidden, Gone, Invalid, NotFound
from functions.settings import Settings

log = logging.getLogger("mlops.ui")

UI = "/api/ui"
FORM_LIMITS = RequestLimits(max_body_bytes=64 * 1024)
MAX_COMMENT = 2000
LIST_LIMIT = 200
STATES = tuple(State)
FORM_TYPE = "application/x-www-form-urlencoded"


def releases(req: func.HttpRequest) -> func.HttpResponse:
    page = _Page(req)
    if page.reader is None:
        return page.sign_in()
    try:
        wanted = query_words(req.params, "state", frozenset(s.value for s in STATES))
    except RequestRejected as exc:
        return page.message(exc.status, "Not a filter", str(exc))
    every = commands.list_releases(page.ctx, 500)
    counts = {state: sum(1 for r in every if r.state == state) for state in STATES}
    shown = [r for r in every if not wanted or r.state.value in wanted][:LIST_LIMIT]
    selected = wanted[0] if len(wanted) == 1 else ""
    states = [{"value": s.value, "label": view.label(s), "count": counts[s]} for s in STATES]
    return page.html(
        200,
        "list.html",
        rows=[view.summary_row(r) for r in shown],
        states=states,
        selected=selected,
        selected_label=view.label(State(selected)) if selected else "",
    )


def release(req: func.HttpRequest) -> func.HttpResponse:
    page = _Page(req)
    try:
        release_id = route_word(req.route_params["id"], "release id")
    except RequestRejected as exc:
        return page.message(exc.status, "Not a release id", str(exc))
    if page.reader is None:
        return page.sign_in()
    try:
        found = commands.get_release(page.ctx, release_id)
    except NotFound as exc:
        return page.message(404, "No such release", str(exc))
    return page.release(200, found)


def approve(req: func.HttpRequest) -> func.HttpResponse:
    return _decide(req, "approve")


def decline(req: func.HttpRequest) -> func.HttpResponse:
    return _decide(req, "decline")


def rollback(req: func.HttpRequest) -> func.HttpResponse:
    """Put the release's version back in production (a new, tested promotion): the rollback's page next."""
    return _decide(req, "rollback")


def login(req: func.HttpRequest) -> func.HttpResponse:
    """The one-time sign-in link `mlops ui` opens: the session cookie, then the page (303)."""
    page = _Page(req, read=False)
    if page.settings.platform != "local":
        return page.sign_in()  # Azure signs people in with App Service Authentication
    token = req.params.get("token", "")
    going_to = _local_path(req.params.get("next", ""))  # checked before the link is spent
    try:
        identity = sessions.use_login(page.secret(), token, page.now_s, page.ctx.ports.store)
    except sessions.Refused as exc:
        log.warning("ui: sign-in refused (%d): %s", exc.status, exc)
        return page.message(exc.status, "Cannot sign in", str(exc), hint="Run `mlops ui` for a new sign-in link.")
    except local_signature.BadSignature as exc:
        return page.message(503, "Cannot sign in", str(exc))
    cookie = sessions.session_cookie(sessions.mint_session(page.secret(), identity, page.now_s), secure=page.https)
    log.info("ui: %s signed in", identity)
    return _redirect(going_to, {"Set-Cookie": cookie})


def logout(req: func.HttpRequest) -> func.HttpResponse:
    page = _Page(req, read=False)
    try:
        check_body_size(req.get_body(), FORM_LIMITS)
    except RequestRejected as exc:
        return page.message(exc.status, "Not a sign-out", str(exc))
    if (refusal := _cross_site(req)) is not None:
        return page.message(403, "Refused", refusal)
    cleared = sessions.session_cookie("", secure=page.https, max_age=0)
    return page.message(200, "Signed out", "You are signed out of this page.", headers={"Set-Cookie": cleared})


def _decide(req: func.HttpRequest, action: str) -> func.HttpResponse:
    page = _Page(req)
    try:  # the request's shape first: cheap, and it needs no secret
        check_body_size(req.get_body(), FORM_LIMITS)
        release_id = route_word(req.route_params["id"], "release id")
    except RequestRejected as exc:
        return page.message(exc.status, "Not a decision", str(exc))
    if (refusal := _cross_site(req)) is not None:
        log.warning("ui: %s refused: %s", action, refusal)
        return page.message(403, "Refused", refusal)
    if page.reader is None:
        return page.message(401, "Sign in first", "Only a signed-in person can decide.", hint=page.how_to_sign_in())
    reader = page.reader
    try:
        fields = _form(req)
    except RequestRejected as exc:
        return page.message(exc.status, "Not a decision", str(exc))
    comment = fields.get("comment", "").strip()
    try:
        form = sessions.check_form(page.secret(), fields.get("token", ""), page.now_s, release_id, action)
        if not reader.is_identity(form.reader):
            raise sessions.Refused(403, "the form was served to someone else; reload the page")
    except sessions.Refused as exc:
        log.warning("ui: %s of %s by %s refused (%d): %s", action, release_id, reader.name, exc.status, exc)
        return page.release_or_message(exc.status, release_id, f"Not recorded: {exc}.")
    except local_signature.BadSignature as exc:
        return page.message(503, "Cannot decide here", str(exc))
    if len(comment) > MAX_COMMENT:
        return page.release_or_message(400, release_id, f"The comment is longer than {MAX_COMMENT} characters.")

    def spend_the_form() -> None:
        sessions.spend_form(page.ctx.ports.store, form)

    shown = release_id  # the page the answer goes to: a rollback's own, once it exists
    try:
        with invocation(f"ui_{action}"):
            if action == "approve":
                commands.approve(page.ctx, release_id, reader, comment, before_recording=spend_the_form)
            elif action == "decline":
                commands.decline(page.ctx, release_id, reader, comment, before_recording=spend_the_form)
            else:
                to = release_id
                shown = commands.rollback(page.ctx, reader, comment, to, before_recording=spend_the_form).id
    except sessions.Refused as exc:
        return page.release_or_message(exc.status, release_id, f"Not recorded: {exc}.")
    except NotFound as exc:
        return page.message(404, "No such release", str(exc))
    except (Conflict, ConcurrencyError) as exc:
        return page.release_or_message(409, release_id, f"Your {_noun(action)} was not recorded: {exc}.")
    except Forbidden as exc:
        return page.release_or_message(403, release_id, f"Your {_noun(action)} was refused: {exc}.")
    except Gone as exc:
        return page.release_or_message(410, release_id, f"Too late: {exc}.")
    except Invalid as exc:
        return page.release_or_message(400, release_id, f"Your {_noun(action)} was not recorded: {exc}.")
    return _redirect(f"{UI}/releases/{quote(shown, safe='')}")


class _Page:
    """One request's view of the page: the service, who reads, and how to answer in HTML."""

    def __init__(self, req: func.HttpRequest, *, read: bool = True) -> None:
        self.req = req
        self.ctx: Context = bootstrap.context()
        self.settings: Settings = bootstrap.settings()
        self.now_s = int(self.ctx.clock().timestamp())
        self.nonce = secrets.token_urlsafe(16)
        self.https = urlsplit(req.url).scheme == "https"
        self._secret: bytes | None = None
        self.reader: Principal | None = None
        self.clear_session = False
        if read:
            found = readers.reader(req, self.settings, self.now_s, self.secret_or_empty)
            self.reader, self.clear_session = found.principal, found.stale_session

    def secret(self) -> bytes:
        """The key of the page's tokens (the signed links' key); BadSignature when the local one is damaged."""
        if self._secret is None:
            self._secret = link_secret(self.settings)
        return self._secret

    def secret_or_empty(self) -> bytes:
        try:
            return self.secret()
        except local_signature.BadSignature:
            return b""

    def sign_in(self) -> func.HttpResponse:
        if self.settings.platform == "azure":
            if not self.settings.easy_auth_enabled():
                return self.message(503, "Sign-in is not set up",
                                    "This page needs App Service Authentication (Easy Auth) on the Function App.",
                                    hint="Deploy infra/main.bicep with authClientId and authTenantId set.")  # fmt: skip
            back = quote(_local_path(_path_and_query(self.req.url)), safe="")
            return _redirect(f"/.auth/login/aad?post_login_redirect_uri={back}", status=302)
        return self.message(401, "Sign in", "This page shows who decides, so it needs to know who you are.",
                            hint=self.how_to_sign_in())  # fmt: skip

    def how_to_sign_in(self) -> str:
        if self.settings.platform == "azure":
            return "Sign in with your organisation's account: open the page again."
        return "Run `mlops ui` on this machine: it opens this page through a one-time sign-in link."

    def release(self, status: int, found: Release, notice: str | None = None) -> func.HttpResponse:
        model = view.release_page(found, self.ctx.approval_policy, self.reader, self.ctx.clock())
        forms, unavailable = self._forms(found)
        return self.html(
            status,
            "release.html",
            r=model,
            notice={"tone": "bad", "text": notice} if notice else None,
            forms=forms,
            forms_unavailable=unavailable,
            rollback_form=self.rollback_form(found),
            decline_needs_comment=self.ctx.approval_policy.comment_required_to_decline,
        )

    def release_or_message(self, status: int, release_id: str, notice: str) -> func.HttpResponse:
        try:
            return self.release(status, commands.get_release(self.ctx, release_id), notice)
        except NotFound as exc:
            return self.message(404, "No such release", str(exc))

    def rollback_form(self, found: Release) -> str | None:
        """A rollback form on the page of a version that served before (not the one serving now)."""
        if found.state != State.SUPERSEDED or self.reader is None or not commands.went_live_once(found):
            return None
        try:
            secret = self.secret()
        except local_signature.BadSignature:
            return None
        return sessions.mint_form(secret, self.reader.name, found.id, "rollback", self.now_s) if secret else None

    def _forms(self, found: Release) -> tuple[dict[str, str] | None, str]:
        if found.state != State.AWAITING_APPROVAL or self.reader is None:
            return None, ""
        try:
            secret = self.secret()
        except local_signature.BadSignature as exc:
            return None, f"Deciding from this page is not possible: {exc}"
        if not secret:
            return None, "Deciding from this page needs MLOPS_LINK_SECRET (a Key Vault reference) on the Function App."
        name = self.reader.name
        return {act: sessions.mint_form(secret, name, found.id, act, self.now_s) for act in ("approve", "decline")}, ""

    def message(
        self, status: int, heading: str, message: str, *, hint: str = "", headers: Mapping[str, str] | None = None
    ) -> func.HttpResponse:
        tone = "good" if status < 400 else "bad"
        return self.html(status, "message.html", heading=heading, message=message, hint=hint, tone=tone,
                         headers=headers)  # fmt: skip

    def html(
        self, status: int, template: str, *, headers: Mapping[str, str] | None = None, **values: Any
    ) -> func.HttpResponse:
        body = render(template, nonce=self.nonce, ui=UI, reader=self.reader, **values)
        sent = {**_security_headers(self.nonce), **(headers or {})}
        if self.clear_session and "Set-Cookie" not in sent:
            sent["Set-Cookie"] = sessions.session_cookie("", secure=self.https, max_age=0)
        return func.HttpResponse(body, status_code=status, mimetype="text/html", charset="utf-8", headers=sent)


def _form(req: func.HttpRequest) -> dict[str, str]:
    media_type = (req.headers.get("content-type") or "").split(";", 1)[0].strip().lower()
    if media_type != FORM_TYPE:
        raise RequestRejected(415, f"a decision is a form post ({FORM_TYPE})", "query")
    body = check_body_size(req.get_body(), FORM_LIMITS)
    try:
        text = body.decode("utf-8")
        parsed = parse_qs(text, keep_blank_values=True, max_num_fields=10)
    except (UnicodeDecodeError, ValueError):
        raise RequestRejected(400, "the form is not UTF-8 form data", "query") from None
    return {name: values[0] for name, values in parsed.items() if values}


def _cross_site(req: func.HttpRequest) -> str | None:
    """Why a state-changing browser request is not from this page's own origin (None: it is)."""
    headers = {name.lower(): value for name, value in req.headers.items()}
    own = urlsplit(req.url)
    origin = headers.get("origin")
    if origin is not None and origin.rstrip("/").lower() != f"{own.scheme}://{own.netloc}".lower():
        return "the request came from another site"
    fetch_site = headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site.lower() not in ("same-origin", "none"):
        return "the request came from another site"
    return None


def _local_path(path: str) -> str:
    """``path`` if it is one of this page's own (no open redirect), else the list."""
    if not path.isascii() or not path.isprintable() or " " in path or "\\" in path:
        return UI  # a header value must stay one plain line (urlsplit would drop CR, LF and tabs silently)
    parts = urlsplit(path)
    if parts.scheme or parts.netloc or not parts.path.startswith(UI):
        return UI
    return path


def _path_and_query(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _redirect(location: str, headers: Mapping[str, str] | None = None, status: int = 303) -> func.HttpResponse:
    return func.HttpResponse(status_code=status, headers={"Location": location, "Cache-Control": "no-store",
                                                          **(headers or {})})  # fmt: skip


def _security_headers(nonce: str) -> dict[str, str]:
    csp = (f"default-src 'none'; style-src 'nonce-{nonce}'; img-src 'self'; form-action 'self'; "
           "frame-ancestors 'none'; base-uri 'none'")  # fmt: skip
    return {
        "Content-Security-Policy": csp,
        "X-Content-Type-Options": "nosniff",
        # same-origin, not no-referrer: with no-referrer Chromium sends "Origin: null" on the page's own form
        # posts, which the origin check (rightly) refuses; other sites still get no referrer.
        "Referrer-Policy": "same-origin",
        "X-Frame-Options": "DENY",
        "Cache-Control": "no-store",
    }


def _noun(action: str) -> str:
    return {"approve": "approval", "decline": "decline"}.get(action, "rollback")
