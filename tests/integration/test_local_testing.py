"""HttpEndpointTester (the local platform's EndpointTester) against the real azmlinfsrv serving score.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from functions.domain.refs import Endpoint, ModelRef
from ml_pipeline.train import train
from platforms.common.endpoint_tests import HttpEndpointTester
from platforms.local.inference_server import InferenceServer, free_port
from tests.scoring_helpers import SCORE_PY

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def endpoint(trained_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Endpoint]:
    log = tmp_path_factory.mktemp("tester-server") / "server.log"
    with InferenceServer(SCORE_PY, trained_dir, log) as server:
        yield Endpoint("staging-rel-1", server.score_url, "rel-1")


@pytest.fixture(scope="module")
def other_model(tmp_path_factory: pytest.TempPathFactory) -> ModelRef:
    directory = tmp_path_factory.mktemp("other-model")
    train("diabetes", directory, overrides={"alpha": 0.01})
    return ModelRef("diabetes-model", "2", str(directory))


@pytest.fixture
def served_model(trained_dir: Path) -> ModelRef:
    return ModelRef("diabetes-model", "1", str(trained_dir))


def test_smoke_passes_on_a_healthy_endpoint(endpoint):
    report = HttpEndpointTester().smoke(endpoint)
    assert report.passed, report.summary
    assert [check["name"] for check in report.checks] == ["health", "score_one_row"]
    assert all(check["passed"] for check in report.checks)
    assert "\n" not in report.summary


def test_integration_passes_when_the_endpoint_serves_the_model(endpoint, served_model):
    report = HttpEndpointTester(rows=20).integration(endpoint, served_model)
    assert report.passed, report.summary
    checks = {check["name"]: check for check in report.checks}
    assert set(checks) == {"predictions_match_model", "wrong_shape_rejected", "non_json_rejected"}
    assert "20 predictions equal" in checks["predictions_match_model"]["detail"]
    assert "-> 400" in checks["wrong_shape_rejected"]["detail"]


def test_integration_fails_readably_when_the_endpoint_serves_another_model(endpoint, other_model):
    report = HttpEndpointTester(rows=20).integration(endpoint, other_model)
    assert not report.passed
    assert "1/3 checks failed" in report.summary
    assert "predictions_match_model" in report.summary and "differ from the model's" in report.summary
    assert "\n" not in report.summary
    checks = {check["name"]: check["passed"] for check in report.checks}
    assert checks == {"predictions_match_model": False, "wrong_shape_rejected": True, "non_json_rejected": True}


def test_a_closed_port_gives_failed_reports_not_exceptions(served_model):
    down = Endpoint("staging-gone", f"http://127.0.0.1:{free_port()}/score", "rel-x")
    tester = HttpEndpointTester(timeout_s=2)
    smoke = tester.smoke(down)
    integration = tester.integration(down, served_model)
    assert not smoke.passed and not integration.passed
    assert all(not check["passed"] for check in smoke.checks + integration.checks)
    assert "ConnectionError" in smoke.checks[0]["detail"]
    assert "staging-gone" in smoke.summary


def test_an_unloadable_model_is_a_failed_check(endpoint, tmp_path):
    report = HttpEndpointTester().integration(endpoint, ModelRef("diabetes-model", "9", str(tmp_path)))
    assert not report.passed
    assert "model.joblib" in report.summary
