"""score.py behind the real Azure ML inference server (azmlinfsrv) on 127.0.0.1."""

from __future__ import annotations

import json

import joblib
import numpy as np
import pytest
import requests

from platforms.local.inference_server import InferenceServer
from tests.scoring_helpers import SCORE_PY

pytestmark = pytest.mark.integration
MAX_ROWS = 200


@pytest.fixture(scope="module")
def server(trained_dir, tmp_path_factory):
    log = tmp_path_factory.mktemp("azmlinfsrv") / "server.log"
    with InferenceServer(SCORE_PY, trained_dir, log, env={"SCORING_MAX_ROWS": str(MAX_ROWS)}) as running:
        yield running


@pytest.fixture(scope="module")
def features(diabetes) -> np.ndarray:
    return diabetes.drop(columns=["target"]).to_numpy(dtype=np.float64)


def post(server: InferenceServer, body: str | bytes) -> requests.Response:
    return requests.post(server.score_url, data=body, headers={"Content-Type": "application/json"}, timeout=30)


def test_health_probe_answers(server):
    response = requests.get(server.url + "/", timeout=10)
    assert response.status_code == 200


@pytest.mark.parametrize("n_rows", [1, 17, MAX_ROWS])
def test_predictions_equal_model_predict_exactly(server, trained_dir, features, n_rows):
    rows = features[:n_rows]
    response = post(server, json.dumps({"data": rows.tolist()}))
    assert response.status_code == 200
    expected = joblib.load(trained_dir / "model.joblib").predict(rows).tolist()
    assert response.json() == {"result": expected}


ROW = [0.01] * 10
BAD_REQUESTS: dict[str, tuple[str | bytes, str]] = {
    "not json": (b"{data: nope", "not valid JSON"),
    "not utf-8": (b"\xff\xfe\xfa", "UTF-8"),
    "no data field": (json.dumps({"rows": [ROW]}), '"data" field'),
    "wrong shape": (json.dumps({"data": [[1.0, 2.0, 3.0]]}), "rows of 10 numbers"),
    "ragged": (json.dumps({"data": [ROW, ROW[:3]]}), "rows differ in length"),
    "non-number": (json.dumps({"data": [[*ROW[:9], "x"]]}), "only numbers"),
    "boolean": (json.dumps({"data": [[*ROW[:9], False]]}), "only numbers"),
    "NaN": (b'{"data": [[NaN, 1, 1, 1, 1, 1, 1, 1, 1, 1]]}', "NaN or Infinity"),
    "-Infinity": (b'{"data": [[-Infinity, 1, 1, 1, 1, 1, 1, 1, 1, 1]]}', "NaN or Infinity"),
    "empty": (json.dumps({"data": []}), "non-empty"),
    "too many rows": (json.dumps({"data": [ROW] * (MAX_ROWS + 1)}), f"at most {MAX_ROWS}"),
}


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
def test_bad_input_gets_a_4xx_with_a_clear_message(server, case):
    body, message = BAD_REQUESTS[case]
    response = post(server, body)
    assert 400 <= response.status_code < 500, response.text
    payload = response.json()
    assert message in (payload.get("error") or payload.get("message", "")), payload


def test_server_still_scores_after_bad_requests(server, features):
    for body, _ in BAD_REQUESTS.values():
        post(server, body)
    assert post(server, json.dumps({"data": features[:2].tolist()})).status_code == 200


def test_each_request_is_logged_as_one_json_line(server):
    response = requests.post(server.score_url, json={"data": [ROW]}, headers={"x-request-id": "trace-me-7"}, timeout=30)
    assert response.status_code == 200
    lines = [
        json.loads(line) for line in server.log_file.read_text().splitlines() if '"request_id": "trace-me-7"' in line
    ]
    assert lines and lines[-1]["rows"] == 1 and lines[-1]["status"] == 200


def test_without_a_request_id_the_log_uses_the_servers_own(server):
    response = requests.post(server.score_url, json={"data": [ROW]}, timeout=30)
    server_id = response.headers["x-request-id"]
    logged = [line for line in server.log_file.read_text().splitlines() if f'"request_id": "{server_id}"' in line]
    assert len(logged) == 1 and json.loads(logged[0])["status"] == 200
