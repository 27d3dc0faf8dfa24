"""The production router in-process (real HTTP on 127.0.0.1) in front of stdlib upstream servers."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from platforms.local.deployer import DeploymentError, LocalDeployer
from platforms.local.inference_server import free_port
from platforms.local.production_router import RouterServer
from tests.doubles.http_server import serving

pytestmark = pytest.mark.integration


class Upstream(ThreadingHTTPServer):
    """Echoes what it received, tagged with its name, so a test sees which version answered."""

    daemon_threads = True

    def __init__(self, name: str) -> None:
        super().__init__(("127.0.0.1", 0), _Echo)
        self.name = name


class _Echo(BaseHTTPRequestHandler):
    server: Upstream

    def do_GET(self) -> None:
        self._answer(200, {"upstream": self.server.name, "method": "GET", "path": self.path})

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        status = 400 if body == "bad" else 200
        self._answer(status, {"upstream": self.server.name, "body": body, "request_id": self.headers["x-request-id"]})

    def _answer(self, status: int, document: dict[str, Any]) -> None:
        payload = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("x-request-id", str(document.get("request_id")))
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def router(tmp_path: Path) -> Iterator[str]:
    with serving(RouterServer(free_port(), tmp_path)) as server:
        yield f"http://127.0.0.1:{server.server_address[1]}"


def point_at(home: Path, release_id: str, port: int) -> None:
    """An older one-target production.json: still read, as 100% to that target."""
    write_targets(home, {"release_id": release_id, "port": port})


def write_targets(home: Path, document: dict[str, Any]) -> None:
    temporary = home / "production.json.tmp"
    temporary.write_text(json.dumps(document))
    os.replace(temporary, home / "production.json")


def test_without_a_deployment_it_answers_503(router):
    for response in (requests.get(router + "/", timeout=5), requests.post(router + "/score", data=b"{}", timeout=5)):
        assert response.status_code == 503
        assert response.json() == {"error": "no production deployment"}


def test_forwards_to_the_current_target_and_follows_switches(router, tmp_path):
    with serving(Upstream("blue")) as blue, serving(Upstream("green")) as green:
        point_at(tmp_path, "rel-1", blue.server_address[1])
        response = requests.post(router + "/score", data=b'{"data": [[1]]}', headers={"x-request-id": "r-1"}, timeout=5)
        assert response.status_code == 200
        assert response.json() == {"upstream": "blue", "body": '{"data": [[1]]}', "request_id": "r-1"}
        assert response.headers["content-type"] == "application/json; charset=utf-8"
        assert response.headers["x-request-id"] == "r-1"
        assert response.headers["x-mlops-release"] == "rel-1"
        assert requests.get(router + "/", timeout=5).json()["path"] == "/"

        point_at(tmp_path, "rel-2", green.server_address[1])
        assert requests.post(router + "/score", data=b"x", timeout=5).json()["upstream"] == "green"
        bad = requests.post(router + "/score", data=b"bad", timeout=5)
        assert (bad.status_code, bad.json()["upstream"]) == (400, "green")
        info = requests.get(router + "/router", timeout=5).json()
        assert info["targets"] == [{"release_id": "rel-2", "port": green.server_address[1], "weight": 100}]
        assert info["home"] == str(tmp_path)
        assert info["counts"] == {"rel-1": 1, "rel-2": 2}  # scoring requests only, not the health check


def test_weights_split_the_requests_and_a_zero_weight_gets_none(router, tmp_path):
    with serving(Upstream("blue")) as blue, serving(Upstream("green")) as green:
        targets = [{"release_id": "rel-1", "port": blue.server_address[1], "weight": 70},
                   {"release_id": "rel-2", "port": green.server_address[1], "weight": 30}]  # fmt: skip
        write_targets(tmp_path, {"targets": targets})
        answered = [requests.post(router + "/score", data=b"x", timeout=5).json()["upstream"] for _ in range(200)]
        assert 100 < answered.count("blue") < 180 and answered.count("green") == 200 - answered.count("blue")
        write_targets(tmp_path, {"targets": [{**targets[0], "weight": 100}, {**targets[1], "weight": 0}]})
        assert {requests.post(router + "/score", data=b"x", timeout=5).json()["upstream"] for _ in range(20)} == {
            "blue"
        }


def test_unreachable_target_is_a_502_naming_it(router, tmp_path):
    port = free_port()
    point_at(tmp_path, "rel-9", port)
    response = requests.post(router + "/score", data=b"{}", timeout=5)
    assert response.status_code == 502
    assert f"rel-9 (port {port}) is unreachable" in response.json()["error"]
    assert requests.get(router + "/router", timeout=5).json()["counts"] == {"rel-9": 1}  # routed there, counted


def test_unknown_routes_and_an_unreadable_target_file(router, tmp_path):
    assert requests.get(router + "/swagger.json", timeout=5).status_code == 404
    assert requests.post(router + "/other", data=b"", timeout=5).status_code == 404
    (tmp_path / "production.json").write_text("{not json")
    assert requests.post(router + "/score", data=b"{}", timeout=5).status_code == 503


def test_deployer_reports_a_router_that_cannot_listen(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        deployer = LocalDeployer(tmp_path, production_port=taken.getsockname()[1])
        with pytest.raises(DeploymentError, match="cannot listen"):
            deployer.ensure_router()
    assert deployer.status()["router"] is None
