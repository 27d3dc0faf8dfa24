"""Event Grid / CloudEvents payloads parsed into typed domain events.

Accepts both schemas Event Grid delivers: the Event Grid schema (`eventType`, `eventTime`,
`topic`, `dataVersion`) and CloudEvents 1.0 (`specversion`, `type`, `time`, `source`).
Payload fields are read exactly as Azure sends them: Azure ML run events are camelCase,
model events PascalCase, `ModelVersion` may be a number or a string, `dataVersion` may be
empty. A payload that cannot be understood raises InvalidEvent with the reason; the
caller dead-letters it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from functions.domain.ids import GENERIC, build_system_problem, release_id_for_build, release_id_from_image_tag
from functions.domain.input_limits import MAX_EVENT_ID_CHARS, parameters_problem

BUILD_COMPLETED = "MLOps.BuildCompleted"
RELEASE_STATE_CHANGED = "MLOps.ReleaseStateChanged"
RELEASE_APPROVED = "MLOps.ReleaseApproved"  # the approval, handed from the HTTP request to a function
RUN_COMPLETED = "Microsoft.MachineLearningServices.RunCompleted"
RUN_STATUS_CHANGED = "Microsoft.MachineLearningServices.RunStatusChanged"
MODEL_REGISTERED = "Microsoft.MachineLearningServices.ModelRegistered"
DATASET_DRIFT_DETECTED = "Microsoft.MachineLearningServices.DatasetDriftDetected"
IMAGE_PUSHED = "Microsoft.ContainerRegistry.ImagePushed"
IMAGE_DELETED = "Microsoft.ContainerRegistry.ImageDeleted"
BLOB_CREATED = "Microsoft.Storage.BlobCreated"


# Build results as Azure DevOps names them (the contract's vocabulary), from the words CI systems use:
# Azure DevOps (and its Agent.JobStatus), GitHub's job.status, Jenkins' currentResult, GitLab's job status.
BUILD_RESULTS = {
    "succeeded": "succeeded",
    "success": "succeeded",
    "partiallysucceeded": "partiallySucceeded",
    "succeededwithissues": "partiallySucceeded",
    "unstable": "partiallySucceeded",
    "failed": "failed",
    "failure": "failed",
    "canceled": "canceled",
    "cancelled": "canceled",
    "aborted": "canceled",
    "not_built": "none",
    "skipped": "none",
}


def build_result(word: str) -> str | None:
    """The contract's build result for a CI system's word (any case), or None when it is not one."""
    return BUILD_RESULTS.get(word.strip().lower())


class InvalidEvent(ValueError):
    """The payload is not an event this app can process; the message says why."""


@dataclass(frozen=True)
class DomainEvent:
    id: str
    type: str
    subject: str
    time: str
    source: str
    data: Mapping[str, Any] = field(repr=False, compare=False)

    @property
    def release_id(self) -> str | None:
        return None


@dataclass(frozen=True)
class BuildCompleted(DomainEvent):
    build_id: str = ""
    build_number: str = ""
    result: str = ""
    commit: str = ""
    branch: str = ""
    repository: str = ""
    requested_by: str = ""
    # The requester's comparable identity (UPN/email), when the sender knows it: the approval policy
    # compares it with the approver's (self-approval).
    requester: str = ""
    parameters: Mapping[str, Any] = field(default_factory=dict)
    # Which CI system ran the build (data field ``buildSystem``): part of the release's identity.
    system: str = GENERIC

    @property
    def release_id(self) -> str:
        return release_id_for_build(self.build_id, self.system)

    @property
    def succeeded(self) -> bool:
        return self.result.lower() in ("succeeded", "partiallysucceeded")

    def trigger(self) -> dict[str, Any]:
        trigger = {
            "kind": "build",
            "buildSystem": self.system,
            "buildId": self.build_id,
            "buildNumber": self.build_number,
            "result": self.result,
            "sourceVersion": self.commit,
            "sourceBranch": self.branch,
            "repository": self.repository,
            "requestedFor": self.requested_by,
            "parameters": dict(self.parameters),
        }
        if self.requester:
            trigger["requester"] = self.requester
        return trigger


@dataclass(frozen=True)
class ReleaseApproved(DomainEvent):
    """Published by the approval endpoint when promotion runs outside the HTTP request (Azure)."""

    release: str = ""

    @property
    def release_id(self) -> str:
        return self.release


@dataclass(frozen=True)
class RunFinished(DomainEvent):
    """RunCompleted, or RunStatusChanged; `status` is "Completed" for the former."""

    run_id: str = ""
    experiment_name: str = ""
    status: str = ""
    tags: Mapping[str, Any] = field(default_factory=dict)
    properties: Mapping[str, Any] = field(default_factory=dict)

    @property
    def release_id(self) -> str | None:
        value = self.tags.get("release_id")
        return str(value) if value else None

    @property
    def succeeded(self) -> bool:
        return self.status.lower() == "completed"

    @property
    def failed(self) -> bool:
        return self.status.lower() in ("failed", "canceled", "cancelled")


@dataclass(frozen=True)
class ModelRegistered(DomainEvent):
    model_name: str = ""
    model_version: str = ""
    tags: Mapping[str, Any] = field(default_factory=dict)

    @property
    def release_id(self) -> str | None:
        value = self.tags.get("release_id")
        return str(value) if value else None


@dataclass(frozen=True)
class DriftDetected(DomainEvent):
    drift_name: str = ""
    drift_coefficient: float = 0.0
    run_id: str = ""


@dataclass(frozen=True)
class ImageEvent(DomainEvent):
    """ImagePushed or ImageDeleted from Azure Container Registry."""

    action: str = ""
    repository: str = ""
    tag: str = ""
    digest: str = ""

    @property
    def release_id(self) -> str | None:
        return release_id_from_image_tag(self.tag)


@dataclass(frozen=True)
class BlobCreated(DomainEvent):
    """Storage's BlobCreated; the subject names the container and blob
    (``/blobServices/default/containers/<container>/blobs/<name>``), ``url`` is where to read it."""

    url: str = ""
    size: int = 0
    etag: str = ""
    api: str = ""

    def blob(self, name: str) -> dict[str, Any]:
        """What a release records of the blob."""
        return {"name": name, "url": self.url, "size": self.size, "eTag": self.etag,
                "eventId": self.id, "eventTime": self.time}  # fmt: skip


def _require_text(data: Mapping[str, Any], key: str, event_type: str) -> str:
    value = data.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise InvalidEvent(f"{event_type} event has no {key}")
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        raise InvalidEvent(f"{event_type} field {key} must be a string, got {type(value).__name__}")
    return str(value)


def _mapping(data: Mapping[str, Any], key: str, event_type: str) -> Mapping[str, Any]:
    value = data.get(key) or {}
    if not isinstance(value, Mapping):
        raise InvalidEvent(f"{event_type} field {key} must be an object")
    return value


def wire_id(payload: Any) -> str:
    """The event's id as delivered, when it is one a record can be kept under (a non-empty string or an
    integer), else "": for dead letters, which keep even events that have none."""
    given = payload.get("id") if isinstance(payload, Mapping) else None
    return str(given) if isinstance(given, str | int) and not isinstance(given, bool) else ""


def wire_type(payload: Any) -> str:
    """The event's type as delivered, in either schema ("" when there is none)."""
    if not isinstance(payload, Mapping):
        return ""
    return str(payload.get("eventType") or payload.get("type") or "")


_BLOB_SUBJECT = re.compile(r"/blobServices/default/containers/(?P<container>[^/]+)/blobs/(?P<name>.+)")


def blob_of_subject(subject: str) -> tuple[str, str] | None:
    """(container, blob name) of a Storage event's subject, ``/blobServices/default/containers/<c>/blobs/<name>``."""
    found = _BLOB_SUBJECT.fullmatch(subject)
    return (found["container"], found["name"]) if found else None


def envelope(payload: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split a payload into its common envelope fields and its data, for either schema."""
    if not isinstance(payload, Mapping):
        raise InvalidEvent(f"an event must be a JSON object, got {type(payload).__name__}")
    if "specversion" in payload:
        if str(payload["specversion"]) != "1.0":
            raise InvalidEvent(f"unsupported CloudEvents specversion {payload['specversion']!r}")
        fields = {
            "id": payload.get("id"),
            "type": payload.get("type"),
            "subject": payload.get("subject") or "",
            "time": payload.get("time") or "",
            "source": payload.get("source") or "",
        }
    else:
        fields = {
            "id": payload.get("id"),
            "type": payload.get("eventType"),
            "subject": payload.get("subject") or "",
            "time": payload.get("eventTime") or "",
            "source": payload.get("topic") or "",
        }
    for key in ("id", "type"):
        if not isinstance(fields[key], str) or not fields[key]:
            raise InvalidEvent(f"event has no {'id' if key == 'id' else 'event type'}")
    if len(str(fields["id"])) > MAX_EVENT_ID_CHARS:
        raise InvalidEvent(f"event id is longer than {MAX_EVENT_ID_CHARS} characters")
    for key in ("subject", "time", "source"):
        if not isinstance(fields[key], str):
            raise InvalidEvent(f"{fields['type']} event field {key} must be a string")
    data = payload.get("data")
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise InvalidEvent(f"{fields['type']} event data must be an object")
    return fields, dict(data)


def parse_event(payload: Any) -> DomainEvent:
    fields, data = envelope(payload)
    event_type = fields["type"]
    parser = _PARSERS.get(event_type)
    if parser is None:
        raise InvalidEvent(f"unhandled event type {event_type}")
    return parser(fields, data)


def _parse_build(fields: dict[str, Any], data: dict[str, Any]) -> BuildCompleted:
    parameters = data.get("parameters") or {}
    problem = parameters_problem(parameters, f"{BUILD_COMPLETED} field parameters")
    if problem:
        raise InvalidEvent(problem)
    system = data.get("buildSystem") or GENERIC
    problem = build_system_problem(system) if isinstance(system, str) else "buildSystem must be a string"
    if problem:
        raise InvalidEvent(f"{BUILD_COMPLETED} field {problem}")
    return BuildCompleted(
        **fields,
        data=data,
        build_id=_require_text(data, "buildId", BUILD_COMPLETED),
        build_number=str(data.get("buildNumber") or ""),
        result=_require_text(data, "result", BUILD_COMPLETED),
        commit=str(data.get("sourceVersion") or ""),
        branch=str(data.get("sourceBranch") or ""),
        repository=str(data.get("repository") or ""),
        requested_by=str(data.get("requestedFor") or ""),
        requester=str(data.get("requester") or "").strip(),
        parameters=dict(parameters),
        system=system,
    )


def _parse_approved(fields: dict[str, Any], data: dict[str, Any]) -> ReleaseApproved:
    return ReleaseApproved(**fields, data=data, release=_require_text(data, "releaseId", RELEASE_APPROVED))


def _parse_run(fields: dict[str, Any], data: dict[str, Any]) -> RunFinished:
    event_type = fields["type"]
    status = "Completed" if event_type == RUN_COMPLETED else _require_text(data, "runStatus", event_type)
    return RunFinished(
        **fields,
        data=data,
        run_id=_require_text(data, "runId", event_type),
        experiment_name=str(data.get("experimentName") or ""),
        status=status,
        tags=dict(_mapping(data, "runTags", event_type)),
        properties=dict(_mapping(data, "runProperties", event_type)),
    )


def _either(data: Mapping[str, Any], documented: str, sdk_style: str) -> str:
    """The docs show model events in PascalCase, the Azure SDKs' event models camelCase: take either."""
    return documented if documented in data or sdk_style not in data else sdk_style


def _parse_model(fields: dict[str, Any], data: dict[str, Any]) -> ModelRegistered:
    return ModelRegistered(
        **fields,
        data=data,
        model_name=_require_text(data, _either(data, "ModelName", "modelName"), MODEL_REGISTERED),
        model_version=_require_text(data, _either(data, "ModelVersion", "modelVersion"), MODEL_REGISTERED),
        tags=dict(_mapping(data, _either(data, "ModelTags", "modelTags"), MODEL_REGISTERED)),
    )


def _parse_drift(fields: dict[str, Any], data: dict[str, Any]) -> DriftDetected:
    try:
        coefficient = float(data.get("DriftCoefficient") or 0.0)
    except (TypeError, ValueError):
        raise InvalidEvent("DatasetDriftDetected field DriftCoefficient must be a number") from None
    return DriftDetected(
        **fields,
        data=data,
        drift_name=str(data.get("DataDriftName") or data.get("DataDriftId") or ""),
        drift_coefficient=coefficient,
        run_id=str(data.get("RunId") or ""),
    )


def _parse_image(fields: dict[str, Any], data: dict[str, Any]) -> ImageEvent:
    event_type = fields["type"]
    target = _mapping(data, "target", event_type)
    if not target:
        raise InvalidEvent(f"{event_type} event has no target")
    return ImageEvent(
        **fields,
        data=data,
        action=str(data.get("action") or ""),
        repository=_require_text(target, "repository", event_type),
        tag=str(target.get("tag") or ""),
        digest=str(target.get("digest") or ""),
    )


def _parse_blob(fields: dict[str, Any], data: dict[str, Any]) -> BlobCreated:
    if not str(fields["subject"]).startswith("/blobServices/default/containers/"):
        raise InvalidEvent(f"{BLOB_CREATED} subject must be /blobServices/default/containers/<container>/blobs/<name>")
    size = data.get("contentLength", 0)
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise InvalidEvent(f"{BLOB_CREATED} field contentLength must be a non-negative integer")
    url = _require_text(data, "url", BLOB_CREATED)
    blob = blob_of_subject(fields["subject"])  # none: not a blob (a container's event), which nothing trains on
    problem = _blob_url_problem(url, *blob) if blob else None
    if problem:
        raise InvalidEvent(f"{BLOB_CREATED} field url {problem}")
    return BlobCreated(
        **fields,
        data=data,
        url=url,
        size=size,
        etag=str(data.get("eTag") or ""),
        api=str(data.get("api") or ""),
    )


def _blob_url_problem(url: str, container: str, name: str) -> str | None:
    """Why ``url`` is not where the subject's blob is read from (training reads the url, so a url that names
    another file, or another scheme, must not ride on a subject that passes the container filter)."""
    where = _URL.fullmatch(url)
    scheme = where["scheme"].lower() if where else ""
    if where is None or scheme not in ("https", "http", "file"):
        return f"must be an https (or local file) URL, not {scheme or 'relative'}"
    if not _percent_decoded(where["path"]).endswith(f"/{container}/{name}"):
        return f"does not name the blob of the subject ({container}/{name})"
    return None


# scheme://authority/path?query#fragment (RFC 3986's split; the domain does not import urllib, which does I/O).
_URL = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<authority>[^/?#]*)(?P<path>[^?#]*)(?:\?[^#]*)?(?:#.*)?")


def _percent_decoded(path: str) -> str:
    raw = re.sub(rb"%([0-9A-Fa-f]{2})", lambda m: bytes([int(m[1], 16)]), path.encode("utf-8", "surrogatepass"))
    return raw.decode("utf-8", "replace")


_PARSERS = {
    BUILD_COMPLETED: _parse_build,
    RELEASE_APPROVED: _parse_approved,
    RUN_COMPLETED: _parse_run,
    RUN_STATUS_CHANGED: _parse_run,
    MODEL_REGISTERED: _parse_model,
    DATASET_DRIFT_DETECTED: _parse_drift,
    IMAGE_PUSHED: _parse_image,
    IMAGE_DELETED: _parse_image,
    BLOB_CREATED: _parse_blob,
}
