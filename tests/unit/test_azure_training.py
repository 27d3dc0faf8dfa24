"""AzureTraining against an in-memory MLClient: the pipeline job it builds and what it reads back."""

from __future__ import annotations

import importlib
import json
import re
import shlex
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from azure.ai.ml._utils._storage_utils import AzureMLDatastorePathUri
from azure.ai.ml.constants._common import JOB_URI_REGEX_FORMAT, SERVERLESS_COMPUTE
from azure.ai.ml.entities import Command, CommandComponent, JobResourceConfiguration, PipelineJob, PipelineJobSettings

from functions.domain.refs import ModelRef
from platforms.azure.components import param_arguments
from platforms.azure.settings import AzureSettings, example_env
from platforms.azure.training import STATES, AzureTraining, EvaluationNotFound, _find_report
from platforms.common.model_spec import ModelSpec
from tests.doubles.azure_ml import FakeMLClient

# azure-ai-ml's schemas use marshmallow APIs that marshmallow 4 deprecates: noise, not our concern.
pytestmark = pytest.mark.filterwarnings("ignore::marshmallow.warnings.Marshmallow4Warning")

BUILD = {"buildId": "1234", "sourceVersion": "3f2a9c1", "result": "succeeded"}
CHAMPION = ModelRef("diabetes-model", "3", "azureml:diabetes-model:3", {"stage": "production"})
ENVIRONMENT = "azureml:diabetes-train-env@latest"
STUDIO = "https://ml.azure.com/runs/{job}?wsid=/subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups/rg-mlops/workspaces/mlw-mlops"


@pytest.fixture
def settings() -> AzureSettings:
    return AzureSettings.from_env(example_env())


@pytest.fixture
def client() -> FakeMLClient:
    return FakeMLClient()


@pytest.fixture
def training(settings: AzureSettings, client: FakeMLClient, tmp_path: Path) -> AzureTraining:
    return AzureTraining(settings, client, tmp_path / "downloads")


def submitted(client: FakeMLClient) -> PipelineJob:
    return client.jobs.submissions[-1].job


def nodes(job: PipelineJob) -> dict[str, Command]:
    return dict(job.jobs)


def component(step: Command) -> CommandComponent:
    """The component a step defines (the SDK also allows the name of a registered one)."""
    assert isinstance(step.component, CommandComponent), step.component
    return step.component


def job_settings(job: PipelineJob) -> PipelineJobSettings:
    assert job.settings is not None
    return job.settings


# ---- submit --------------------------------------------------------------------------------
def test_submit_without_champion_builds_the_pipeline_job(training, client):
    job_name = training.submit("rel-1", BUILD, {}, None)

    assert client.operations() == ["jobs.create_or_update"]
    assert client.calls[0][2] == {"experiment_name": "diabetes-retraining"}
    assert re.fullmatch(r"retrain-rel-1-[0-9a-f]{8}", job_name)
    job = submitted(client)
    assert isinstance(job, PipelineJob) and job.name == job_name
    assert job.tags == {"release_id": "rel-1", "build_id": "1234", "commit": "3f2a9c1"}
    assert job.display_name == "retrain rel-1"
    assert job.experiment_name == "diabetes-retraining"
    assert job_settings(job).default_compute == "cpu-cluster" and job_settings(job).force_rerun is True
    assert list(job.jobs) == ["data_checks", "train", "evaluate"]
    steps = nodes(job)
    for step in steps.values():
        assert component(step).environment == ENVIRONMENT
        assert step.compute is None  # every step runs on the pipeline's default compute
    assert component(steps["data_checks"]).command == (
        "python -m ml_pipeline.data_checks --data ${{inputs.data}} --task regression "
        "--report ${{outputs.checks}}/data_checks.json"
    )
    assert component(steps["train"]).command == (
        "python -m ml_pipeline.train --data ${{inputs.data}} --output ${{outputs.model}}/model --task regression"
    )
    assert component(steps["evaluate"]).command == (
        "python -m ml_pipeline.evaluate --candidate ${{inputs.candidate}}/model --champion none "
        "--data ${{inputs.data}} --output ${{outputs.evaluation}}/evaluation.json"
    )
    assert _input_types(steps) == {
        "data_checks": {"data": "string"},
        "train": {"data": "string", "checks": "uri_folder"},
        "evaluate": {"candidate": "uri_folder", "data": "string"},
    }
    assert _output_types(steps) == {
        "data_checks": {"checks": "uri_folder"},
        "train": {"model": "uri_folder"},
        "evaluate": {"evaluation": "uri_folder"},
    }


def _input_types(steps: dict[str, Command]) -> dict[str, dict[str, str]]:
    return {n: {k: v.type for k, v in component(s).inputs.items()} for n, s in steps.items()}


def _output_types(steps: dict[str, Command]) -> dict[str, dict[str, str]]:
    return {n: {k: v.type for k, v in component(s).outputs.items()} for n, s in steps.items()}


def test_submit_without_champion_serialises_offline(training, client):
    training.submit("rel-1", BUILD, {}, None)
    submission = client.jobs.submissions[-1]

    document = submission.as_dict
    assert document["type"] == "pipeline" and document["experiment_name"] == "diabetes-retraining"
    assert document["settings"] == {
        "default_compute": "azureml:cpu-cluster",
        "continue_on_step_failure": False,
        "force_rerun": True,
    }
    assert document["inputs"] == {"data": "diabetes"}
    assert document["outputs"] == {name: {"type": "uri_folder"} for name in ("checks", "model", "evaluation")}
    bindings = {name: step["inputs"] for name, step in document["jobs"].items()}
    assert bindings == {
        "data_checks": {"data": {"path": "${{parent.inputs.data}}"}},
        "train": {
            "data": {"path": "${{parent.inputs.data}}"},
            "checks": {"path": "${{parent.jobs.data_checks.outputs.checks}}"},
        },
        "evaluate": {
            "candidate": {"path": "${{parent.jobs.train.outputs.model}}"},
            "data": {"path": "${{parent.inputs.data}}"},
        },
    }
    outputs = {name: step["outputs"] for name, step in document["jobs"].items()}
    assert outputs == {
        "data_checks": {"checks": "${{parent.outputs.checks}}"},
        "train": {"model": "${{parent.outputs.model}}"},
        "evaluate": {"evaluation": "${{parent.outputs.evaluation}}"},
    }

    rest = submission.rest
    assert rest["name"] == submitted(client).name
    properties = rest["properties"]
    assert properties["jobType"] == "Pipeline" and properties["experimentName"] == "diabetes-retraining"
    assert properties["displayName"] == "retrain rel-1"
    assert properties["tags"] == {"release_id": "rel-1", "build_id": "1234", "commit": "3f2a9c1"}
    assert properties["inputs"] == {"data": {"value": "diabetes", "jobInputType": "literal"}}
    assert properties["outputs"] == {
        name: {"jobOutputType": "uri_folder"} for name in ("checks", "model", "evaluation")
    }
    assert properties["settings"]["default_compute"] == "cpu-cluster"


def test_submit_uploads_only_the_ml_pipeline_package(training, client):
    training.submit("rel-1", BUILD, {}, None)
    code_files = client.jobs.submissions[-1].code_files

    expected = sorted(f"ml_pipeline/{p.name}" for p in (Path(__file__).parents[2] / "ml_pipeline").glob("*.py"))
    assert code_files == {"data_checks": expected, "train": expected, "evaluate": expected}
    # The snapshot lived only for the upload.
    assert not Path(submitted(client).jobs["train"].component.code).exists()


def test_submit_with_champion_compares_against_it(training, client):
    training.submit("rel-2", BUILD, {}, CHAMPION)

    job = submitted(client)
    steps = nodes(job)
    assert component(steps["data_checks"]).command == (
        "python -m ml_pipeline.data_checks --data ${{inputs.data}} --task regression "
        "--reference ${{inputs.champion_model}}/profile.json --report ${{outputs.checks}}/data_checks.json"
    )
    assert component(steps["evaluate"]).command == (
        "python -m ml_pipeline.evaluate --candidate ${{inputs.candidate}}/model --champion ${{inputs.champion_model}} "
        "--data ${{inputs.data}} --output ${{outputs.evaluation}}/evaluation.json"
    )
    assert _input_types(steps)["data_checks"] == {"data": "string", "champion_model": "custom_model"}
    assert _input_types(steps)["evaluate"] == {
        "candidate": "uri_folder",
        "data": "string",
        "champion_model": "custom_model",
    }
    assert "against champion diabetes-model:3" in (job.description or "")

    submission = client.jobs.submissions[-1]
    assert submission.as_dict["inputs"] == {
        "data": "diabetes",
        "champion_model": {"type": "custom_model", "path": "azureml:diabetes-model:3"},
    }
    assert submission.as_dict["jobs"]["data_checks"]["inputs"]["champion_model"] == {
        "path": "${{parent.inputs.champion_model}}"
    }
    assert submission.as_dict["jobs"]["evaluate"]["inputs"]["champion_model"] == {
        "path": "${{parent.inputs.champion_model}}"
    }
    assert submission.rest["properties"]["inputs"]["champion_model"] == {
        "uri": "azureml:diabetes-model:3",
        "jobInputType": "custom_model",
    }


def test_training_params_become_param_arguments(training, client):
    params = {"alpha": 0.1, "estimator": "sklearn.linear_model.Lasso", "fit_intercept": False, "note": "it's"}
    training.submit("rel-3", BUILD, params, None)

    command = component(nodes(submitted(client))["train"]).command
    arguments = shlex.split(command)
    pairs = [arguments[i + 1] for i, word in enumerate(arguments) if word == "--param"]
    assert pairs == ["alpha=0.1", 'estimator="sklearn.linear_model.Lasso"', "fit_intercept=false", 'note="it\'s"']
    from ml_pipeline.train import parse_overrides

    assert parse_overrides(pairs) == params


def test_a_classifier_spec_reaches_the_steps_with_the_builds_params_on_top(settings, client, tmp_path):
    model = ModelSpec("classification", "sklearn.linear_model.LogisticRegression", {"C": 0.5, "max_iter": 5000})
    training = AzureTraining(settings, client, tmp_path / "downloads", model=model)
    training.submit("rel-4", BUILD, {"C": 2.0}, None)

    steps = nodes(submitted(client))
    checks = shlex.split(component(steps["data_checks"]).command)
    assert checks[checks.index("--task") + 1] == "classification"
    train = shlex.split(component(steps["train"]).command)
    assert train[train.index("--task") + 1] == "classification"
    assert train[train.index("--estimator") + 1] == "sklearn.linear_model.LogisticRegression"
    from ml_pipeline.train import parse_overrides

    pairs = [train[i + 1] for i, word in enumerate(train) if word == "--param"]
    assert parse_overrides(pairs) == {"C": 2.0, "max_iter": 5000}


def test_breast_cancer_is_passed_as_a_built_in_name(client, tmp_path):
    settings = AzureSettings.from_env({**example_env(), "AZUREML_TRAINING_DATA": "breast_cancer"})
    AzureTraining(settings, client, tmp_path / "downloads", model=ModelSpec("classification")).submit(
        "rel-5", BUILD, {}, None
    )
    assert client.jobs.submissions[-1].as_dict["inputs"] == {"data": "breast_cancer"}


@pytest.mark.parametrize(
    "params, problem",
    [({"bad key": 1}, "not an identifier"), ({"alpha": "${{inputs.data}}"}, "Azure ML expression")],
)
def test_params_that_cannot_be_passed_safely_are_refused(params, problem):
    with pytest.raises(ValueError, match=problem):
        param_arguments(params)


def test_a_data_asset_is_a_uri_file_input(settings, client, tmp_path):
    training = AzureTraining(replace(settings, training_data="azureml:diabetes-csv:2"), client, tmp_path)
    training.submit("rel-4", BUILD, {}, None)

    submission = client.jobs.submissions[-1]
    assert submission.as_dict["inputs"] == {"data": {"type": "uri_file", "path": "azureml:diabetes-csv:2"}}
    assert _input_types(nodes(submission.job))["train"] == {"data": "uri_file", "checks": "uri_folder"}
    assert submission.rest["properties"]["inputs"]["data"] == {
        "uri": "azureml:diabetes-csv:2",
        "jobInputType": "uri_file",
    }


def test_compute_environment_and_experiment_come_from_settings(settings, client, tmp_path):
    custom = replace(settings, compute="gpu-cluster", environment="my-env", experiment="nightly")
    AzureTraining(custom, client, tmp_path).submit("rel-5", BUILD, {}, None)

    job = submitted(client)
    assert job_settings(job).default_compute == "gpu-cluster" and job.experiment_name == "nightly"
    assert client.calls[0][2] == {"experiment_name": "nightly"}
    assert {component(s).environment for s in nodes(job).values()} == {"azureml:my-env@latest"}


# ---- where the steps run: a named cluster or serverless compute ---------------------------------
def test_a_named_cluster_is_the_pipelines_default_compute(training, client):
    training.submit("rel-1", BUILD, {}, CHAMPION)

    properties = client.jobs.submissions[-1].rest["properties"]
    assert properties["settings"]["default_compute"] == "cpu-cluster"
    assert "computeId" not in properties  # the steps inherit the pipeline's default compute
    for name, step in properties["jobs"].items():
        assert step.get("computeId") is None and step.get("resources") is None, name


@pytest.mark.parametrize("champion", [None, CHAMPION])
def test_serverless_steps_ask_for_an_instance_type_and_no_cluster(client, tmp_path, champion):
    serverless = AzureSettings.from_env({**example_env(), "AZUREML_COMPUTE": "serverless"})
    AzureTraining(serverless, client, tmp_path).submit("rel-7", BUILD, {}, champion)

    submission = client.jobs.submissions[-1]  # the fake ran the SDK's own validation: it passed
    properties = submission.rest["properties"]
    assert "computeId" not in properties
    # azure-ai-ml's marker for serverless (constants SERVERLESS_COMPUTE), passed through unresolved when
    # submitting; with no compute at all its validation refuses the job ("Compute not set").
    assert properties["settings"]["default_compute"] == SERVERLESS_COMPUTE == "serverless"
    assert list(properties["jobs"]) == ["data_checks", "train", "evaluate"]
    for name, step in properties["jobs"].items():
        assert step.get("computeId") is None, name
        assert step["resources"] == {"instance_type": "STANDARD_DS3_V2", "instance_count": 1}, name
    for step in nodes(submission.job).values():
        assert isinstance(step.resources, JobResourceConfiguration)
        assert (step.resources.instance_type, step.resources.instance_count) == ("STANDARD_DS3_V2", 1)
    assert submission.as_dict["settings"]["default_compute"] == "serverless"


def test_a_pipeline_without_any_compute_is_refused_by_the_sdk(client, tmp_path):
    """Why serverless is the SDK's marker, not an unset default compute: the SDK validates before submitting."""
    serverless = AzureSettings.from_env({**example_env(), "AZUREML_COMPUTE": "serverless"})
    job = AzureTraining(serverless, client, tmp_path).pipeline_job("rel-8", BUILD, {}, None, tmp_path)
    assert job._validate().passed
    assert job.settings is not None
    job.settings.default_compute = None

    result = job._validate()

    assert not result.passed
    assert set(result.error_messages) == {f"jobs.{name}.compute" for name in ("data_checks", "train", "evaluate")}


def test_a_champion_outside_azure_ml_is_refused(training, client):
    local = ModelRef("diabetes-model", "3", "/home/me/.mlops/models/diabetes-model/3")
    with pytest.raises(ValueError, match="not an Azure ML model"):
        training.submit("rel-6", BUILD, {}, local)
    assert client.calls == []


def test_each_submission_gets_its_own_job(training, client):
    first = training.submit("rel-1", BUILD, {}, None)
    second = training.submit("rel-1", BUILD, {}, None)
    assert first != second and set(client.jobs.jobs) == {first, second}


def test_component_commands_run_as_written(training, client, tmp_path, trained_dir):
    """Expand each step's command the way Azure ML does and run the CLI it names, step after step."""
    training.submit("rel-7", BUILD, {"alpha": 0.5}, CHAMPION)
    job = submitted(client)
    outputs = {name: tmp_path / "outputs" / name for name in ("checks", "model", "evaluation")}
    for path in outputs.values():
        path.mkdir(parents=True)  # Azure ML mounts output folders before the command starts
    values = {"data": "diabetes", "champion_model": str(trained_dir), "candidate": str(outputs["model"])}

    for name, step in nodes(job).items():
        written = component(step).command
        assert written is not None, name
        command = re.sub(r"\$\{\{inputs\.(\w+)\}\}", lambda m: values[m.group(1)], written)
        command = re.sub(r"\$\{\{outputs\.(\w+)\}\}", lambda m: str(outputs[m.group(1)]), command)
        python, flag, module, *argv = shlex.split(command)
        assert (python, flag, module) == ("python", "-m", f"ml_pipeline.{name}")
        assert importlib.import_module(module).main(argv) == 0, name

    report = json.loads((outputs["evaluation"] / "evaluation.json").read_text())
    assert report["compared"]["champion"] is not None and report["differences"]
    card = json.loads((outputs["model"] / "model" / "model_card.json").read_text())  # the model folder in the output
    assert card["params"]["alpha"] == 0.5
    assert json.loads((outputs["checks"] / "data_checks.json").read_text())["reference"].endswith("profile.json")


# ---- status --------------------------------------------------------------------------------
@pytest.mark.parametrize("azure_status, state", sorted(STATES.items()))
def test_status_maps_azure_ml_statuses(training, client, azure_status, state):
    client.jobs.add("job-1", azure_status)
    status = training.status("job-1")
    assert status.state == state
    assert status.portal_url == STUDIO.format(job="job-1")
    assert client.calls == [("jobs.get", "job-1")]


def test_status_table_covers_every_status_the_sdk_knows():
    from azure.ai.ml._restclient.arm_ml_service.models import JobStatus as RestJobStatus
    from azure.ai.ml.operations._run_history_constants import RunHistoryConstants

    assert set(STATES) == {s.value for s in RestJobStatus} | set(RunHistoryConstants.ALL_STATUSES)
    # Whatever the SDK counts as in progress is running here; only its terminal outcomes end a release.
    assert {STATES[s] for s in RunHistoryConstants.IN_PROGRESS_STATUSES} == {"running"}
    assert {s: STATES[s] for s in ("Completed", "Failed", "Canceled")} == {
        "Completed": "completed",
        "Failed": "failed",
        "Canceled": "canceled",
    }


def test_status_of_a_failed_job_points_at_the_studio(training, client):
    client.jobs.add("job-1", "Failed")
    status = training.status("job-1")
    assert status.state == "failed" and "Failed" in status.detail
    assert status.portal_url.startswith("https://ml.azure.com/runs/job-1?wsid=")


def test_an_unrecognised_status_is_still_running(training, client):
    client.jobs.add("job-1", "Levitating")
    status = training.status("job-1")
    assert status.state == "running" and "Levitating" in status.detail


def test_status_of_a_missing_job_is_unknown(training):
    status = training.status("no-such-job")
    assert status.state == "unknown" and "no-such-job" in status.detail and status.portal_url == ""


def test_status_after_submit(training, client):
    job_name = training.submit("rel-1", BUILD, {}, None)
    assert training.status(job_name).state == "running"
    client.jobs.finish(job_name, "Completed")
    status = training.status(job_name)
    assert status.state == "completed" and status.portal_url == STUDIO.format(job=job_name)


# ---- evaluation ----------------------------------------------------------------------------
REPORT: dict[str, Any] = {
    "version": 1,
    "n": 89,
    "metrics": {"candidate": {"mse": 2900.5}, "champion": {"mse": 3000.0}},
    "compared": {"data": {"sha256": "ab" * 32}},
}


def test_evaluation_downloads_the_named_output(training, client, tmp_path):
    client.jobs.add("job-1", "Completed", evaluation={"evaluation.json": json.dumps(REPORT)})

    assert training.evaluation("job-1") == REPORT
    (operation, name, output_name, download_path), *rest = client.calls
    assert (operation, name, output_name, rest) == ("jobs.download", "job-1", "evaluation", [])
    assert Path(download_path).parent == tmp_path / "downloads"
    assert not Path(download_path).exists()  # nothing left behind
    assert list((tmp_path / "downloads").iterdir()) == []


def test_data_checks_download_the_checks_output(training, client, tmp_path):
    checks = {"passed": True, "failed": [], "checks": [{"name": "schema", "passed": True}]}
    client.jobs.add("job-1", "Completed", checks={"data_checks.json": json.dumps(checks)}, evaluation={})
    assert training.data_checks("job-1") == checks
    (operation, name, output_name, _), *rest = client.calls
    assert (operation, name, output_name, rest) == ("jobs.download", "job-1", "checks", [])
    assert list((tmp_path / "downloads").iterdir()) == []
    client.jobs.add("job-2", "Completed", evaluation={"evaluation.json": "{}"})
    with pytest.raises(EvaluationNotFound, match=r"job job-2 has no data_checks\.json in its .checks. output"):
        training.data_checks("job-2")


def test_evaluation_of_a_submitted_job(training, client):
    job_name = training.submit("rel-1", BUILD, {}, CHAMPION)
    client.jobs.finish(job_name, "Completed", evaluation={"evaluation.json": json.dumps(REPORT)})
    assert training.evaluation(job_name) == REPORT
    assert client.operations() == ["jobs.create_or_update", "jobs.download"]


def test_evaluation_of_a_running_job_is_a_clear_error(training, client):
    client.jobs.add("job-1", "Running")
    with pytest.raises(EvaluationNotFound, match=r"job job-1 has no evaluation.json yet: .*state Running"):
        training.evaluation("job-1")


def test_evaluation_of_a_job_that_failed_before_evaluate(training, client):
    client.jobs.add("job-1", "Failed", model={"model.joblib": "x"})
    with pytest.raises(EvaluationNotFound) as caught:
        training.evaluation("job-1")
    message = str(caught.value)
    assert "no evaluation.json in its 'evaluation' output" in message
    assert "job failed" in message and "https://ml.azure.com/runs/job-1" in message
    assert client.operations() == ["jobs.download", "jobs.get"]


def test_evaluation_of_a_missing_job(training):
    with pytest.raises(EvaluationNotFound, match="no Azure ML job no-such-job"):
        training.evaluation("no-such-job")


def test_evaluation_that_is_not_json(training, client):
    client.jobs.add("job-1", "Completed", evaluation={"evaluation.json": "{not json"})
    with pytest.raises(ValueError, match="not valid JSON"):
        training.evaluation("job-1")


def test_evaluation_found_under_another_nesting(tmp_path):
    nested = tmp_path / "named-outputs" / "evaluation" / "INPUT_x" / "evaluation.json"
    nested.parent.mkdir(parents=True)
    nested.write_text("{}")
    assert _find_report(tmp_path, "evaluation", "evaluation.json") == nested
    assert _find_report(tmp_path / "named-outputs" / "evaluation" / "INPUT_x" / "none", "evaluation", "x") is None


# ---- model location ------------------------------------------------------------------------
def test_the_model_is_registered_from_the_train_steps_own_output_and_the_model_folder_in_it(training, client):
    job_name = training.submit("rel-1", BUILD, {}, None)
    location = training.model_location(job_name)
    [train_step] = [step for step in client.jobs.steps[job_name] if step.display_name == "train"]
    assert location == f"azureml://jobs/{train_step.name}/outputs/model/paths/model/"
    assert client.operations() == ["jobs.create_or_update", "jobs.list"]
    # The SDK's own parser takes it as a job output URI (one with an empty path it does not).
    parsed = AzureMLDatastorePathUri(location)
    assert (parsed.uri_type, parsed.datastore, parsed.path) == ("Job", train_step.name, "model")
    match = re.fullmatch(JOB_URI_REGEX_FORMAT, location)
    assert match is not None and match.groups() == (train_step.name, "model", "model/")
    assert re.fullmatch(JOB_URI_REGEX_FORMAT, f"azureml://jobs/{job_name}/outputs/model/paths/") is None


def test_the_train_step_writes_the_model_folder_that_evaluate_reads_and_registration_names(training, client):
    training.submit("rel-1", BUILD, {}, None)
    steps = nodes(submitted(client))
    assert str(steps["train"].command).split("--output ")[1].startswith("${{outputs.model}}/model")
    assert "--candidate ${{inputs.candidate}}/model" in str(steps["evaluate"].command)


def test_a_pipeline_without_a_train_step_job_yet_is_a_step_error_to_retry(training, client):
    job_name = training.submit("rel-1", BUILD, {}, None)
    client.jobs.steps[job_name] = []
    with pytest.raises(LookupError, match=f"pipeline job {job_name} has no train step job yet"):
        training.model_location(job_name)
