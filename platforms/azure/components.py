"""The retraining pipeline as Azure ML command components: data checks -> train -> evaluate.

Each step runs the same CLI as the local platform (``python -m ml_pipeline.<step>``), from a code
snapshot holding only the ``ml_pipeline`` package, in the environment named by the settings.

Inputs and outputs (pipeline level):

- ``data``: a built-in data set's name (``diabetes``, ``breast_cancer``: scikit-learn's frames) or a
  ``uri_file`` data asset (a CSV).
- ``champion_model`` (only when there is one): the production model as a ``custom_model`` input
  (``azureml:<name>:<version>``); data checks use its ``profile.json`` as the reference and
  evaluate scores it on the candidate's holdout rows. Without one, evaluate gets ``--champion none``.
- outputs ``checks`` (``data_checks.json``), ``model`` (the training output directory) and
  ``evaluation`` (``evaluation.json``), all ``uri_folder``.

The model spec (task, estimator: MLOPS_TASK, MLOPS_ESTIMATOR) is baked into the data checks and train
commands as ``--task``/``--estimator``, training parameters as ``--param key=<JSON value>`` arguments.
Steps never reuse an earlier job's outputs (``force_rerun``): every release gets its own model
and report, so the model registered for a release is the one its own job trained.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from azure.ai.ml import Input, Output, command
from azure.ai.ml.constants import AssetTypes
from azure.ai.ml.dsl import pipeline
from azure.ai.ml.entities import Command, CommandComponent, PipelineJob

from ml_pipeline.dataset import BUILTIN_DATASETS
from platforms.common.model_spec import ModelSpec

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "ml_pipeline"
BUILTIN_DATA = "diabetes"
NO_CHAMPION = "none"
CHECKS_FILE = "data_checks.json"
EVALUATION_FILE = "evaluation.json"
PROFILE_FILE = "profile.json"
# Names of the pipeline's outputs (what jobs.download(output_name=...) and job-output URIs use).
CHECKS_OUTPUT = "checks"
MODEL_OUTPUT = "model"
# The model's own folder inside the train step's output: registration names a path inside the job output
# (azureml://jobs/<step job>/outputs/model/paths/model/), which the SDK's job-URI pattern requires.
MODEL_DIR = "model"
# The train step's node name, which its child job carries as display name (how model_location finds it).
TRAIN_STEP = "train"
EVALUATION_OUTPUT = "evaluation"
CHAMPION_INPUT = "champion_model"
PIPELINE_NAME = "mlops_retraining"
# Azure ML expands these in commands; a parameter value must not smuggle one in.
_EXPRESSION = re.compile(r"\$\{\{|\$\[\[")


@dataclass(frozen=True)
class RetrainingSpec:
    """Everything one retraining pipeline job is built from."""

    code: Path  # a directory that contains the ml_pipeline package (see stage_code)
    environment: str  # an environment reference, e.g. azureml:diabetes-train-env@latest
    compute: str
    experiment: str
    data: str = BUILTIN_DATA  # "diabetes" or a uri_file data asset (azureml:name:version)
    params: Mapping[str, Any] = field(default_factory=dict)
    champion: str | None = None  # the champion model's URI (azureml:name:version), if there is one
    model: ModelSpec = field(default_factory=ModelSpec)


def environment_reference(environment: str) -> str:
    """``name`` -> ``azureml:name@latest``; ``name:version``/``name@label`` keep their version."""
    reference = environment if environment.startswith("azureml:") else f"azureml:{environment}"
    body = reference.removeprefix("azureml:")
    if ":" in body or "@" in body or body.startswith("/"):
        return reference
    return f"{reference}@latest"


def stage_code(target: Path, source: Path | None = None) -> Path:
    """Copy the ml_pipeline package (Python files only) into ``target/ml_pipeline``; return ``target``.

    The snapshot is what Azure ML uploads as the components' code: the same bytes give the same
    content hash, so an unchanged package is uploaded once and reused.
    """
    source = source or REPO_ROOT / PACKAGE
    if not (source / "__init__.py").is_file():
        raise FileNotFoundError(f"{source} is not the {PACKAGE} package")
    shutil.copytree(
        source,
        target / PACKAGE,
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo"),
        dirs_exist_ok=True,
    )
    return target


def param_arguments(params: Mapping[str, Any]) -> list[str]:
    """``{"alpha": 0.4}`` -> ``["--param", "alpha=0.4"]``, shell-quoted, keys sorted."""
    arguments: list[str] = []
    for key in sorted(params):
        if not isinstance(key, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", key):
            raise ValueError(f"training parameter name {key!r} is not an identifier")
        value = json.dumps(params[key], sort_keys=True)
        if _EXPRESSION.search(value):
            raise ValueError(f"training parameter {key} contains an Azure ML expression: {value}")
        arguments += ["--param", shlex.quote(f"{key}={value}")]
    return arguments


def _ref(kind: str, name: str) -> str:
    """``${{inputs.data}}``: where Azure ML puts an input's path or an output's directory in a command."""
    return "${{" + f"{kind}.{name}" + "}}"


def _data_input(data: str) -> Input:
    if data in BUILTIN_DATASETS:
        return Input(type="string", description=f"{data!r} (built-in data)")
    return Input(type=AssetTypes.URI_FILE, description="training data: one CSV, one row per example")


def _champion_input() -> Input:
    return Input(type=AssetTypes.CUSTOM_MODEL, description="the production model (a training output directory)")


def data_checks_component(
    code: Path, environment: str, data: str, with_champion: bool, model: ModelSpec | None = None
) -> Command:
    words = ["python", "-m", f"{PACKAGE}.data_checks", "--data", _ref("inputs", "data")]
    words += (model or ModelSpec()).task_options()
    inputs = {"data": _data_input(data)}
    if with_champion:
        words += ["--reference", _ref("inputs", CHAMPION_INPUT) + "/" + PROFILE_FILE]
        inputs[CHAMPION_INPUT] = _champion_input()
    words += ["--report", _ref("outputs", CHECKS_OUTPUT) + "/" + CHECKS_FILE]
    return command(
        name="data_checks",
        display_name="data checks",
        description="schema, missing values, ranges, duplicates, target, shift against the champion's profile",
        command=" ".join(words),
        inputs=inputs,
        outputs={CHECKS_OUTPUT: Output(type=AssetTypes.URI_FOLDER, description=CHECKS_FILE)},
        code=str(code),
        environment=environment,
    )


def train_component(
    code: Path, environment: str, data: str, params: Mapping[str, Any], model: ModelSpec | None = None
) -> Command:
    model = model or ModelSpec()
    words = [
        "python",
        "-m",
        f"{PACKAGE}.train",
        "--data",
        _ref("inputs", "data"),
        "--output",
        _ref("outputs", MODEL_OUTPUT) + "/" + MODEL_DIR,
        *(shlex.quote(word) for word in model.train_options()),
        *param_arguments(model.params_for(params)),
    ]
    return command(
        name=TRAIN_STEP,
        display_name=TRAIN_STEP,
        description="fit the estimator on the seeded training split; record holdout metrics, profile and card",
        command=" ".join(words),
        inputs={
            "data": _data_input(data),
            # Not read by the script: it orders train after data checks (a failed check fails the job first).
            CHECKS_OUTPUT: Input(type=AssetTypes.URI_FOLDER, description="the data checks report (ordering only)"),
        },
        outputs={
            MODEL_OUTPUT: Output(
                type=AssetTypes.URI_FOLDER, description=f"{MODEL_DIR}/: model.joblib, metrics, profile, card"
            )
        },
        code=str(code),
        environment=environment,
    )


def evaluate_component(code: Path, environment: str, data: str, with_champion: bool) -> Command:
    inputs = {
        "candidate": Input(type=AssetTypes.URI_FOLDER, description=f"the training output ({MODEL_DIR}/ inside it)"),
        "data": _data_input(data),
    }
    champion = NO_CHAMPION
    if with_champion:
        inputs[CHAMPION_INPUT] = _champion_input()
        champion = _ref("inputs", CHAMPION_INPUT)
    words = [
        "python",
        "-m",
        f"{PACKAGE}.evaluate",
        "--candidate",
        _ref("inputs", "candidate") + "/" + MODEL_DIR,
        "--champion",
        champion,
        "--data",
        _ref("inputs", "data"),
        "--output",
        _ref("outputs", EVALUATION_OUTPUT) + "/" + EVALUATION_FILE,
    ]
    return command(
        name="evaluate",
        display_name="evaluate",
        description="candidate vs champion on the candidate's holdout rows, with bootstrap intervals",
        command=" ".join(words),
        inputs=inputs,
        outputs={EVALUATION_OUTPUT: Output(type=AssetTypes.URI_FOLDER, description=EVALUATION_FILE)},
        code=str(code),
        environment=environment,
    )


def code_version(code: Path) -> str:
    """A version for the steps' code: a short hash of every file under ``code`` (path and bytes)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in code.rglob("*") if p.is_file()):
        digest.update(path.relative_to(code).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def registrable_components(
    code: Path, environment: str, data: str = BUILTIN_DATA, model: ModelSpec | None = None
) -> list[Any]:
    """The three steps as named, versioned components for the workspace's catalogue (`mlops azure
    bootstrap`). Versions hash the code and the commands, so registering unchanged steps again changes
    nothing, and a changed command (an output layout, say) is a new version rather than a clash."""
    nodes = [
        data_checks_component(code, environment, data, with_champion=True, model=model),
        train_component(code, environment, data, {}, model),
        evaluate_component(code, environment, data, with_champion=True),
    ]
    commands = "\n".join(str(node.component.command) for node in nodes if isinstance(node.component, CommandComponent))
    version = hashlib.sha256(f"{code_version(code)}\n{commands}".encode()).hexdigest()[:12]
    components = []
    for node in nodes:
        component = node.component
        if not isinstance(component, CommandComponent):  # command() always builds one; a str names a registered one
            raise TypeError(f"step {node.name} refers to component {component!r}, not a component it defines")
        component.name, component.version = f"mlops_{component.name}", version
        components.append(component)
    return components


def retraining_pipeline(spec: RetrainingSpec) -> PipelineJob:
    """The pipeline job (not submitted; name, tags and display name are the caller's)."""
    with_champion = spec.champion is not None
    checks_step = data_checks_component(spec.code, spec.environment, spec.data, with_champion, spec.model)
    train_step = train_component(spec.code, spec.environment, spec.data, spec.params, spec.model)
    evaluate_step = evaluate_component(spec.code, spec.environment, spec.data, with_champion)
    # The DSL turns the decorated function's parameters into pipeline inputs and its returned dict into
    # pipeline outputs; parameters stay unannotated because it reads annotations as input types. A step's
    # outputs are indexed by name (the SDK types ``outputs`` as a dict; attribute access is the same lookup).
    settings: dict[str, Any] = {
        "name": PIPELINE_NAME,
        "description": "data checks -> train -> evaluate against the champion",
        "default_compute": spec.compute,
        "experiment_name": spec.experiment,
        "force_rerun": True,
        "continue_on_step_failure": False,
    }

    if with_champion:

        @pipeline(**settings)
        def retraining_against_champion(data, champion_model):
            data_checks = checks_step(data=data, champion_model=champion_model)
            train = train_step(data=data, checks=data_checks.outputs[CHECKS_OUTPUT])
            evaluate = evaluate_step(candidate=train.outputs[MODEL_OUTPUT], data=data, champion_model=champion_model)
            return {
                CHECKS_OUTPUT: data_checks.outputs[CHECKS_OUTPUT],
                MODEL_OUTPUT: train.outputs[MODEL_OUTPUT],
                EVALUATION_OUTPUT: evaluate.outputs[EVALUATION_OUTPUT],
            }

        champion_input = Input(type=AssetTypes.CUSTOM_MODEL, path=spec.champion)
        return retraining_against_champion(data=_data_value(spec.data), champion_model=champion_input)

    @pipeline(**settings)
    def retraining(data):
        data_checks = checks_step(data=data)
        train = train_step(data=data, checks=data_checks.outputs[CHECKS_OUTPUT])
        evaluate = evaluate_step(candidate=train.outputs[MODEL_OUTPUT], data=data)
        return {
            CHECKS_OUTPUT: data_checks.outputs[CHECKS_OUTPUT],
            MODEL_OUTPUT: train.outputs[MODEL_OUTPUT],
            EVALUATION_OUTPUT: evaluate.outputs[EVALUATION_OUTPUT],
        }

    return retraining(data=_data_value(spec.data))


def _data_value(data: str) -> str | Input:
    return data if data in BUILTIN_DATASETS else Input(type=AssetTypes.URI_FILE, path=data)
