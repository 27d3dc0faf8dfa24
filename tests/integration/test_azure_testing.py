"""AzureEndpointTester against a real HTTP server on 127.0.0.1 that stands in for the AKS endpoint.

The server does what the cluster's router and azmlinfsrv do for these tests: it refuses a
request without ``Authorization: Bearer <key>`` (401), routes on ``azureml-model-deployment``
(404 for an unknown deployment), validates the body with score.py's own ``parse_request`` (400)
and scores with the trained model. The control plane is the fake MLClient. The tester's own
decisions, without a socket: tests/unit/test_azure_testing.py.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import joblib
import pytest

from functions.domain.refs import Endpoint, ImageRef, ModelRef
from ml_pipeline.train import train
from platforms.azure.production import AksProduction, deployment_name
from platforms.azure.settings import AzureSettings, example_env
from platforms.azure.testing import AzureEndpointTester
from tests.doubles.azure_endpoints import FakeMLClient
from tests.doubles.http_server import serving
from tests.scoring_helpers import load_score_module

pytestmark = [
    pytest.mark.integration,
    # azure-ai-ml's schemas use marshmallow APIs that marshmallow 4 deprecates: noise, not our concern.
    pytest.mark.filterwarnings("ignore::marshmallow.warnings.Marshmallow4Warning"),
]

KEY = "k3y-0f-the-endpoint-7f1c9e"
ENDPOINT = "diabetes-prod"
AKS_PATH = f"/api/v1/endpoint/{ENDPOINT}/score"
MODEL = ModelRef("diabetes-model", "1", "azureml:diabetes-model:1")


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]


@dataclass
class StandInServer:
    """An endpoint on 127.0.0.1: key (None: no auth), score path, deployments it knows (empty: any)."""

    model: Any
    key: str | None
    score_path: str
    deployments: set[str] = field(default_factory=set)
    seen: list[Seen] = field(default_factory=list)
    url: str = ""

    def handler(self) -> type[BaseHTTPRequestHandler]:
        server, score = self, load_score_module()
        vars(score).update(model=self.model, n_features=int(self.model.n_features_in_))

        class Handler(BaseHTTPRequestHandler):
            timeout = 5  # a stuck client cannot hold a handler thread for long

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _reply(self, status: int, document: Any) -> None:
                body = json.dumps(document).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _refused(self) -> bool:
                server.seen.append(Seen(self.command, self.path, dict(self.headers.items())))
                if server.key is not None and self.headers.get("Authorization") != f"Bearer {server.key}":
                    self._reply(401, {"error": "unauthorised"})
                    return True
                return False

            def do_GET(self) -> None:
                if not self._refused():
                    self._reply(200, "Healthy") if self.path == "/" else self._reply(404, {"error": "not found"})

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self._refused():
                    return
                deployment = self.headers.get("azureml-model-deployment")
                if self.path != server.score_path or (server.deployments and deployment not in server.deployments):
                    self._reply(404, {"error": f"no route to {self.path} ({deployment})"})
                    return
                try:
                    rows = score.parse_request(body.decode())[0]
                except score.BadRequest as exc:
                    self._reply(400, {"error": str(exc)})
                    return
                self._reply(200, {"result": server.model.predict(rows).tolist()})

        return Handler


@pytest.fixture(scope="module")
def serve(trained_dir: Path) -> Iterator[Callable[..., StandInServer]]:
    model = joblib.load(trained_dir / "model.joblib")
    with ExitStack() as running:

        def start(key: str | None, score_path: str, deployments: set[str] | None = None) -> StandInServer:
            stand_in = StandInServer(model, key, score_path, deployments or set())
            httpd = ThreadingHTTPServer(("127.0.0.1", 0), stand_in.handler())
            httpd.daemon_threads = True
            running.enter_context(serving(httpd))
            stand_in.url = f"http://127.0.0.1:{httpd.server_address[1]}"
            return stand_in

        yield start


@pytest.fixture
def settings() -> AzureSettings:
    return AzureSettings.from_env(example_env())


def copies(model_dir: Path, calls: list[tuple[ModelRef, Path]] | None = None) -> Callable[[ModelRef, Path], None]:
    """A model_files callback: puts model_dir's files under <target>/<name>/ like ml_client.models.download."""

    def model_files(model: ModelRef, target: Path) -> None:
        if calls is not None:
            calls.append((model, target))
        shutil.copytree(model_dir, target / model.name)

    return model_files


def live(client: FakeMLClient, settings: AzureSettings, *releases: int) -> Endpoint:
    """Bring releases up through AksProduction on the fake (it settles at once), each beside the one
    before and then given all the traffic; the last one's direct endpoint."""
    production = AksProduction(settings, client)
    endpoint = None
    for n in releases:
        endpoint = beside(production, n)
        production.begin_traffic({f"rel-{n}": 100})
    assert endpoint is not None
    return endpoint


def beside(production: AksProduction, n: int) -> Endpoint:
    """Release n's deployment beside production, with no traffic: its direct endpoint."""
    image = ImageRef("diabetes-scoring", f"{n}-rel-{n}", location="crmlops.azurecr.io")
    operation = production.begin_beside(f"rel-{n}", image, MODEL)
    for _ in range(2):  # the first deployment waits one look for the endpoint to be created
        progress = production.follow(operation)
        if progress.endpoint is not None:
            return progress.endpoint
    raise AssertionError(f"rel-{n} did not come up: {progress.detail}")


def everything(*reports: Any) -> str:
    return json.dumps([asdict(report) for report in reports])


def test_the_aks_endpoint_is_tested_with_its_key_on_the_releases_deployment(
    serve: Callable[..., StandInServer], settings: AzureSettings, trained_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = serve(KEY, AKS_PATH, {deployment_name("rel-1")})
    client = FakeMLClient(primary_key=KEY, scoring_host=server.url)
    endpoint = live(client, settings, 1)
    downloads: list[tuple[ModelRef, Path]] = []
    tester = AzureEndpointTester(client, settings, copies(trained_dir, downloads), rows=20, timeout_s=5)
    client.calls.clear()

    with caplog.at_level(logging.DEBUG):
        smoke = tester.smoke(endpoint)
        integration = tester.integration(endpoint, MODEL)

    assert smoke.passed, smoke.summary
    assert [check["name"] for check in smoke.checks] == ["health", "score_one_row"]
    assert "provisioning Succeeded" in smoke.checks[0]["detail"]
    assert integration.passed, integration.summary
    checks = {check["name"]: check["detail"] for check in integration.checks}
    assert "20 predictions equal" in checks["predictions_match_model"]
    assert "-> 400" in checks["wrong_shape_rejected"] and "-> 400" in checks["non_json_rejected"]
    assert [model for model, _ in downloads] == [MODEL]

    assert server.seen and all(request.method == "POST" for request in server.seen)  # health asks Azure ML
    assert {request.headers["Authorization"] for request in server.seen} == {f"Bearer {KEY}"}
    assert {request.headers["azureml-model-deployment"] for request in server.seen} == {deployment_name("rel-1")}
    assert "online_endpoints.get_keys" in client.operations()
    assert KEY not in everything(smoke, integration)
    assert KEY not in caplog.text


def test_a_wrong_key_fails_every_check_and_a_401_is_not_a_rejected_input(
    serve: Callable[..., StandInServer], settings: AzureSettings, trained_dir: Path
) -> None:
    server = serve(KEY, AKS_PATH)
    client = FakeMLClient(primary_key="not-the-key-4f2a", scoring_host=server.url)
    endpoint = live(client, settings, 1)
    tester = AzureEndpointTester(client, settings, copies(trained_dir), timeout_s=5)

    smoke, integration = tester.smoke(endpoint), tester.integration(endpoint, MODEL)

    assert not smoke.passed and not integration.passed
    assert [check["passed"] for check in integration.checks] == [False, False, False]
    rejected = {check["name"]: check["detail"] for check in integration.checks}["wrong_shape_rejected"]
    assert "-> 401" in rejected and "unauthorised" in rejected
    assert "not-the-key-4f2a" not in everything(smoke, integration)


def test_predictions_are_compared_with_the_downloaded_model(
    serve: Callable[..., StandInServer], settings: AzureSettings, tmp_path: Path
) -> None:
    other = tmp_path / "other"
    train("diabetes", other, overrides={"alpha": 0.01})
    server = serve(KEY, AKS_PATH)
    client = FakeMLClient(primary_key=KEY, scoring_host=server.url)
    tester = AzureEndpointTester(client, settings, copies(other), timeout_s=5)

    report = tester.integration(live(client, settings, 1), MODEL)

    assert not report.passed
    assert "differ from the model's" in report.summary


def test_a_deployment_with_no_traffic_is_tested_directly_on_its_own(
    serve: Callable[..., StandInServer], settings: AzureSettings, trained_dir: Path
) -> None:
    first, second = deployment_name("rel-1"), deployment_name("rel-2")
    server = serve(KEY, AKS_PATH, {first, second})
    client = FakeMLClient(primary_key=KEY, scoring_host=server.url)
    live(client, settings, 1)
    endpoint = beside(AksProduction(settings, client), 2)  # rel-1 keeps all the traffic
    tester = AzureEndpointTester(client, settings, copies(trained_dir), timeout_s=5)

    smoke, integration = tester.smoke(endpoint), tester.integration(endpoint, MODEL)

    assert smoke.passed, smoke.summary
    assert integration.passed, integration.summary
    assert smoke.checks[0]["detail"] == f"deployment {second} of {ENDPOINT}: provisioning Succeeded"
    assert client.endpoints[ENDPOINT].traffic == {first: 100}
    assert {request.headers["azureml-model-deployment"] for request in server.seen} == {second}


def test_health_fails_while_the_deployment_is_still_coming_up(
    serve: Callable[..., StandInServer], settings: AzureSettings, trained_dir: Path
) -> None:
    server = serve(KEY, AKS_PATH)
    client = FakeMLClient(primary_key=KEY, scoring_host=server.url)
    live(client, settings, 1)
    client.settle_at_once = False
    production = AksProduction(settings, client)
    image = ImageRef("diabetes-scoring", "2-rel-2", location="crmlops.azurecr.io")
    production.begin_beside("rel-2", image, MODEL)

    report = AzureEndpointTester(client, settings, copies(trained_dir), timeout_s=5).smoke(production.direct("rel-2"))

    checks = {check["name"]: check for check in report.checks}
    assert not report.passed and not checks["health"]["passed"]
    assert checks["health"]["detail"] == f"deployment {deployment_name('rel-2')} of {ENDPOINT}: provisioning Creating"


def test_a_staging_endpoint_is_called_as_it_is(
    serve: Callable[..., StandInServer], settings: AzureSettings, trained_dir: Path
) -> None:
    server = serve(None, "/score")
    client = FakeMLClient(primary_key=KEY)
    endpoint = Endpoint("staging-rel-1", f"{server.url}/score", "rel-1")
    tester = AzureEndpointTester(client, settings, copies(trained_dir), timeout_s=5)

    smoke, integration = tester.smoke(endpoint), tester.integration(endpoint, MODEL)

    assert smoke.passed, smoke.summary
    assert integration.passed, integration.summary
    assert client.calls == []
    assert ("GET", "/") in {(request.method, request.path) for request in server.seen}
    assert not any("Authorization" in request.headers for request in server.seen)
    assert not any("azureml-model-deployment" in request.headers for request in server.seen)


def test_a_missing_endpoint_gives_failed_reports_not_exceptions(
    serve: Callable[..., StandInServer], settings: AzureSettings, trained_dir: Path
) -> None:
    server = serve(KEY, AKS_PATH)
    client = FakeMLClient(primary_key=KEY)  # no endpoint at all
    endpoint = Endpoint(ENDPOINT, f"{server.url}{AKS_PATH}", "rel-1")
    tester = AzureEndpointTester(client, settings, copies(trained_dir), timeout_s=5)

    smoke, integration = tester.smoke(endpoint), tester.integration(endpoint, MODEL)

    assert not smoke.passed and not integration.passed
    assert all("ResourceNotFoundError" in check["detail"] for check in smoke.checks + integration.checks)
    assert server.seen == []


def test_the_key_is_masked_even_where_requests_quotes_it(
    serve: Callable[..., StandInServer], settings: AzureSettings, trained_dir: Path
) -> None:
    secret = "line\nbreak-secret-93ab"  # requests refuses it and quotes the header in its error
    server = serve(KEY, AKS_PATH)
    client = FakeMLClient(primary_key=secret, scoring_host=server.url)
    tester = AzureEndpointTester(client, settings, copies(trained_dir), timeout_s=5)
    endpoint = live(client, settings, 1)

    text = everything(tester.smoke(endpoint), tester.integration(endpoint, MODEL))

    assert "InvalidHeader" in text and "***" in text
    assert "break-secret-93ab" not in text
