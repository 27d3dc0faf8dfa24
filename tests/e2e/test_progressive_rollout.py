"""Progressive rollouts against a running `mlops up`: real azmlinfsrv deployments, the real router, live traffic.

A good release goes shadow -> canary 10% -> 50% -> 100% -> live while requests flow, each step's
analysis in its JSON; a release whose production deployment has an injected fault (MLOPS_LOCAL_FAULT:
biased predictions on a share of rows, after the direct tests) passes the gate, staging and its
direct tests, and is rolled back by the shadow step's analysis with the evidence, the champion and
the traffic unchanged. In every step it reached, the new deployment answered at most ceil(share x n)
of the n live requests (as the router counted them for the step's analysis; the faulty one's zero is counted
by the client too, from the x-mlops-release header of every answer).
"""

from __future__ import annotations

import json
import math
import time
import uuid
from typing import Any

import pytest
import requests
from sklearn.datasets import load_diabetes

from devhost.traffic import LiveTraffic
from tests.e2e.conftest import APPROVER, RunningHost, running_host, signed, trigger_build, wait_for_state

pytestmark = pytest.mark.e2e

# Seconds-long windows; latency recorded but not deciding (these machines are noisy); errors and
# prediction divergence decide.
POLICY: dict[str, Any] = {
    "window_s": 2,
    "min_requests": 30,
    "max_wait_s": 120,
    "keep_previous_s": 600,
    "latency": {"decides": False},
}
FAULT = {"deployments": "*-faulty", "bias": 200.0, "share": 0.3, "after_requests": 10}
ROWS = [list(map(float, row)) for row in load_diabetes().data]


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory):
    env = {
        "MLOPS_GATE_POLICY": '{"mode": "non_inferiority", "margin": 50}',
        "MLOPS_ROLLOUT_POLICY": json.dumps(POLICY),
        "MLOPS_LOCAL_FAULT": json.dumps(FAULT),
    }
    with running_host(tmp_path_factory.mktemp("mlops-rollout-home"), env) as client:
        yield client


def to_approval(host: RunningHost, params: dict | None = None, suffix: str = "") -> str:
    release_id = trigger_build(host, params, build_id=f"e2e-{uuid.uuid4().hex[:8]}{suffix}")
    waiting = wait_for_state(host, release_id, {"awaiting_approval", "failed", "rejected"})
    assert waiting["state"] == "awaiting_approval", waiting
    return release_id


def rolled_out(host: RunningHost, release_id: str) -> dict:
    """Approve, then wait while the follow timer carries the rollout through its steps, until it ends."""
    answer = host.approve(release_id, signed(host, APPROVER), "ship it")
    assert answer["state"] == "promoting", answer
    return wait_for_state(host, release_id, {"live", "rolled_back", "failed"}, timeout_s=240)


def shares_held(release: dict) -> list[tuple[str, int, int]]:
    """(step, live requests the new deployment answered, n live requests) per step it held, as the router
    counted them for the step's analysis; each within ceil(share x n) (smooth weighted round-robin)."""
    seen = []
    for step in release["production"]["rollout"]["steps"]:
        if "verdict" not in step:
            continue
        verdict = step["verdict"]
        live_share = 0 if step["kind"] == "shadow" else step["share"]
        answered = 0 if step["kind"] == "shadow" else verdict["candidate"]["requests"]
        n = verdict["stable"]["requests"] + answered
        assert answered <= math.ceil(live_share / 100 * n), (step["kind"], step["share"], answered, n)
        seen.append((f"{step['kind']} {step['share']}%", answered, n))
    return seen


def answered_by(host: RunningHost) -> str:
    answer = requests.post(host.production_url, json={"data": ROWS[:2]}, timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.headers["x-mlops-release"]


def wait_for_entry(host: RunningHost, release_id: str, step: str, timeout_s: float = 60) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        release = host.release(release_id)
        if any(e["step"] == step for e in release["timeline"]) or time.monotonic() > deadline:
            assert any(e["step"] == step for e in release["timeline"]), release["timeline"][-5:]
            return release
        time.sleep(0.3)


@pytest.fixture(scope="module")
def champion(host: RunningHost) -> dict:
    release_id = to_approval(host)
    answer = host.approve(release_id, signed(host, APPROVER), "first")
    assert answer["state"] == "promoting"
    live = wait_for_state(host, release_id, {"live", "rolled_back", "failed"})
    assert live["state"] == "live" and live["production"].get("rollout") is None  # nothing to compare with
    return live


def test_a_release_with_a_fault_only_live_traffic_shows_is_rolled_back_by_its_shadow_step(host, champion):
    faulty = to_approval(host, suffix="-faulty")  # its staging passed: the fault is production's only
    with LiveTraffic(host.production_url, ROWS, rate_per_s=40) as traffic:
        release = rolled_out(host, faulty)
    assert release["state"] == "rolled_back", release.get("error")
    assert release["production"]["passed"] is True  # its direct tests passed too
    shadow = release["production"]["rollout"]["steps"][0]
    assert shadow["kind"] == "shadow" and shadow["state"] == "failed"
    checks = {c["name"]: c for c in shadow["verdict"]["checks"]}
    assert not checks["divergence"]["passed"] and checks["divergence"]["share"] > 0.1
    assert checks["divergence"]["rows"] >= POLICY["min_requests"]
    assert "divergence" in release["error"] and any(e["step"] == "rolled_back" for e in release["timeline"])
    [(step, answered, n)] = shares_held(release)
    assert step == "shadow 50%" and answered == 0 and n >= POLICY["min_requests"]
    # Not one live request was answered by it, before, during or after the step (counted here too).
    assert traffic.answered().get(faulty, 0) == 0 and traffic.sent > 0 and traffic.failed == 0
    # Production is back on the champion (the restore begun at once), the faulty deployment removed.
    restored = wait_for_entry(host, faulty, "production_restored")
    assert restored["production"]["rolled_back_to"] == champion["id"]
    assert host.release(champion["id"])["state"] == "live"
    assert {answered_by(host) for _ in range(10)} == {champion["id"]}


def test_a_good_release_goes_shadow_then_canary_10_50_100_and_live_with_each_analysis(host, champion):
    good = to_approval(host)
    with LiveTraffic(host.production_url, ROWS, rate_per_s=40) as traffic:
        release = rolled_out(host, good)
    assert release["state"] == "live", release.get("error")
    steps = release["production"]["rollout"]["steps"]
    assert [(s["kind"], s["share"], s["state"]) for s in steps] == [
        ("shadow", 50, "passed"), ("canary", 10, "passed"), ("canary", 50, "passed"), ("canary", 100, "passed"),
    ]  # fmt: skip
    for step in steps[:3]:
        verdict = step["verdict"]
        assert verdict["passed"] and verdict["candidate"]["requests"] >= POLICY["min_requests"]
        names = {c["name"] for c in verdict["checks"]}
        assert {"traffic", "errors", "latency"} <= names
        assert ("divergence" if step["kind"] == "shadow" else "shift") in names
    held = shares_held(release)
    assert [h[0] for h in held] == ["shadow 50%", "canary 10%", "canary 50%"]
    assert held[1][1] > 0 and held[2][1] > 0  # the canary steps got live traffic
    assert traffic.failed == 0 and traffic.answered().get(good, 0) > 0
    passed = [e for e in release["timeline"] if e["step"] == "rollout_step_passed"]
    assert len(passed) == 3 and all("passed" in e["detail"] for e in passed)
    assert {answered_by(host) for _ in range(10)} == {good}
