"""Retraining jobs on this machine: the pipeline's component scripts as subprocesses.

A job runs data_checks -> train -> evaluate (the same CLIs an Azure ML pipeline runs), one
subprocess per step, from the repository root, driven by a process of its own
(platforms/local/training_job.py) in a session of its own: the job is one process group that
survives the host that started it, and that `mlops down` stops whole. Everything about a job is in
``<home>/jobs/<job>/``: ``status.json`` (state, timestamps, step exit codes, the job process's pid and
the pid of the host that started it), ``logs/<step>.log`` and the outputs.

The host that started a job waits for its process in a thread; when it ends, it publishes what
Azure ML would: RunCompleted, or RunStatusChanged with runStatus "Failed" naming the step that failed
(also when the job's process died without recording an end). A host started after that one died adopts
its running jobs (``adopt_jobs``, when the platform is built) and announces their ends the same way.
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
from collections.abc import Callable
from functools import partial
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
from platforms.local.processes import owned_env, pid_alive

logger = logging.getLogger("mlops.training")

EXPERIMENT_NAME = "diabetes-retraining"  # kept for every task: experiment ids stay stable across upgrades
# Azure ML gives an experiment a GUID; a name-derived one stays the same across runs and machines.
EXPERIMENT_ID = str(uuid.uuid5(uuid.NAMESPACE_URL, f"mlops-local:experiment:{EXPERIMENT_NAME}"))
RUN_TYPE = "azureml.PipelineRun"
STEPS = ("data_checks", "train", "evaluate")
BUILTIN_DATA = "diabetes"
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
            "pid": None,  # the job's own process (platforms/local/training_job.py) writes its pid
            "started_by": os.getpid(),  # the host that watches it
            "submitted_at": utc_now(),
            "finished_at": None,
            "current_step": None,
            "steps": {},
            "failed_step": None,
            "error": None,
        }
        status["commands"] = self._commands(job_dir, status, champion)
        self._launch(job_dir, status)
        logger.info("submitted %s for release %s", job, release_id)
        return job

    def status(self, job_name: str) -> JobStatus:
        job_dir = self.jobs / job_name
        status = read_json(job_dir / "status.json")
        if status is None:
            return JobStatus("unknown", f"no job {job_name} under {self.jobs}")
        url = job_dir.resolve().as_uri()
        state = status["state"]
        # Until the job's process writes its pid, the host that started it vouches for it.
        if state == "running" and not pid_alive(status.get("pid") or status.get("started_by")):
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

    def _launch(self, job_dir: Path, status: dict[str, Any]) -> None:
        """Start the job's process in a session of its own (it records its pid) and watch it end."""
        write_json_atomic(job_dir / "status.json", status)  # before the process: it starts from this
        env = {name: os.environ[name] for name in _PASSED_ENV if name in os.environ}
        env["PYTHONPATH"] = str(REPO_ROOT)
        with open(job_dir / "logs" / "job.log", "wb") as log:
            process = subprocess.Popen(
                [self.python, "-m", "platforms.local.training_job", str(job_dir)],
                cwd=REPO_ROOT, env=owned_env(self.home, env), stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,  # one process group: outlives this host, stopped whole by `mlops down`
            )  # fmt: skip
        # Recorded at once too (the job writes it as its first act, but a host killed in between must not
        # leave a running job that looks like none): the next host keeps it and adopts it.
        status["pid"] = process.pid
        write_json_atomic(job_dir / "status.json", status)
        self._watch(job_dir, process.wait)

    def _watch(self, job_dir: Path, wait: Callable[[], int | None]) -> None:
        """Announce the job's end once ``wait`` returns (its process exited), in a thread of its own."""
        if not _claim_watch(job_dir.name):
            return  # this process watches it already (a second LocalTraining of the same home)
        thread = threading.Thread(target=self._announce_end, args=(job_dir, wait), name=job_dir.name, daemon=True)
        thread.start()

    def adopt_jobs(self) -> int:
        """Watch the running jobs a host that is gone started; a job whose process died is failed at once.

        Called when the platform is built, so a host restarted after a crash picks its jobs up in seconds
        rather than when reconcile's training check comes round. The number of jobs adopted."""
        adopted = 0
        for status_path, status in running_jobs(self.home):
            if "commands" not in status:
                continue  # a job from before jobs were processes of their own: nothing to wait on
            if pid_alive(status.get("started_by")) and status.get("started_by") != os.getpid():
                continue  # its own host is alive and watches it
            self._watch(status_path.parent, partial(_wait_for_job_process, status_path))
            adopted += 1
        if adopted:
            logger.info("watching %d training job(s) an earlier host started", adopted)
        return adopted

    def _announce_end(self, job_dir: Path, wait: Callable[[], int | None]) -> None:
        try:
            self._record_and_publish_end(job_dir, wait())
        except Exception:  # a watcher thread must say why it stopped; reconcile asks about the job later
            logger.exception("job %s: could not announce its end", job_dir.name)

    def _record_and_publish_end(self, job_dir: Path, exit_code: int | None) -> None:
        status = read_json(job_dir / "status.json") or {}
        if status.get("state") == "running":  # its process died before recording the end (killed, OOM)
            step = status.get("current_step") or STEPS[0]
            how = f"exit code {exit_code}" if exit_code is not None else "it is gone"
            status.update(state="failed", current_step=None, finished_at=utc_now(), failed_step=step,
                          error=f"the job's process ended before the job did ({how})")  # fmt: skip
            write_json_atomic(job_dir / "status.json", status)
        if status.get("state") in ("completed", "failed"):
            self._finish(status)

    def _finish(self, status: dict[str, Any]) -> None:
        """Publish what Azure ML would for the job's recorded end (status.json holds it already)."""
        job_dir = self.jobs / status["job"]
        failed_step, error = status.get("failed_step"), status.get("error") or ""
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
        # One id per job end: the host and a host that adopted the job may both announce it.
        event_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"mlops-local:{self.home.resolve()}:{job}:{event_type}"))
        try:
            self.publisher.publish(event_type, f"experiments/{EXPERIMENT_ID}/runs/{job}", data, event_id=event_id)
        except Exception:  # status.json has the outcome; reconcile finds jobs whose event went missing
            logger.exception("job %s ended but its %s event could not be published", job, event_type)


def running_jobs(home: Path) -> list[tuple[Path, dict[str, Any]]]:
    """The status files of the home's jobs that are recorded as running, with what they say."""
    found = []
    for status_path in sorted((Path(home) / "jobs").glob("*/status.json")):
        status = read_json(status_path)
        if isinstance(status, dict) and status.get("state") == "running":
            found.append((status_path, status))
    return found


_watched: set[str] = set()
_watched_lock = threading.Lock()


def _claim_watch(job: str) -> bool:
    """True for the first caller in this process that wants to watch ``job``."""
    with _watched_lock:
        if job in _watched:
            return False
        _watched.add(job)
        return True


def _wait_for_job_process(status_path: Path, interval_s: float = 0.5, starting_s: float = 10.0) -> None:
    """Wait for a job process that is not our child to end (nothing to wait on but its pid).

    A job whose process has not written its pid yet (its host died just after starting it) gets
    ``starting_s`` to do so; one that never does is gone."""
    deadline = time.monotonic() + starting_s
    while not (pid := (read_json(status_path) or {}).get("pid")) and time.monotonic() < deadline:
        time.sleep(0.1)
    while pid_alive(pid):
        time.sleep(interval_s)
