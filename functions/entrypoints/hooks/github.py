"""POST /api/hooks/github: a GitHub webhook delivery; `workflow_run` (completed) starts releases.

Authentication: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body keyed with
MLOPS_GITHUB_WEBHOOK_SECRET>`. `ping` answers 200 {"ok": true}; other events 202 ignored.
Optional MLOPS_GITHUB_WORKFLOWS (comma-separated workflow names or file paths) limits which
workflows start releases. The event id is X-GitHub-Delivery (the same on a redelivery).

``requester`` in the event's data is the triggering actor's login mapped through the optional
MLOPS_GITHUB_IDENTITIES (JSON object: GitHub login -> UPN/email, any case), so the approval policy can
compare it with an approver's identity; absent for an unmapped login. A malformed value answers 503.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs

import azure.functions as func

from functions import bootstrap
from functions.domain.ids import GITHUB
from functions.entrypoints.hooks.common import (
    SAFE_ID,
    InvalidHook,
    NotABuild,
    build_completed_envelope,
    deliver,
    event_id,
    id_text,
    ignored,
    load_json,
    mapping,
    same,
    text,
)
from functions.entrypoints.limits import RequestRejected, check_body_size
from functions.entrypoints.responses import error, json_response
from functions.settings import SettingsError

log = logging.getLogger("mlops.hooks.github")

GITHUB_SOURCE = "hooks/github"
# GitHub's workflow_run conclusion -> Azure DevOps' build result (the contract's vocabulary).
GITHUB_RESULTS = {
    "success": "succeeded",
    "failure": "failed",
    "timed_out": "failed",
    "startup_failure": "failed",
    "cancelled": "canceled",
}


def github(req: func.HttpRequest) -> func.HttpResponse:
    settings = bootstrap.settings()
    secrets = settings.hook_secrets()
    if not secrets.github_secret:
        return error(503, "GitHub hook not configured: set MLOPS_GITHUB_WEBHOOK_SECRET")
    try:
        identities = settings.github_identities()
    except SettingsError as exc:
        return error(503, f"GitHub hook misconfigured: {exc}")
    try:
        body = check_body_size(req.get_body())
    except RequestRejected as exc:
        return error(exc.status, str(exc))
    if not verify_github_signature(secrets.github_secret, body, req.headers.get("x-hub-signature-256")):
        log.warning("github hook: rejected delivery %s: bad or missing signature", _loggable(req, "x-github-delivery"))
        return error(401, "bad or missing X-Hub-Signature-256")
    event_name = (req.headers.get("x-github-event") or "").strip()
    if not event_name:
        return error(400, "missing X-GitHub-Event header")
    if event_name == "ping":
        return json_response({"ok": True})
    try:
        payload = load_json(_form_payload(body) if _is_form(req) else body)
        delivery = req.headers.get("x-github-delivery") or ""
        envelope = github_build_event(event_name, delivery, payload, secrets.github_workflows, identities)
    except InvalidHook as exc:
        return error(400, str(exc))
    except NotABuild as exc:
        return ignored(str(exc))
    return deliver(envelope)


def github_signature(secret: str, body: bytes) -> str:
    """The X-Hub-Signature-256 value GitHub sends for ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_github_signature(secret: str, body: bytes, header: str | None) -> bool:
    if not secret or not header:
        return False
    return same(header.strip(), github_signature(secret, body))


def github_build_event(
    event_name: str,
    delivery: str,
    payload: Any,
    workflows: tuple[str, ...] = (),
    identities: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A GitHub workflow_run delivery (action "completed") as MLOps.BuildCompleted; ``identities`` maps
    lower-case logins to the UPN/email recorded as ``requester`` (Settings.github_identities).

    Raises InvalidHook for a malformed payload, NotABuild for anything that is not a finished run.
    """
    if event_name != "workflow_run":
        raise NotABuild(f"GitHub event {event_name or '(none)'} is not workflow_run")
    if not isinstance(payload, Mapping):
        raise InvalidHook("body must be a JSON object (a GitHub workflow_run payload)")
    run = payload.get("workflow_run")
    if not isinstance(run, Mapping):
        raise InvalidHook("workflow_run payload has no workflow_run object")
    if not delivery.strip():
        raise InvalidHook("missing X-GitHub-Delivery header")
    action = text(payload.get("action"))
    if action != "completed":
        raise NotABuild(f"workflow run {action or '(no action)'}, not completed")
    if workflows and not _workflow_selected(run, workflows):
        raise NotABuild(f"workflow {text(run.get('name')) or '(unnamed)'} is not in MLOPS_GITHUB_WORKFLOWS")
    build_id = id_text(run.get("id"), "workflow_run.id")
    conclusion = text(run.get("conclusion")).lower()
    branch = text(run.get("head_branch"))
    repository = mapping(payload, "repository") or mapping(run, "repository")
    actor = mapping(run, "actor") or mapping(run, "triggering_actor") or mapping(payload, "sender")
    data = {
        "buildSystem": GITHUB,
        "buildId": build_id,
        "buildNumber": text(run.get("run_number")),
        "result": GITHUB_RESULTS.get(conclusion, "none"),
        "sourceVersion": text(run.get("head_sha")),
        "sourceBranch": branch if not branch or branch.startswith("refs/") else f"refs/heads/{branch}",
        "repository": text(repository.get("full_name")),
        "requestedFor": text(actor.get("login")),
    }
    triggering = mapping(run, "triggering_actor") or actor
    requester = (identities or {}).get(text(triggering.get("login")).lower(), "")
    if requester:
        data["requester"] = requester
    moment = text(run.get("updated_at"))
    return build_completed_envelope(event_id("github", delivery.strip()), data, GITHUB_SOURCE, moment)


def _workflow_selected(run: Mapping[str, Any], workflows: tuple[str, ...]) -> bool:
    path = text(run.get("path"))
    names = {text(run.get("name")), path, path.rsplit("/", 1)[-1]} - {""}
    return any(w in names for w in workflows)


def _is_form(req: func.HttpRequest) -> bool:
    return (req.headers.get("content-type") or "").lower().startswith("application/x-www-form-urlencoded")


def _form_payload(body: bytes) -> bytes:
    """GitHub's form content type: the JSON is the `payload` field."""
    try:
        values = parse_qs(body.decode("utf-8"), strict_parsing=True).get("payload")
    except (UnicodeDecodeError, ValueError):
        values = None
    if not values:
        raise InvalidHook("form body has no payload field")
    return values[0].encode()


def _loggable(req: func.HttpRequest, header: str) -> str:
    value = (req.headers.get(header) or "").strip()
    return value if SAFE_ID.fullmatch(value) else "(no valid delivery id)"
