"""LocalTraining: real pipeline steps as subprocesses; the outcome arrives as an Azure ML event."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest

from functions.domain.refs import ModelRef
from platforms.common.model_spec import ModelSpec
from platforms.local.training import EXPERIMENT_ID, LocalTraining
from tests.doubles.publisher import RecordingPublisher

pytestmark = pytest.mark.integration
JOB_TIMEOUT_S = 60
BUILD = {"buildId": "1234", "sourceVersion": "0123abcd", "result": "succeeded"}
RUN_COMPLETED = "Microsoft.MachineLearningServices.RunCompleted"
RUN_STATUS_CHANGED = "Microsoft.MachineLearningServices.RunStatusChanged"


@pytest.fixture(scope="module")
def jobs(tmp_path_factory: pytest.TempPathFactory, trained_dir: Path) -> SimpleNamespace:
    """Three jobs submitted at once (they run in parallel): plain, failing in train, against a champion."""
    home = tmp_path_factory.mktemp("training-home")
    publisher = RecordingPublisher()
    training = LocalTraining(home, publisher)
    champion = ModelRef("diabetes-model", "1", str(trained_dir))
    return SimpleNamespace(
        home=home,
        publisher=publisher,
        training=training,
        plain=training.submit("rel-ok", BUILD, {"alpha": 0.1}, None),
        failing=training.submit("rel-bad", {"buildId": "1235"}, {"alpha": "much"}, None),
        with_champion=training.submit("rel-champ", BUILD, {"alpha": 0.1}, champion),
    )


def run_event(jobs: SimpleNamespace, job: str) -> dict:
    return jobs.publisher.wait_for(lambda e: e["data"].get("runId") == job, JOB_TIMEOUT_S)


def test_job_name_carries_the_release_id(jobs):
    assert jobs.plain.startswith("train-rel-ok-")
    assert jobs.with_champion.startswith("train-rel-champ-")


def test_completed_job_publishes_run_completed_as_azure_ml_does(jobs):
    event = run_event(jobs, jobs.plain)
    job_dir = jobs.home / "jobs" / jobs.plain
    assert event["eventType"] == RUN_COMPLETED
    assert event["subject"] == f"experiments/{EXPERIMENT_ID}/runs/{jobs.plain}"
    assert event["dataVersion"] == "2"
    assert event["data"] == {
        "experimentId": EXPERIMENT_ID,
        "experimentName": "diabetes-retraining",
        "runId": jobs.plain,
        "runType": "azureml.PipelineRun",
        "runTags": {"release_id": "rel-ok", "build_id": "1234", "commit": "0123abcd"},
        "runProperties": {
            "azureml.runsource": "azureml.PipelineRun",
            "outputs": {
                "model": str(job_dir / "model"),
                "evaluation": str(job_dir / "evaluation.json"),
                "data_checks": str(job_dir / "data_checks.json"),
            },
        },
    }
    assert uuid.UUID(EXPERIMENT_ID)
    for output in event["data"]["runProperties"]["outputs"].values():
        assert Path(output).exists(), output


def test_completed_job_status_evaluation_and_model(jobs):
    run_event(jobs, jobs.plain)
    status = jobs.training.status(jobs.plain)
    assert status.state == "completed"
    assert status.portal_url == (jobs.home / "jobs" / jobs.plain).resolve().as_uri()
    report = jobs.training.evaluation(jobs.plain)
    assert report["metrics"]["candidate"]["mse"] > 0
    assert report["metrics"]["champion"] is None
    model_dir = Path(jobs.training.model_location(jobs.plain))
    assert (model_dir / "model.joblib").is_file()
    # The release's parameters reached train (JSON-encoded --param).
    assert json.loads((model_dir / "model_card.json").read_text())["params"] == {"alpha": 0.1}

    recorded = json.loads((jobs.home / "jobs" / jobs.plain / "status.json").read_text())
    assert recorded["state"] == "completed"
    assert {step: record["exit_code"] for step, record in recorded["steps"].items()} == {
        "data_checks": 0,
        "train": 0,
        "evaluate": 0,
    }
    assert recorded["pid"] > 0
    assert recorded["submitted_at"] and recorded["finished_at"]
    for step in ("data_checks", "train", "evaluate"):
        assert (jobs.home / "jobs" / jobs.plain / "logs" / f"{step}.log").stat().st_size > 0


def test_failing_step_publishes_run_status_changed_failed(jobs):
    event = run_event(jobs, jobs.failing)
    data = event["data"]
    assert event["eventType"] == RUN_STATUS_CHANGED
    assert data["runStatus"] == "Failed"
    assert data["runTags"] == {"release_id": "rel-bad", "build_id": "1235", "commit": ""}
    assert data["runProperties"]["failed_step"] == "train"
    assert "exit code 2" in data["runProperties"]["error"]
    assert "'alpha' parameter of Ridge" in data["runProperties"]["error"]

    status = jobs.training.status(jobs.failing)
    assert status.state == "failed"
    assert "train" in status.detail and "alpha" in status.detail
    recorded = json.loads((jobs.home / "jobs" / jobs.failing / "status.json").read_text())
    assert recorded["steps"]["data_checks"]["exit_code"] == 0
    assert recorded["steps"]["train"]["exit_code"] == 2
    assert "evaluate" not in recorded["steps"]
    with pytest.raises(FileNotFoundError, match="no evaluation report"):
        jobs.training.evaluation(jobs.failing)


def test_job_with_a_champion_checks_drift_and_compares(jobs, trained_dir):
    event = run_event(jobs, jobs.with_champion)
    assert event["eventType"] == RUN_COMPLETED
    job_dir = jobs.home / "jobs" / jobs.with_champion
    steps = json.loads((job_dir / "status.json").read_text())["steps"]
    assert str(trained_dir / "profile.json") in steps["data_checks"]["command"]
    assert steps["evaluate"]["command"][steps["evaluate"]["command"].index("--champion") + 1] == str(trained_dir)
    checks = {check["name"]: check for check in json.loads((job_dir / "data_checks.json").read_text())["checks"]}
    assert checks["distribution_shift"]["status"] == "passed"
    report = jobs.training.evaluation(jobs.with_champion)
    assert report["metrics"]["champion"] is not None
    assert set(report["differences"]) >= {"mse", "mae", "r2"}


def test_a_job_whose_process_died_is_failed_not_running_forever(tmp_path):
    training = LocalTraining(tmp_path, RecordingPublisher())
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    job_dir = tmp_path / "jobs" / "train-orphan-000000"
    job_dir.mkdir(parents=True)
    (job_dir / "status.json").write_text(json.dumps({"state": "running", "pid": int(gone.stdout), "steps": {}}))
    assert training.status("train-orphan-000000").state == "failed"
    assert training.status("train-orphan-000000").detail == "job process vanished"


def test_a_classification_job_checks_labels_trains_the_named_estimator_and_compares(tmp_path, classifier_dir):
    publisher = RecordingPublisher()
    model = ModelSpec("classification", "sklearn.linear_model.LogisticRegression", {"max_iter": 5000, "C": 0.5})
    training = LocalTraining(tmp_path, publisher, data="breast_cancer", model=model)
    champion = ModelRef("cancer-model", "1", str(classifier_dir))
    job = training.submit("rel-cls", BUILD, {"C": 2.0}, champion)

    event = publisher.wait_for(lambda e: e["data"].get("runId") == job, JOB_TIMEOUT_S)
    assert event["eventType"] == RUN_COMPLETED, training.status(job)
    status = json.loads((tmp_path / "jobs" / job / "status.json").read_text())
    assert status["task"] == "classification" and status["params"] == {"max_iter": 5000, "C": 2.0}
    checks = training.data_checks(job)
    target = next(check for check in checks["checks"] if check["name"] == "target")
    assert target["passed"] and target["summary"].startswith("2 classes")
    card = json.loads((Path(training.model_location(job)) / "model_card.json").read_text())
    assert card["estimator"] == "sklearn.linear_model.LogisticRegression" and card["params"]["C"] == 2.0
    report = training.evaluation(job)
    assert report["task"] == "classification" and set(report["differences"]) == {
        "log_loss", "brier", "accuracy", "balanced_accuracy", "roc_auc"
    }  # fmt: skip
