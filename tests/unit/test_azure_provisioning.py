"""Azure provisioning (`mlops azure bootstrap`) against a fake MLClient that records its calls and answers
like Azure ML, and a fake Azure Resource Manager holding the Event Grid subscriptions.

The environment fake stores what the service would hand back (the entity through azure-ai-ml's own
REST translation), so "unchanged" is judged on the same objects a real second run sees.
"""

from __future__ import annotations

import argparse
from typing import Any

import pytest
import requests
from azure.ai.ml.entities import AmlCompute, CommandComponent, Environment, KubernetesCompute, Workspace
from azure.ai.ml.exceptions import ErrorTarget, ValidationException
from azure.core.credentials import AccessToken
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.core.pipeline.transport import RequestsTransport

from devhost import commands_azure
from functions.service.subscriptions import FUNCTION_EVENT_TYPES
from platforms.azure import provisioning
from platforms.azure.settings import AzureSettings, example_env
from tests.doubles.azure_mgmt import ArmStub
from tests.doubles.azure_ml import FakeWorkspaces

REQUIREMENTS = (
    "azure-functions==1.26.0\nnumpy==2.4.6\npandas==3.1.1  # data\nscipy==1.17.1\nscikit-learn==1.9.1\njoblib==1.6.0\n"
)
WRITES = {
    "workspaces.begin_create",
    "compute.begin_create_or_update",
    "environments.create_or_update",
    "components.create_or_update",
}


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
    """The workspace's MLClient; ``workspaces`` is also what the resource group's MLClient offers.

    The workspace exists unless ``workspace=False`` (made by `az ml workspace create`, docs/azure.md step 2).
    """

    def __init__(
        self, compute: dict[str, Any] | None = None, compute_error: Exception | None = None, workspace: bool = True
    ) -> None:
        self.calls: list[tuple] = []
        self.compute = FakeCompute(self.calls, compute, compute_error)
        self.environments = FakeEnvironments(self.calls)
        self.components = FakeComponents(self.calls)
        self.workspaces = FakeWorkspaces(self.calls)
        if workspace:
            self.workspaces.add(Workspace(name="mlw-mlops", resource_group="rg-mlops", container_registry=REGISTRY))

    def writes(self) -> list[tuple]:
        return [call for call in self.calls if call[0] in WRITES]


GROUP = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-mlops"
REGISTRY = f"{GROUP}/providers/Microsoft.ContainerRegistry/registries/crmlops"
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
                system_topic("st-events", f"{GROUP}/providers/Microsoft.Storage/storageAccounts/stmlops"),
                system_topic("mlw-events", f"{GROUP}/providers/Microsoft.MachineLearningServices/workspaces/MLW-MLOPS"),
                system_topic("cr-events", f"{GROUP}/providers/Microsoft.ContainerRegistry/registries/crmlops"),
            ],
            f"{GROUP}/providers/Microsoft.EventGrid/systemTopics/st-events/eventSubscriptions": [
                subscription("on-storage-event", "on_storage_event", FUNCTION_EVENT_TYPES["on_storage_event"])
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


# ---- the workspace ----------------------------------------------------------------------------------

DESCRIPTION = "Azure ML workspace of the ML release orchestrator (created by mlops azure bootstrap)"
IN_WORKSPACE = ("compute cpu-cluster", "environment diabetes-train-env", "components")


def test_a_missing_workspace_is_created_with_the_settings_registry(settings: AzureSettings):
    client = FakeMLClient(workspace=False)

    lines = run(settings, client)

    assert lines[0] == "workspace mlw-mlops: created (in westeurope, container registry crmlops)"
    assert lines[1:3] == [
        "compute cpu-cluster: created (STANDARD_DS3_V2, 0-4 nodes)",
        "environment diabetes-train-env: created (version 1)",
    ]
    assert [call[0] for call in client.calls][:3] == ["workspaces.get", "workspaces.begin_create", "compute.get"]
    (creation,) = client.workspaces.creations
    workspace = creation.workspace
    assert isinstance(workspace, Workspace)
    assert (workspace.name, workspace.resource_group, workspace.description) == ("mlw-mlops", "rg-mlops", DESCRIPTION)
    assert workspace.container_registry == REGISTRY
    # Not in the settings: Azure ML makes its own, in the resource group's region.
    assert workspace.location is None
    assert (workspace.storage_account, workspace.key_vault, workspace.application_insights) == (None, None, None)
    assert creation.rest == {
        "name": "mlw-mlops",
        "tags": {},
        "kind": "default",
        "properties": {
            "containerRegistry": REGISTRY,
            "description": DESCRIPTION,
            "hbiWorkspace": False,
            "enableDataIsolation": False,
        },
    }


def test_what_the_sdks_deployment_of_that_workspace_creates(settings: AzureSettings):
    """begin_create deploys an ARM template, not the REST body: its parameters, built offline by the SDK itself."""
    from tests.doubles.azure_mgmt import StaticCredential

    client = provisioning.build_workspace_client(settings, StaticCredential())
    workspace = provisioning.workspace_entity(settings)
    workspace.location = "westeurope"  # else the SDK asks Resource Manager for the resource group's region

    _template, parameters, deployed = client.workspaces._populate_arm_parameters(workspace)

    value = {name: parameter.get("value") for name, parameter in parameters.items()}
    assert (value["workspaceName"], value["resourceGroupName"], value["location"]) == (
        "mlw-mlops", "rg-mlops", "westeurope",
    )  # fmt: skip
    assert (value["containerRegistryOption"], value["containerRegistryName"]) == ("existing", "crmlops")
    assert value["containerRegistryResourceGroupName"] == "rg-mlops"
    assert (value["storageAccountOption"], value["keyVaultOption"], value["applicationInsightsOption"]) == (
        "new", "new", "new",
    )  # fmt: skip
    assert sorted(kind for kind, _ in deployed.values()) == [
        "AppInsights", "KeyVault", "LogAnalytics", "StorageAccount", "Workspace",
    ]  # fmt: skip


def test_the_workspace_client_is_on_the_resource_group_without_a_workspace_name(settings: AzureSettings):
    from azure.ai.ml import MLClient

    from tests.doubles.azure_mgmt import StaticCredential

    client = provisioning.build_workspace_client(settings, StaticCredential())

    assert isinstance(client, MLClient)
    assert (client.subscription_id, client.resource_group_name, client.workspace_name) == (
        "00000000-0000-0000-0000-000000000000", "rg-mlops", None,
    )  # fmt: skip


def test_provision_hands_bootstrap_a_workspace_client_and_a_resource_group_client(
    settings: AzureSettings, monkeypatch: pytest.MonkeyPatch
):
    import azure.identity

    from tests.doubles.azure_mgmt import StaticCredential

    seen: dict[str, Any] = {}

    def fake_bootstrap(settings: AzureSettings, ml_client: Any, arm: Any, **kwargs: Any) -> list[str]:
        seen.update(kwargs, ml_client=ml_client, arm=arm, components=list(kwargs["components"]))
        return []

    monkeypatch.setattr(azure.identity, "DefaultAzureCredential", StaticCredential)
    monkeypatch.setattr(provisioning, "bootstrap", fake_bootstrap)

    provisioning.provision(settings, FUNCTION_EVENT_TYPES, dry_run=True)

    assert seen["ml_client"].workspace_name == "mlw-mlops"
    workspace_client = seen["workspace_client"]
    assert (workspace_client.resource_group_name, workspace_client.workspace_name) == ("rg-mlops", None)
    assert isinstance(seen["arm"], provisioning.ArmResourceReader)
    assert [c.name for c in seen["components"]] == ["mlops_data_checks", "mlops_train", "mlops_evaluate"]
    assert seen["dry_run"] is True


def test_workspace_operations_go_to_the_resource_group_client(settings: AzureSettings):
    in_workspace, on_group = FakeMLClient(workspace=False), FakeMLClient(workspace=False)

    run(settings, in_workspace, workspace_client=on_group)

    assert [call[0] for call in on_group.calls] == ["workspaces.get", "workspaces.begin_create"]
    assert not [call for call in in_workspace.calls if call[0].startswith("workspaces.")]


def test_an_existing_workspace_is_left_alone(settings: AzureSettings):
    client = FakeMLClient()

    lines = run(settings, client)

    assert lines[0] == "workspace mlw-mlops: unchanged (exists in westeurope)"
    assert "workspaces.begin_create" not in [call[0] for call in client.calls]


def test_a_second_run_finds_the_workspace_it_created(settings: AzureSettings):
    client = FakeMLClient(workspace=False)
    run(settings, client)

    lines = run(settings, client)

    assert lines[0] == "workspace mlw-mlops: unchanged (exists in westeurope)"
    assert len(client.workspaces.creations) == 1


def test_an_existing_workspace_on_another_registry_is_named(settings: AzureSettings):
    client = FakeMLClient()
    other = REGISTRY.replace("/crmlops", "/crother")
    client.workspaces.add(Workspace(name="mlw-mlops", resource_group="rg-mlops", container_registry=other))

    assert run(settings, client)[0] == (
        "workspace mlw-mlops: unchanged (exists in westeurope; its container registry is crother, not ACR_NAME crmlops)"
    )


def test_a_dry_run_says_it_would_create_the_workspace_and_skips_what_is_inside_it(settings: AzureSettings):
    client = FakeMLClient(workspace=False)

    lines = run(settings, client, FakeArm(), dry_run=True)

    assert lines[0] == (
        "workspace mlw-mlops: missing (would create: in rg-mlops's region, container registry crmlops; "
        "Azure ML adds its own storage account, key vault and Application Insights)"
    )
    assert lines[1:4] == [
        f"{step}: skipped (workspace mlw-mlops does not exist yet; it would be created first)" for step in IN_WORKSPACE
    ]
    assert lines[4].startswith("event subscription on_build_event: exists")  # Resource Manager is still read
    assert client.writes() == []
    assert [call[0] for call in client.calls] == ["workspaces.get"]  # nothing asked of a workspace that is not there


def test_a_failed_creation_skips_what_is_inside_the_workspace(settings: AzureSettings):
    client = FakeMLClient(workspace=False)
    client.workspaces.create_error = HttpResponseError("(StorageAccountNameTaken) The storage account name is taken")

    lines = run(settings, client)

    assert lines[0] == (
        "workspace mlw-mlops: failed (HttpResponseError: (StorageAccountNameTaken) The storage account name is taken)"
    )
    assert lines[1:4] == [
        f"{step}: skipped (workspace mlw-mlops does not exist yet; its creation failed)" for step in IN_WORKSPACE
    ]


def test_a_failed_look_up_of_the_workspace_lets_the_other_steps_try(settings: AzureSettings):
    client = FakeMLClient()
    client.workspaces.get_error = HttpResponseError("(AuthorizationFailed) no read access to the resource group")

    lines = run(settings, client)

    assert lines[0] == (
        "workspace mlw-mlops: failed (HttpResponseError: (AuthorizationFailed) no read access to the resource group)"
    )
    assert lines[1] == "compute cpu-cluster: created (STANDARD_DS3_V2, 0-4 nodes)"
    assert "workspaces.begin_create" not in [call[0] for call in client.calls]


# ---- compute and environment ---------------------------------------------------------------------


def test_a_first_run_creates_the_cluster_and_the_environment(settings: AzureSettings):
    client = FakeMLClient()
    printed: list[str] = []
    lines = run(settings, client, echo=printed.append)

    assert lines[0] == "workspace mlw-mlops: unchanged (exists in westeurope)"
    assert lines[1:4] == [
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
    assert lines[1:3] == [
        "compute cpu-cluster: unchanged (exists: STANDARD_DS3_V2, 0-4 nodes)",
        "environment diabetes-train-env: unchanged (version 1)",
    ]


def test_new_pins_register_a_new_environment_version(settings: AzureSettings):
    client = FakeMLClient()
    run(settings, client)

    lines = run(settings, client, requirements_text=REQUIREMENTS.replace("numpy==2.4.6", "numpy==2.5.0"))

    assert lines[2] == (
        "environment diabetes-train-env: updated (version 2, image or conda definition differs from version 1)"
    )
    latest = client.environments.get("diabetes-train-env", label="latest")
    conda = latest.conda_file
    assert isinstance(conda, dict)  # what azure-ai-ml hands back for a registered version
    assert latest.version == "2" and "numpy==2.5.0" in conda["dependencies"][2]["pip"]
    assert run(settings, client, requirements_text=REQUIREMENTS.replace("numpy==2.4.6", "numpy==2.5.0"))[2] == (
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
    assert lines[1:3] == [
        "compute cpu-cluster: missing (would create: STANDARD_DS3_V2, 0-4 nodes)",
        "environment diabetes-train-env: missing (would register version 1)",
    ]


def test_a_compute_of_another_kind_is_left_alone_and_named(settings: AzureSettings):
    client = FakeMLClient(compute={"cpu-cluster": KubernetesCompute(name="cpu-cluster")})
    lines = run(settings, client)
    assert lines[1] == (
        "compute cpu-cluster: unchanged (it is a kubernetes compute, not a cluster: "
        "AZUREML_COMPUTE must name an AmlCompute cluster)"
    )
    assert "compute.begin_create_or_update" not in [call[0] for call in client.calls]


def test_serverless_training_needs_no_cluster():
    serverless = AzureSettings.from_env({**example_env(), "AZUREML_COMPUTE": "serverless"})
    client = FakeMLClient()

    for dry_run in (True, False):
        lines = run(serverless, client, dry_run=dry_run)
        assert lines[1] == (
            "compute serverless: skipped (AZUREML_COMPUTE=serverless: the pipeline steps run on Azure ML serverless "
            "compute, STANDARD_DS3_V2, one instance each; there is no cluster to create)"
        )
    assert not [call for call in client.calls if call[0].startswith("compute.")]
    assert lines[2] == "environment diabetes-train-env: created (version 1)"  # the steps still need it


def test_a_failing_step_is_reported_and_the_others_still_run(settings: AzureSettings):
    client = FakeMLClient(compute_error=HttpResponseError("(AuthorizationFailed) The client does not have\nauth"))
    lines = run(settings, client)
    assert lines[1] == "compute cpu-cluster: failed (HttpResponseError: (AuthorizationFailed) The client does not have)"
    assert lines[2] == "environment diabetes-train-env: created (version 1)"


def test_unpinned_training_packages_fail_the_environment_step(settings: AzureSettings):
    with pytest.raises(ValueError, match="does not pin scipy"):
        provisioning.conda_definition(
            "numpy==2.4.6\npandas==3.1.1\nscipy>=1\nscikit-learn==1.9.1\njoblib==1.6.0\n", "env"
        )
    lines = run(settings, FakeMLClient(), requirements_text="numpy==2.4.6\n")
    assert lines[2] == (
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
    assert first[3:5] == ["component data_checks: created (version 1)", "component train: created (version 1)"]

    second = run(settings, client, components=components)
    assert second[3:5] == [
        "component data_checks: unchanged (version 1 exists)",
        "component train: unchanged (version 1 exists)",
    ]
    registered = [call[1] for call in client.calls if call[0] == "components.create_or_update"]
    assert [c.name for c in registered] == ["data_checks", "train"]


# ---- event subscriptions ----------------------------------------------------------------------------


def test_the_subscriptions_are_found_on_their_topics(settings: AzureSettings):
    lines = run(settings, FakeMLClient(), FakeArm())
    assert lines[4:] == [
        "event subscription on_build_event: exists (on-build-event on build topic egt-mlops-builds)",
        "event subscription on_ml_event: exists (on-ml-event on system topic mlw-events)",
        "event subscription on_registry_event: exists (on-registry-event on system topic cr-events)",
        "event subscription on_storage_event: exists (on-storage-event on system topic st-events)",
    ]


def test_missing_and_different_subscriptions_are_reported(settings: AzureSettings):
    arm = FakeArm()
    arm.collections[f"{TOPIC}/providers/Microsoft.EventGrid/eventSubscriptions"] = []
    arm.collections[f"{GROUP}/providers/Microsoft.EventGrid/systemTopics/mlw-events/eventSubscriptions"] = [
        subscription("on-ml-event", "on_ml_event", ("Microsoft.MachineLearningServices.RunCompleted",))
    ]
    arm.collections[f"{GROUP}/providers/Microsoft.EventGrid/systemTopics"].pop()  # no system topic on the registry

    lines = run(settings, FakeMLClient(), arm)

    assert lines[4] == (
        "event subscription on_build_event: missing (no subscription on build topic egt-mlops-builds delivers "
        "to on_build_event; deploy infra/main.bicep with deployEventSubscriptions=true after publishing the app)"
    )
    assert lines[5].startswith("event subscription on_ml_event: differs (on-ml-event on system topic mlw-events ")
    assert (
        lines[6]
        == "event subscription on_registry_event: missing (the registry has no Event Grid system topic in rg-mlops)"
    )


def test_a_missing_build_topic_is_reported(settings: AzureSettings):
    arm = FakeArm()
    arm.resources.clear()
    assert run(settings, FakeMLClient(), arm)[4] == (
        "event subscription on_build_event: missing (build topic egt-mlops-builds not found)"
    )


def test_without_an_arm_client_the_subscriptions_are_not_checked(settings: AzureSettings):
    lines = run(settings, FakeMLClient())
    assert lines[4:] == [
        f"event subscription {name}: not checked (no Azure Resource Manager client)" for name in FUNCTION_EVENT_TYPES
    ]


def test_the_subscriptions_checked_are_those_of_the_callers_table(settings: AzureSettings):
    table = {"on_build_event": FUNCTION_EVENT_TYPES["on_build_event"], "on_ml_event": ("Some.OtherType",)}

    lines = run(settings, FakeMLClient(), FakeArm(), function_event_types=table)

    assert lines[4] == "event subscription on_build_event: exists (on-build-event on build topic egt-mlops-builds)"
    assert lines[5].startswith("event subscription on_ml_event: differs (on-ml-event on system topic mlw-events")
    assert "expected ['Some.OtherType']" in lines[5]
    assert len(lines) == 6


def test_every_event_grid_function_has_a_known_source():
    assert set(provisioning.SOURCES) == set(FUNCTION_EVENT_TYPES)


# ---- the ARM reader (azure-core pipeline, requests transport, canned responses) --------------------


class Credential:
    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        assert scopes == ("https://management.azure.com/.default",)
        return AccessToken("token-1", 4102444800)


def test_the_arm_reader_pages_and_maps_not_found_to_none():
    base = "https://management.azure.com"
    topics = f"{GROUP}/providers/Microsoft.EventGrid/systemTopics"
    stub = ArmStub(
        {
            ("GET", topics): (200, {"value": [{"name": "a"}], "nextLink": f"{base}/next?p=2"}),
            ("GET", "/next"): (200, {"value": [{"name": "b"}]}),
            ("GET", TOPIC): [(200, {"name": "egt-mlops-builds"}), (403, {"error": {"code": "AuthorizationFailed"}})],
        }
    )
    session = requests.Session()
    session.mount("https://", stub)
    reader = provisioning.ArmResourceReader(
        Credential(), transport=RequestsTransport(session=session, session_owner=False)
    )

    assert [item["name"] for item in reader.list(topics)] == ["a", "b"]
    assert reader.get(TOPIC) == {"name": "egt-mlops-builds"}
    assert reader.get(f"{GROUP}/providers/Microsoft.EventGrid/topics/gone") is None
    assert reader.list(f"{GROUP}/providers/Microsoft.EventGrid/systemTopics/gone/eventSubscriptions") == []
    assert all(r.headers["Authorization"] == "Bearer token-1" for r in stub.requests)

    with pytest.raises(HttpResponseError):  # the second answer for the topic: 403
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


@pytest.mark.parametrize(("container", "checked"), [("", False), ("off", False), ("training-data", True)])
def test_the_storage_subscription_is_checked_only_when_new_data_is_watched(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], container: str, checked: bool
):
    # infra/main.bicep deploys the storage system topic and subscription only for a dataContainer.
    for name, value in example_env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("MLOPS_DATA_CONTAINER", container)
    seen: dict[str, Any] = {}

    def provision(settings: AzureSettings, function_event_types: Any, **kwargs: Any) -> list[str]:
        seen.update(function_event_types)
        return []

    monkeypatch.setattr(provisioning, "provision", provision)
    assert commands_azure.cmd_azure_bootstrap(argparse.Namespace(dry_run=True)) == 0
    assert ("on_storage_event" in seen) is checked
    assert set(seen) - {"on_storage_event"} == {"on_build_event", "on_ml_event", "on_registry_event"}
    off_line = "event subscription on_storage_event: off (MLOPS_DATA_CONTAINER is not set"
    assert (off_line in capsys.readouterr().out) is not checked
