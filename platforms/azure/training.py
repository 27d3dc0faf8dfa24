"""Training port on Azure ML: one pipeline job (data checks -> train -> evaluate) per release.

The job carries the release in its tags (``release_id``, ``build_id``, ``commit``), so the
workspace's Event Grid events (RunCompleted, RunStatusChanged) find their release through
``runTags``. Afterwards the orchestrator reads the job's state (``jobs.get``), its evaluation
report (the ``evaluation`` output, via ``jobs.download``) and where its model is (the ``model``
output, as a job-output URI the model registry accepts).

Where the steps run is AZUREML_COMPUTE: a named compute cluster is the pipeline's default compute
(``settings.default_compute``); ``serverless`` makes that azure-ai-ml's serverless marker and gives
every step ``resources`` (``JobResourceConfiguration``: instance type ``TRAINING_VM_SIZE``, one
instance), so no cluster is needed. A pipeline with no compute at all is refused by the SDK's own
validation ("Compute not set") before it is submitted, hence the marker rather than nothing.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from azure.ai.ml.entities import Command, JobResourceConfiguration, PipelineJob
from azure.ai.ml.exceptions import JobException
from azure.core.exceptions import ResourceNotFoundError

from functions.domain.refs import JobStatus, ModelRef
from platforms.azure.components import (
    CHECKS_FILE,
    CHECKS_OUTPUT,
    EVALUATION_FILE,
    EVALUATION_OUTPUT,
    MODEL_DIR,
    MODEL_OUTPUT,
    TRAIN_STEP,
    RetrainingSpec,
    environment_reference,
    retraining_pipeline,
    stage_code,
)
from platforms.azure.settings import TRAINING_VM_SIZE
from platforms.common.model_spec import ModelSpec
from platforms.common.names import job_name_part

if TYPE_CHECKING:
    from platforms.azure.settings import AzureSettings

logger = logging.getLogger("mlops.azure.training")

# Azure ML job statuses (azure.ai.ml._restclient.arm_ml_service.models.JobStatus) -> JobStatus.state.
# NotResponding and Paused can still move on; CancelRequested can only end in Canceled.
STATES: dict[str, str] = {
    "NotStarted": "running",
    "Starting": "running",
    "Provisioning": "running",
    "Preparing": "running",
    "Queued": "running",
    "Running": "running",
    "Finalizing": "running",
    "NotResponding": "running",
    "Paused": "running",
    "Completed": "completed",
    "Failed": "failed",
    "CancelRequested": "canceled",
    "Canceled": "canceled",
    "Unknown": "unknown",
}
# Where ml_client.jobs.download puts a named output: <download_path>/named-outputs/<output name>/...
NAMED_OUTPUTS_DIR = "named-outputs"
# azure.ai.ml.constants._common.JOB_URI_FORMAT: azureml://jobs/{job}/outputs/{output}/paths/{path}
JOB_OUTPUT_URI = "azureml://jobs/{job}/outputs/{output}/paths/{path}"


class EvaluationNotFound(FileNotFoundError):
    """The job has no evaluation report (yet): not finished, failed before evaluate, or gone."""


class AzureTraining:
    """Training port: submit the retraining pipeline job; read its status, evaluation and model."""

    def __init__(
        self,
        settings: AzureSettings,
        ml_client: Any,
        download_dir: Path,
        code_source: Path | None = None,
        model: ModelSpec | None = None,
    ) -> None:
        self.settings = settings
        self.model = model or ModelSpec()
        self.ml_client = ml_client
        self.download_dir = Path(download_dir)
        self.code_source = code_source  # the ml_pipeline package; default: this repository's

    # ---- submit ---------------------------------------------------------------------
    def pipeline_job(
        self, release_id: str, build: dict[str, Any], params: dict[str, Any], champion: ModelRef | None, code: Path
    ) -> PipelineJob:
        """The pipeline job for a release, ready to submit (``code`` holds the ml_pipeline package)."""
        if champion is not None and not champion.location.startswith("azureml:"):
            raise ValueError(
                f"champion {champion.name}:{champion.version} is at {champion.location!r}, "
                "not an Azure ML model (azureml:<name>:<version>)"
            )
        spec = RetrainingSpec(
            code=code,
            environment=environment_reference(self.settings.environment),
            compute=self.settings.compute,
            experiment=self.settings.experiment,
            # A new-data release trains on its blob (an https URL in the storage account), else the setting's.
            data=str(build.get("trainingData") or self.settings.training_data),
            params=dict(params),
            champion=champion.location if champion else None,
            model=self.model,
        )
        job = retraining_pipeline(spec)
        if self.settings.serverless:
            for step in job.jobs.values():
                if isinstance(step, Command):
                    step.resources = serverless_resources()
        build_id, commit = str(build.get("buildId") or ""), str(build.get("sourceVersion") or "")
        job.name = f"retrain-{job_name_part(release_id)}-{uuid.uuid4().hex[:8]}"
        job.display_name = f"retrain {release_id}"
        job.description = f"release {release_id}: build {build_id or '?'} at {commit or '?'}" + (
            f", against champion {champion.name}:{champion.version}" if champion else ", no champion"
        )
        job.tags = {"release_id": release_id, "build_id": build_id, "commit": commit}
        job.experiment_name = self.settings.experiment
        return job

    def submit(self, release_id: str, build: dict[str, Any], params: dict[str, Any], champion: ModelRef | None) -> str:
        # The code snapshot only has to exist while create_or_update uploads it.
        with tempfile.TemporaryDirectory(prefix="mlops-code-") as staging:
            code = stage_code(Path(staging), self.code_source)
            job = self.pipeline_job(release_id, build, params, champion, code)
            created = self.ml_client.jobs.create_or_update(job, experiment_name=self.settings.experiment)
        name = str(created.name)
        logger.info("submitted pipeline job %s for release %s: %s", name, release_id, created.studio_url or "")
        return name

    # ---- afterwards -----------------------------------------------------------------
    def status(self, job_name: str) -> JobStatus:
        try:
            job = self.ml_client.jobs.get(job_name)
        except ResourceNotFoundError:
            return JobStatus("unknown", f"no Azure ML job {job_name} in workspace {self.settings.workspace}")
        azure_status = str(job.status or "")
        url = job.studio_url or ""
        state = STATES.get(azure_status)
        if state is None:  # a status this adapter does not know: not an outcome; reconcile's timeout bounds it
            logger.warning("job %s has an unrecognised status %r", job_name, azure_status)
            return JobStatus("running", f"Azure ML status {azure_status or 'missing'} (not recognised)", url)
        if state == "failed":
            detail = f"pipeline job {job_name} Failed; the studio shows the failed step and its logs"
            return JobStatus(state, detail, url)
        return JobStatus(state, f"Azure ML status {azure_status}", url)

    def evaluation(self, job_name: str) -> dict[str, Any]:
        return self._report(job_name, EVALUATION_OUTPUT, EVALUATION_FILE)

    def data_checks(self, job_name: str) -> dict[str, Any]:
        """The data_checks step's report: the pipeline's ``checks`` output."""
        return self._report(job_name, CHECKS_OUTPUT, CHECKS_FILE)

    def _report(self, job_name: str, output: str, filename: str) -> dict[str, Any]:
        """The JSON report ``filename`` in the pipeline job's named ``output`` (downloaded, read, removed)."""
        self.download_dir.mkdir(parents=True, exist_ok=True)
        target = Path(tempfile.mkdtemp(prefix=f"{job_name_part(job_name)}-", dir=self.download_dir))
        try:
            try:
                self.ml_client.jobs.download(name=job_name, download_path=str(target), output_name=output)
            except ResourceNotFoundError:
                raise EvaluationNotFound(f"no Azure ML job {job_name} in workspace {self.settings.workspace}") from None
            except JobException as exc:  # not in a terminal state yet
                raise EvaluationNotFound(f"job {job_name} has no {filename} yet: {exc}") from None
            path = _find_report(target, output, filename)
            if path is None:
                status = self.status(job_name)
                raise EvaluationNotFound(
                    f"job {job_name} has no {filename} in its {output!r} output "
                    f"(job {status.state}: {status.detail}) {status.portal_url}".rstrip()
                )
            try:
                report = json.loads(path.read_text())
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise ValueError(f"job {job_name}: {filename} is not valid JSON: {exc}") from None
            if not isinstance(report, dict):
                raise ValueError(f"job {job_name}: {filename} holds a {type(report).__name__}, not an object")
            return report
        finally:
            shutil.rmtree(target, ignore_errors=True)

    def model_location(self, job_name: str) -> str:
        """The train step's own output, the model folder inside it, as a job-output URI.

        As Microsoft's pipeline examples do: the child job of the train step, its ``model`` output, and
        the path inside it (``azureml://jobs/<step job>/outputs/model/paths/model/``; the SDK's job-URI
        pattern needs that path, and passes a URI with an empty one through unparsed).
        """
        steps = self.ml_client.jobs.list(parent_job_name=job_name)
        train = next((step for step in steps if TRAIN_STEP in (step.display_name, step.name)), None)
        if train is None:
            raise LookupError(f"pipeline job {job_name} has no {TRAIN_STEP} step job yet")
        return JOB_OUTPUT_URI.format(job=train.name, output=MODEL_OUTPUT, path=f"{MODEL_DIR}/")


def serverless_resources() -> JobResourceConfiguration:
    """What one step asks serverless compute for (AZUREML_COMPUTE=serverless)."""
    return JobResourceConfiguration(instance_type=TRAINING_VM_SIZE, instance_count=1)


def _find_report(download: Path, output: str, filename: str) -> Path | None:
    expected = download / NAMED_OUTPUTS_DIR / output / filename
    if expected.is_file():
        return expected
    found = sorted(download.rglob(filename))  # any other nesting a future SDK might use
    return found[0] if found else None
