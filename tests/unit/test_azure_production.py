"""AksProduction against a fake MLClient: the real azure-ai-ml entities it sends, in order."""

from __future__ import annotations

import logging
import re

import pytest
from azure.ai.ml.entities import Environment, KubernetesOnlineDeployment, KubernetesOnlineEndpoint
from azure.ai.ml.entities._endpoint._endpoint_helpers import validate_endpoint_or_deployment_name
from azure.core.exceptions import HttpResponseError

from functions.domain.refs import Endpoint, ImageRef, ModelRef
from platforms.azure.production import (
    INFERENCE_CONFIG,
    AksProduction,
    ProductionError,
    deployment_name,
    image_uri,
    model_asset,
)
from platforms.azure.settings import AzureSettings, example_env
from tests.doubles.azure_endpoints import FakeMLClient

# azure-ai-ml's schemas use marshmallow APIs that marshmallow 4 deprecates: noise, not our concern.
pytestmark = pytest.mark.filterwarnings("ignore::marshmallow.warnings.Marshmallow4Warning")

ENDPOINT = "diabetes-prod"
SCORING_URI = f"http://10.0.0.4/api/v1/endpoint/{ENDPOINT}/score"


@pytest.fixture
def settings() -> AzureSettings:
    return AzureSettings.from_env(example_env())


@pytest.fixture
def client() -> FakeMLClient:
    return FakeMLClient()


@pytest.fixture
def production(settings: AzureSettings, client: FakeMLClient) -> AksProduction:
    return AksProduction(settings, client)


def release(n: int) -> tuple[str, ImageRef, ModelRef]:
    release_id = f"rel-{n}"
    image = ImageRef("diabetes-scoring", f"{n}-{release_id}", f"sha256:{n:064x}", "crmlops.azurecr.io")
    model = ModelRef("diabetes-model", str(n), f"azureml:diabetes-model:{n}", {"release_id": release_id})
    return release_id, image, model


def deploy(production: AksProduction, n: int) -> Endpoint:
    return production.deploy_production(*release(n))


def traffic(client: FakeMLClient) -> dict[str, int]:
    return client.endpoints[ENDPOINT].traffic


def deployments(client: FakeMLClient) -> set[str]:
    return set(client.endpoints[ENDPOINT].deployments)


# ---- names ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "release_id",
    ["rel-1", "rel-20261126-1", "rel-" + "x" * 44, "REL_Upper.Case", "1234", "---", "rel-a_b", "rel-a-b", "ä"],
)
def test_deployment_names_follow_azure_ml_rules(release_id):
    name = deployment_name(release_id)
    assert re.fullmatch(r"[a-z][a-z0-9-]{1,30}[a-z0-9]", name), name
    validate_endpoint_or_deployment_name(name, is_deployment=True)  # the SDK's own check
    assert deployment_name(release_id) == name


def test_deployment_names_are_readable_and_unique_per_release():
    assert deployment_name("rel-1").startswith("rel-1-")
    ids = ["rel-a_b", "rel-a-b", "rel-A-b", "rel-" + "x" * 44, "rel-" + "x" * 43 + "y"]
    assert len({deployment_name(release_id) for release_id in ids}) == len(ids)


def test_image_uri_and_model_asset():
    _, image, model = release(3)
    assert image_uri(image, "other.azurecr.io") == "crmlops.azurecr.io/diabetes-scoring:3-rel-3"
    no_server = ImageRef("diabetes-scoring", "3-rel-3")
    assert image_uri(no_server, "crmlops.azurecr.io") == "crmlops.azurecr.io/diabetes-scoring:3-rel-3"
    full = ImageRef("diabetes-scoring", "3-rel-3", location="crmlops.azurecr.io/diabetes-scoring:3-rel-3")
    assert image_uri(full, "x") == "crmlops.azurecr.io/diabetes-scoring:3-rel-3"
    assert model_asset(model) == "azureml:diabetes-model:3"
    assert model_asset(ModelRef("m", "2", "azureml://datastores/workspaceblobstore/paths/m")) == "azureml:m:2"
    assert model_asset(ModelRef("m", "2", "/tmp/model")) == "azureml:m:2"


# ---- deploy -----------------------------------------------------------------------------
def test_first_deploy_creates_the_endpoint_and_the_deployment_then_switches_all_traffic(production, client):
    endpoint = deploy(production, 1)

    assert endpoint == Endpoint(ENDPOINT, SCORING_URI, "rel-1")
    assert client.operations() == [
        "online_endpoints.get",  # not found
        "online_endpoints.begin_create_or_update",  # create the endpoint
        "online_endpoints.get",  # read it back
        "online_deployments.begin_create_or_update",
        "online_deployments.list",
        "online_endpoints.begin_create_or_update",  # traffic switch
    ]
    created = client.sent("online_endpoints.begin_create_or_update")[0]
    assert isinstance(created, KubernetesOnlineEndpoint)
    assert (created.name, created.compute, created.auth_mode) == (ENDPOINT, "aks-prod", "key")
    assert created.traffic == {}
    rest = created._to_rest_online_endpoint(location="westeurope").as_dict()
    assert rest["properties"]["authMode"] == "Key"
    assert rest["properties"]["compute"] == "aks-prod"

    new = deployment_name("rel-1")
    deployment = client.sent("online_deployments.begin_create_or_update")[0]
    assert isinstance(deployment, KubernetesOnlineDeployment)
    assert (deployment.name, deployment.endpoint_name) == (new, ENDPOINT)
    assert deployment.model == "azureml:diabetes-model:1"
    assert deployment.tags["release_id"] == "rel-1"
    assert deployment.tags["image_digest"] == f"sha256:{1:064x}"
    assert deployment.instance_count == 1
    assert deployment.instance_type is None  # the cluster's default instance type
    environment = deployment.environment
    assert isinstance(environment, Environment)
    assert environment.image == "crmlops.azurecr.io/diabetes-scoring:1-rel-1"
    assert environment.inference_config == INFERENCE_CONFIG
    assert environment._to_rest_object().as_dict()["properties"]["inferenceConfig"] == {
        "livenessRoute": {"path": "/", "port": 5001},
        "readinessRoute": {"path": "/", "port": 5001},
        "scoringRoute": {"path": "/score", "port": 5001},
    }
    as_yaml = deployment._to_dict()
    assert as_yaml["type"] == "kubernetes"
    assert as_yaml["environment"]["image"] == "crmlops.azurecr.io/diabetes-scoring:1-rel-1"
    assert as_yaml["environment"]["inference_config"]["scoring_route"] == {"port": 5001, "path": "/score"}
    rest_deployment = deployment._to_rest_object(location="westeurope").as_dict()
    assert rest_deployment["properties"]["endpointComputeType"] == "Kubernetes"
    assert rest_deployment["properties"]["model"] == "azureml:diabetes-model:1"
    assert rest_deployment["sku"]["capacity"] == 1
    assert rest_deployment["tags"]["release_id"] == "rel-1"

    switch = client.sent("online_endpoints.begin_create_or_update")[1]
    assert isinstance(switch, KubernetesOnlineEndpoint)
    assert switch.traffic == {new: 100}
    assert switch.mirror_traffic == {}
    assert switch.tags == {"current_deployment": new, "current_release": "rel-1"}
    assert switch._to_rest_online_endpoint(location="westeurope").as_dict()["properties"]["traffic"] == {new: 100}
    assert traffic(client) == {new: 100}


def test_second_deploy_keeps_the_previous_at_zero_and_the_third_deletes_the_oldest(production, client):
    first, second, third = (deployment_name(f"rel-{n}") for n in (1, 2, 3))
    deploy(production, 1)
    client.calls.clear()

    assert deploy(production, 2) == Endpoint(ENDPOINT, SCORING_URI, "rel-2")
    assert client.operations() == [
        "online_endpoints.get",
        "online_deployments.begin_create_or_update",
        "online_deployments.list",
        "online_endpoints.begin_create_or_update",
    ]
    switch = client.sent("online_endpoints.begin_create_or_update")[0]
    assert switch.traffic == {second: 100}
    assert switch.tags == {
        "current_deployment": second,
        "current_release": "rel-2",
        "previous_deployment": first,
        "previous_release": "rel-1",
    }
    assert deployments(client) == {first, second}
    assert client.online_endpoints.get(ENDPOINT).traffic == {first: 0, second: 100}
    client.calls.clear()

    deploy(production, 3)
    assert client.operations()[-2:] == ["online_endpoints.begin_create_or_update", "online_deployments.begin_delete"]
    assert client.calls[-1].args == {"name": first, "endpoint_name": ENDPOINT}
    assert deployments(client) == {second, third}
    assert traffic(client) == {third: 100}
    assert client.endpoints[ENDPOINT].tags["previous_deployment"] == second


def test_a_deployment_not_made_by_a_release_is_left_alone(production, client):
    deploy(production, 1)
    client.add_deployment(ENDPOINT, KubernetesOnlineDeployment(name="hand-made", endpoint_name=ENDPOINT))
    deploy(production, 2)
    deploy(production, 3)
    assert deployments(client) == {"hand-made", deployment_name("rel-2"), deployment_name("rel-3")}


def test_a_retried_deploy_after_the_switch_keeps_the_history(production, client):
    deploy(production, 1)
    deploy(production, 2)
    client.calls.clear()

    assert deploy(production, 2).version == "rel-2"
    assert "online_deployments.begin_delete" not in client.operations()
    assert deployments(client) == {deployment_name("rel-1"), deployment_name("rel-2")}
    tags = client.endpoints[ENDPOINT].tags
    assert (tags["previous_deployment"], tags["previous_release"]) == (deployment_name("rel-1"), "rel-1")


def test_a_failed_deployment_leaves_the_traffic_where_it_was(production, client):
    deploy(production, 1)
    client.failing_deployments.add(deployment_name("rel-2"))
    client.calls.clear()

    with pytest.raises(HttpResponseError, match="readiness probe"):
        deploy(production, 2)
    assert client.operations() == ["online_endpoints.get", "online_deployments.begin_create_or_update"]
    assert traffic(client) == {deployment_name("rel-1"): 100}


def test_an_operation_that_does_not_finish_in_time_is_an_error(settings, client):
    production = AksProduction(settings, client, lro_timeout_s=5)
    client.stalled.add("online_deployments.begin_create_or_update")
    with pytest.raises(ProductionError, match=r"did not finish within 5 s"):
        deploy(production, 1)
    assert "online_deployments.list" not in client.operations()


def test_deployment_sizing_is_configurable(settings, client):
    production = AksProduction(settings, client, instance_type="cpu-small", instance_count=2)
    deploy(production, 1)
    deployment = client.sent("online_deployments.begin_create_or_update")[0]
    assert (deployment.instance_type, deployment.instance_count) == ("cpu-small", 2)


# ---- rollback ---------------------------------------------------------------------------
def test_rollback_gives_the_traffic_back_to_the_previous_and_deletes_the_failed(production, client, caplog):
    first, second = deployment_name("rel-1"), deployment_name("rel-2")
    deploy(production, 1)
    deploy(production, 2)
    client.calls.clear()

    with caplog.at_level(logging.WARNING, logger="mlops.production"):
        restored = production.rollback_production("rel-2")

    assert restored == Endpoint(ENDPOINT, SCORING_URI, "rel-1")
    assert client.operations() == [
        "online_endpoints.get",
        "online_endpoints.begin_create_or_update",
        "online_deployments.begin_delete",
    ]
    switch = client.sent("online_endpoints.begin_create_or_update")[0]
    assert isinstance(switch, KubernetesOnlineEndpoint)
    assert switch.traffic == {first: 100}
    assert switch.mirror_traffic == {}
    assert switch.tags == {"current_deployment": first, "current_release": "rel-1"}
    assert client.calls[-1].args == {"name": second, "endpoint_name": ENDPOINT}
    assert traffic(client) == {first: 100}
    assert deployments(client) == {first}
    assert "rolled back from release rel-2 to rel-1" in caplog.text

    client.calls.clear()
    assert production.rollback_production("rel-2") == restored  # a retried call changes nothing
    assert client.operations() == ["online_endpoints.get"]

    deploy(production, 3)  # and the next release goes live beside rel-1
    assert client.endpoints[ENDPOINT].tags["previous_release"] == "rel-1"


def test_rollback_with_no_previous_returns_none_and_keeps_the_only_deployment(production, client):
    deploy(production, 1)
    client.calls.clear()
    assert production.rollback_production("rel-1") is None
    assert client.operations() == ["online_endpoints.get"]
    assert traffic(client) == {deployment_name("rel-1"): 100}


def test_rollback_without_an_endpoint_returns_none(production, client):
    assert production.rollback_production("rel-1") is None
    assert client.operations() == ["online_endpoints.get"]


def test_rollback_when_the_previous_deployment_is_gone_returns_none(production, client):
    deploy(production, 1)
    deploy(production, 2)
    del client.endpoints[ENDPOINT].deployments[deployment_name("rel-1")]
    assert production.rollback_production("rel-2") is None
    assert traffic(client) == {deployment_name("rel-2"): 100}


def test_rollback_of_a_release_that_never_got_traffic_only_removes_it(production, client):
    deploy(production, 1)
    client.failing_deployments.add(deployment_name("rel-2"))
    with pytest.raises(HttpResponseError):
        deploy(production, 2)
    client.calls.clear()

    assert production.rollback_production("rel-2") == Endpoint(ENDPOINT, SCORING_URI, "rel-1")
    assert client.operations() == ["online_endpoints.get", "online_deployments.begin_delete"]
    assert deployments(client) == {deployment_name("rel-1")}
