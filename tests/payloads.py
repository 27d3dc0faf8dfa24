"""Event payloads in the shapes Azure sends (Event Grid schema and CloudEvents 1.0)."""

from __future__ import annotations

import uuid
from typing import Any

_RG = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers"
ML_TOPIC = f"{_RG}/Microsoft.MachineLearningServices/workspaces/ws"
ACR_TOPIC = f"{_RG}/Microsoft.ContainerRegistry/registries/reg"
BUILD_TOPIC = f"{_RG}/Microsoft.EventGrid/topics/builds"
# The digest every ImagePushed of these payloads reports (what the release records).
PUSHED_DIGEST = "sha256:" + "ab" * 32


def event_grid(event_type: str, subject: str, data: dict[str, Any], topic: str, *, event_id: str | None = None,
               data_version: str = "") -> dict[str, Any]:  # fmt: skip
    return {
        "id": event_id or str(uuid.uuid4()),
        "topic": topic,
        "subject": subject,
        "eventType": event_type,
        "eventTime": "2026-11-26T12:00:00.1234567Z",
        "data": data,
        "dataVersion": data_version,
        "metadataVersion": "1",
    }


WORKSPACE_TOPIC = "/subscriptions/x/resourceGroups/y/providers/Microsoft.MachineLearningServices/workspaces/ws"


def model_registered_envelope(*, fail: bool = False) -> dict[str, Any]:
    """A ModelRegistered Event Grid event for the host's own tests (``fail`` tells their test function to raise)."""
    data = {"modelName": "diabetes-ridge", "modelVersion": "3", **({"fail": True} if fail else {})}
    event = event_grid("Microsoft.MachineLearningServices.ModelRegistered", "models/diabetes-ridge/versions/3", data,
                       WORKSPACE_TOPIC, data_version="2")  # fmt: skip
    return {**event, "eventTime": "2024-05-01T12:00:00.123456Z"}  # microseconds: the host's parse is checked


def cloud_event(event_type: str, subject: str, data: dict[str, Any], source: str, *, event_id: str | None = None):
    return {
        "specversion": "1.0",
        "id": event_id or str(uuid.uuid4()),
        "source": source,
        "subject": subject,
        "type": event_type,
        "time": "2026-11-26T12:00:00.1234567Z",
        "data": data,
    }


def build_completed(build_id: str = "1234", *, result: str = "succeeded", parameters: dict | None = None, **kw):
    data: dict[str, Any] = {
        "buildId": build_id,
        "buildNumber": "20261126.1",
        "result": result,
        "sourceVersion": "3f2a9c1d0e4b5a6978877665544332211aabbccd",
        "sourceBranch": "refs/heads/main",
        "repository": "org/repo",
        "requestedFor": "alice@example.com",
    }
    if parameters is not None:
        data["parameters"] = parameters
    return event_grid("MLOps.BuildCompleted", f"builds/{build_id}", data, BUILD_TOPIC, **kw)


def run_completed(job: str, release_id: str, **kw):
    data = {
        "experimentId": "5f0a9b7e-0000-4000-8000-000000000001",
        "experimentName": "diabetes-retraining",
        "runId": job,
        "runType": "azureml.PipelineRun",
        "runTags": {"release_id": release_id, "build_id": "1234"},
        "runProperties": {"azureml.runsource": "azureml.PipelineRun"},
    }
    return event_grid(
        "Microsoft.MachineLearningServices.RunCompleted",
        f"experiments/{data['experimentId']}/runs/{job}",
        data,
        ML_TOPIC,
        data_version="2",
        **kw,
    )


def run_status_changed(job: str, release_id: str, status: str = "Failed", **kw):
    event = run_completed(job, release_id, **kw)
    event["eventType"] = "Microsoft.MachineLearningServices.RunStatusChanged"
    event["data"]["runStatus"] = status
    return event


def model_registered(version: Any, release_id: str, **kw):
    data = {
        "ModelName": "diabetes-model",
        "ModelVersion": version,
        "ModelTags": {"release_id": release_id},
        "ModelProperties": {},
    }
    return event_grid(
        "Microsoft.MachineLearningServices.ModelRegistered", f"models/diabetes-model:{version}", data, ML_TOPIC, **kw
    )


def image_pushed(tag: str, *, repository: str = "diabetes-scoring", action: str = "push", **kw):
    event_type = (
        "Microsoft.ContainerRegistry.ImagePushed" if action == "push" else "Microsoft.ContainerRegistry.ImageDeleted"
    )
    data = {
        "id": str(uuid.uuid4()),
        "timestamp": "2026-11-26T12:00:00.1234567Z",
        "action": action,
        "target": {
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "size": 524,
            "digest": PUSHED_DIGEST,
            "length": 524,
            "repository": repository,
            "tag": tag,
        },
        "request": {"id": str(uuid.uuid4()), "host": "reg.azurecr.io", "method": "PUT", "useragent": "docker/28"},
    }
    return event_grid(event_type, f"{repository}:{tag}", data, ACR_TOPIC, data_version="1.0", **kw)


def image_deleted(digest: str = PUSHED_DIGEST, *, repository: str = "diabetes-scoring", **kw: Any) -> dict[str, Any]:
    """ImageDeleted as Azure Container Registry sends it: the target has no tag, the subject is the repository
    (learn.microsoft.com, "Azure Container Registry as an Event Grid source")."""
    data = {
        "id": str(uuid.uuid4()),
        "timestamp": "2026-11-26T13:00:00.1234567Z",
        "action": "delete",
        "target": {
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "digest": digest,
            "repository": repository,
        },
        "request": {"id": str(uuid.uuid4()), "host": "reg.azurecr.io", "method": "DELETE", "useragent": "az/2.67"},
        "actor": {},
        "source": {},
    }
    return event_grid("Microsoft.ContainerRegistry.ImageDeleted", repository, data, ACR_TOPIC, data_version="1.0", **kw)
