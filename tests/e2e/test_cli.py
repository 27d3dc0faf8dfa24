"""The `mlops` commands against the running host, as a user types them.

Every decision is signed as --by with the key in the host's $MLOPS_HOME (the environment `mlops` gets),
and the builds carry --requester, so the approval policy's self-approval rule can be seen at work.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from devhost.settings import REPO_ROOT
from tests.e2e.conftest import APPROVER, REQUESTER, wait_for_state

pytestmark = pytest.mark.e2e


def mlops(host, *args: str, home: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MLOPS_HOST_URL": host.base_url, "MLOPS_HOME": home or str(host.home), "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "devhost", *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300
    )


def triggered_release(host, *args: str) -> str:
    triggered = mlops(host, "trigger", "build", *args)
    assert triggered.returncode == 0, triggered.stdout + triggered.stderr
    release_id = triggered.stdout.split("release")[-1].strip()
    assert release_id.startswith("rel-cli-local-")
    return release_id


def test_trigger_list_show_and_reject(host):
    triggered = mlops(host, "trigger", "build", "--commit", "abc123", "--param", "alpha=0.3", "--requester", REQUESTER)
    assert triggered.returncode == 0, triggered.stderr
    release_id = triggered.stdout.split("release")[-1].strip()
    assert release_id.startswith("rel-cli-local-")
    waiting = wait_for_state(host, release_id, {"awaiting_approval", "rejected", "failed"})

    listing = json.loads(mlops(host, "releases", "--json").stdout)
    mine = next(r for r in listing if r["id"] == release_id)
    assert mine["trigger"]["sourceVersion"] == "abc123" and mine["params"] == {"alpha": 0.3}
    assert mine["trigger"]["requester"] == REQUESTER
    shown = mlops(host, "show", release_id)
    assert shown.returncode == 0 and "training_submitted" in shown.stdout and release_id in shown.stdout

    assert waiting["state"] == "awaiting_approval", waiting
    no_comment = mlops(host, "reject", release_id, "--by", "carol@example.com")
    assert no_comment.returncode == 2  # argparse: --comment is required
    rejected = mlops(host, "reject", release_id, "--by", "carol@example.com", "--comment", "not now")
    assert rejected.returncode == 0 and "declined" in rejected.stdout
    declined = host.release(release_id)
    assert declined["state"] == "declined" and declined["approval"]["by"] == "carol@example.com"


def test_the_requester_may_not_approve_their_own_build_someone_else_may(host):
    release_id = triggered_release(host, "--commit", "def456", "--requester", "alice@example.com")
    waiting = wait_for_state(host, release_id, {"awaiting_approval", "rejected", "failed"})
    assert waiting["state"] == "awaiting_approval", waiting

    own = mlops(host, "approve", release_id, "--by", "ALICE@example.com", "--comment", "mine")
    assert own.returncode == 1 and "403" in own.stdout and "self-approval" in own.stdout, own.stdout
    assert host.release(release_id)["state"] == "awaiting_approval"

    other = mlops(host, "approve", release_id, "--by", APPROVER, "--comment", "reviewed")
    assert other.returncode == 0 and "live" in other.stdout, other.stdout + other.stderr  # it follows the promotion
    assert "production_direct_passed" in other.stdout
    live = host.release(release_id)
    assert live["state"] == "live" and live["approval"]["by"] == APPROVER


def test_a_signature_from_another_mlops_home_is_401(host, tmp_path):
    result = mlops(host, "approve", "rel-missing", "--by", APPROVER, home=str(tmp_path))
    assert result.returncode == 1 and "401" in result.stdout and "MLOPS_HOME" in result.stdout, result.stdout


def test_a_bogus_link_is_401(host):
    result = mlops(host, "reject", "rel-missing", "--link", "not-a-real-token", "--comment", "no")
    assert result.returncode == 1 and "401" in result.stdout, result.stdout


def test_errors_from_the_host_are_one_line_with_exit_1(host):
    result = mlops(host, "approve", "rel-missing", "--by", "bob@example.com")
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
