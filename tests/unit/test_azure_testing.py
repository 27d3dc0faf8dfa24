"""AzureEndpointTester's own decisions over a fake transport (no socket): which key, which headers, what is masked.

Against a real HTTP server standing in for the AKS endpoint: tests/integration/test_azure_testing.py.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from functions.domain.refs import Endpoint, ImageRef, ModelRef, TestReport
from platforms.azure.production import DEPLOYMENT_HEADER, AksProduction, deployment_name
from platforms.azure.settings import AzureSettings, example_env
from platforms.azure.testing import MASK, AzureEndpointTester
from tests.doubles.azure_endpoints import FakeMLClient
from tests.doubles.http_client import FakeHttp, Sent

# azure-ai-ml's schemas use marshmallow APIs that marshmallow 4 deprecates: noise, not our concern.
pytestmark = pytest.mark.filterwarnings("ignore::marshmallow.warnings.Marshmallow4Warning")

MODEL = ModelRef("diabetes-model", "1", "azureml:diabetes-model:1")


@pytest.fixture
def settings() -> AzureSettings:
    return AzureSettings.from_env(example_env())


@pytest.fixture
def copy_model(trained_dir: Path) -> Any:
    def model_files(model: ModelRef, target: Path) -> None:
        shutil.copytree(trained_dir, target / model.name)

    return model_files


def production_endpoint(client: FakeMLClient, settings: AzureSettings) -> Endpoint:
    """rel-1 beside production (the fake settles at once), as the direct tests get it: no traffic."""
    image = ImageRef("diabetes-scoring", "1-rel-1", location="crmlops.azurecr.io")
    production = AksProduction(settings, client)
    operation = production.begin_beside("rel-1", image, MODEL)
    production.follow(operation)  # the endpoint is there: the deployment begins
    endpoint = production.follow(operation).endpoint
    assert endpoint is not None
    return endpoint


def text_of(*reports: TestReport) -> str:
    return json.dumps([asdict(report) for report in reports])


def test_an_endpoint_that_gives_no_key_fails_its_checks_and_is_not_called(
    settings: AzureSettings, copy_model: Any
) -> None:
    client = FakeMLClient(primary_key="")  # e.g. an aml_token endpoint whose token could not be had
    endpoint = production_endpoint(client, settings)
    http = FakeHttp(lambda sent: (200, {"result": [1.0]}))
    tester = AzureEndpointTester(client, settings, copy_model, http=http)

    smoke, integration = tester.smoke(endpoint), tester.integration(endpoint, MODEL)

    assert http.sent == []
    checks = {check["name"]: check for check in smoke.checks + integration.checks}
    assert checks["health"]["passed"]  # asked of Azure ML, which needs no key
    for name in ("score_one_row", "predictions_match_model", "wrong_shape_rejected", "non_json_rejected"):
        assert not checks[name]["passed"]
        assert f"online endpoint {settings.endpoint} returned no key or token" in checks[name]["detail"]


def test_a_key_the_endpoint_echoes_back_is_masked_in_the_report(settings: AzureSettings, copy_model: Any) -> None:
    secret = "s3cr3t-key-0f-the-endpoint"
    client = FakeMLClient(primary_key=secret)
    endpoint = production_endpoint(client, settings)

    def echo(sent: Sent) -> tuple[int, Any]:  # a misconfigured proxy quoting the request back
        return 502, {"error": "bad gateway", "request_headers": sent.headers}

    tester = AzureEndpointTester(client, settings, copy_model, http=FakeHttp(echo))
    text = text_of(tester.smoke(endpoint), tester.integration(endpoint, MODEL))

    assert secret not in text
    assert f"Bearer {MASK}" in text


def test_the_key_is_fetched_per_request_so_a_regenerated_key_is_used_and_masked(
    settings: AzureSettings, copy_model: Any
) -> None:
    client = FakeMLClient(primary_key="first-key-1a2b")
    endpoint = production_endpoint(client, settings)
    http = FakeHttp(lambda sent: (401, {"error": "unauthorised", "got": sent.headers.get("Authorization")}))
    tester = AzureEndpointTester(client, settings, copy_model, http=http)

    smoke = tester.smoke(endpoint)
    client.primary_key = "second-key-3c4d"  # regenerated in the portal
    integration = tester.integration(endpoint, MODEL)

    keys = [sent.headers["Authorization"] for sent in http.sent]
    assert keys == ["Bearer first-key-1a2b"] + ["Bearer second-key-3c4d"] * 3
    assert {sent.headers[DEPLOYMENT_HEADER] for sent in http.sent} == {deployment_name("rel-1")}
    text = text_of(smoke, integration)
    assert "first-key-1a2b" not in text and "second-key-3c4d" not in text


def test_the_direct_health_check_asks_for_the_deployment_not_the_traffic(
    settings: AzureSettings, copy_model: Any
) -> None:
    client = FakeMLClient()
    endpoint = production_endpoint(client, settings)  # at 0%: nothing routes to it but the header
    tester = AzureEndpointTester(client, settings, copy_model, http=FakeHttp(lambda sent: (200, {"result": [1.0]})))
    client.calls.clear()

    health = tester.smoke(endpoint).checks[0]

    assert health == {
        "name": "health",
        "passed": True,
        "detail": f"deployment {deployment_name('rel-1')} of {settings.endpoint}: provisioning Succeeded",
    }
    assert client.operations()[0] == "online_deployments.get"


@pytest.mark.parametrize("state", ["Creating", "Updating", "Failed"])
def test_the_direct_health_check_fails_until_the_deployment_is_provisioned(
    settings: AzureSettings, copy_model: Any, state: str
) -> None:
    client = FakeMLClient()
    endpoint = production_endpoint(client, settings)
    client.endpoints[settings.endpoint].deployments[deployment_name("rel-1")]._provisioning_state = state
    tester = AzureEndpointTester(client, settings, copy_model, http=FakeHttp(lambda sent: (200, {"result": [1.0]})))

    health = tester.smoke(endpoint).checks[0]

    assert not health["passed"]
    assert health["detail"].endswith(f"provisioning {state}")


def test_without_a_release_the_health_check_asks_whether_the_endpoint_serves(
    settings: AzureSettings, copy_model: Any
) -> None:
    client = FakeMLClient()
    production_endpoint(client, settings)  # rel-1 is up, with no traffic
    tester = AzureEndpointTester(client, settings, copy_model, http=FakeHttp(lambda sent: (200, {"result": [1.0]})))
    stable = Endpoint(settings.endpoint, client.scoring_uri(settings.endpoint))

    assert not tester.smoke(stable).checks[0]["passed"]
    AksProduction(settings, client).begin_traffic({"rel-1": 100})
    health = tester.smoke(stable).checks[0]
    assert health["passed"]
    assert health["detail"] == (
        f'endpoint {settings.endpoint}: provisioning Succeeded, traffic {{"{deployment_name("rel-1")}": 100}}'
    )
