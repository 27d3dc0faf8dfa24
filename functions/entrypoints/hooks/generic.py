"""POST /api/hooks/generic: any CI system (Jenkins, GitLab CI, Travis CI, ...) says a build finished.

Authentication, keyed with MLOPS_GENERIC_WEBHOOK_SECRET:
- ``X-MLOps-Timestamp``: the sender's time, Unix seconds;
- ``X-MLOps-Signature``: ``sha256=<hex HMAC-SHA256 of "<timestamp>.<raw body>">``;
- a timestamp further than MLOPS_GENERIC_WEBHOOK_TOLERANCE (default 300 s) from the app's clock is
  refused (401), so a captured request cannot be replayed later;
- ``X-MLOps-Delivery``: the delivery's id (1-100 characters), which becomes the event id: the same
  delivery sent again is a duplicate. It is not signed; the release comes from the signed body, so a
  replay under another delivery id reaches the same release and is recorded there as stale.

Body (JSON object; only ``buildId`` and ``result`` are required, other fields are refused by name):
``{"system": "jenkins", "buildId": "train-42", "buildNumber": "42", "result": "SUCCESS",
"commit": "<sha>", "branch": "main", "repository": "org/repo", "requestedBy": "alice@example.com",
"parameters": {"alpha": 0.1}}``. ``system`` (default "generic") is the CI system: part of the release
id (``rel-jenkins-train-42``); ado, github and cli are refused (they have their own ways in). ``result``
takes the CI systems' own words (SUCCESS, UNSTABLE, FAILURE, ABORTED, success, failed, canceled ...).
pipelines/jenkins, pipelines/gitlab and pipelines/travis send it with openssl and curl.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import azure.functions as func

from functions import bootstrap
from functions.domain import events as ev
from functions.domain.ids import ADO, CLI, GENERIC, GITHUB, build_system_problem
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
    same,
    text,
)
from functions.entrypoints.limits import RequestRejected, check_body_size
from functions.entrypoints.responses import error

log = logging.getLogger("mlops.hooks.generic")

GENERIC_SOURCE = "hooks/generic"
TIMESTAMP_HEADER = "X-MLOps-Timestamp"
SIGNATURE_HEADER = "X-MLOps-Signature"
DELIVERY_HEADER = "X-MLOps-Delivery"
# Systems with a hook or a command of their own: a generic sender naming one would take its release ids.
OWN_WAYS_IN = {ADO: "/api/hooks/azure-devops", GITHUB: "/api/hooks/github", CLI: "mlops trigger build"}
FIELDS = ("system", "buildId", "buildNumber", "result", "commit", "branch", "repository", "requestedBy", "parameters")


def generic(req: func.HttpRequest) -> func.HttpResponse:
    settings = bootstrap.settings()
    secret = settings.hook_secrets().generic_secret
    if not secret:
        return error(503, "generic hook not configured: set MLOPS_GENERIC_WEBHOOK_SECRET")
    try:
        body = check_body_size(req.get_body())
    except RequestRejected as exc:
        return error(exc.status, str(exc))
    ctx = bootstrap.context()
    refusal = authentication_problem(
        secret, req.headers, body, ctx.clock(), settings.generic_webhook_tolerance.total_seconds()
    )
    if refusal:
        log.warning("generic hook: rejected delivery %s: %s", _loggable(req.headers), refusal)
        return error(401, refusal)
    try:
        delivery = (req.headers.get(DELIVERY_HEADER) or "").strip()
        if not delivery or len(delivery) > 100:
            raise InvalidHook(f"missing {DELIVERY_HEADER} header (the delivery's id, 1-100 characters)")
        envelope = generic_build_event(delivery, load_json(body))
    except InvalidHook as exc:
        return error(400, str(exc))
    except NotABuild as exc:
        return ignored(str(exc))
    return deliver(envelope)


def generic_signature(secret: str, timestamp: str, body: bytes) -> str:
    """The X-MLOps-Signature value for ``body`` sent at ``timestamp`` (Unix seconds, as sent)."""
    signed = timestamp.encode() + b"." + body
    return "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def authentication_problem(
    secret: str, headers: Mapping[str, str], body: bytes, now: datetime, tolerance_s: float
) -> str | None:
    """Why the delivery is not authenticated (the 401's message), or None when it is."""
    lowered = {name.lower(): value for name, value in headers.items()}
    timestamp = (lowered.get(TIMESTAMP_HEADER.lower()) or "").strip()
    signature = (lowered.get(SIGNATURE_HEADER.lower()) or "").strip()
    if not (timestamp.isascii() and timestamp.isdecimal() and len(timestamp) <= 12):
        return f"missing or malformed {TIMESTAMP_HEADER} (Unix seconds)"
    if not signature or not same(signature, generic_signature(secret, timestamp, body)):
        return f"bad or missing {SIGNATURE_HEADER}"
    age = now.timestamp() - int(timestamp)
    if abs(age) > tolerance_s:
        when = f"{age:.0f} s old" if age > 0 else f"{-age:.0f} s in the future"
        return f"{TIMESTAMP_HEADER} is {when}, outside the {tolerance_s:.0f} s window (a replay, or the sender's clock)"
    return None


def generic_build_event(delivery: str, payload: Any) -> dict[str, Any]:
    """The documented body as MLOps.BuildCompleted. Raises InvalidHook for a malformed body, NotABuild
    for a build that did not finish (result "none": not built, skipped)."""
    if not isinstance(payload, Mapping):
        raise InvalidHook("body must be a JSON object (see the generic hook's documented fields)")
    unknown = sorted(str(key) for key in payload if key not in FIELDS)
    if unknown:
        raise InvalidHook(f"unknown field {unknown[0][:40]!r}; the fields are {', '.join(FIELDS)}")
    system = payload.get("system", GENERIC)
    if not isinstance(system, str):
        raise InvalidHook("system must be a string (jenkins, gitlab, travis, ...)")
    problem = build_system_problem(system)
    if problem:
        raise InvalidHook(problem)
    if system in OWN_WAYS_IN:
        raise InvalidHook(f"system {system!r} has its own way in ({OWN_WAYS_IN[system]}), not this hook")
    build_id = id_text(payload.get("buildId"), "buildId")
    raw_result = text(payload.get("result"))
    result = ev.build_result(raw_result)
    if result is None:
        raise InvalidHook(
            f"result {raw_result[:40]!r} is not a build result: succeeded, partiallySucceeded, failed, "
            "canceled (or SUCCESS, UNSTABLE, FAILURE, ABORTED, success, failed, canceled)"
        )
    if result == "none":
        raise NotABuild(f"build {build_id} was not built ({raw_result})")
    parameters = payload.get("parameters", {})
    if not isinstance(parameters, Mapping):
        raise InvalidHook("parameters must be a JSON object of training parameters")
    branch = _field(payload, "branch")
    requested_by = _field(payload, "requestedBy")
    data: dict[str, Any] = {
        "buildSystem": system,
        "buildId": build_id,
        "buildNumber": _field(payload, "buildNumber"),
        "result": result,
        "sourceVersion": _field(payload, "commit"),
        "sourceBranch": branch if not branch or branch.startswith("refs/") else f"refs/heads/{branch}",
        "repository": _field(payload, "repository"),
        "requestedFor": requested_by,
    }
    if "@" in requested_by:  # an identity the approval policy can compare (when the app trusts it)
        data["requester"] = requested_by
    if parameters:
        data["parameters"] = dict(parameters)
    return build_completed_envelope(event_id(GENERIC, delivery), data, GENERIC_SOURCE)


def _field(payload: Mapping[str, Any], name: str) -> str:
    value = payload.get(name)
    if value is not None and (isinstance(value, bool) or not isinstance(value, str | int)):
        raise InvalidHook(f"{name} must be a string")
    return text(value)


def _loggable(headers: Mapping[str, str]) -> str:
    value = (headers.get(DELIVERY_HEADER) or "").strip()
    return value if SAFE_ID.fullmatch(value) else "(no valid delivery id)"
