"""POST /api/hooks/azure-devops: an Azure DevOps `build.complete` service hook.

Authentication: `Authorization: Basic` whose user and password equal MLOPS_HOOK_USER and
MLOPS_HOOK_SECRET, or a custom header `X-MLOps-Secret: <MLOPS_HOOK_SECRET>`. The event id is
subscriptionId + notificationId (the same on a redelivery). ``requester`` in the event's data is
requestedFor.uniqueName (a UPN) when the payload has one, for the approval policy's self-approval rule.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Mapping
from typing import Any

import azure.functions as func

from functions import bootstrap
from functions.domain.ids import ADO
from functions.entrypoints.hooks.common import (
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
from functions.settings import HookSecrets

log = logging.getLogger("mlops.hooks.azure_devops")

SECRET_HEADER = "X-MLOps-Secret"
ADO_EVENT_TYPE = "build.complete"
ADO_SOURCE = "hooks/azure-devops"
# Azure DevOps' build results; old (XAML-era) payloads carry the result in "status".
ADO_RESULTS = {r.lower(): r for r in ("succeeded", "partiallySucceeded", "failed", "canceled", "stopped", "none")}


def azure_devops(req: func.HttpRequest) -> func.HttpResponse:
    secrets = bootstrap.settings().hook_secrets()
    if not secrets.ado_secret:
        return error(503, "Azure DevOps hook not configured: set MLOPS_HOOK_SECRET")
    try:
        body = check_body_size(req.get_body())
    except RequestRejected as exc:
        return error(exc.status, str(exc))
    if not verify_ado_request(req.headers, secrets):
        log.warning("azure-devops hook: rejected a request without valid credentials")
        return json_response(
            {"error": f"authentication required: basic auth or the {SECRET_HEADER} header"},
            401,
            headers={"WWW-Authenticate": 'Basic realm="mlops-hooks", charset="UTF-8"'},
        )
    try:
        envelope = ado_build_event(load_json(body))
    except InvalidHook as exc:
        return error(400, str(exc))
    except NotABuild as exc:
        return ignored(str(exc))
    return deliver(envelope)


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
    user_ok = same(given_user, user)
    secret_ok = same(given_secret, secret)
    return bool(sep) and user_ok and secret_ok


def verify_ado_request(headers: Mapping[str, str], secrets: HookSecrets) -> bool:
    """Basic auth (MLOPS_HOOK_USER / MLOPS_HOOK_SECRET) or the X-MLOps-Secret header."""
    if not secrets.ado_secret:
        return False
    lowered = {name.lower(): value for name, value in headers.items()}
    shared = lowered.get(SECRET_HEADER.lower())
    shared_ok = shared is not None and same(shared.strip(), secrets.ado_secret)
    basic_ok = verify_basic_auth(lowered.get("authorization"), secrets.ado_user, secrets.ado_secret)
    return shared_ok or basic_ok


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
    build_id = id_text(resource.get("id"), "resource.id")
    result = text(resource.get("result"))
    if not result and text(resource.get("status")).lower() in ADO_RESULTS:
        result = text(resource.get("status"))
    if not result:
        raise InvalidHook("build.complete payload has no resource.result")
    result = ADO_RESULTS.get(result.lower(), result)
    commit, branch = text(resource.get("sourceVersion")), text(resource.get("sourceBranch"))
    get_version = text(resource.get("sourceGetVersion"))  # "LG:refs/heads/main:<sha>" in old payloads
    if get_version.startswith("LG:") and get_version.count(":") >= 2:
        old_branch, _, old_commit = get_version[3:].rpartition(":")
        commit, branch = commit or old_commit, branch or old_branch
    repository = mapping(resource, "repository")
    data = {
        "buildSystem": ADO,
        "buildId": build_id,
        "buildNumber": text(resource.get("buildNumber")),
        "result": result,
        "sourceVersion": commit,
        "sourceBranch": branch,
        "repository": text(repository.get("name")) or text(repository.get("id")),
        "requestedFor": _requested_for(resource),
    }
    requester = _requester(resource)
    if requester:  # comparable with an approver's identity: the approval policy rules out self-approval
        data["requester"] = requester
    notification = payload.get("notificationId")
    if isinstance(notification, int | str) and not isinstance(notification, bool) and str(notification).strip():
        delivery_id = event_id("ado", text(payload.get("subscriptionId")) or "none", str(notification).strip())
    elif text(payload.get("id")):
        delivery_id = event_id("ado", text(payload.get("id")))
    else:
        raise InvalidHook("payload has neither notificationId nor id")
    moment = text(resource.get("finishTime")) or text(payload.get("createdDate"))
    return build_completed_envelope(delivery_id, data, ADO_SOURCE, moment)


def _requested_for(resource: Mapping[str, Any]) -> str:
    for identity in _identities(resource):
        name = text(identity.get("uniqueName")) or text(identity.get("displayName"))
        if name:
            return name
    return ""


def _requester(resource: Mapping[str, Any]) -> str:
    """Who the build was for, as the directory knows them: requestedFor.uniqueName (a UPN); "" when absent."""
    for identity in _identities(resource):
        unique = text(identity.get("uniqueName"))
        if unique:
            return unique
    return ""


def _identities(resource: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    identities = [mapping(resource, "requestedFor")]
    requests = resource.get("requests")
    if isinstance(requests, list) and requests and isinstance(requests[0], Mapping):
        identities.append(mapping(requests[0], "requestedFor"))
    return identities
