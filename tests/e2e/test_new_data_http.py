"""New training data through a real `mlops up`: a CSV dropped in the watched folder and two sent with
`mlops trigger data`, inside one debounce window, start one release, which trains on the newest file."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from devhost.settings import REPO_ROOT
from tests.e2e.conftest import RunningHost, running_host, wait_for_state

DEBOUNCE_S = 12  # room for the watcher's two polls (2 s apart) and two CLI runs, on a loaded machine


@pytest.fixture(scope="module")
def data_host(tmp_path_factory: pytest.TempPathFactory):
    settings = {
        "MLOPS_DATA_DEBOUNCE_SECONDS": str(DEBOUNCE_S),
        "MLOPS_RECONCILE_SCHEDULE": "*/2 * * * * *",  # the window's work item is run by the reconcile pass
        "MLOPS_GATE_POLICY": '{"mode": "non_inferiority", "margin": 50}',
    }
    with running_host(tmp_path_factory.mktemp("mlops-data-home"), settings) as client:
        yield client


def diabetes_csv(path: Path, rows: int) -> Path:
    from sklearn.datasets import load_diabetes

    load_diabetes(as_frame=True).frame.head(rows).to_csv(path, index=False)
    return path


def trigger_data(host: RunningHost, file: Path) -> str:
    env = {**os.environ, "MLOPS_HOST_URL": host.base_url, "MLOPS_HOME": str(host.home), "COLUMNS": "200",
           "MLOPS_DATA_DEBOUNCE_SECONDS": str(DEBOUNCE_S)}  # fmt: skip
    done = subprocess.run([sys.executable, "-m", "devhost", "trigger", "data", str(file)],
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def data_releases(host: RunningHost) -> list[dict]:
    return [r for r in host.releases(limit=100) if r["id"].startswith("rel-data-")]


def test_three_files_in_one_window_start_one_release_on_the_newest(data_host: RunningHost, tmp_path: Path):
    watched = data_host.home / "training-data"
    diabetes_csv(watched / "dropped.csv", 400)  # by hand, as a user would: the watcher sends it
    deadline = time.monotonic() + 30
    while not data_releases(data_host):
        assert time.monotonic() < deadline, "the watched folder's file opened no window"
        time.sleep(0.3)
    [opened] = data_releases(data_host)
    assert opened["state"] == "collecting"

    out = trigger_data(data_host, diabetes_csv(tmp_path / "second.csv", 420))
    assert "delivered as event" in out and f"within {DEBOUNCE_S} s" in out
    trigger_data(data_host, diabetes_csv(tmp_path / "newest.csv", 430))

    release = wait_for_state(data_host, opened["id"], {"awaiting_approval", "rejected", "failed"}, timeout_s=240)
    assert [r["id"] for r in data_releases(data_host)] == [opened["id"]]
    trigger = release["trigger"]
    assert trigger["kind"] == "data" and trigger["blob_count"] == 3
    assert sorted(b["name"] for b in trigger["blobs"]) == ["dropped.csv", "newest.csv", "second.csv"]
    assert trigger["trainingData"].startswith("file://") and trigger["trainingData"].endswith("/newest.csv")
    assert release["state"] == "awaiting_approval", release.get("error")
    checks = release["data_checks"]
    assert checks["n_rows"] == 430 and checks["data"].endswith("newest.csv")  # the built-in set has 442 rows
