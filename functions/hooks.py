"""Build-system webhooks: Azure DevOps `build.complete` service hooks and GitHub `workflow_run` deliveries.

Each delivery becomes the MLOps.BuildCompleted event a CI step would publish to the custom topic
(`mlops publish build-completed`) and goes through the same orchestrator entry point as an Event Grid
delivery to `on_build_event`, so a release starts only for a successful build, and duplicates and
stale events are the orchestrator's business.

Order of checks: secret configured (else 503, never accept unauthenticated) -> body size (413) ->
authentication (401, nothing recorded) -> payload (400) -> the orchestrator (202).

- Azure DevOps: `Authorization: Basic` whose user and password equal MLOPS_HOOK_USER and
  MLOPS_HOOK_SECRET, or a custom header `X-MLOps-Secret: <MLOPS_HOOK_SECRET>`.
- GitHub: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body keyed with
  MLOPS_GITHUB_WEBHOOK_SECRET>`. `ping` answers 200 {"ok": true}; other events 202 ignored.
  Optional MLOPS_GITHUB_WORKFLOWS (comma-separated workflow names or file paths) limits which
  workflows start releases.

Replay: the BuildCompleted event id is derived from the delivery, not made up per request: GitHub's
X-GitHub-Delivery (the same on a redelivery) and Azure DevOps' subscriptionId + notificationId, so a
replayed delivery is a duplicate event for the orchestrator. A replay under another delivery id still
names the same build, and the same build id maps to the same release, which does not start twice.
Secrets are read from the environment on every request (`hook_secrets`) and never logged.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import azure.functions as func

from functions import bootstrap
from functions.domain.events import BUILD_COMPLETED
from functions.domain.ids import release_id_for_build
from functions.orchestrator import Outcome

if TYPE_CHECKING:
    from functions.orchestrator import Orchestrator

log = logging.getLogger("mlops.hooks")

BUILD_FUNCTION = "on_build_event"
MAX_BODY_BYTES = 2 * 1024 * 1024
SECRET_HEADER = "X-MLOps-Secret"
ADO_EVENT_TYPE = "build.complete"
ADO_SOURCE = "hooks/azure-devops"
GITHUB_SOURCE = "hooks/github"
# Azure DevOps' build results; old (XAML-era) payloads carry the result in "status".
ADO_RESULTS = {r.lower(): r for r in ("succeeded", "partiallySucceeded", "failed", "canceled", "stopped", "none")}
# GitHub's workflow_run conclusion -> Azure DevOps' build result (the contract's vocabulary).
GITHUB_RESULTS = {
    "success": "succeeded",
    "failure": "failed",
    "timed_out": "failed",
    "startup_failure": "failed",
    "cancelled": "canceled",
}
_SAFE_ID = re.compile(r"[A-Za-z0-9._-]{1,100}")


class InvalidHook(ValueError):
    """The body is not a delivery this hook understands (HTTP 400); the message says why."""


class NotABuild(Exception):
    """An authenticated delivery that starts nothing (another event type, a run still in progress)."""


# ---- settings ------------------------------------------------------------------------------
@dataclass(frozen=True)
class HookSecrets:
    ado_user: str = field(default="", repr=False)
    ado_secret: str = field(default="", repr=False)
    github_secret: str = field(default="", repr=False)
    github_workflows: tuple[str, ...] = ()


def hook_secrets(env: Mapping[str, str] | None = None) -> HookSecrets:
    """The hooks' settings, read at request time (rotating a secret needs no restart)."""
    env = os.environ if env is None else env
    workflows = (env.get("MLOPS_GITHUB_WORKFLOWS") or "").split(",")
    return HookSecrets(
        ado_user=(env.get("MLOPS_HOOK_USER") or "").strip(),
        ado_secret=_secret(env, "MLOPS_HOOK_SECRET"),
        github_secret=_secret(env, "MLOPS_GITHUB_WEBHOOK_SECRET"),
        github_workflows=tuple(w.strip() for w in workflows if w.strip()),
    )


def _secret(env: Mapping[str, str], name: str) -> str:
    """A secret setting; an unresolved Key Vault reference counts as not configured, never as the secret."""
    value = (env.get(name) or "").strip()
    return "" if value.startswith("@Microsoft.KeyVault(") else value


def orchestrator() -> Orchestrator:
    """Where the hooks hand their events; tests replace this function (monkeypatch) with a fake-backed one."""
    return bootstrap.orchestrator()


# ---- authentication (pure) ------------------------------------------------------------------
def _same(given: str, expected: str) -> bool:
    """Constant-time comparison; str.encode keeps non-ASCII input from raising in compare_digest."""
    return hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode("utf-8", "replace"))


def github_signature(secret: str, body: bytes) -> str:
    """The X-Hub-Signature-256 value GitHub sends for ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_github_signature(secret: str, body: bytes, header: str | None) -> bool:
    if not secret or not header:
        return False
    return _same(header.strip(), github_signature(secret, body))


def verify_basic_auth(header: str | None, user: str, secret: str) -> bool:
    if not header or not user or not secret:
        return False
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return False
    given_user, sep, given_secret = decoded.partition(":")
    # Both compared every time (no early exit on a wrong user name).
    user_ok = _same(given_user, user)
    secret_ok = _same(given_secret, secret)
    return bool(sep) and user_ok and secret_ok


def verify_ado_request(headers: Mapping[str, str], secrets: HookSecrets) -> bool:
    """Basic auth (MLOPS_HOOK_USER / MLOPS_HOOK_SECRET) or the X-MLOps-Secret header."""
    if not secrets.ado_secret:
        return False
    lowered = {name.lower(): value for name, value in headers.items()}
    shared = lowered.get(SECRET_HEADER.lower())
    shared_ok = shared is not None and _same(shared.strip(), secrets.ado_secret)
    basic_ok = verify_basic_auth(lowered.get("authorization"), secrets.ado_user, secrets.ado_secret)
    return shared_ok or basic_ok


# ---- mapping (pure) -------------------------------------------------------------------------
def build_completed_envelope(event_id: str, data: dict[str, Any], source: str, moment: str = "") -> dict[str, Any]:
    """The MLOps.BuildCompleted event (Event Grid schema) the custom topic would deliver."""
    return {
        "id": event_id,
        "topic": source,
        "subject": f"builds/{data['buildId']}",
        "eventType": BUILD_COMPLETED,
        "eventTime": moment or datetime.now(UTC).isoformat(),
        "data": data,
        "dataVersion": "1.0",
    }


def ado_build_event(payload: Any) -> dict[str, Any]:
    """An Azure DevOps build.complete service-hook payload as MLOps.BuildCompleted.

    Raises InvalidHook for a malformed payload, NotABuild for another event type.
    """
    if not isinstance(payload, Mapping):
        raise InvalidHook("body must be a JSON object (an Azure DevOps service hook payload)")
    event_type = payload.get("eventType")
    if not isinstance(event_type, str) or not event_type:
        raise InvalidHook("payload has no eventType")
    if event_type != ADO_EVENT_TYPE:
        raise NotABuild(f"event type {event_type} is not {ADO_EVENT_TYPE}")
    resource = payload.get("resource")
    if not isinstance(resource, Mapping):
        raise InvalidHook("build.complete payload has no resource object")
    build_id = _id_text(resource.get("id"), "resource.id")
    result = _text(resource.get("result"))
    if not result and _text(resource.get("status")).lower() in ADO_RESULTS:
        result = _text(resource.get("status"))
    if not result:
        raise InvalidHook("build.complete payload has no resource.result")
    result = ADO_RESULTS.get(result.lower(), result)
    commit, branch = _text(resource.get("sourceVersion")), _text(resource.get("sourceBranch"))
    get_version = _text(resource.get("sourceGetVersion"))  # "LG:refs/heads/main:<sha>" in old payloads
    if get_version.startswith("LG:") and get_version.count(":") >= 2:
        old_branch, _, old_commit = get_version[3:].rpartition(":")
        commit, branch = commit or old_commit, branch or old_branch
    repository = _object(resource, "repository")
    data = {
        "buildId": build_id,
        "buildNumber": _text(resource.get("buildNumber")),
        "result": result,
        "sourceVersion": commit,
        "sourceBranch": branch,
        "repository": _text(repository.get("name")) or _text(repository.get("id")),
        "requestedFor": _ado_requested_for(resource),
    }
    notification = payload.get("notificationId")
    if isinstance(notification, int | str) and not isinstance(notification, bool) and str(notification).strip():
        event_id = _event_id("ado", _text(payload.get("subscriptionId")) or "none", str(notification).strip())
    elif _text(payload.get("id")):
        event_id = _event_id("ado", _text(payload.get("id")))
    else:
        raise InvalidHook("payload has neither notificationId nor id")
    moment = _text(resource.get("finishTime")) or _text(payload.get("createdDate"))
    return build_completed_envelope(event_id, data, ADO_SOURCE, moment)


def _ado_requested_for(resource: Mapping[str, Any]) -> str:
    identities = [_object(resource, "requestedFor")]
    requests = resource.get("requests")
    if isinstance(requests, list) and requests and isinstance(requests[0], Mapping):
        identities.append(_object(requests[0], "requestedFor"))
    for identity in identities:
        name = _text(identity.get("uniqueName")) or _text(identity.get("displayName"))
        if name:
            return name
    return ""


def github_build_event(event_name: str, delivery: str, payload: Any, workflows: tuple[str, ...] = ()) -> dict[str, Any]:
    """A GitHub workflow_run delivery (action "completed") as MLOps.BuildCompleted.

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
    action = _text(payload.get("action"))
    if action != "completed":
        raise NotABuild(f"workflow run {action or '(no action)'}, not completed")
    if workflows and not _workflow_selected(run, workflows):
        raise NotABuild(f"workflow {_text(run.get('name')) or '(unnamed)'} is not in MLOPS_GITHUB_WORKFLOWS")
    build_id = _id_text(run.get("id"), "workflow_run.id")
    conclusion = _text(run.get("conclusion")).lower()
    branch = _text(run.get("head_branch"))
    repository = _object(payload, "repository") or _object(run, "repository")
    actor = _object(run, "actor") or _object(run, "triggering_actor") or _object(payload, "sender")
    data = {
        "buildId": build_id,
        "buildNumber": _text(run.get("run_number")),
        "result": GITHUB_RESULTS.get(conclusion, "none"),
        "sourceVersion": _text(run.get("head_sha")),
        "sourceBranch": branch if not branch or branch.startswith("refs/") else f"refs/heads/{branch}",
        "repository": _text(repository.get("full_name")),
        "requestedFor": _text(actor.get("login")),
    }
    moment = _text(run.get("updated_at"))
    return build_completed_envelope(_event_id("github", delivery.strip()), data, GITHUB_SOURCE, moment)


def _workflow_selected(run: Mapping[str, Any], workflows: tuple[str, ...]) -> bool:
    path = _text(run.get("path"))
    names = {_text(run.get("name")), path, path.rsplit("/", 1)[-1]} - {""}
    return any(w in names for w in workflows)


def _event_id(prefix: str, *parts: str) -> str:
    """A stable event id from the delivery's own ids: readable when safe, else hashed."""
    if all(_SAFE_ID.fullmatch(part) for part in parts):
        return "-".join((prefix, *parts))
    return f"{prefix}-{hashlib.sha256(':'.join(parts).encode()).hexdigest()[:32]}"


def _text(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        return ""
    return str(value).strip()


def _id_text(value: Any, name: str) -> str:
    text = _text(value)
    if not text:
        raise InvalidHook(f"payload has no {name} (a number or a string)")
    return text


def _object(container: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = container.get(key)
    return value if isinstance(value, Mapping) else {}


# ---- HTTP entry points ----------------------------------------------------------------------
def azure_devops(req: func.HttpRequest) -> func.HttpResponse:
    """POST /api/hooks/azure-devops: an Azure DevOps build.complete service hook."""
    secrets = hook_secrets()
    if not secrets.ado_secret:
        return _error(503, "Azure DevOps hook not configured: set MLOPS_HOOK_SECRET")
    body = req.get_body()
    if len(body) > MAX_BODY_BYTES:
        return _error(413, f"body larger than {MAX_BODY_BYTES} bytes")
    if not verify_ado_request(req.headers, secrets):
        log.warning("azure-devops hook: rejected a request without valid credentials")
        return _json(
            {"error": f"authentication required: basic auth or the {SECRET_HEADER} header"},
            401,
            headers={"WWW-Authenticate": 'Basic realm="mlops-hooks", charset="UTF-8"'},
        )
    try:
        envelope = ado_build_event(_load_json(body))
    except InvalidHook as exc:
        return _error(400, str(exc))
    except NotABuild as exc:
        return _json({"outcome": Outcome.IGNORED.value, "reason": str(exc)}, 202)
    return _deliver(envelope)


def github(req: func.HttpRequest) -> func.HttpResponse:
    """POST /api/hooks/github: a GitHub webhook delivery (workflow_run starts releases)."""
    secrets = hook_secrets()
    if not secrets.github_secret:
        return _error(503, "GitHub hook not configured: set MLOPS_GITHUB_WEBHOOK_SECRET")
    body = req.get_body()
    if len(body) > MAX_BODY_BYTES:
        return _error(413, f"body larger than {MAX_BODY_BYTES} bytes")
    if not verify_github_signature(secrets.github_secret, body, req.headers.get("x-hub-signature-256")):
        log.warning("github hook: rejected delivery %s: bad or missing signature", _loggable(req, "x-github-delivery"))
        return _error(401, "bad or missing X-Hub-Signature-256")
    event_name = (req.headers.get("x-github-event") or "").strip()
    if not event_name:
        return _error(400, "missing X-GitHub-Event header")
    if event_name == "ping":
        return _json({"ok": True})
    try:
        payload = _load_json(_form_payload(body) if _is_form(req) else body)
        envelope = github_build_event(event_name, req.headers.get("x-github-delivery") or "", payload,
                                      secrets.github_workflows)  # fmt: skip
    except InvalidHook as exc:
        return _error(400, str(exc))
    except NotABuild as exc:
        return _json({"outcome": Outcome.IGNORED.value, "reason": str(exc)}, 202)
    return _deliver(envelope)


def _deliver(envelope: dict[str, Any]) -> func.HttpResponse:
    data = envelope["data"]
    outcome = orchestrator().receive(BUILD_FUNCTION, envelope)
    answer: dict[str, Any] = {"outcome": outcome.value, "eventId": envelope["id"]}
    if outcome is Outcome.IGNORED:
        answer["reason"] = f"build {data['buildId']} result {data['result']}: no release"
    elif outcome is Outcome.DEAD_LETTERED:
        answer["reason"] = "the event could not be processed; see /api/dead-letters"
    else:
        answer["releaseId"] = release_id_for_build(data["buildId"])
    log.info("%s: build %s %s -> %s", envelope["topic"], data["buildId"], data["result"], outcome.value)
    return _json(answer, 202)


def _load_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise InvalidHook("body must be JSON") from None


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
    return value if _SAFE_ID.fullmatch(value) else "(no valid delivery id)"


def _json(document: Any, status: int = 200, headers: dict[str, str] | None = None) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(document), status_code=status, mimetype="application/json", headers=headers)


def _error(status: int, message: str) -> func.HttpResponse:
    return _json({"error": message}, status)
