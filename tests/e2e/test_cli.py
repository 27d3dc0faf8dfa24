"""The `mlops` commands against the running host, as a user types them."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from devhost.settings import REPO_ROOT
from tests.e2e.conftest import wait_for_state

pytestmark = pytest.mark.e2e


def mlops(host, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MLOPS_HOST_URL": host.base_url, "MLOPS_HOME": str(host.home), "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "devhost", *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300
    )


def test_trigger_list_show_and_reject(host):
    triggered = mlops(host, "trigger", "build", "--commit", "abc123", "--param", "alpha=0.3")
    assert triggered.returncode == 0, triggered.stderr
    release_id = triggered.stdout.split("release")[-1].strip()
    assert release_id.startswith("rel-local-")
    waiting = wait_for_state(host, release_id, {"awaiting_approval", "rejected", "failed"})

    listing = json.loads(mlops(host, "releases", "--json").stdout)
    mine = next(r for r in listing if r["id"] == release_id)
    assert mine["trigger"]["sourceVersion"] == "abc123" and mine["params"] == {"alpha": 0.3}
    shown = mlops(host, "show", release_id)
    assert shown.returncode == 0 and "training_submitted" in shown.stdout and release_id in shown.stdout

    assert waiting["state"] == "awaiting_approval", waiting
    no_comment = mlops(host, "reject", release_id, "--by", "carol")
    assert no_comment.returncode == 2  # argparse: --comment is required
    rejected = mlops(host, "reject", release_id, "--by", "carol", "--comment", "not now")
    assert rejected.returncode == 0 and "declined" in rejected.stdout
    assert host.release(release_id)["state"] == "declined"


def test_errors_from_the_host_are_one_line_with_exit_1(host):
    result = mlops(host, "approve", "rel-missing", "--by", "bob")
    assert result.returncode == 1 and "404" in result.stdout and "rel-missing" in result.stdout


def test_dead_letters_json(host):
    result = mlops(host, "dead-letters", "--json")
    assert result.returncode == 0 and isinstance(json.loads(result.stdout), list)


def test_no_host_is_a_clear_error(tmp_path):
    env = {**os.environ, "MLOPS_HOST_URL": "http://127.0.0.1:9", "MLOPS_HOME": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "devhost", "releases"], cwd=REPO_ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 1 and "start it with `mlops up`" in result.stdout
