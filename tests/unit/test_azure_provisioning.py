"""Azure provisioning (`mlops azure bootstrap`) against a fake MLClient that records its calls and answers
like Azure ML, and a fake Azure Resource Manager holding the Event Grid subscriptions.

The environment fake stores what the service would hand back (the entity through azure-ai-ml's own
REST translation), so "unchanged" is judged on the same objects a real second run sees.
"""

from __future__ import annotations

import argparse
import io
import json
from collections.abc import Mapping
from typing import Any

import pytest
import requests
import urllib3
from azure.ai.ml.entities import AmlCompute, CommandComponent, Environment, KubernetesCompute
from azure.ai.ml.exceptions import ErrorTarget, ValidationException
from azure.core.credentials import AccessToken
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.core.pipeline.transport import RequestsTransport

from devhost import commands_azure
from functions.service.subscriptions import FUNCTION_EVENT_TYPES
from platforms.azure import provisioning
from platforms.azure.settings import AzureSettings, example_env

REQUIREMENTS = (
    "azure-functions==1.26.0\nnumpy==2.4.6\npandas==3.1.1  # data\nscipy==1.17.1\nscikit-learn==1.9.1\njoblib==1.6.0\n"
)
WRITES = {"compute.begin_create_or_update", "environments.create_or_update", "components.create_or_update"}


class Poller:
    def __init__(self, value: Any) -> None:
        self.value = value

    def result(self) -> Any:
        return self.value


class FakeCompute:
    def __init__(self, calls: list, existing: dict[str, Any] | None = None, error: Exception | None = None) -> None:
        self.calls, self.items, self.error = calls, dict(existing or {}), error

    def get(self, name: str) -> Any:
        self.calls.append(("compute.get", name))
        if self.error:
            raise self.error
        if name not in self.items:
            raise ResourceNotFoundError(f"compute {name} not found")
        return self.items[name]

    def begin_create_or_update(self, compute: Any) -> Poller:
        self.calls.append(("compute.begin_create_or_update", compute))
        self.items[compute.name] = compute
        return Poller(compute)


class FakeEnvironments:
    def __init__(self, calls: list) -> None:
        self.calls = calls
        self.versions: dict[str, list[Environment]] = {}

    def get(self, name: str, version: str | None = None, label: str | None = None) -> Environment:
        self.calls.append(("environments.get", name, version, label))
        stored = self.versions.get(name, [])
        if label == "latest":
            if not stored:  # what azure-ai-ml raises when the name has no version (not ResourceNotFoundError)
                message = f"Asset {name} does not exist in workspace mlw-mlops."
                # azure-ai-ml annotates target as ErrorTarget, whose members are plain str constants.
                raise ValidationException(message, message, target=ErrorTarget.ENVIRONMENT)  # type: ignore[arg-type]
            return stored[-1]
        for env in stored:
            if env.version == version:
                return env
        raise ResourceNotFoundError(f"environment {name}:{version} not found")

    def create_or_update(self, environment: Environment) -> Environment:
        self.calls.append(("environments.create_or_update", environment))
        assert environment.version, "bootstrap picks the version itself"
        name = environment.name
        assert name, "an environment to register has a name"
        if any(env.version == environment.version for env in self.versions.get(name, [])):
            raise ResourceExistsError("environment versions are immutable")
        rest = environment._to_rest_object()
        rest.name = environment.version
        rest.id = (
            "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-mlops/providers/"
            f"Microsoft.MachineLearningServices/workspaces/mlw-mlops/environments/{environment.name}"
            f"/versions/{environment.version}"
        )
        stored = Environment._from_rest_object(rest)
        self.versions.setdefault(name, []).append(stored)
        return stored


class FakeComponents:
    def __init__(self, calls: list) -> None:
        self.calls = calls
        self.items: dict[tuple[str, str], Any] = {}

    def get(self, name: str, version: str | None = None) -> Any:
        self.calls.append(("components.get", name, version))
        if (name, str(version)) not in self.items:
            raise ResourceNotFoundError(f"component {name}:{version} not found")
        return self.items[(name, str(version))]

    def create_or_update(self, component: Any) -> Any:
        self.calls.append(("components.create_or_update", component))
        self.items[(component.name, str(component.version))] = component
        return component


class FakeMLClient:
    def __init__(self, compute: dict[str, Any] | None = None, compute_error: Exception | None = None) -> None:
        self.calls: list[tuple] = []
        self.compute = FakeCompute(self.calls, compute, compute_error)
        self.environments = FakeEnvironments(self.calls)
        self.components = FakeComponents(self.calls)

    def writes(self) -> list[tuple]:
        return [call for call in self.calls if call[0] in WRITES]


GROUP = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-mlops"
TOPIC = f"{GROUP}/providers/Microsoft.EventGrid/topics/egt-mlops-builds"
APP = f"{GROUP}/providers/Microsoft.Web/sites/mlops-func"


def subscription(name: str, function: str, types: tuple[str, ...], state: str = "Succeeded") -> dict[str, Any]:
    return {
        "name": name,
        "properties": {
            "provisioningState": state,
            "destination": {
                "endpointType": "AzureFunction",
                "properties": {"resourceId": f"{APP}/functions/{function}"},
            },
            "filter": {"includedEventTypes": list(types)},
        },
    }


def system_topic(name: str, source: str) -> dict[str, Any]:
    return {"id": f"{GROUP}/providers/Microsoft.EventGrid/systemTopics/{name}", "name": name,
            "properties": {"source": source}}  # fmt: skip


class FakeArm:
    """Azure Resource Manager as infra/main.bicep leaves it after phase 2."""

    def __init__(self) -> None:
        self.resources: dict[str, dict[str, Any]] = {TOPIC: {"id": TOPIC, "name": "egt-mlops-builds"}}
        self.collections: dict[str, list[dict[str, Any]]] = {
            f"{GROUP}/providers/Microsoft.EventGrid/systemTopics": [
                system_topic("other", f"{GROUP}/providers/Microsoft.Storage/storageAccounts/st"),
                system_topic("mlw-events", f"{GROUP}/providers/Microsoft.MachineLearningServices/workspaces/MLW-MLOPS"),
                system_topic("cr-events", f"{GROUP}/providers/Microsoft.ContainerRegistry/registries/crmlops"),
            ],
            f"{TOPIC}/providers/Microsoft.EventGrid/eventSubscriptions": [
                subscription("on-build-event", "on_build_event", FUNCTION_EVENT_TYPES["on_build_event"])
            ],
            f"{GROUP}/providers/Microsoft.EventGrid/systemTopics/mlw-events/eventSubscriptions": [
                subscription("something-else", "other_function", ("Microsoft.MachineLearningServices.RunCompleted",)),
                subscription("on-ml-event", "on_ml_event", FUNCTION_EVENT_TYPES["on_ml_event"]),
            ],
            f"{GROUP}/providers/Microsoft.EventGrid/systemTopics/cr-events/eventSubscriptions": [
                subscription("on-registry-event", "ON_REGISTRY_EVENT", FUNCTION_EVENT_TYPES["on_registry_event"])
            ],
        }
        self.paths: list[str] = []

    def get(self, path: str) -> dict[str, Any] | None:
        self.paths.append(path)
        return self.resources.get(path)

    def list(self, path: str) -> list[dict[str, Any]]:
        self.paths.append(path)
        return list(self.collections.get(path, []))


@pytest.fixture
def settings() -> AzureSettings:
    env = example_env()
    env["EVENTGRID_TOPIC_ENDPOINT"] = "https://egt-mlops-builds.westeurope-1.eventgrid.azure.net/api/events"
    return AzureSettings.from_env(env)


def run(settings: AzureSettings, client: FakeMLClient, arm: Any = None, **kwargs: Any) -> list[str]:
    kwargs.setdefault("requirements_text", REQUIREMENTS)
    kwargs.setdefault("function_event_types", FUNCTION_EVENT_TYPES)
    return provisioning.bootstrap(settings, client, arm, **kwargs)


# ---- compute and environment ---------------------------------------------------------------------


def test_a_first_run_creates_the_cluster_and_the_environment(settings: AzureSettings):
    client = FakeMLClient()
    printed: list[str] = []
    lines = run(settings, client, echo=printed.append)

    assert lines[:3] == [
        "compute cpu-cluster: created (STANDARD_DS3_V2, 0-4 nodes)",
        "environment diabetes-train-env: created (version 1)",
        "components: skipped (none given; the retraining pipeline defines its steps inline when it is submitted)",
    ]
    assert printed == lines
    writes = client.writes()
    assert [call[0] for call in writes] == ["compute.begin_create_or_update", "environments.create_or_update"]

    cluster = writes[0][1]
    assert isinstance(cluster, AmlCompute)
    assert (cluster.name, cluster.size, cluster.min_instances, cluster.max_instances) == (
        "cpu-cluster", "STANDARD_DS3_V2", 0, 4,
    )  # fmt: skip
    assert cluster.idle_time_before_scale_down == provisioning.COMPUTE_IDLE_SECONDS

    environment = writes[1][1]
    assert isinstance(environment, Environment)
    assert (environment.name, environment.version) == ("diabetes-train-env", "1")
    assert environment.image == "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest"
    assert environment.conda_file == {
        "name": "diabetes-train-env",
        "channels": ["conda-forge"],
        "dependencies": [
            "python=3.11",
            "pip",
            {"pip": ["numpy==2.4.6", "pandas==3.1.1", "scipy==1.17.1", "scikit-learn==1.9.1", "joblib==1.6.0"]},
        ],
    }


def test_a_second_run_changes_nothing(settings: AzureSettings):
    client = FakeMLClient()
    run(settings, client)
    before = len(client.writes())

    lines = run(settings, client)

    assert len(client.writes()) == before
    assert lines[:2] == [
        "compute cpu-cluster: unchanged (exists: STANDARD_DS3_V2, 0-4 nodes)",
        "environment diabetes-train-env: unchanged (version 1)",
    ]


def test_new_pins_register_a_new_environment_version(settings: AzureSettings):
    client = FakeMLClient()
    run(settings, client)

    lines = run(settings, client, requirements_text=REQUIREMENTS.replace("numpy==2.4.6", "numpy==2.5.0"))

    assert lines[1] == (
        "environment diabetes-train-env: updated (version 2, image or conda definition differs from version 1)"
    )
    latest = client.environments.get("diabetes-train-env", label="latest")
    conda = latest.conda_file
    assert isinstance(conda, dict)  # what azure-ai-ml hands back for a registered version
    assert latest.version == "2" and "numpy==2.5.0" in conda["dependencies"][2]["pip"]
    assert run(settings, client, requirements_text=REQUIREMENTS.replace("numpy==2.4.6", "numpy==2.5.0"))[1] == (
        "environment diabetes-train-env: unchanged (version 2)"
    )


def test_the_default_pins_come_from_requirements_txt(settings: AzureSettings):
    pins = provisioning.pinned_requirements(provisioning.REQUIREMENTS.read_text())
    environment = provisioning.training_environment(settings)
    assert environment.conda_file["dependencies"][2]["pip"] == [
        f"{p}=={pins[p]}" for p in provisioning.TRAINING_PACKAGES
    ]


def test_a_dry_run_changes_nothing_and_says_what_it_would_do(settings: AzureSettings):
    client = FakeMLClient()
    lines = run(settings, client, dry_run=True)
    assert client.writes() == []
    assert lines[:2] == [
        "compute cpu-cluster: missing (would create: STANDARD_DS3_V2, 0-4 nodes)",
        "environment diabetes-train-env: missing (would register version 1)",
    ]


def test_a_compute_of_another_kind_is_left_alone_and_named(settings: AzureSettings):
    client = FakeMLClient(compute={"cpu-cluster": KubernetesCompute(name="cpu-cluster")})
    lines = run(settings, client)
    assert lines[0] == (
        "compute cpu-cluster: unchanged (it is a kubernetes compute, not a cluster: "
        "AZUREML_COMPUTE must name an AmlCompute cluster)"
    )
    assert "compute.begin_create_or_update" not in [call[0] for call in client.calls]


def test_a_failing_step_is_reported_and_the_others_still_run(settings: AzureSettings):
    client = FakeMLClient(compute_error=HttpResponseError("(AuthorizationFailed) The client does not have\nauth"))
    lines = run(settings, client)
    assert lines[0] == "compute cpu-cluster: failed (HttpResponseError: (AuthorizationFailed) The client does not have)"
    assert lines[1] == "environment diabetes-train-env: created (version 1)"


def test_unpinned_training_packages_fail_the_environment_step(settings: AzureSettings):
    with pytest.raises(ValueError, match="does not pin scipy"):
        provisioning.conda_definition(
            "numpy==2.4.6\npandas==3.1.1\nscipy>=1\nscikit-learn==1.9.1\njoblib==1.6.0\n", "env"
        )
    lines = run(settings, FakeMLClient(), requirements_text="numpy==2.4.6\n")
    assert lines[1] == (
        "environment diabetes-train-env: failed (ValueError: requirements.txt does not pin pandas, scipy, "
        "scikit-learn, joblib (name==version))"
    )


# ---- components -------------------------------------------------------------------------------------


def _component(name: str, version: str | None = "1") -> CommandComponent:
    return CommandComponent(name=name, version=version, command=f"python -m ml_pipeline.{name}",
                            environment="azureml:diabetes-train-env@latest")  # fmt: skip


def test_components_are_registered_once(settings: AzureSettings):
    client = FakeMLClient()
    components = [_component("data_checks"), _component("train")]
    first = run(settings, client, components=components)
    assert first[2:4] == ["component data_checks: created (version 1)", "component train: created (version 1)"]

    second = run(settings, client, components=components)
    assert second[2:4] == [
        "component data_checks: unchanged (version 1 exists)",
        "component train: unchanged (version 1 exists)",
    ]
    registered = [call[1] for call in client.calls if call[0] == "components.create_or_update"]
    assert [c.name for c in registered] == ["data_checks", "train"]


# ---- event subscriptions ----------------------------------------------------------------------------


def test_the_subscriptions_are_found_on_their_topics(settings: AzureSettings):
    lines = run(settings, FakeMLClient(), FakeArm())
    assert lines[3:] == [
        "event subscription on_build_event: exists (on-build-event on build topic egt-mlops-builds)",
        "event subscription on_ml_event: exists (on-ml-event on system topic mlw-events)",
        "event subscription on_registry_event: exists (on-registry-event on system topic cr-events)",
    ]


def test_missing_and_different_subscriptions_are_reported(settings: AzureSettings):
    arm = FakeArm()
    arm.collections[f"{TOPIC}/providers/Microsoft.EventGrid/eventSubscriptions"] = []
    arm.collections[f"{GROUP}/providers/Microsoft.EventGrid/systemTopics/mlw-events/eventSubscriptions"] = [
        subscription("on-ml-event", "on_ml_event", ("Microsoft.MachineLearningServices.RunCompleted",))
    ]
    arm.collections[f"{GROUP}/providers/Microsoft.EventGrid/systemTopics"].pop()  # no system topic on the registry

    lines = run(settings, FakeMLClient(), arm)

    assert lines[3] == (
        "event subscription on_build_event: missing (no subscription on build topic egt-mlops-builds delivers "
        "to on_build_event; deploy infra/main.bicep with deployEventSubscriptions=true after publishing the app)"
    )
    assert lines[4].startswith("event subscription on_ml_event: differs (on-ml-event on system topic mlw-events ")
    assert (
        lines[5]
        == "event subscription on_registry_event: missing (the registry has no Event Grid system topic in rg-mlops)"
    )


def test_a_missing_build_topic_is_reported(settings: AzureSettings):
    arm = FakeArm()
    arm.resources.clear()
    assert run(settings, FakeMLClient(), arm)[3] == (
        "event subscription on_build_event: missing (build topic egt-mlops-builds not found)"
    )


def test_without_an_arm_client_the_subscriptions_are_not_checked(settings: AzureSettings):
    lines = run(settings, FakeMLClient())
    assert lines[3:] == [
        f"event subscription {name}: not checked (no Azure Resource Manager client)" for name in FUNCTION_EVENT_TYPES
    ]


def test_the_subscriptions_checked_are_those_of_the_callers_table(settings: AzureSettings):
    table = {"on_build_event": FUNCTION_EVENT_TYPES["on_build_event"], "on_ml_event": ("Some.OtherType",)}

    lines = run(settings, FakeMLClient(), FakeArm(), function_event_types=table)

    assert lines[3] == "event subscription on_build_event: exists (on-build-event on build topic egt-mlops-builds)"
    assert lines[4].startswith("event subscription on_ml_event: differs (on-ml-event on system topic mlw-events")
    assert "expected ['Some.OtherType']" in lines[4]
    assert len(lines) == 5


def test_every_event_grid_function_has_a_known_source():
    assert set(provisioning.SOURCES) == set(FUNCTION_EVENT_TYPES)


# ---- the ARM reader (azure-core pipeline, requests transport, canned responses) --------------------


class Credential:
    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        assert scopes == ("https://management.azure.com/.default",)
        return AccessToken("token-1", 4102444800)


class CannedAdapter(requests.adapters.HTTPAdapter):
    """requests' own HTTPAdapter, answering from a table instead of the network."""

    def __init__(self, answers: dict[str, tuple[int, dict[str, Any]]]) -> None:
        super().__init__()
        self.answers = answers
        self.requests: list[requests.PreparedRequest] = []

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: float | tuple[float, float] | tuple[float, None] | None = None,
        verify: bool | str = True,
        cert: bytes | str | tuple[bytes | str, bytes | str] | None = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        self.requests.append(request)
        status, body = self.answers.get(str(request.url), (404, {"error": {"code": "NotFound"}}))
        content = json.dumps(body).encode()
        headers = {"Content-Type": "application/json", "Content-Length": str(len(content))}
        raw = urllib3.HTTPResponse(body=io.BytesIO(content), status=status, headers=headers, preload_content=False)
        return self.build_response(request, raw)


def test_the_arm_reader_pages_and_maps_not_found_to_none():
    base = "https://management.azure.com"
    topics = f"{GROUP}/providers/Microsoft.EventGrid/systemTopics"
    answers: dict[str, tuple[int, dict[str, Any]]] = {
        f"{base}{topics}?api-version=2025-02-15": (200, {"value": [{"name": "a"}], "nextLink": f"{base}/next?p=2"}),
        f"{base}/next?p=2": (200, {"value": [{"name": "b"}]}),
        f"{base}{TOPIC}?api-version=2025-02-15": (200, {"name": "egt-mlops-builds"}),
    }
    adapter = CannedAdapter(answers)
    session = requests.Session()
    session.mount("https://", adapter)
    reader = provisioning.ArmResourceReader(
        Credential(), transport=RequestsTransport(session=session, session_owner=False)
    )

    assert [item["name"] for item in reader.list(topics)] == ["a", "b"]
    assert reader.get(TOPIC) == {"name": "egt-mlops-builds"}
    assert reader.get(f"{GROUP}/providers/Microsoft.EventGrid/topics/gone") is None
    assert reader.list(f"{GROUP}/providers/Microsoft.EventGrid/systemTopics/gone/eventSubscriptions") == []
    assert all(r.headers["Authorization"] == "Bearer token-1" for r in adapter.requests)

    adapter.answers[f"{base}{TOPIC}?api-version=2025-02-15"] = (403, {"error": {"code": "AuthorizationFailed"}})
    with pytest.raises(HttpResponseError):
        reader.get(TOPIC)


# ---- the command ---------------------------------------------------------------------------------------


def test_add_parser_registers_azure_bootstrap_with_dry_run():
    parser = argparse.ArgumentParser(prog="mlops")
    commands_azure.add_azure_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["azure", "bootstrap", "--dry-run"])
    assert (args.command, args.azure_command, args.dry_run, args.handler) == (
        "azure", "bootstrap", True, commands_azure.cmd_azure_bootstrap,
    )  # fmt: skip
    assert parser.parse_args(["azure", "bootstrap"]).dry_run is False


def test_the_command_names_missing_settings(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    for name in example_env():
        monkeypatch.delenv(name, raising=False)
    assert commands_azure.cmd_azure_bootstrap(argparse.Namespace(dry_run=True)) == 2
    out = capsys.readouterr().out
    assert "AZURE_SUBSCRIPTION_ID is missing" in out and "docs/azure.md" in out


def test_the_pipeline_steps_are_registered_once_per_code_version(tmp_path):
    from platforms.azure.components import registrable_components, stage_code

    code = stage_code(tmp_path / "code")
    components = registrable_components(code, "azureml:diabetes-train-env@latest")
    assert [c.name for c in components] == ["mlops_data_checks", "mlops_train", "mlops_evaluate"]
    assert len({c.version for c in components}) == 1 and all(c._validate().passed for c in components)
    assert registrable_components(code, "azureml:diabetes-train-env@latest")[0].version == components[0].version
    (code / "ml_pipeline" / "train.py").write_text("# changed\n")
    assert registrable_components(code, "azureml:diabetes-train-env@latest")[0].version != components[0].version
