"""An in-memory stand-in for azure-ai-ml's MLClient: just the operations the Azure adapters call.

It keeps the SDK's real entities (PipelineJob, Model) and its real behaviour where the adapters
depend on it: jobs.create_or_update validates the job (as the SDK does before submitting) and
needs the components' code directories to exist (they are uploaded there); jobs.get and
models.get raise ResourceNotFoundError for unknown names; jobs.download refuses jobs that are
not in a terminal state (JobException) and writes a named output to
``<download_path>/named-outputs/<output>/...``, silently writing nothing when the job has no
such output; models.create_or_update without a version takes the next one (1, 2, ...) and
with one updates that version in place (tags and description; the path cannot change).
A new model version is what makes the workspace's Event Grid system topic send ModelRegistered:
``models.registered_events`` is the data of those events, one per new version (an in-place update
sends none here; whether the service sends one for it is not modelled). ``workspaces`` is the
resource-group scope's: ``get`` raises ResourceNotFoundError for an unknown workspace and
``begin_create`` keeps the Workspace entity it was given, with its REST form at that moment.
Every call is recorded, in order, in ``client.calls``.
"""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from azure.ai.ml.entities import Model, PipelineJob, Workspace
from azure.ai.ml.exceptions import ErrorCategory, ErrorTarget, JobException
from azure.core.exceptions import ResourceNotFoundError

SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
RESOURCE_GROUP = "rg-mlops"
WORKSPACE = "mlw-mlops"
REGION = "westeurope"  # the resource group's: where a workspace without a location goes
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
        self.steps: dict[str, list[FakeJob]] = {}  # pipeline job name -> its step (child) jobs
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
        self.add_steps(name, *job.jobs)
        return self._entity(self.jobs[name])

    def get(self, name: str) -> PipelineJob:
        self.calls.append(("jobs.get", name))
        return self._entity(self._job(name))

    def list(self, *, parent_job_name: str | None = None, **kwargs: Any) -> list[PipelineJob]:
        """With parent_job_name: the pipeline's step jobs, each named by the service and showing its node name."""
        self.calls.append(("jobs.list", parent_job_name))
        if parent_job_name is None:
            return [self._entity(job) for job in self.jobs.values()]
        return [self._entity(step) for step in self.steps.get(parent_job_name, [])]

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
    def add_steps(self, pipeline_job: str, *node_names: str) -> None:
        """The step jobs Azure ML creates for a pipeline's nodes: service-made names, node names as display names."""
        self.steps[pipeline_job] = [
            FakeJob(self._step_name(pipeline_job, node), "NotStarted", display_name=node) for node in node_names
        ]

    def add(self, name: str, status: str, **outputs: dict[str, str]) -> FakeJob:
        self.jobs[name] = FakeJob(name, status, outputs=dict(outputs))
        return self.jobs[name]

    def finish(self, name: str, status: str = "Completed", **outputs: dict[str, str]) -> None:
        job = self._job(name)
        job.status = status
        job.outputs.update(outputs)

    @staticmethod
    def _step_name(pipeline_job: str, node: str) -> str:
        return f"{pipeline_job}_{uuid.uuid5(uuid.NAMESPACE_URL, pipeline_job + node).hex[:8]}"

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
        # ModelRegistered data as the workspace's system topic sends it, one per new version.
        self.registered_events: list[dict[str, Any]] = []

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
        created = version not in versions
        stored = _copy(model, version)
        versions[version] = stored
        if created:
            self.registered_events.append(
                {
                    "ModelName": stored.name,
                    "ModelVersion": version,
                    "ModelTags": dict(stored.tags or {}),
                    "ModelProperties": dict(stored.properties or {}),
                }
            )
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


class Done:
    """A long-running operation that has finished: ``result()`` is what the real poller returns."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def result(self, timeout: float | None = None) -> Any:
        return self.value


@dataclass
class WorkspaceCreation:
    """What workspaces.begin_create received, as it was at that moment."""

    workspace: Workspace  # the entity the caller built (not a copy)
    rest: dict[str, Any]  # workspace._to_rest_object().as_dict()
    kwargs: dict[str, Any]


class FakeWorkspaces:
    """``workspaces`` of an MLClient on the resource group (no workspace name needed)."""

    def __init__(self, calls: list[tuple[Any, ...]], region: str = REGION) -> None:
        self.calls = calls
        self.region = region
        self.items: dict[str, Workspace] = {}
        self.creations: list[WorkspaceCreation] = []
        self.get_error: Exception | None = None  # raised by get (e.g. AuthorizationFailed)
        self.create_error: Exception | None = None  # raised by begin_create, after recording the call

    def get(self, name: str | None = None, **kwargs: Any) -> Workspace:
        self.calls.append(("workspaces.get", name))
        if self.get_error is not None:
            raise self.get_error
        if name is None or name not in self.items:
            raise ResourceNotFoundError(f"(ResourceNotFound) The Resource '.../workspaces/{name}' was not found")
        return self.items[name]

    def begin_create(self, workspace: Workspace, update_dependent_resources: bool = False, **kwargs: Any) -> Done:
        self.calls.append(("workspaces.begin_create", workspace.name))
        self.creations.append(WorkspaceCreation(workspace, workspace._to_rest_object().as_dict(), dict(kwargs)))
        if self.create_error is not None:
            raise self.create_error
        self.items[str(workspace.name)] = stored = self._answer(workspace)
        return Done(stored)

    # ---- test controls -----------------------------------------------------------------
    def add(self, workspace: Workspace) -> None:
        """A workspace that exists already (e.g. made by `az ml workspace create`)."""
        self.items[str(workspace.name)] = self._answer(workspace)

    def _answer(self, workspace: Workspace) -> Workspace:
        """What the service hands back: the entity through the SDK's REST form, placed and with its id."""
        rest = workspace._to_rest_object()
        rest.location = workspace.location or self.region
        group = workspace.resource_group or RESOURCE_GROUP
        rest.id = (
            f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{group}/providers/"
            f"Microsoft.MachineLearningServices/workspaces/{workspace.name}"
        )
        answered = Workspace._from_rest_object(rest)
        assert answered is not None
        return answered


class FakeMLClient:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.jobs = FakeJobs(self.calls)
        self.models = FakeModels(self.calls)
        self.workspaces = FakeWorkspaces(self.calls)

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
