"""An in-memory stand-in for azure-ai-ml's MLClient: just the operations the Azure adapters call.

It keeps the SDK's real entities (PipelineJob, Model) and its real behaviour where the adapters
depend on it: jobs.create_or_update validates the job (as the SDK does before submitting) and
needs the components' code directories to exist (they are uploaded there); jobs.get and
models.get raise ResourceNotFoundError for unknown names; jobs.download refuses jobs that are
not in a terminal state (JobException) and writes a named output to
``<download_path>/named-outputs/<output>/...``, silently writing nothing when the job has no
such output; models.create_or_update without a version takes the next one (1, 2, ...) and
with one updates that version in place (tags and description; the path cannot change).
Every call is recorded, in order, in ``client.calls``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from azure.ai.ml.entities import Model, PipelineJob
from azure.ai.ml.exceptions import ErrorCategory, ErrorTarget, JobException
from azure.core.exceptions import ResourceNotFoundError

SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
RESOURCE_GROUP = "rg-mlops"
WORKSPACE = "mlw-mlops"
# azure.ai.ml.operations._run_history_constants.RunHistoryConstants.TERMINAL_STATUSES
TERMINAL_STATUSES = ("Completed", "Failed", "Canceled", "NotResponding", "Paused")


def job_id(name: str) -> str:
    return (
        f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}/providers/"
        f"Microsoft.MachineLearningServices/workspaces/{WORKSPACE}/jobs/{name}"
    )


@dataclass
class Submission:
    """What jobs.create_or_update received, as it was at that moment."""

    job: PipelineJob  # the entity the adapter built (not a copy)
    kwargs: dict[str, Any]
    as_dict: dict[str, Any]  # job._to_dict(): the YAML form
    rest: dict[str, Any]  # job._to_rest_object().as_dict(): the request body (before component upload)
    code_files: dict[str, list[str]]  # node name -> files of its component's code directory


@dataclass
class FakeJob:
    name: str
    status: str
    tags: dict[str, str] = field(default_factory=dict)
    display_name: str | None = None
    experiment_name: str | None = None
    # output name -> {relative path: content}
    outputs: dict[str, dict[str, str]] = field(default_factory=dict)


class FakeJobs:
    def __init__(self, calls: list[tuple[Any, ...]]) -> None:
        self.calls = calls
        self.jobs: dict[str, FakeJob] = {}
        self.submissions: list[Submission] = []
        self._names = (f"placid_rabbit_{n}" for n in itertools.count(1))

    # ---- the SDK surface ---------------------------------------------------------------
    def create_or_update(self, job: PipelineJob, **kwargs: Any) -> PipelineJob:
        self.calls.append(("jobs.create_or_update", job.name, kwargs))
        if kwargs.get("experiment_name") is not None:
            job.experiment_name = kwargs["experiment_name"]
        result = job._validate()
        if not result.passed:
            raise ValueError(f"the SDK would refuse this job: {result.error_messages}")
        code_files = {}
        for node_name, node in job.jobs.items():
            code = Path(node.component.code)
            if not code.is_dir():
                raise FileNotFoundError(f"node {node_name}: code directory {code} does not exist at upload")
            code_files[node_name] = sorted(p.relative_to(code).as_posix() for p in code.rglob("*") if p.is_file())
        name = job.name or next(self._names)
        job.name = name
        self.submissions.append(
            Submission(job, dict(kwargs), job._to_dict(), job._to_rest_object().as_dict(), code_files)
        )
        self.jobs[name] = FakeJob(name, "NotStarted", dict(job.tags or {}), job.display_name, job.experiment_name)
        return self._entity(self.jobs[name])

    def get(self, name: str) -> PipelineJob:
        self.calls.append(("jobs.get", name))
        return self._entity(self._job(name))

    def download(
        self, name: str, *, download_path: str | Path = ".", output_name: str | None = None, all: bool = False
    ) -> None:
        self.calls.append(("jobs.download", name, output_name, str(download_path)))
        job = self._job(name)
        if job.status not in TERMINAL_STATUSES:
            msg = f"This job is in state {job.status}. Download is allowed only in states {list(TERMINAL_STATUSES)}"
            # azure-ai-ml annotates these as ErrorTarget/ErrorCategory, but its members are plain str constants.
            raise JobException(
                message=msg,
                no_personal_data_message=msg,
                target=ErrorTarget.JOB,  # type: ignore[arg-type]
                error_category=ErrorCategory.USER_ERROR,  # type: ignore[arg-type]
            )
        wanted = [output_name] if output_name else list(job.outputs) if all else []
        for output in wanted:
            for relative, content in job.outputs.get(output, {}).items():
                path = Path(download_path) / "named-outputs" / output / relative
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(content)

    # ---- test controls -----------------------------------------------------------------
    def add(self, name: str, status: str, **outputs: dict[str, str]) -> FakeJob:
        self.jobs[name] = FakeJob(name, status, outputs=dict(outputs))
        return self.jobs[name]

    def finish(self, name: str, status: str = "Completed", **outputs: dict[str, str]) -> None:
        job = self._job(name)
        job.status = status
        job.outputs.update(outputs)

    def _job(self, name: str) -> FakeJob:
        if name not in self.jobs:
            raise ResourceNotFoundError(f"(UserError) Job {name} not found")
        return self.jobs[name]

    @staticmethod
    def _entity(job: FakeJob) -> PipelineJob:
        """What the service answers: a PipelineJob with its status and ARM id (hence studio_url)."""
        return PipelineJob(
            name=job.name,
            status=job.status,
            id=job_id(job.name),
            tags=dict(job.tags),
            display_name=job.display_name,
            experiment_name=job.experiment_name,
        )


class FakeModels:
    def __init__(self, calls: list[tuple[Any, ...]]) -> None:
        self.calls = calls
        self.versions: dict[str, dict[str, Model]] = {}
        self.received: list[Model] = []  # the entities create_or_update was given, as given

    def create_or_update(self, model: Model) -> Model:
        self.calls.append(("models.create_or_update", model.name, model.version, dict(model.tags or {})))
        self.received.append(model)
        versions = self.versions.setdefault(str(model.name), {})
        if model.version is None:
            version = str(max((int(v) for v in versions), default=0) + 1)
        else:
            version = str(model.version)
            existing = versions.get(version)
            if existing is not None and str(existing.path) != str(model.path):
                raise ValueError(f"{model.name}:{version} exists with path {existing.path}; a path cannot change")
        stored = _copy(model, version)
        versions[version] = stored
        return _copy(stored)

    def get(self, name: str, version: str | None = None, label: str | None = None) -> Model:
        self.calls.append(("models.get", name, version))
        model = self.versions.get(name, {}).get(str(version))
        if model is None:
            raise ResourceNotFoundError(f"(UserError) Model {name}:{version} not found")
        return _copy(model)

    def list(self, name: str | None = None, stage: str | None = None, **kwargs: Any) -> list[Model]:
        self.calls.append(("models.list", name))
        if name not in self.versions:
            raise ResourceNotFoundError(f"(UserError) Model container {name} not found")
        return [_copy(m) for m in self.versions[name].values()]

    # ---- test controls -----------------------------------------------------------------
    def tags(self, name: str, version: str | int) -> dict[str, str]:
        return dict(self.versions[name][str(version)].tags or {})


class FakeMLClient:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.jobs = FakeJobs(self.calls)
        self.models = FakeModels(self.calls)

    def operations(self) -> list[str]:
        return [call[0] for call in self.calls]


def _copy(model: Model, version: str | None = None) -> Model:
    return Model(
        name=model.name,
        version=version or model.version,
        path=model.path,
        type=model.type,
        description=model.description,
        tags=dict(model.tags or {}),
        properties=dict(model.properties or {}),
    )
