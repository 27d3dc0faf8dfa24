"""LocalDeployer: real azmlinfsrv servers for staging and blue/green production behind the router.

The servers take about two seconds each to start, so one module-wide home is shared and the
production test walks through a whole sequence (three releases, a rollback) in order.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import joblib
import numpy as np
import pytest
import requests

from functions.domain.refs import Endpoint, ModelRef
from ml_pipeline.dataset import load_dataset
from ml_pipeline.train import train
from platforms.local.deployer import LocalDeployer
from platforms.local.images import LocalImages
from platforms.local.inference_server import free_port
from platforms.local.processes import stop_process_group
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


def test_staging_serves_the_image_and_is_idempotent_across_restarts(env, rows):
    image = env.images.build("stage-1", env.a)
    endpoint = env.deployer.deploy_staging("stage-1", image, env.a)
    assert endpoint.name == "staging-stage-1" and endpoint.version == "stage-1"
    assert endpoint.scoring_url.startswith("http://127.0.0.1:") and endpoint.scoring_url.endswith("/score")
    assert score(endpoint, rows).json() == {"result": predictions(env.a, rows)}
    pid = servers(env.deployer)["staging-stage-1"]["pid"]

    assert env.deployer.deploy_staging("stage-1", image, env.a) == endpoint
    # A deployer in a restarted host finds the running server in deployments.json.
    restarted = LocalDeployer(env.home, production_port=env.deployer.production_port)
    assert restarted.deploy_staging("stage-1", image, env.a) == endpoint
    assert servers(restarted)["staging-stage-1"]["pid"] == pid
    assert servers(restarted)["staging-stage-1"]["running"]

    env.deployer.remove_staging("stage-1")
    assert port_closed(port_of(endpoint.scoring_url))
    assert "staging-stage-1" not in servers(env.deployer)
    env.deployer.remove_staging("stage-1")  # nothing left to remove: no error


def test_production_blue_green_keeps_one_url_and_rolls_back(env, rows):
    deployer = env.deployer
    url = deployer.ensure_router()
    assert url == f"http://127.0.0.1:{deployer.production_port}/score"
    empty = requests.post(url, json={"data": rows.tolist()}, timeout=10)
    assert (empty.status_code, empty.json()) == (503, {"error": "no production deployment"})

    first = deployer.deploy_production("rel-1", env.images.build("rel-1", env.a), env.a)
    assert first == Endpoint("production", url, "rel-1")
    assert score(first, rows).json() == {"result": predictions(env.a, rows)}

    second = deployer.deploy_production("rel-2", env.images.build("rel-2", env.b), env.b)
    assert second == Endpoint("production", url, "rel-2")
    response = score(second, rows)
    assert response.json() == {"result": predictions(env.b, rows)}
    assert response.headers["x-mlops-release"] == "rel-2"
    running = servers(deployer)
    assert running["production-rel-1"]["running"], "the previous version stays up for rollback"
    assert deployer.status()["production"] == {"current": "rel-2", "previous": "rel-1"}
    assert requests.get(url.removesuffix("score"), timeout=10).status_code == 200

    third = deployer.deploy_production("rel-3", env.images.build("rel-3", env.a), env.a)
    assert third.scoring_url == url
    assert score(third, rows).json() == {"result": predictions(env.a, rows)}
    assert port_closed(running["production-rel-1"]["port"]), "versions older than the previous are stopped"
    assert set(servers(deployer)) == {"production-rel-2", "production-rel-3"}
    rel3_port = servers(deployer)["production-rel-3"]["port"]
    # The previous version died meanwhile (crash, reboot): rollback starts it again from its image.
    stop_process_group(servers(deployer)["production-rel-2"]["pid"])

    back = deployer.rollback_production("rel-3")
    assert back == Endpoint("production", url, "rel-2")
    assert score(back, rows).json() == {"result": predictions(env.b, rows)}
    assert port_closed(rel3_port)
    assert servers(deployer)["production-rel-2"]["running"]
    assert deployer.status()["production"] == {"current": "rel-2", "previous": None}
    # Retried rollback: already done, production stays where it is.
    assert deployer.rollback_production("rel-3") == back
    # Nothing older to go back to.
    assert deployer.rollback_production("rel-2") is None
    assert score(back, rows).json() == {"result": predictions(env.b, rows)}


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
