"""Production without a blind switch, against a running `mlops up` (real azmlinfsrv, the real router).

A release is deployed beside production, tested directly on its own port, and only then given the
router's traffic; one whose direct tests fail never gets a single live request and ends rolled back
with the champion unchanged; `mlops rollback --to VERSION` puts an earlier model back in one command.
Each long step is begun by one invocation and seen finished by a later one (the follow timer's).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import joblib
import pytest
import requests
from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge

from devhost.client import ROLLBACK_PATH
from devhost.settings import REPO_ROOT
from tests.e2e.conftest import APPROVER, RunningHost, approve_to_the_end, signed, trigger_build, wait_for_state

pytestmark = pytest.mark.e2e

ROWS = load_diabetes().data[:5]
LONG_STEPS = ("staging deployment", "production deployment", "production traffic")


def live_release(host: RunningHost, params: dict | None = None) -> dict:
    release_id = trigger_build(host, params)
    waiting = wait_for_state(host, release_id, {"awaiting_approval", "failed", "rejected"})
    assert waiting["state"] == "awaiting_approval", waiting
    release = approve_to_the_end(host, release_id, APPROVER)
    assert release["state"] == "live", release
    return release


def predicted_by(release: dict) -> list[float]:
    model = joblib.load(Path(release["candidate"]["model"]["location"]) / "model.joblib")
    return model.predict(ROWS).tolist()


def served(host: RunningHost) -> requests.Response:
    response = requests.post(host.production_url, json={"data": ROWS.tolist()}, timeout=30)
    assert response.status_code == 200, response.text
    return response


@pytest.fixture(scope="module")
def champion(host: RunningHost) -> dict:
    return live_release(host)


def test_each_long_step_is_begun_by_one_invocation_and_seen_done_by_a_later_one(host, champion):
    entries = champion["timeline"]
    for step in LONG_STEPS:
        [started] = [e for e in entries if e["step"] == "operation_started" and e["detail"].startswith(step)]
        [ended] = [e for e in entries if e["step"] == "operation_succeeded" and e["detail"].startswith(step)]
        assert started["invocation"] != ended["invocation"], step
        assert ended["invocation"].startswith("follow_operations:"), ended
        assert entries.index(started) < entries.index(ended)
    starters = {e["detail"].split(":")[0]: e["invocation"].split(":")[0] for e in entries
                if e["step"] == "operation_started"}  # fmt: skip
    assert starters["staging deployment"] == "on_registry_event"
    assert starters[f"production deployment {champion['id']} beside the serving one"] == "approve_release"


def test_a_release_is_tested_directly_before_it_takes_any_traffic(host, champion):
    steps = [e["step"] for e in champion["timeline"]]
    tested, traffic = steps.index("production_direct_passed"), steps.index("live")
    assert steps.index("approved") < tested < traffic
    direct = champion["production"]["endpoint"]
    assert direct["name"] == f"production-{champion['id']}" and direct["scoring_url"] != host.production_url
    response = served(host)
    assert response.json()["result"] == predicted_by(champion)
    assert response.headers["x-mlops-release"] == champion["id"]


def test_a_deployment_failing_its_direct_tests_never_takes_traffic_and_is_rolled_back(host, champion):
    serving = live_release(host)  # the champion now, whatever ran before in this session
    counts_before = host.live_traffic()
    release_id = trigger_build(host, {"alpha": 0.3})
    waiting = wait_for_state(host, release_id, {"awaiting_approval", "failed", "rejected"})
    assert waiting["state"] == "awaiting_approval", waiting
    # The image is changed after staging passed (another model in its build context): production's own
    # deployment of it now predicts something else than the registered model, and its tests say so.
    tampered = Path(waiting["image"]["location"]) / "model" / "model.joblib"
    joblib.dump(Ridge(alpha=50.0).fit(load_diabetes().data, load_diabetes().target), tampered)

    ended = approve_to_the_end(host, release_id, APPROVER)
    assert ended["state"] == "rolled_back", ended
    assert "before any traffic moved" in ended["error"] and ended["production"]["traffic_moved"] is False
    assert not ended["production"]["passed"]
    assert host.live_traffic().get(release_id, 0) == 0 == counts_before.get(release_id, 0)
    assert host.release(serving["id"])["state"] == "live"  # the champion unchanged
    response = served(host)
    assert response.headers["x-mlops-release"] == serving["id"] and response.json()["result"] == predicted_by(serving)


def mlops(host: RunningHost, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MLOPS_HOME": str(host.home), "MLOPS_HOST_URL": host.base_url}
    command = [sys.executable, "-m", "devhost", *args]
    return subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)


def test_mlops_rollback_to_a_version_restores_its_predictions_in_one_command(host, champion):
    newer = live_release(host, {"alpha": 0.3})
    assert served(host).json()["result"] == predicted_by(newer) != predicted_by(champion)
    version = champion["candidate"]["model"]["version"]

    done = mlops(host, "rollback", "--to", version, "--by", APPROVER, "--comment", "0.3 drifts on Mondays")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"to {champion['id']}" in done.stdout and "production_direct_passed" in done.stdout and "live" in done.stdout

    assert served(host).json()["result"] == predicted_by(champion)  # the production URL serves that version
    [rollback] = [r for r in host.releases(limit=20) if r["trigger"].get("kind") == "rollback"]
    release = host.release(rollback["id"])
    assert release["state"] == "live" and release["trigger"]["to"] == champion["id"]
    assert release["trigger"]["from"] == newer["id"] and release["trigger"]["reason"] == "0.3 drifts on Mondays"
    requested = release["timeline"][0]
    assert requested["step"] == "rollback_requested" and APPROVER in requested["detail"]
    assert host.release(newer["id"])["state"] == "superseded"


def test_rollback_over_http_needs_json_a_proven_identity_and_a_comment(host, champion):
    url = f"{host.base_url}{ROLLBACK_PATH}"
    form = requests.post(url, data=b"comment=x", headers={"Content-Type": "application/x-www-form-urlencoded"},
                         timeout=30)  # fmt: skip
    assert form.status_code == 415 and "application/json" in form.json()["error"]
    unsigned = requests.post(url, json={"comment": "why"}, timeout=30)
    assert unsigned.status_code == 401 and "authentication required" in unsigned.json()["error"]
    body = b'{"comment": " "}'
    headers = {"Content-Type": "application/json", **signed(host, APPROVER)("POST", ROLLBACK_PATH, body)}
    no_comment = requests.post(url, data=body, headers=headers, timeout=30)
    assert no_comment.status_code == 400 and "comment" in no_comment.json()["error"]
    link = requests.post(url, json={"comment": "why"}, headers={"X-MLOps-Link": "not-a-link"}, timeout=30)
    assert link.status_code == 401
