"""Retraining jobs on this machine: the pipeline's component scripts as subprocesses.

A job runs data_checks -> train -> evaluate (the same CLIs an Azure ML pipeline runs) in a
background thread of the calling process, one subprocess per step, from the repository root.
Everything about a job is in ``<home>/jobs/<job>/``: ``status.json`` (state, timestamps,
step exit codes, the pid of the process driving the job), ``logs/<step>.log`` and the
outputs. When it ends the job publishes what Azure ML would: RunCompleted, or
RunStatusChanged with runStatus "Failed" naming the step that failed.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from urllib.request import url2pathname

from functions.domain.refs import JobStatus, ModelRef
from functions.ports import Publisher
from ml_pipeline.dataset import BUILTIN_DATASETS
from platforms.common.model_spec import ModelSpec
from platforms.common.names import job_name_part
from platforms.local.files import read_json, utc_now, write_json_atomic
from platforms.local.paths import REPO_ROOT
from platforms.local.processes import log_tail, pid_alive

logger = logging.getLogger("mlops.training")

EXPERIMENT_NAME = "diabetes-retraining"  # kept for every task: experiment ids stay stable across upgrades
# Azure ML gives an experiment a GUID; a name-derived one stays the same across runs and machines.
EXPERIMENT_ID = str(uuid.uuid5(uuid.NAMESPACE_URL, f"mlops-local:experiment:{EXPERIMENT_NAME}"))
RUN_TYPE = "azureml.PipelineRun"
STEPS = ("data_checks", "train", "evaluate")
BUILTIN_DATA = "diabetes"
ERROR_LINES = 5
# What a step needs from the environment; nothing else leaks in (credentials, AZUREML_* settings).
_PASSED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")


class LocalTraining:
    """Training port: submit a retraining job; read its status, evaluation and model afterwards."""

    def __init__(
        self,
        home: Path,
        publisher: Publisher,
        data: str = BUILTIN_DATA,
        python: str = sys.executable,
        model: ModelSpec | None = None,
    ) -> None:
        self.home = Path(home)
        self.jobs = self.home / "jobs"
        self.publisher = publisher
        # A CSV path must not depend on the steps' working directory (the repository root).
        self.data = data if data in BUILTIN_DATASETS else str(Path(data).resolve())
        self.python = python
        self.model = model or ModelSpec()

    def submit(self, release_id: str, build: dict[str, Any], params: dict[str, Any], champion: ModelRef | None) -> str:
        job = f"train-{job_name_part(release_id)}-{uuid.uuid4().hex[:6]}"
        job_dir = self.jobs / job
        (job_dir / "logs").mkdir(parents=True)
        status = {
            "job": job,
            "state": "running",
            "release_id": release_id,
            "build_id": str(build.get("buildId", "")),
            "commit": str(build.get("sourceVersion", "")),
            "task": self.model.task,
            "estimator": self.model.estimator,
            "params": self.model.params_for(params),
            "champion": champion.location if champion else None,
            "data": self.data_for(build),
            "pid": os.getpid(),
            "submitted_at": utc_now(),
            "finished_at": None,
            "current_step": None,
            "steps": {},
            "failed_step": None,
            "error": None,
        }
        write_json_atomic(job_dir / "status.json", status)
        thread = threading.Thread(target=self._run, args=(job_dir, status, champion), name=job, daemon=True)
        thread.start()
        logger.info("submitted %s for release %s", job, release_id)
        return job

    def status(self, job_name: str) -> JobStatus:
        job_dir = self.jobs / job_name
        status = read_json(job_dir / "status.json")
        if status is None:
            return JobStatus("unknown", f"no job {job_name} under {self.jobs}")
        url = job_dir.resolve().as_uri()
        state = status["state"]
        if state == "running" and not pid_alive(status.get("pid")):
            return JobStatus("failed", "job process vanished", url)
        if state == "running":
            step = status.get("current_step") or STEPS[0]
            return JobStatus("running", f"step {step} ({STEPS.index(step) + 1}/{len(STEPS)})", url)
        if state == "failed":
            error = (status.get("error") or "").strip().splitlines()
            last = f": {error[-1]}" if error else ""
            return JobStatus("failed", f"step {status['failed_step']} failed{last}", url)
        return JobStatus(state, f"completed at {status['finished_at']}", url)

    def evaluation(self, job_name: str) -> dict[str, Any]:
        path = self.jobs / job_name / "evaluation.json"
        report = read_json(path)
        if report is None:
            raise FileNotFoundError(
                f"job {job_name} has no evaluation report at {path} ({self.status(job_name).state})"
            )
        return dict(report)

    def model_location(self, job_name: str) -> str:
        return str(self.jobs / job_name / "model")

    def data_checks(self, job_name: str) -> dict[str, Any]:
        path = self.jobs / job_name / "data_checks.json"
        report = read_json(path)
        if not isinstance(report, dict):
            raise FileNotFoundError(f"job {job_name} has no data-check report at {path}")
        return report

    def data_for(self, build: dict[str, Any]) -> str:
        """What the job trains on: a new-data release's blob (a file:// URL locally), else the setting."""
        blob = str(build.get("trainingData") or "")
        if blob.startswith("file://"):
            return url2pathname(urlsplit(blob).path)
        return blob or self.data

    def _commands(self, job_dir: Path, status: dict[str, Any], champion: ModelRef | None) -> dict[str, list[str]]:
        params, data = status["params"], status["data"]
        checks = ["--data", data, *self.model.task_options(), "--report", str(job_dir / "data_checks.json")]
        if champion:
            checks += ["--reference", str(Path(champion.location) / "profile.json")]
        train = ["--data", data, "--output", str(job_dir / "model"), *self.model.train_options()]
        for key, value in params.items():
            train += ["--param", f"{key}={json.dumps(value)}"]
        evaluate = [
            "--candidate",
            str(job_dir / "model"),
            "--champion",
            champion.location if champion else "none",
            "--data",
            data,
            "--output",
            str(job_dir / "evaluation.json"),
        ]
        return {
            "data_checks": [self.python, "-m", "ml_pipeline.data_checks", *checks],
            "train": [self.python, "-m", "ml_pipeline.train", *train],
            "evaluate": [self.python, "-m", "ml_pipeline.evaluate", *evaluate],
        }

    def _run(self, job_dir: Path, status: dict[str, Any], champion: ModelRef | None) -> None:
        failed_step, error = None, ""
        step = STEPS[0]
        try:
            for step, command in self._commands(job_dir, status, champion).items():
                status["current_step"] = step
                write_json_atomic(job_dir / "status.json", status)
                exit_code = self._run_step(job_dir, step, command, status)
                if exit_code != 0:
                    tail = log_tail(job_dir / "logs" / f"{step}.log", ERROR_LINES)
                    failed_step, error = step, f"exit code {exit_code}\n{tail}"
                    break
        except Exception as exc:  # the job must end in a recorded state and an event, whatever broke
            logger.exception("job %s broke in step %s", status["job"], step)
            failed_step, error = step, f"{type(exc).__name__}: {exc}"
        self._finish(job_dir, status, failed_step, error)

    def _run_step(self, job_dir: Path, step: str, command: list[str], status: dict[str, Any]) -> int:
        env = {name: os.environ[name] for name in _PASSED_ENV if name in os.environ}
        env["PYTHONPATH"] = str(REPO_ROOT)
        record: dict[str, Any] = {"command": command, "started_at": utc_now(), "exit_code": None}
        status["steps"][step] = record
        started = time.perf_counter()
        with open(job_dir / "logs" / f"{step}.log", "wb") as log:
            done = subprocess.run(command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, check=False)
        record.update(exit_code=done.returncode, finished_at=utc_now(), seconds=round(time.perf_counter() - started, 3))
        write_json_atomic(job_dir / "status.json", status)
        return done.returncode

    def _finish(self, job_dir: Path, status: dict[str, Any], failed_step: str | None = None, error: str = "") -> None:
        status.update(
            state="failed" if failed_step else "completed",
            current_step=None,
            finished_at=utc_now(),
            failed_step=failed_step,
            error=error or None,
        )
        write_json_atomic(job_dir / "status.json", status)
        job = status["job"]
        data: dict[str, Any] = {
            "experimentId": EXPERIMENT_ID,
            "experimentName": EXPERIMENT_NAME,
            "runId": job,
            "runType": RUN_TYPE,
            "runTags": {"release_id": status["release_id"], "build_id": status["build_id"], "commit": status["commit"]},
            "runProperties": {
                "azureml.runsource": RUN_TYPE,
                "outputs": {
                    "model": str(job_dir / "model"),
                    "evaluation": str(job_dir / "evaluation.json"),
                    "data_checks": str(job_dir / "data_checks.json"),
                },
            },
        }
        if failed_step:
            event_type = "Microsoft.MachineLearningServices.RunStatusChanged"
            data["runStatus"] = "Failed"
            data["runProperties"].update(failed_step=failed_step, error=error)
            logger.warning("job %s failed in step %s", job, failed_step)
        else:
            event_type = "Microsoft.MachineLearningServices.RunCompleted"
            logger.info("job %s completed", job)
        try:
            self.publisher.publish(event_type, f"experiments/{EXPERIMENT_ID}/runs/{job}", data)
        except Exception:  # status.json has the outcome; reconcile finds jobs whose event went missing
            logger.exception("job %s ended but its %s event could not be published", job, event_type)
