"""GET /api/openapi.json: every HTTP route of function_app.py, described as an OpenAPI 3.0.3 document.

The document is plain dicts built from the entry layer's own constants (limits, header names, states),
so a limit changed in code changes here too; tests/unit/test_openapi.py checks it against the app's
registered routes (paths, methods, function names as operationIds, auth levels) and against the
OpenAPI schema, and tests/e2e/test_openapi_fuzz.py runs schemathesis with it against a real host.
docs/api.md says how to read it.

Conventions the document states once and every operation follows:
- the JSON API answers errors as the ``Error`` schema, ``{"error": "..."}``, with the 4xx that names
  the problem; the approval page (tag ``ui``) answers HTML pages instead, with the same statuses;
- the host's own refusals are JSON errors too: 404 (no route), 405 (method, with ``Allow``), 403 (the
  local host's same-site guard on a POST from another ``Origin``), 413 (a body over its 100 MiB).
"""

from __future__ import annotations

from typing import Any

import azure.functions as func

from functions.domain.input_limits import DEFAULT_PAGE, MAX_CURSOR_DIGITS
from functions.domain.release import State
from functions.entrypoints.hooks import azure_devops, generic
from functions.entrypoints.http_api import MAX_LIST, MAX_TO_CHARS
from functions.entrypoints.identity import easy_auth, local_signature, signed_links
from functions.entrypoints.limits import DEFAULT_LIMITS
from functions.entrypoints.responses import json_response
from functions.entrypoints.ui import sessions
from functions.entrypoints.ui.pages import FORM_LIMITS, FORM_TYPE, MAX_COMMENT

Json = dict[str, Any]

OPENAPI_VERSION = "3.0.3"
ERROR_REF = {"$ref": "#/components/schemas/Error"}
JSON = "application/json"
HTML = "text/html"
UI_TAG = "ui"
GUARD = "Locally, also: a POST from another site's `Origin` (the host's same-site guard)."
STATES = [state.value for state in State]
RELEASE_PARTS = ("job", "candidate", "champion", "gate", "data_checks", "image", "staging", "approval",
                 "production", "operation", "claimed_by")  # fmt: skip

# Security requirements: alternatives, each a set of schemes that go together.
FUNCTION_KEY = (("functionKey",), ("functionKeyHeader",))
# A person, proven: App Service Authentication, or locally the CLI's three signature headers together.
PERSON = (("easyAuth",), ("cliIdentity", "cliTimestamp", "cliSignature"))
IDENTITY = (*PERSON, ("signedLink",))
UI_READER = (("uiSession",), ("easyAuth",))
ANONYMOUS: tuple[tuple[str, ...], ...] = ()

LIMITS = DEFAULT_LIMITS
BODY_LIMITS = (
    f"Request limits (functions/entrypoints/limits.py): a body of at most {LIMITS.max_body_bytes} bytes "
    f"(413 beyond); JSON nested at most {LIMITS.max_json_depth} levels, every string and key at most "
    f"{LIMITS.max_string_chars} characters and valid Unicode (400 beyond)."
)
QUERY_LIMITS = (
    f"Query integers are ASCII digits only (at most {LIMITS.max_query_digits}), within the route's bounds; "
    f"ids and words at most {LIMITS.max_word_chars} characters, at most {LIMITS.max_words} words in a list (400)."
)


def openapi(_: func.HttpRequest) -> func.HttpResponse:
    return json_response(document())


def document() -> Json:
    """The whole OpenAPI document (built on each call: a fraction of a millisecond, nothing shared)."""
    return {
        "openapi": OPENAPI_VERSION,
        "info": _info(),
        "servers": [{"url": "/api", "description": "The Function App's HTTP routes (routePrefix api)"}],
        "tags": _tags(),
        "paths": _paths(),
        "components": {"schemas": _schemas(), "securitySchemes": _security_schemes()},
    }


def _info() -> Json:
    description = (
        "The HTTP API of the ML release orchestrator: read releases, approve or decline one, roll production "
        "back, read dead letters and parked events, the CI webhooks, and the approval page.\n\n"
        'Every JSON error is `{"error": "..."}` (the `Error` schema) with the 4xx that names the problem; '
        "the approval page (`/ui...`) answers HTML pages with the same statuses. The host's own refusals are "
        "JSON errors too: 404 (no route), 405 (wrong method, with `Allow`), 403 (locally, a POST from another "
        "site's `Origin`), 413 (a body over the host's 100 MiB).\n\n"
        f"{BODY_LIMITS} {QUERY_LIMITS}"
    )
    return {"title": "MLOps release orchestrator", "version": "1", "description": description}


def _tags() -> list[Json]:
    return [
        {"name": "releases", "description": "Read releases; decide on one; roll production back."},
        {"name": "operations", "description": "Health, dead letters, parked events, this document."},
        {"name": "hooks", "description": "CI systems report finished builds (each checks its own signature)."},
        {"name": UI_TAG, "description": "The approval page: server-rendered HTML, also for its refusals."},
    ]


# --- paths ---------------------------------------------------------------------------------------------


def _paths() -> Json:
    return {
        "/health": {"get": _health()},
        "/releases": {"get": _list_releases()},
        "/releases/{id}": {"get": _get_release()},
        "/releases/{id}/approve": {"post": _decision("approve_release", "approve")},
        "/releases/{id}/reject": {"post": _decision("decline_release", "decline")},
        "/production/rollback": {"post": _rollback()},
        "/dead-letters": {"get": _dead_letters()},
        "/parked": {"get": _parked()},
        "/hooks/azure-devops": {"post": _azure_devops_hook()},
        "/hooks/github": {"post": _github_hook()},
        "/hooks/generic": {"post": _generic_hook()},
        "/ui": {"get": _ui_releases()},
        "/ui/releases/{id}": {"get": _ui_release()},
        "/ui/releases/{id}/approve": {"post": _ui_decision("ui_approve", "approve")},
        "/ui/releases/{id}/reject": {"post": _ui_decision("ui_decline", "decline")},
        "/ui/releases/{id}/rollback": {"post": _ui_decision("ui_rollback", "rollback")},
        "/ui/login": {"get": _ui_login()},
        "/ui/logout": {"post": _ui_logout()},
        "/openapi.json": {"get": _openapi()},
    }


def _health() -> Json:
    return {
        "operationId": "health",
        "tags": ["operations"],
        "summary": "Liveness: the app is up",
        "security": _security(ANONYMOUS),
        "responses": {"200": _json_response("Up.", _object({"status": {"type": "string", "enum": ["ok"]}}))},
    }


def _list_releases() -> Json:
    return {
        "operationId": "list_releases",
        "tags": ["releases"],
        "summary": "Releases, newest first",
        "description": f"Without `timeline` and the gate's full evaluation (`GET /releases/{{id}}` has them). "
        f"{QUERY_LIMITS}",
        "security": _security(FUNCTION_KEY),
        "parameters": [_limit_parameter("releases"), _states_parameter()],
        "responses": {
            "200": _json_response("The releases.", _object({"releases": _array(_ref("ReleaseSummary"))})),
            "400": _error("A `limit` or `state` outside its bounds."),
        },
    }


def _get_release() -> Json:
    return {
        "operationId": "get_release",
        "tags": ["releases"],
        "summary": "One release, with its timeline and evidence",
        "security": _security(FUNCTION_KEY),
        "parameters": [_release_id()],
        "responses": {
            "200": _json_response("The release.", _ref("Release")),
            "400": _error(f"An id longer than {LIMITS.max_word_chars} characters."),
            "404": _error(f"No such release (or {UNROUTED_ID})."),
            "405": _routed_elsewhere(),
        },
    }


def _decision(operation_id: str, action: str) -> Json:
    said = "approves" if action == "approve" else 'declines (state "declined"; the URL keeps the API\'s word)'
    comment_rule = (
        "" if action == "approve" else ' The approval policy may require a comment to decline (400 "say why").'
    )
    return {
        "operationId": operation_id,
        "tags": ["releases"],
        "summary": f"A person {action}s a release awaiting approval",
        "description": (
            f"A proven person {said} the release. The body is JSON (`Content-Type: application/json`, else 415; "
            'a cross-site form cannot send it); a `"by"` in it is ignored: who decides is proven, never said. '
            f"Identity: App Service Authentication (Azure), a signed link ({signed_links.LINK_HEADER}, single-use, "
            "for this release and action), or locally the `mlops` CLI's signature. The approval policy judges "
            f"who may (403).{comment_rule} {BODY_LIMITS}"
        ),
        "security": _security(IDENTITY),
        "parameters": [_release_id()],
        "requestBody": _json_body(_decision_body()),
        "responses": {
            "200": _json_response("Recorded; the release as it is now.", _ref("Release")),
            "202": _json_response("Approved: the promotion goes on after this answer.", _ref("Release")),
            "400": _error("Not a JSON object, a limit broken, `comment` not a string, or one the policy needs."),
            "401": _error("No proven identity: no credential, a malformed one, a bad signature or a forged link."),
            "403": _error(
                f"Not allowed: the approval policy, or a link for another release, action or person. {GUARD}"
            ),
            "404": _error(f"No such release (or {UNROUTED_ID})."),
            "405": _routed_elsewhere(),
            "409": _error("Decided already, not awaiting approval, a link used already, or a concurrent change."),
            "410": _error("Too late: the approval expired, or the link did."),
            "413": _error(f"A body over {LIMITS.max_body_bytes} bytes."),
            "415": _error("Not `application/json`."),
            "503": _error("The host's signing key is damaged (local), so no signature can be checked."),
        },
    }


def _rollback() -> Json:
    return {
        "operationId": "rollback_production",
        "tags": ["releases"],
        "summary": "Put the previous (or an earlier) version back in production",
        "description": (
            "A new release that puts the version back, tested beside production before traffic moves (202; it "
            "goes live once its direct tests pass). The same protection as a decision: JSON only (415), a proven "
            "person (401; a signed link is refused: links are minted for one release's decision), the approval "
            f"policy (403), a comment (400). {BODY_LIMITS}"
        ),
        "security": _security(PERSON),
        "requestBody": _json_body(_rollback_body()),
        "responses": {
            "202": _json_response("The rollback's release, promoting.", _ref("Release")),
            "400": _error('Not a JSON object, a limit broken, no `comment`, or a bad `"to"`.'),
            "401": _error("No proven identity."),
            "403": _error(f"Not allowed (the approval policy), or a link, which cannot roll back. {GUARD}"),
            "404": _error('No release `"to"` names.'),
            "409": _error("A promotion in flight, a target that never went live, or a concurrent change."),
            "410": _error("An expired link."),
            "413": _error(f"A body over {LIMITS.max_body_bytes} bytes."),
            "415": _error("Not `application/json`."),
            "503": _error("The host's signing key is damaged (local)."),
        },
    }


def _dead_letters() -> Json:
    return _paged(
        "dead_letters",
        "Events the app could not use, newest first",
        "dead_letters",
        _ref("DeadLetter"),
        "Malformed or unusable events and work items, acknowledged and kept with the reason: a bounded "
        "excerpt of the payload's JSON text, with the size and sha256 of the whole.",
    )


def _parked() -> Json:
    return _paged(
        "parked_events",
        "Events kept until their release is ready for them, newest first",
        "parked",
        _ref("ParkedEvent"),
        "An event that arrived before its release could use it waits here until `expires_at`.",
    )


def _paged(operation_id: str, summary: str, key: str, item: Json, description: str) -> Json:
    return {
        "operationId": operation_id,
        "tags": ["operations"],
        "summary": summary,
        "description": f"{description} `next` is the cursor of the next page (`before=`), null on the last.",
        "security": _security(FUNCTION_KEY),
        "parameters": [_limit_parameter(key.replace("_", " ")), _cursor_parameter()],
        "responses": {
            "200": _json_response("One page.", _object({key: _array(item), "next": _nullable_string()})),
            "400": _error("A `limit` outside its bounds, or `before` not a cursor."),
        },
    }


def _azure_devops_hook() -> Json:
    return _hook(
        "azure_devops_hook",
        "An Azure DevOps `build.complete` service hook",
        f"Authentication: basic auth with MLOPS_HOOK_USER / MLOPS_HOOK_SECRET, or `{azure_devops.SECRET_HEADER}: "
        "<MLOPS_HOOK_SECRET>`. The event id is subscriptionId + notificationId (the same on a redelivery); other "
        "event types are ignored (202).",
        (("hookBasic",), ("hookSecret",)),
        {JSON: {"schema": _ado_payload()}},
        unauthorized_headers={"WWW-Authenticate": {"description": "`Basic`", "schema": {"type": "string"}}},
    )


def _github_hook() -> Json:
    hook = _hook(
        "github_hook",
        "A GitHub webhook delivery: `workflow_run` (completed) starts a release",
        "Authentication: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>` keyed with "
        "MLOPS_GITHUB_WEBHOOK_SECRET. `ping` answers 200; other events and unfinished runs are ignored (202). "
        "The event id is X-GitHub-Delivery. The form content type carries the JSON in its `payload` field.",
        (("githubSignature",),),
        {JSON: {"schema": _github_payload()}, "application/x-www-form-urlencoded": {"schema": _github_form()}},
    )
    hook["parameters"] = [
        _header("X-GitHub-Event", "The event name (`workflow_run`, `ping`, ...); missing is 400.", required=True),
        _header("X-GitHub-Delivery", "The delivery's id: the event id (a workflow_run without one is 400)."),
    ]
    hook["responses"]["200"] = _json_response("`ping`.", _object({"ok": {"type": "boolean", "enum": [True]}}))
    return hook


def _generic_hook() -> Json:
    hook = _hook(
        "generic_hook",
        "Any CI system (Jenkins, GitLab CI, Travis CI, ...) says a build finished",
        f"Authentication, keyed with MLOPS_GENERIC_WEBHOOK_SECRET: `{generic.TIMESTAMP_HEADER}` (the sender's "
        f'Unix seconds) and `{generic.SIGNATURE_HEADER}: sha256=<hex HMAC-SHA256 of "<timestamp>.<raw body>">`; '
        "a timestamp outside MLOPS_GENERIC_WEBHOOK_TOLERANCE (default 300 s) is 401, so a captured request "
        f"cannot be replayed later. `{generic.DELIVERY_HEADER}` is the delivery's id, the event id.",
        (("genericTimestamp", "genericSignature"),),
        {JSON: {"schema": _generic_payload()}},
    )
    hook["parameters"] = [
        _header(generic.DELIVERY_HEADER, "The delivery's id (1-100 characters); missing is 400.", required=True),
    ]
    return hook


def _hook(
    operation_id: str,
    summary: str,
    authentication: str,
    security: tuple[tuple[str, ...], ...],
    content: Json,
    unauthorized_headers: Json | None = None,
) -> Json:
    """What the three hooks share. Order of checks: secret configured (503) -> body size (413) ->
    authentication (401, nothing recorded) -> payload (400) -> the service (202)."""
    unauthorized = _error("Bad or missing credentials; nothing is recorded.")
    if unauthorized_headers:
        unauthorized["headers"] = unauthorized_headers
    return {
        "operationId": operation_id,
        "tags": ["hooks"],
        "summary": summary,
        "description": f"{authentication} Checks in order: configured (503), body size (413), authentication "
        f"(401), payload (400), then the service (202). {BODY_LIMITS}",
        "security": _security(security),
        "requestBody": {"required": True, "content": content},
        "responses": {
            "202": _json_response("Accepted: handled, a duplicate, parked, ignored or dead-lettered.", _ref("Hook")),
            "400": _error("Not a delivery this hook understands; the message says why."),
            "401": unauthorized,
            "403": _error(GUARD),
            "413": _error(f"A body over {LIMITS.max_body_bytes} bytes."),
            "503": _error("The hook's secret is not configured (the hook never accepts unauthenticated)."),
        },
    }


def _ui_releases() -> Json:
    return _ui_page(
        "ui_releases",
        "The approval page: releases, filtered by state",
        [_states_parameter()],
        {"200": _html("The list."), "400": _html("A `state` that is not one (once signed in).")},
    )


def _ui_release() -> Json:
    return _ui_page(
        "ui_release",
        "One release with its evidence, timeline and the approve / decline forms",
        [_release_id()],
        {
            "200": _html("The release's page."),
            "400": _html(f"An id longer than {LIMITS.max_word_chars} characters."),
            "404": _html_or_error(f"No such release (or, as JSON, {UNROUTED_ID})."),
            "405": _routed_elsewhere(),
        },
    )


def _ui_page(operation_id: str, summary: str, parameters: list[Json], responses: Json) -> Json:
    signed_out = {
        "302": _redirect("Azure: to App Service Authentication's sign-in, then back."),
        "401": _html("Locally, not signed in: how to (`mlops ui`)."),
        "503": _html("Azure without App Service Authentication: this page cannot sign anyone in."),
    }
    return {
        "operationId": operation_id,
        "tags": [UI_TAG],
        "summary": summary,
        "description": "HTML. The reader is proven: App Service Authentication on Azure, locally the session "
        f"cookie `{sessions.COOKIE}` the one-time sign-in link sets.",
        "security": _security(UI_READER),
        "parameters": parameters,
        "responses": {**responses, **signed_out},
    }


def _ui_decision(operation_id: str, action: str) -> Json:
    what = "this release's version back in production (a new, tested release)" if action == "rollback" else action
    return {
        "operationId": operation_id,
        "tags": [UI_TAG],
        "summary": f"The page's {action} form",
        "description": (
            f"A signed-in reader's form post: {what}. It needs the form's own signed `token` (served on the "
            "release's page for this reader, release and action), a request from the page's own origin (`Origin` / "
            "`Sec-Fetch-Site`), then the approval policy judges it as the API's decisions. Success is a 303 to "
            "the release's page; refusals are the release's page or a message, with the API's status. "
            f"A form of at most {FORM_LIMITS.max_body_bytes} bytes (413), a comment of at most {MAX_COMMENT} "
            "characters (400)."
        ),
        "security": _security(UI_READER),
        "parameters": [_release_id()],
        "requestBody": {"required": True, "content": {FORM_TYPE: {"schema": _decision_form()}}},
        "responses": {
            "303": _redirect("Recorded: to the release's page (a rollback: the new release's)."),
            "400": _html("An id or comment too long, or not UTF-8 form data."),
            "401": _html("Not signed in."),
            "403": _html_or_error("Another site's request, a form not served to this reader, or the policy."),
            "404": _html_or_error(f"No such release (or, as JSON, {UNROUTED_ID})."),
            "405": _routed_elsewhere(),
            "409": _html("Decided already, the form sent already, or a concurrent change."),
            "410": _html("Too late: the approval expired."),
            "413": _html_or_error(f"A form over {FORM_LIMITS.max_body_bytes} bytes."),
            "415": _html(f"Not a form post (`{FORM_TYPE}`)."),
            "503": _html("The page's signing key is damaged or missing: no form can be checked."),
        },
    }


def _ui_login() -> Json:
    return {
        "operationId": "ui_login",
        "tags": [UI_TAG],
        "summary": "The local one-time sign-in link (`mlops ui`); on Azure, App Service Authentication's",
        "description": "Locally the link's `token` (10 minutes, single-use) signs its person in: the session "
        f"cookie `{sessions.COOKIE}` (HttpOnly, SameSite=Strict, 8 hours), then a 303 to `next` (one of the "
        "page's own paths, else the list).",
        "security": _security(ANONYMOUS),
        "parameters": [
            _query("token", {"type": "string"}, "The sign-in link's token."),
            _query("next", {"type": "string"}, "Where to go once signed in: a path under /api/ui."),
        ],
        "responses": {
            "302": _redirect("Azure: to App Service Authentication's sign-in."),
            "303": _redirect("Signed in: to `next`.", set_cookie=True),
            "401": _html("A forged or malformed link."),
            "409": _html("A link used already."),
            "410": _html("An expired link."),
            "503": _html("The local signing key is damaged; or, on Azure, no App Service Authentication."),
        },
    }


def _ui_logout() -> Json:
    return {
        "operationId": "ui_logout",
        "tags": [UI_TAG],
        "summary": "Sign out of the page (the session cookie cleared)",
        "security": _security(ANONYMOUS),
        "responses": {
            "200": _html("Signed out.", set_cookie=True),
            "403": _html_or_error("Another site's request."),
            "413": _html_or_error(f"A body over {FORM_LIMITS.max_body_bytes} bytes."),
        },
    }


def _openapi() -> Json:
    return {
        "operationId": "openapi",
        "tags": ["operations"],
        "summary": "This document (OpenAPI 3.0.3)",
        "security": _security(ANONYMOUS),
        "responses": {"200": _json_response("The OpenAPI document.", {"type": "object"})},
    }


# --- parameters and bodies -----------------------------------------------------------------------------


def _release_id() -> Json:
    # No "/" and no line break: the host would route the path elsewhere, or nowhere (UNROUTED_ID).
    schema = {"type": "string", "minLength": 1, "maxLength": LIMITS.max_word_chars, "pattern": r"^[^/\n]+$"}
    return {"name": "id", "in": "path", "required": True, "description": "The release id.", "schema": schema}


UNROUTED_ID = "the host's own answer for an id with `/` or a line break, which does not reach this route"


def _routed_elsewhere() -> Json:
    """405 from the host: an id with "/" can make the path another route's, which takes another method."""
    response = _error(f"Not this route: {UNROUTED_ID} (another route's path, with `Allow`).")
    response["headers"] = {"Allow": _response_header("That route's methods.", required=True)}
    return response


def _limit_parameter(what: str) -> Json:
    schema = {"type": "integer", "minimum": 1, "maximum": MAX_LIST, "default": DEFAULT_PAGE}
    return _query("limit", schema, f"How many {what} (ASCII digits, 1-{MAX_LIST}); 400 outside.")


def _states_parameter() -> Json:
    """``state=live,failed``: a pattern, not an array, says exactly what the app reads: empty entries are
    skipped (``state=live,`` is ``state=live``, ``state=`` every state), the rest at most max_words states."""
    state = f"(?:{'|'.join(STATES)})"
    pattern = f"^,*(?:{state}(?:,+{state}){{0,{LIMITS.max_words - 1}}},*)?$"
    description = (
        f"Only releases in these states, comma-separated (`live,failed`; at most {LIMITS.max_words}, each one of "
        f"{', '.join(STATES)}); empty entries are skipped. Anything else is 400."
    )
    return _query("state", {"type": "string", "pattern": pattern}, description)


def _cursor_parameter() -> Json:
    schema = {"type": "string", "pattern": f"^[0-9]{{0,{MAX_CURSOR_DIGITS}}}$", "maxLength": MAX_CURSOR_DIGITS}
    description = "The `next` of the previous page: an opaque cursor of ASCII digits (400 else); empty: the first page."
    return _query("before", schema, description)


def _query(name: str, schema: Json, description: str) -> Json:
    return {"name": name, "in": "query", "required": False, "description": description, "schema": schema}


def _header(name: str, description: str, required: bool = False) -> Json:
    schema = {"type": "string"}
    return {"name": name, "in": "header", "required": required, "description": description, "schema": schema}


def _decision_body() -> Json:
    comment = _string(f"Why (at most {LIMITS.max_string_chars} characters, as any JSON string).")
    return _object({"comment": comment}, required=[], additional=True)


def _rollback_body() -> Json:
    comment = _string("Why (required, not blank).") | {"pattern": NOT_BLANK}
    to = _nullable_string("A release id or model version; the previous one when absent.")
    to |= {"minLength": 1, "maxLength": MAX_TO_CHARS, "pattern": NOT_BLANK}
    return _object({"comment": comment, "to": to}, required=["comment"], additional=True)


# Something str.strip() leaves: a character outside \s, and outside the controls Python strips too.
NOT_BLANK = r"[^\s\x1c-\x1f\x85]"


def _decision_form() -> Json:
    """The fields the page's own form sends; the app reads at most 10 fields (400 beyond)."""
    comment = _string(f"Why (at most {MAX_COMMENT} characters).") | {"maxLength": MAX_COMMENT}
    properties = {"token": _string("The form's signed token, served with the page."), "comment": comment}
    return _object(properties, required=[], additional=False)


def _ado_payload() -> Json:
    resource = _object({"id": _id_value(), "result": {"type": "string"}}, required=[], additional=True)
    properties = {"eventType": {"type": "string"}, "notificationId": _id_value(), "resource": resource}
    return _object(properties, required=["eventType"], additional=True)


def _github_payload() -> Json:
    run = _object({"id": _id_value(), "conclusion": {"type": "string"}}, required=[], additional=True)
    properties = {"action": {"type": "string"}, "workflow_run": run}
    return _object(properties, required=[], additional=True)


def _github_form() -> Json:
    return _object({"payload": _string("The JSON payload.")}, required=["payload"], additional=True)


def _generic_payload() -> Json:
    properties = {
        "system": _string("The CI system (default generic); ado, github and cli have their own ways in."),
        "buildId": _id_value(),
        "buildNumber": _id_value(),
        "result": _string("SUCCESS, UNSTABLE, FAILURE, ABORTED, succeeded, failed, canceled, ..."),
        "commit": _string("The commit's sha."),
        "branch": _string("The branch (refs/heads/ added when missing)."),
        "repository": _string("org/repo"),
        "requestedBy": _string("Who started the build (an email counts for the self-approval rule)."),
        "parameters": {"type": "object", "description": "Training parameters.", "additionalProperties": True},
    }
    return _object(properties, required=["buildId", "result"], additional=False)


def _json_body(schema: Json) -> Json:
    """Required: the Content-Type must say JSON (415 without), though an empty body counts as {}."""
    return {"required": True, "content": {JSON: {"schema": schema}}}


# --- responses -----------------------------------------------------------------------------------------


def _json_response(description: str, schema: Json) -> Json:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def _error(description: str) -> Json:
    return {"description": description, "content": {JSON: {"schema": dict(ERROR_REF)}}}


def _html(description: str, *, set_cookie: bool = False) -> Json:
    response: Json = {"description": description, "content": {HTML: {"schema": {"type": "string"}}}}
    if set_cookie:
        response["headers"] = {"Set-Cookie": _response_header(f"`{sessions.COOKIE}`", required=True)}
    return response


def _html_or_error(description: str) -> Json:
    """A page refusal, or the same status from the host before the page runs (JSON, like every host error)."""
    response = _html(f"{description} (The host's own is JSON.)")
    response["content"][JSON] = {"schema": dict(ERROR_REF)}
    return response


def _redirect(description: str, *, set_cookie: bool = False) -> Json:
    headers = {"Location": _response_header("Where to.", required=True)}
    if set_cookie:
        headers["Set-Cookie"] = _response_header(f"`{sessions.COOKIE}`", required=True)
    return {"description": description, "headers": headers}


def _response_header(description: str, *, required: bool) -> Json:
    return {"description": description, "required": required, "schema": {"type": "string"}}


# --- schemas -------------------------------------------------------------------------------------------


def _schemas() -> Json:
    return {
        "Error": _object({"error": _string("What is wrong, for a person to read.")}, required=["error"]),
        "Release": _release(summary=False),
        "ReleaseSummary": _release(summary=True),
        "DeadLetter": _dead_letter(),
        "ParkedEvent": _parked_event(),
        "Hook": _hook_answer(),
    }


def _release(*, summary: bool) -> Json:
    maybe_object = {"type": "object", "nullable": True, "additionalProperties": True}
    properties: Json = {
        "id": {"type": "string"},
        "state": {"type": "string", "enum": STATES},
        "trigger": {"type": "object", "additionalProperties": True},
        "params": {"type": "object", "additionalProperties": True},
        "created_at": {"type": "string"},
        "updated_at": {"type": "string"},
        "step_started_at": {"type": "string"},
        "step_attempts": {"type": "integer"},
        **{name: dict(maybe_object) for name in RELEASE_PARTS},
        "error": _nullable_string(),
        "version": {"type": "integer"},
    }
    if not summary:
        properties["timeline"] = _array({"type": "object", "additionalProperties": True})
    description = "A release without its timeline" if summary else "A release, with its timeline"
    schema = _object(properties, required=["id", "state", "trigger", "version"], additional=True)
    return schema | {"description": description}


def _dead_letter() -> Json:
    properties = {
        "event_id": {"type": "string"},
        "event_type": {"type": "string"},
        "function": {"type": "string"},
        "reason": {"type": "string"},
        "received_at": {"type": "string"},
        "size": {
            "type": "integer",
            "minimum": 0,
            "description": "Bytes of the whole payload's JSON text as the app writes it (ASCII, non-ASCII escaped).",
        },
        "sha256": {"type": "string", "description": "Of that JSON text (hex)."},
        "excerpt": {"type": "string", "description": "The start of the payload's JSON text."},
        "truncated": {"type": "boolean", "description": "Whether the excerpt is shorter than the payload."},
    }
    return _object(properties, required=list(properties))


def _parked_event() -> Json:
    names = ("release_id", "event_id", "event_type", "parked_at", "expires_at")
    return _object({name: {"type": "string"} for name in names}, required=list(names))


def _hook_answer() -> Json:
    outcomes = ["handled", "duplicate", "stale", "parked", "ignored", "dead_lettered"]
    properties = {
        "outcome": {"type": "string", "enum": outcomes},
        "eventId": {"type": "string"},
        "releaseId": {"type": "string"},
        "reason": {"type": "string"},
    }
    return _object(properties, required=["outcome"])


def _object(properties: Json, *, required: list[str] | None = None, additional: bool = True) -> Json:
    schema: Json = {"type": "object", "properties": properties, "additionalProperties": additional}
    names = list(properties) if required is None else required
    if names:
        schema["required"] = names
    return schema


def _array(items: Json) -> Json:
    return {"type": "array", "items": items}


def _string(description: str) -> Json:
    return {"type": "string", "description": description}


def _nullable_string(description: str = "") -> Json:
    schema: Json = {"type": "string", "nullable": True}
    return schema | ({"description": description} if description else {})


def _id_value() -> Json:
    """An id CI systems send as a number or as text."""
    return {"oneOf": [{"type": "string"}, {"type": "integer"}]}


def _ref(name: str) -> Json:
    return {"$ref": f"#/components/schemas/{name}"}


# --- security ------------------------------------------------------------------------------------------

KEY_NOTE = "On Azure the platform answers 401 (no body) without it; the local host does not check keys."
# name -> (where the credential goes, its name there, what it is)
API_KEYS = {
    "functionKey": ("query", "code", f"The Function App's function key. {KEY_NOTE}"),
    "functionKeyHeader": ("header", "x-functions-key", f"The function key as a header. {KEY_NOTE}"),
    "easyAuth": (
        "header",
        easy_auth.PRINCIPAL_HEADER,
        "App Service Authentication's principal (base64 JSON), injected by the platform; it counts only on Azure "
        "with Authentication on (WEBSITE_AUTH_ENABLED), where callers cannot set it.",
    ),
    "signedLink": (
        "header",
        signed_links.LINK_HEADER,
        "A single-use link for one person, release and action: forged 401, expired 410, another release or "
        "action 403, used 409.",
    ),
    "cliIdentity": ("header", local_signature.IDENTITY_HEADER, "Locally: who signs (`mlops approve`, `reject`)."),
    "cliTimestamp": (
        "header",
        local_signature.TIMESTAMP_HEADER,
        f"Locally: Unix seconds, within {local_signature.WINDOW_S} s of the host's clock.",
    ),
    "cliSignature": (
        "header",
        local_signature.SIGNATURE_HEADER,
        "Locally: hex HMAC-SHA256 over METHOD, PATH, TIMESTAMP, IDENTITY and sha256(BODY), keyed with the key in "
        "$MLOPS_HOME.",
    ),
    "hookSecret": ("header", azure_devops.SECRET_HEADER, "MLOPS_HOOK_SECRET."),
    "githubSignature": ("header", "X-Hub-Signature-256", "sha256=<hex HMAC-SHA256 of the body>, as GitHub sends it."),
    "genericTimestamp": ("header", generic.TIMESTAMP_HEADER, "The sender's Unix seconds."),
    "genericSignature": ("header", generic.SIGNATURE_HEADER, 'sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">.'),
    "uiSession": ("cookie", sessions.COOKIE, "Locally: the session the one-time sign-in link sets."),
}


def _security_schemes() -> Json:
    schemes: Json = {
        name: {"type": "apiKey", "in": where, "name": key, "description": description}
        for name, (where, key, description) in API_KEYS.items()
    }
    schemes["hookBasic"] = {"type": "http", "scheme": "basic", "description": "MLOPS_HOOK_USER : MLOPS_HOOK_SECRET."}
    return schemes


def _security(alternatives: tuple[tuple[str, ...], ...]) -> list[Json]:
    """OpenAPI's security requirements: any one alternative, all of its schemes together ([]: anonymous)."""
    return [{name: [] for name in names} for names in alternatives]
