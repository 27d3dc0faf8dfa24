"""LocalDeployer: real azmlinfsrv servers for staging and production deployments behind the router.

The servers take about two seconds each to start, so one module-wide home is shared and the
production test walks through a whole sequence (beside, direct, traffic, again, remove) in order.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import joblib
import numpy as np
import pytest
import requests

from functions.domain.refs import Endpoint, ModelRef, Operation, Progress
from ml_pipeline.dataset import load_dataset
from ml_pipeline.train import train
from platforms.local.deployer import DeploymentError, LocalDeployer
from platforms.local.images import LocalImages
from platforms.local.inference_server import free_port
from platforms.local.processes import owned_processes
from tests.doubles.publisher import RecordingPublisher

pytestmark = pytest.mark.integration
REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def rows() -> np.ndarray:
    return load_dataset("diabetes").drop(columns=["target"]).to_numpy(dtype=np.float64)[:5]


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, trained_dir: Path) -> Iterator[SimpleNamespace]:
    home = tmp_path_factory.mktemp("deploy-home")
    other_dir = tmp_path_factory.mktemp("model-b")
    train("diabetes", other_dir, overrides={"alpha": 0.01})
    images = LocalImages(home, RecordingPublisher())
    model_a = ModelRef("diabetes-model", "1", str(trained_dir))
    model_b = ModelRef("diabetes-model", "2", str(other_dir))
    deployer = LocalDeployer(home, production_port=free_port())
    try:
        yield SimpleNamespace(home=home, images=images, a=model_a, b=model_b, deployer=deployer)
    finally:
        deployer.stop_all()


def predictions(model: ModelRef, rows: np.ndarray) -> list[float]:
    return joblib.load(Path(model.location) / "model.joblib").predict(rows).tolist()


def score(endpoint: Endpoint, rows: np.ndarray) -> requests.Response:
    response = requests.post(endpoint.scoring_url, json={"data": rows.tolist()}, timeout=30)
    assert response.status_code == 200, response.text
    return response


def port_of(url: str) -> int:
    return int(url.split(":")[2].split("/")[0])


def port_closed(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def servers(deployer: LocalDeployer) -> dict[str, dict]:
    return {f"{s['role']}-{s['release_id']}": s for s in deployer.status()["servers"]}


def up(deployer: LocalDeployer, operation: Operation, timeout_s: float = 60) -> Progress:
    """Follow as the timer does (a look, then a pause) until the operation has ended."""
    deadline = time.monotonic() + timeout_s
    while not (progress := deployer.follow(operation)).finished:
        assert time.monotonic() < deadline, f"{operation} still running: {progress.detail}"
        time.sleep(0.1)
    return progress


def test_staging_starts_without_waiting_and_is_idempotent_across_restarts(env, rows):
    image = env.images.build("stage-1", env.a)
    operation = env.deployer.begin_staging("stage-1", image, env.a)
    assert env.deployer.follow(operation).state == "running"  # begun: the server is still starting
    # Recorded before anything waits on it, and marked as the home's: no kill can leave it unaccounted for.
    recorded = json.loads((env.home / "deployments.json").read_text())["servers"]["staging-stage-1"]
    assert recorded["pid"] == operation.handle["pid"]
    assert recorded["pid"] in {process.pgid for process in owned_processes(env.home)}
    progress = up(env.deployer, operation)
    endpoint = progress.endpoint
    assert progress.state == "succeeded" and endpoint is not None
    assert endpoint.name == "staging-stage-1" and endpoint.version == "stage-1"
    assert endpoint.scoring_url.startswith("http://127.0.0.1:") and endpoint.scoring_url.endswith("/score")
    assert score(endpoint, rows).json() == {"result": predictions(env.a, rows)}
    pid = servers(env.deployer)["staging-stage-1"]["pid"]

    # A deployer in a restarted host finds the running server in deployments.json.
    restarted = LocalDeployer(env.home, production_port=env.deployer.production_port)
    again = restarted.begin_staging("stage-1", image, env.a)
    assert restarted.follow(again).endpoint == endpoint
    assert servers(restarted)["staging-stage-1"]["pid"] == pid and servers(restarted)["staging-stage-1"]["running"]

    env.deployer.remove_staging("stage-1")
    assert port_closed(port_of(endpoint.scoring_url))
    assert "staging-stage-1" not in servers(env.deployer)
    env.deployer.remove_staging("stage-1")  # nothing left to remove: no error


def test_production_beside_direct_then_traffic_behind_one_url(env, rows):
    deployer = env.deployer
    url = deployer.ensure_router()
    assert url == f"http://127.0.0.1:{deployer.production_port}/score"
    empty = requests.post(url, json={"data": rows.tolist()}, timeout=10)
    assert (empty.status_code, empty.json()) == (503, {"error": "no production deployment"})

    first = up(deployer, deployer.begin_beside("rel-1", env.images.build("rel-1", env.a), env.a)).endpoint
    assert first is not None and first == deployer.direct("rel-1") and first.scoring_url != url
    assert score(first, rows).json() == {"result": predictions(env.a, rows)}  # its own port, no traffic
    assert requests.post(url, json={"data": rows.tolist()}, timeout=10).status_code == 503
    assert up(deployer, deployer.begin_traffic({"rel-1": 100})).state == "succeeded"
    response = score(Endpoint("production", url), rows)
    assert response.json() == {"result": predictions(env.a, rows)} and response.headers["x-mlops-release"] == "rel-1"

    second = up(deployer, deployer.begin_beside("rel-2", env.images.build("rel-2", env.b), env.b)).endpoint
    assert second is not None and score(second, rows).json() == {"result": predictions(env.b, rows)}
    assert score(Endpoint("production", url), rows).headers["x-mlops-release"] == "rel-1"  # still
    assert deployer.request_counts() == {"rel-1": 2}, "tested directly, rel-2 had no live traffic"

    assert up(deployer, deployer.begin_traffic({"rel-2": 100})).state == "succeeded"
    response = score(Endpoint("production", url), rows)
    assert response.json() == {"result": predictions(env.b, rows)} and response.headers["x-mlops-release"] == "rel-2"
    assert deployer.request_counts() == {"rel-1": 2, "rel-2": 1} and deployer.traffic() == {"rel-2": 100}
    assert deployer.status()["traffic"] == {"rel-2": 100}
    assert requests.get(url.removesuffix("score"), timeout=10).status_code == 200

    with pytest.raises(DeploymentError, match="still has traffic"):
        deployer.remove("rel-2")
    old_port = servers(deployer)["production-rel-1"]["port"]
    deployer.remove("rel-1")
    assert port_closed(old_port) and sorted(deployer.deployments()) == ["rel-2"]
    # A retried traffic change that is in place already is done at the first look.
    assert deployer.follow(deployer.begin_traffic({"rel-2": 100})).state == "succeeded"


def test_a_server_that_dies_on_start_fails_its_operation_with_the_log(env):
    image = env.images.build("rel-broken", env.a)
    (Path(image.location) / "score.py").write_text("raise RuntimeError('no model for you')\n")
    progress = up(env.deployer, env.deployer.begin_beside("rel-broken", image, env.a))
    assert progress.state == "failed" and "exited during start-up" in progress.detail
    assert "no model for you" in progress.detail
    env.deployer.remove("rel-broken")


def test_request_id_and_errors_pass_through_the_router(env, rows):
    url = f"http://127.0.0.1:{env.deployer.production_port}/score"
    response = requests.post(url, json={"data": rows.tolist()}, headers={"x-request-id": "req-42"}, timeout=10)
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "req-42"
    assert response.headers["content-type"].startswith("application/json")
    bad = requests.post(url, data=b'{"data": [[1, 2]]}', headers={"Content-Type": "application/json"}, timeout=10)
    assert bad.status_code == 400
    assert "rows of 10 numbers" in bad.json()["error"]


def test_stop_all_from_another_process_stops_everything(env):
    running = servers(env.deployer)
    ports = [server["port"] for server in running.values()] + [env.deployer.production_port]
    assert ports and not any(port_closed(port) for port in ports)
    # `mlops down` runs in its own process: it only has the state file to go by.
    code = (
        "import json, sys; from pathlib import Path; from platforms.local.deployer import LocalDeployer; "
        "print(json.dumps(LocalDeployer(Path(sys.argv[1]), int(sys.argv[2])).stop_all()))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(env.home), str(env.deployer.production_port)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert sorted(json.loads(done.stdout)) == sorted([*running, "router"])
    assert all(port_closed(port) for port in ports)
    assert env.deployer.status()["servers"] == []
    assert not (env.home / "production.json").exists()


def test_an_injected_fault_reaches_matching_production_deployments_only(tmp_path, trained_dir, rows):
    """MLOPS_LOCAL_FAULT: after ``after_requests`` good answers, a matching production deployment biases a
    share of the rows (picked by counting) and answers a share of requests with 500; staging never has it."""
    images = LocalImages(tmp_path, RecordingPublisher())
    model = ModelRef("diabetes-model", "1", str(trained_dir))
    fault = {"deployments": "rel-*-faulty", "bias": 1000.0, "share": 0.5, "error_share": 0.5, "after_requests": 2}
    deployer = LocalDeployer(tmp_path, production_port=free_port(), fault=fault)
    try:
        staged = up(deployer, deployer.begin_staging("rel-x-faulty", images.build("rel-x-faulty", model), model))
        faulty = up(deployer, deployer.begin_beside("rel-x-faulty", images.build("rel-x-faulty", model), model))
        healthy = up(deployer, deployer.begin_beside("rel-y", images.build("rel-y", model), model))
        expected = predictions(model, rows)
        assert staged.endpoint and faulty.endpoint and healthy.endpoint
        for _ in range(4):
            assert score(staged.endpoint, rows).json()["result"] == expected
            assert score(healthy.endpoint, rows).json()["result"] == expected
        url = faulty.endpoint.scoring_url
        answers = [requests.post(url, json={"data": rows.tolist()}, timeout=30) for _ in range(6)]
        assert [a.status_code for a in answers] == [200, 200, 200, 500, 200, 500]
        assert all(a.json()["result"] == expected for a in answers[:2])  # the direct tests' share
        biased = [b - e for a in answers[2::2] for b, e in zip(a.json()["result"], expected, strict=True)]
        assert sorted(round(d) for d in biased) == [0] * 5 + [1000] * 5  # half the rows, by counting
        assert "injected fault" in answers[3].json()["error"]
        assert servers(deployer)["production-rel-x-faulty"]["fault"] is True
    finally:
        deployer.stop_all()
