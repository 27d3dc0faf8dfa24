"""AksProduction against a fake MLClient: the real azure-ai-ml entities it sends, in order, and that
nothing waits: every long-running operation is begun and then followed, one GET per look."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from azure.ai.ml.entities import Environment, KubernetesOnlineDeployment, KubernetesOnlineEndpoint
from azure.ai.ml.entities._endpoint._endpoint_helpers import validate_endpoint_or_deployment_name
from azure.core.exceptions import ResourceExistsError

from functions.domain.refs import Endpoint, ImageRef, ModelRef, Operation, Progress
from functions.ports import Deployer
from platforms.azure.deployer import AzureDeployer
from platforms.azure.production import (
    INFERENCE_CONFIG,
    AksProduction,
    ProductionError,
    deployment_name,
    image_uri,
    model_asset,
)
from platforms.azure.settings import AzureSettings, example_env
from platforms.azure.staging import AciStaging, group_name
from tests.doubles.azure_endpoints import FakeMLClient
from tests.doubles.azure_mgmt import FakeContainerInstanceClient

# azure-ai-ml's schemas use marshmallow APIs that marshmallow 4 deprecates: noise, not our concern.
pytestmark = pytest.mark.filterwarnings("ignore::marshmallow.warnings.Marshmallow4Warning")

ENDPOINT = "diabetes-prod"
SCORING_URI = f"http://10.0.0.4/api/v1/endpoint/{ENDPOINT}/score"
D1, D2, D3 = (deployment_name(f"rel-{n}") for n in (1, 2, 3))


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


def beside(production: AksProduction, n: int) -> Operation:
    return production.begin_beside(*release(n))


def through(production: AksProduction, operation: Operation) -> Progress:
    """Follow until the operation is over, as the timer does (a first deployment takes two looks:
    one that sees the endpoint is there and begins the deployment, one that sees it up)."""
    for _ in range(3):
        progress = production.follow(operation)
        if progress.finished:
            return progress
    raise AssertionError(f"{operation} still running: {progress.detail}")


def up(production: AksProduction, n: int) -> Progress:
    """Release n beside production, followed until it is up (the fake settles at once by default)."""
    return through(production, beside(production, n))


def live(production: AksProduction, client: FakeMLClient, n: int) -> None:
    """Release n beside, then all the traffic to it."""
    assert up(production, n).state == "succeeded"
    assert production.follow(production.begin_traffic({f"rel-{n}": 100})).state == "succeeded"
    assert client.waited() == []


def routed(client: FakeMLClient) -> dict[str, int]:
    return client.endpoints[ENDPOINT].traffic


def deployments(client: FakeMLClient) -> set[str]:
    return set(client.endpoints[ENDPOINT].deployments)


def as_json(operation: Operation) -> Operation:
    """The operation as the release keeps it and another process reads it back."""
    return Operation(**json.loads(json.dumps(operation.__dict__)))


# ---- names ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "release_id",
    ["rel-1", "rel-20261126-1", "rel-" + "x" * 44, "REL_Upper.Case", "1234", "---", "rel-a_b", "rel-a-b", "ä"],
)
def test_deployment_names_follow_azure_ml_rules(release_id: str) -> None:
    name = deployment_name(release_id)
    assert re.fullmatch(r"[a-z][a-z0-9-]{1,30}[a-z0-9]", name), name
    validate_endpoint_or_deployment_name(name, is_deployment=True)  # the SDK's own check
    assert deployment_name(release_id) == name


def test_deployment_names_are_readable_and_unique_per_release() -> None:
    assert deployment_name("rel-1").startswith("rel-1-")
    ids = ["rel-a_b", "rel-a-b", "rel-A-b", "rel-" + "x" * 44, "rel-" + "x" * 43 + "y"]
    assert len({deployment_name(release_id) for release_id in ids}) == len(ids)


def test_image_uri_and_model_asset() -> None:
    _, image, model = release(3)
    assert image_uri(image, "other.azurecr.io") == "crmlops.azurecr.io/diabetes-scoring:3-rel-3"
    no_server = ImageRef("diabetes-scoring", "3-rel-3")
    assert image_uri(no_server, "crmlops.azurecr.io") == "crmlops.azurecr.io/diabetes-scoring:3-rel-3"
    full = ImageRef("diabetes-scoring", "3-rel-3", location="crmlops.azurecr.io/diabetes-scoring:3-rel-3")
    assert image_uri(full, "x") == "crmlops.azurecr.io/diabetes-scoring:3-rel-3"
    assert model_asset(model) == "azureml:diabetes-model:3"
    assert model_asset(ModelRef("m", "2", "azureml://datastores/workspaceblobstore/paths/m")) == "azureml:m:2"
    assert model_asset(ModelRef("m", "2", "/tmp/model")) == "azureml:m:2"


# ---- begin_beside: the endpoint first, when there is none --------------------------------
def test_the_first_deployment_creates_the_endpoint_then_follow_begins_the_deployment(
    production: AksProduction, client: FakeMLClient
) -> None:
    client.settle_at_once = False

    operation = beside(production, 1)

    assert client.operations() == ["online_endpoints.get", "online_endpoints.begin_create_or_update"]
    created = client.sent("online_endpoints.begin_create_or_update")[0]
    assert isinstance(created, KubernetesOnlineEndpoint)
    assert (created.name, created.compute, created.auth_mode) == (ENDPOINT, "aks-prod", "key")
    assert created.traffic == {}
    rest = created._to_rest_online_endpoint(location="westeurope").as_dict()
    assert rest["properties"]["authMode"] == "Key"
    assert rest["properties"]["compute"] == "aks-prod"
    _, image, model = release(1)
    assert operation == Operation(
        "beside",
        "rel-1",
        {
            "phase": "endpoint",
            "endpoint": ENDPOINT,
            "deployment": D1,
            "image": {
                "repository": "diabetes-scoring",
                "tag": "1-rel-1",
                "digest": image.digest,
                "location": "crmlops.azurecr.io",
            },
            "model": {"name": "diabetes-model", "version": "1", "location": model.location, "tags": model.tags},
        },
    )
    operation = as_json(operation)

    # The endpoint is still being created: no deployment yet (the service would refuse it).
    running = production.follow(operation)
    assert running.state == "running" and "provisioning Creating" in running.detail
    assert "online_deployments.begin_create_or_update" not in client.operations()

    client.settle()  # the endpoint is there: the next look begins the deployment
    assert production.follow(operation) == Progress(
        "running", f"online endpoint {ENDPOINT} is ready; deployment {D1} begun"
    )
    assert client.operations().count("online_deployments.begin_create_or_update") == 1
    assert production.follow(operation).detail == f"deployment {D1} of {ENDPOINT}: provisioning Creating"
    assert client.operations().count("online_deployments.begin_create_or_update") == 1  # begun once

    client.settle()
    progress = production.follow(operation)
    assert progress.state == "succeeded"
    assert progress.endpoint == Endpoint(ENDPOINT, SCORING_URI, "rel-1")
    assert routed(client) == {}  # it came up beside, at 0%
    assert client.waited() == []


def test_the_deployment_it_sends_carries_the_image_the_model_and_the_key(
    production: AksProduction, client: FakeMLClient
) -> None:
    up(production, 1)

    deployment = client.sent("online_deployments.begin_create_or_update")[0]
    assert isinstance(deployment, KubernetesOnlineDeployment)
    assert (deployment.name, deployment.endpoint_name) == (D1, ENDPOINT)
    assert deployment.model == "azureml:diabetes-model:1"
    assert deployment.tags == {
        "release_id": "rel-1",
        "model": "diabetes-model:1",
        "image": "diabetes-scoring:1-rel-1",
        "image_digest": f"sha256:{1:064x}",
    }
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
    rest = deployment._to_rest_object(location="westeurope").as_dict()
    assert rest["properties"]["endpointComputeType"] == "Kubernetes"
    assert rest["properties"]["model"] == "azureml:diabetes-model:1"
    assert rest["sku"]["capacity"] == 1
    assert rest["tags"]["release_id"] == "rel-1"
    # Its requests go to the workspace's Application Insights under its own name (platforms/azure/evidence.py).
    assert deployment.app_insights_enabled is True
    assert deployment.environment_variables == {"SERVICE_NAME": D1, "APP_INSIGHTS_LOG_RESPONSE_ENABLED": "true"}
    assert rest["properties"]["appInsightsEnabled"] is True
    assert rest["properties"]["environmentVariables"] == deployment.environment_variables


def test_an_endpoint_being_updated_defers_the_deployment(production: AksProduction, client: FakeMLClient) -> None:
    live(production, client, 1)
    client.endpoints[ENDPOINT].provisioning_state = "Updating"  # e.g. a traffic change still in flight
    client.calls.clear()

    operation = beside(production, 2)

    assert operation.handle["phase"] == "endpoint"
    assert client.operations() == ["online_endpoints.get"]  # neither a new endpoint nor a deployment yet
    client.endpoints[ENDPOINT].provisioning_state = "Succeeded"
    assert production.follow(operation).state == "running"
    assert client.sent("online_deployments.begin_create_or_update")[-1].name == D2
    assert production.follow(operation).state == "succeeded"


def test_a_conflict_when_the_deployment_begins_is_tried_again_on_the_next_look(
    production: AksProduction, client: FakeMLClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    operation = beside(production, 1)
    begin = client.online_deployments.begin_create_or_update

    def busy(deployment: KubernetesOnlineDeployment) -> Any:
        raise ResourceExistsError("(Conflict) an operation is in progress on the endpoint")

    monkeypatch.setattr(client.online_deployments, "begin_create_or_update", busy)
    progress = production.follow(operation)
    assert progress.state == "running" and f"deployment {D1} cannot begin yet: (Conflict)" in progress.detail

    monkeypatch.setattr(client.online_deployments, "begin_create_or_update", begin)
    assert through(production, operation).state == "succeeded"


def test_an_endpoint_that_failed_to_provision(production: AksProduction, client: FakeMLClient) -> None:
    client.failing_endpoints.add(ENDPOINT)
    operation = beside(production, 1)

    assert production.follow(operation) == Progress(
        "failed", f"online endpoint {ENDPOINT} failed to provision (Failed)"
    )
    with pytest.raises(ProductionError, match=f"online endpoint {ENDPOINT} is in provisioning state Failed"):
        beside(production, 2)
    assert "online_deployments.begin_create_or_update" not in client.operations()


def test_an_endpoint_deleted_while_it_was_awaited_fails_the_operation(
    production: AksProduction, client: FakeMLClient
) -> None:
    client.settle_at_once = False
    operation = beside(production, 1)
    del client.endpoints[ENDPOINT]

    progress = production.follow(operation)

    assert progress.state == "failed" and f"online endpoint {ENDPOINT} does not exist" in progress.detail


# ---- begin_beside: the deployment, beside the one serving --------------------------------
def test_beside_the_serving_deployment_leaves_the_traffic_alone_and_waits_for_nothing(
    production: AksProduction, client: FakeMLClient
) -> None:
    live(production, client, 1)
    client.settle_at_once = False
    client.calls.clear()

    operation = beside(production, 2)

    assert operation == Operation("beside", "rel-2", {"phase": "deployment", "endpoint": ENDPOINT, "deployment": D2})
    assert client.operations() == [
        "online_endpoints.get",
        "online_deployments.get",  # is it there already?
        "online_deployments.begin_create_or_update",
    ]
    assert client.waited() == []
    assert routed(client) == {D1: 100}
    assert deployments(client) == {D1, D2}


def test_follow_beside_is_running_then_succeeds_with_the_direct_endpoint(
    production: AksProduction, client: FakeMLClient
) -> None:
    live(production, client, 1)
    client.settle_at_once = False
    operation = as_json(beside(production, 2))
    client.calls.clear()

    assert production.follow(operation) == Progress("running", f"deployment {D2} of {ENDPOINT}: provisioning Creating")
    assert client.operations() == ["online_deployments.get"]  # one look

    client.settle()
    progress = production.follow(operation)

    assert progress == Progress(
        "succeeded",
        f"deployment {D2} of {ENDPOINT}: provisioning Succeeded",
        endpoint=Endpoint(ENDPOINT, SCORING_URI, "rel-2"),
    )
    assert routed(client) == {D1: 100}
    assert client.waited() == []


def test_a_deployment_that_failed_fails_the_operation_and_the_next_begin_puts_it_again(
    production: AksProduction, client: FakeMLClient
) -> None:
    live(production, client, 1)
    client.failing_deployments.add(D2)

    assert up(production, 2) == Progress("failed", f"deployment {D2} of {ENDPOINT}: provisioning Failed")
    assert routed(client) == {D1: 100}

    client.failing_deployments.clear()
    assert up(production, 2).state == "succeeded"
    assert client.operations().count("online_deployments.begin_create_or_update") == 3  # rel-1, rel-2 twice


def test_a_deployment_that_is_gone_fails_the_operation(production: AksProduction, client: FakeMLClient) -> None:
    live(production, client, 1)
    operation = beside(production, 2)
    del client.endpoints[ENDPOINT].deployments[D2]

    assert production.follow(operation) == Progress("failed", f"deployment {D2} of {ENDPOINT} does not exist")


def test_begin_beside_again_for_the_same_key_and_image_changes_nothing(
    production: AksProduction, client: FakeMLClient
) -> None:
    live(production, client, 1)
    client.settle_at_once = False
    first = beside(production, 2)

    assert beside(production, 2) == first  # still coming up: a second PUT would restart it (409 here)
    client.settle()
    assert beside(production, 2) == first  # up: a rollback to a kept deployment reuses it as it is
    assert client.operations().count("online_deployments.begin_create_or_update") == 2  # rel-1 and rel-2, once

    key, image, model = release(2)
    rebuilt = ImageRef(image.repository, "2-rel-2b", "sha256:" + "f" * 64, image.location)
    production.begin_beside(key, rebuilt, model)  # the same key with another image: updated
    sent = client.sent("online_deployments.begin_create_or_update")[-1]
    assert (sent.name, sent.tags["image"]) == (D2, "diabetes-scoring:2-rel-2b")
    assert client.endpoints[ENDPOINT].deployments[D2].provisioning_state == "Updating"


def test_deployment_sizing_is_configurable(settings: AzureSettings, client: FakeMLClient) -> None:
    production = AksProduction(settings, client, instance_type="cpu-small", instance_count=2)
    up(production, 1)
    deployment = client.sent("online_deployments.begin_create_or_update")[0]
    assert (deployment.instance_type, deployment.instance_count) == ("cpu-small", 2)


# ---- direct -------------------------------------------------------------------------------
def test_direct_is_the_endpoint_url_with_the_deployment_whatever_its_traffic(
    production: AksProduction, client: FakeMLClient
) -> None:
    live(production, client, 1)
    up(production, 2)

    assert production.direct("rel-2") == Endpoint(ENDPOINT, SCORING_URI, "rel-2")  # at 0%
    assert production.direct("rel-1") == Endpoint(ENDPOINT, SCORING_URI, "rel-1")  # at 100%


def test_direct_without_an_endpoint_is_an_error(production: AksProduction) -> None:
    with pytest.raises(ProductionError, match=f"online endpoint {ENDPOINT} does not exist"):
        production.direct("rel-1")


# ---- begin_traffic --------------------------------------------------------------------------
def test_begin_traffic_sends_exactly_the_weights_and_waits_for_nothing(
    production: AksProduction, client: FakeMLClient
) -> None:
    live(production, client, 1)
    up(production, 2)
    client.settle_at_once = False
    client.calls.clear()

    operation = production.begin_traffic({"rel-2": 10, "rel-1": 90})

    assert operation == Operation("traffic", "rel-1", {"endpoint": ENDPOINT, "traffic": {D2: 10, D1: 90}})
    assert client.operations() == [
        "online_endpoints.get",
        "online_deployments.list",
        "online_endpoints.begin_create_or_update",
    ]
    sent = client.sent("online_endpoints.begin_create_or_update")[0]
    assert isinstance(sent, KubernetesOnlineEndpoint)
    assert sent.traffic == {D2: 10, D1: 90}
    assert sent.mirror_traffic == {}
    assert sent.tags == {"current_deployment": D1, "current_release": "rel-1"}  # rel-1 still has the most
    assert sent._to_rest_online_endpoint(location="westeurope").as_dict()["properties"]["traffic"] == {D2: 10, D1: 90}
    assert client.waited() == []
    assert routed(client) == {D1: 100}  # until the update settles


def test_a_kubernetes_endpoint_cannot_mirror_so_a_mirror_is_refused_before_anything_is_sent(
    production: AksProduction, client: FakeMLClient
) -> None:
    live(production, client, 1)
    up(production, 2)
    client.calls.clear()

    assert production.can_mirror() is False
    with pytest.raises(ProductionError) as refused:
        production.begin_traffic({"rel-1": 100}, mirror={"rel-2": 10})

    message = str(refused.value)
    assert f"cannot mirror traffic of {ENDPOINT} to rel-2" in message
    assert "Kubernetes online endpoints do not support mirrored traffic" in message
    assert "https://learn.microsoft.com/azure/machine-learning/how-to-safely-rollout-online-endpoints" in message
    assert client.operations() == []  # refused before a single call
    assert routed(client) == {D1: 100}


@pytest.mark.parametrize("mirror", [None, {}, {"rel-2": 0}])
def test_no_mirror_is_no_mirror(production: AksProduction, client: FakeMLClient, mirror: dict[str, int] | None) -> None:
    live(production, client, 1)
    up(production, 2)

    operation = production.begin_traffic({"rel-1": 90, "rel-2": 10}, mirror=mirror)

    assert production.follow(operation).state == "succeeded"
    assert client.sent("online_endpoints.begin_create_or_update")[-1].mirror_traffic == {}
    assert routed(client) == {D1: 90, D2: 10}


def test_telemetry_names_resolve_keys_as_traffic_does(production: AksProduction, client: FakeMLClient) -> None:
    assert production.telemetry_names(["rel-1"]) == {"rel-1": (D1, False)}  # no endpoint yet
    live(production, client, 1)
    client.add_deployment(ENDPOINT, KubernetesOnlineDeployment(name="blue", endpoint_name=ENDPOINT))  # by hand
    client.endpoints[ENDPOINT].tags |= {"previous_deployment": "blue", "previous_release": "rel-0"}

    assert production.telemetry_names(["rel-1", "rel-0", "rel-7"]) == {
        "rel-1": (D1, True),  # made here: it logs as D1
        "rel-0": ("blue", False),  # found by the history tags, as begin_traffic would; it does not log
        "rel-7": (deployment_name("rel-7"), False),  # no such deployment
    }


def test_deployments_not_named_get_no_traffic_and_the_history_moves(
    production: AksProduction, client: FakeMLClient
) -> None:
    live(production, client, 1)
    up(production, 2)
    production.begin_traffic({"rel-2": 10, "rel-1": 90})

    production.begin_traffic({"rel-2": 100})

    sent = client.sent("online_endpoints.begin_create_or_update")[-1]
    assert sent.traffic == {D2: 100}
    assert sent.tags == {
        "current_deployment": D2,
        "current_release": "rel-2",
        "previous_deployment": D1,
        "previous_release": "rel-1",
    }
    assert client.online_endpoints.get(ENDPOINT).traffic == {D1: 0, D2: 100}

    production.begin_traffic({"rel-1": 100})  # back: the history says where it came from
    assert client.endpoints[ENDPOINT].tags == {
        "current_deployment": D1,
        "current_release": "rel-1",
        "previous_deployment": D2,
        "previous_release": "rel-2",
    }


def test_other_endpoint_tags_are_kept(production: AksProduction, client: FakeMLClient) -> None:
    live(production, client, 1)
    client.endpoints[ENDPOINT].tags["owner"] = "ml-platform"
    up(production, 2)

    production.begin_traffic({"rel-2": 100})

    assert client.endpoints[ENDPOINT].tags["owner"] == "ml-platform"


def test_follow_traffic_succeeds_once_the_endpoint_routes_that_way(
    production: AksProduction, client: FakeMLClient
) -> None:
    live(production, client, 1)
    up(production, 2)
    client.settle_at_once = False
    operation = as_json(production.begin_traffic({"rel-1": 50, "rel-2": 50}))
    client.calls.clear()

    running = production.follow(operation)
    assert running.state == "running"
    assert running.detail == (
        f'online endpoint {ENDPOINT}: provisioning Updating, traffic {{"{D1}": 100}}; '
        f"waiting for {json.dumps({D1: 50, D2: 50}, sort_keys=True)}"
    )
    assert client.operations() == ["online_endpoints.get"]

    client.settle()
    progress = production.follow(operation)
    assert progress.state == "succeeded"
    assert progress.endpoint == Endpoint(ENDPOINT, SCORING_URI, "rel-1")  # of equal weights, the first named


def test_follow_traffic_keeps_running_while_the_traffic_is_not_what_was_asked(
    production: AksProduction, client: FakeMLClient
) -> None:
    live(production, client, 1)
    up(production, 2)
    operation = production.begin_traffic({"rel-2": 100})
    client.endpoints[ENDPOINT].traffic = {D1: 100}  # e.g. changed back in the portal meanwhile

    assert production.follow(operation).state == "running"


def test_a_traffic_change_that_failed(production: AksProduction, client: FakeMLClient) -> None:
    live(production, client, 1)
    up(production, 2)
    client.failing_endpoints.add(ENDPOINT)

    progress = production.follow(production.begin_traffic({"rel-2": 100}))

    assert progress.state == "failed"
    assert progress.detail == f'online endpoint {ENDPOINT}: provisioning Failed, traffic {{"{D1}": 100}}'


def test_a_retried_traffic_change_that_is_done_already_sends_nothing(
    production: AksProduction, client: FakeMLClient
) -> None:
    live(production, client, 1)
    client.calls.clear()

    operation = production.begin_traffic({"rel-1": 100})

    assert operation == Operation("traffic", "rel-1", {"endpoint": ENDPOINT, "traffic": {D1: 100}})
    assert "online_endpoints.begin_create_or_update" not in client.operations()
    assert production.follow(operation).state == "succeeded"


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ({"rel-1": 90}, "must sum to 100, not 90"),
        ({}, "must sum to 100, not 0"),
        ({"rel-1": 120, "rel-2": -20}, r"whole percents from 0 to 100: \{'rel-1': 120, 'rel-2': -20\}"),
        ({"rel-1": 50.0, "rel-2": 50}, "whole percents"),
        ({"rel-1": True, "rel-2": 99}, "whole percents"),
    ],
)
def test_weights_are_whole_percents_summing_to_100(
    production: AksProduction, client: FakeMLClient, weights: dict[str, Any], message: str
) -> None:
    live(production, client, 1)
    up(production, 2)
    client.calls.clear()

    with pytest.raises(ProductionError, match=message):
        production.begin_traffic(weights)
    assert client.calls == []  # refused before asking Azure


def test_traffic_to_an_unknown_deployment_is_refused(production: AksProduction, client: FakeMLClient) -> None:
    live(production, client, 1)

    with pytest.raises(ProductionError, match=f"cannot route traffic of {ENDPOINT} to rel-9: no such deployment"):
        production.begin_traffic({"rel-1": 50, "rel-9": 50})
    assert routed(client) == {D1: 100}


def test_traffic_to_a_deployment_still_coming_up_is_refused(production: AksProduction, client: FakeMLClient) -> None:
    live(production, client, 1)
    client.settle_at_once = False
    beside(production, 2)
    client.calls.clear()

    with pytest.raises(ProductionError, match=r"to rel-2: not provisioned \(Creating\)"):
        production.begin_traffic({"rel-2": 100})
    assert client.operations() == ["online_endpoints.get", "online_deployments.list"]


def test_traffic_without_an_endpoint_is_refused(production: AksProduction) -> None:
    with pytest.raises(ProductionError, match=f"online endpoint {ENDPOINT} does not exist"):
        production.begin_traffic({"rel-1": 100})


# ---- traffic / deployments / production_endpoint -------------------------------------------
def test_traffic_names_deployments_by_their_key(production: AksProduction, client: FakeMLClient) -> None:
    assert production.traffic() == {}  # no endpoint yet
    live(production, client, 1)
    up(production, 2)
    assert production.traffic() == {"rel-1": 100}  # rel-2 is there, at 0%

    production.begin_traffic({"rel-1": 90, "rel-2": 10})

    assert production.traffic() == {"rel-1": 90, "rel-2": 10}


def test_traffic_of_deployments_no_release_tagged(production: AksProduction, client: FakeMLClient) -> None:
    live(production, client, 1)
    client.add_deployment(ENDPOINT, KubernetesOnlineDeployment(name="legacy", endpoint_name=ENDPOINT))
    client.add_deployment(ENDPOINT, KubernetesOnlineDeployment(name="hand-made", endpoint_name=ENDPOINT))
    state = client.endpoints[ENDPOINT]
    state.traffic = {D1: 80, "legacy": 15, "hand-made": 5}
    state.tags = {"current_deployment": "legacy", "current_release": "rel-0"}  # from before the tags

    assert production.traffic() == {"rel-1": 80, "rel-0": 15, "hand-made": 5}


def test_traffic_read_before_can_be_put_back_as_it_was(production: AksProduction, client: FakeMLClient) -> None:
    live(production, client, 1)
    client.add_deployment(ENDPOINT, KubernetesOnlineDeployment(name="hand-made", endpoint_name=ENDPOINT))
    client.endpoints[ENDPOINT].traffic = {D1: 80, "hand-made": 20}
    before = production.traffic()
    assert before == {"rel-1": 80, "hand-made": 20}
    up(production, 2)
    production.begin_traffic({"rel-2": 100})

    production.begin_traffic(before)  # e.g. a promotion that failed after its traffic moved

    assert routed(client) == {D1: 80, "hand-made": 20}
    assert production.traffic() == before


def test_deployments_are_the_keys_releases_made(production: AksProduction, client: FakeMLClient) -> None:
    assert production.deployments() == []  # no endpoint yet
    live(production, client, 1)
    up(production, 2)
    client.add_deployment(ENDPOINT, KubernetesOnlineDeployment(name="hand-made", endpoint_name=ENDPOINT))

    assert production.deployments() == ["rel-1", "rel-2"]


def test_production_endpoint_is_the_stable_url_and_who_serves_it(
    production: AksProduction, client: FakeMLClient
) -> None:
    assert production.production_endpoint() == Endpoint(ENDPOINT, "", "")
    live(production, client, 1)
    up(production, 2)
    production.begin_traffic({"rel-1": 30, "rel-2": 70})

    assert production.production_endpoint() == Endpoint(ENDPOINT, SCORING_URI, "rel-2")


# ---- remove -------------------------------------------------------------------------------
def test_remove_refuses_a_deployment_with_traffic(production: AksProduction, client: FakeMLClient) -> None:
    live(production, client, 1)
    client.calls.clear()

    with pytest.raises(ProductionError, match=f"cannot remove deployment {D1} \\(rel-1\\): it has 100%"):
        production.remove("rel-1")
    assert "online_deployments.begin_delete" not in client.operations()
    assert deployments(client) == {D1}


def test_remove_starts_deleting_without_waiting(production: AksProduction, client: FakeMLClient) -> None:
    live(production, client, 1)
    live(production, client, 2)
    client.settle_at_once = False
    client.calls.clear()

    production.remove("rel-1")

    assert client.operations() == ["online_endpoints.get", "online_deployments.begin_delete"]
    assert client.calls[-1].args == {"name": D1, "endpoint_name": ENDPOINT}
    assert client.waited() == []
    assert production.deployments() == ["rel-2"]  # the one being deleted is not counted
    client.settle()
    assert deployments(client) == {D2}


def test_remove_of_what_is_gone_is_fine(production: AksProduction, client: FakeMLClient) -> None:
    production.remove("rel-1")  # no endpoint at all
    live(production, client, 1)
    production.remove("rel-7")  # no such deployment

    assert client.operations()[-2:] == ["online_endpoints.get", "online_deployments.begin_delete"]


# ---- a whole promotion ---------------------------------------------------------------------
def test_a_promotion_beside_tested_directly_then_traffic_then_the_old_one_goes(
    production: AksProduction, client: FakeMLClient
) -> None:
    live(production, client, 1)
    client.settle_at_once = False

    coming = beside(production, 2)
    assert production.follow(coming).state == "running"
    client.settle()
    came_up = production.follow(coming)
    assert came_up.endpoint == production.direct("rel-2") and routed(client) == {D1: 100}

    moving = production.begin_traffic({"rel-2": 100})
    assert production.follow(moving).state == "running"
    client.settle()
    assert production.follow(moving).endpoint == Endpoint(ENDPOINT, SCORING_URI, "rel-2")

    production.remove("rel-1")
    client.settle()
    assert production.traffic() == {"rel-2": 100} and production.deployments() == ["rel-2"]
    assert client.waited() == []


def test_follow_refuses_an_operation_it_did_not_begin(production: AksProduction) -> None:
    with pytest.raises(ProductionError, match="'staging'"):
        production.follow(Operation("staging", "rel-1", {}))


# ---- AzureDeployer: the two halves behind one port -------------------------------------------
def test_the_azure_deployer_hands_each_operation_to_the_half_that_began_it(
    settings: AzureSettings, client: FakeMLClient
) -> None:
    aci = FakeContainerInstanceClient()
    deployer: Deployer = AzureDeployer(AciStaging(settings, aci, lambda url: True), AksProduction(settings, client))
    key, image, model = release(1)

    staged = deployer.follow(deployer.begin_staging(key, image, model))
    beside = deployer.begin_beside(key, image, model)
    assert deployer.follow(beside).state == "running"  # the endpoint was created: now the deployment begins
    came_up = deployer.follow(beside)
    moved = deployer.follow(deployer.begin_traffic({key: 100}))
    assert deployer.can_mirror() is False
    with pytest.raises(ProductionError, match="do not support mirrored traffic"):
        deployer.begin_traffic({key: 100}, {key: 10})

    assert staged.endpoint is not None and staged.endpoint.name == group_name(key)
    assert came_up.endpoint == deployer.direct(key) == Endpoint(ENDPOINT, SCORING_URI, key)
    assert moved.endpoint == deployer.production_endpoint()
    assert deployer.traffic() == {key: 100} and deployer.deployments() == [key]
    deployer.remove_staging(key)
    with pytest.raises(ProductionError):
        deployer.remove(key)
    assert aci.operations() == ["begin_create_or_update", "get", "list_by_resource_group", "begin_delete"]
    assert aci.container_groups.waited() == [] and client.waited() == []


def test_a_traffic_change_waits_for_an_endpoint_update_in_flight_then_is_sent(
    production: AksProduction, client: FakeMLClient
) -> None:
    live(production, client, 1)
    up(production, 2)
    client.endpoints[ENDPOINT].provisioning_state = "Updating"  # another update (Azure ML would answer 409)
    client.calls.clear()

    operation = production.begin_traffic({"rel-2": 100})

    assert operation.handle["phase"] == "pending"
    assert "online_endpoints.begin_create_or_update" not in client.operations()
    assert production.follow(operation).state == "running"  # still updating: nothing sent
    assert "online_endpoints.begin_create_or_update" not in client.operations()
    client.endpoints[ENDPOINT].provisioning_state = "Succeeded"
    assert production.follow(operation).state == "running"  # the change is sent now
    assert client.sent("online_endpoints.begin_create_or_update")[-1].traffic == {D2: 100}
    assert production.follow(operation).state == "succeeded" and routed(client) == {D2: 100}
    assert client.waited() == []
