"""The build webhooks and `mlops publish build-completed --to-host` against a real `mlops up`.

This module starts its own host (like tests/e2e/conftest.py's `host`) because the hooks need their
secrets in the host's environment: MLOPS_GITHUB_WEBHOOK_SECRET, MLOPS_HOOK_USER, MLOPS_HOOK_SECRET,
MLOPS_GENERIC_WEBHOOK_SECRET.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import pytest
import requests

from devhost.client import HostClient
from devhost.settings import REPO_ROOT
from functions.domain.ids import release_id_for_build
from functions.domain.release import AT_REST
from functions.entrypoints.hooks.github import github_signature
from tests.e2e.conftest import RunningHost, running_host, wait_for_state

pytestmark = pytest.mark.e2e

GITHUB_SECRET = "e2e-github-webhook-secret"
ADO_USER = "azure-devops"
ADO_SECRET = "e2e-ado-hook-secret"
GENERIC_SECRET = "e2e-generic-webhook-secret"
AT_REST_STATES = {state.value for state in AT_REST}


@pytest.fixture(scope="module")
def hooks_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHost]:
    secrets = {
        "MLOPS_GITHUB_WEBHOOK_SECRET": GITHUB_SECRET,
        "MLOPS_HOOK_USER": ADO_USER,
        "MLOPS_HOOK_SECRET": ADO_SECRET,
        "MLOPS_GENERIC_WEBHOOK_SECRET": GENERIC_SECRET,
    }
    with running_host(tmp_path_factory.mktemp("mlops-hooks-home"), secrets) as client:
        yield client
        for release_id in client.started:  # let each release come to rest before stopping everything
            wait_for_state(client, release_id, AT_REST_STATES, timeout_s=180)


def workflow_run(run_id: int, conclusion: str = "success") -> dict:
    return {
        "action": "completed",
        "workflow_run": {
            "id": run_id,
            "name": "CI",
            "path": ".github/workflows/ci.yml",
            "run_number": 7,
            "status": "completed",
            "conclusion": conclusion,
            "head_branch": "main",
            "head_sha": "0123456789abcdef0123456789abcdef01234567",
            "actor": {"login": "octocat"},
        },
        "repository": {"full_name": "octo-org/diabetes-model"},
        "sender": {"login": "octocat"},
    }


def post_github(host: HostClient, payload: dict, delivery: str, signature: str | None = None) -> requests.Response:
    body = json.dumps(payload).encode()
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": "workflow_run",
        "X-GitHub-Delivery": delivery,
        "X-Hub-Signature-256": signature or github_signature(GITHUB_SECRET, body),
    }
    return requests.post(f"{host.base_url}/api/hooks/github", data=body, headers=headers, timeout=60)


def release_exists(host: HostClient, release_id: str) -> bool:
    return requests.get(f"{host.base_url}/api/releases/{release_id}", timeout=30).status_code == 200


def test_a_signed_github_delivery_starts_a_release_once(hooks_host):
    run_id = int(time.time() * 1000)
    delivery = str(uuid.uuid4())
    response = post_github(hooks_host, workflow_run(run_id), delivery)
    assert response.status_code == 202, response.text
    body = response.json()
    assert body == {
        "outcome": "handled",
        "eventId": f"github-{delivery}",
        "releaseId": release_id_for_build(str(run_id), "github"),
    }
    hooks_host.started.append(body["releaseId"])
    trigger = hooks_host.release(body["releaseId"])["trigger"]
    assert trigger["buildId"] == str(run_id) and trigger["repository"] == "octo-org/diabetes-model"
    assert trigger["sourceVersion"] == "0123456789abcdef0123456789abcdef01234567"

    replay = post_github(hooks_host, workflow_run(run_id), delivery)
    assert replay.status_code == 202 and replay.json()["outcome"] == "duplicate"


def test_a_bad_signature_is_401_and_starts_nothing(hooks_host):
    run_id = int(time.time() * 1000) + 1
    letters_before = len(hooks_host.dead_letters())
    response = post_github(hooks_host, workflow_run(run_id), str(uuid.uuid4()), signature="sha256=" + "0" * 64)
    assert response.status_code == 401 and "error" in response.json()
    assert not release_exists(hooks_host, release_id_for_build(str(run_id), "github"))
    assert len(hooks_host.dead_letters()) == letters_before


def test_azure_devops_hook_checks_basic_auth(hooks_host):
    payload = {
        "subscriptionId": str(uuid.uuid4()),
        "notificationId": 1,
        "eventType": "build.complete",
        "resource": {"id": int(time.time()), "buildNumber": "20261126.9", "status": "completed", "result": "failed"},
    }
    url = f"{hooks_host.base_url}/api/hooks/azure-devops"
    wrong = requests.post(url, json=payload, auth=(ADO_USER, "wrong"), timeout=60)
    assert wrong.status_code == 401 and wrong.headers["WWW-Authenticate"].startswith("Basic")
    right = requests.post(url, json=payload, auth=(ADO_USER, ADO_SECRET), timeout=60)
    assert right.status_code == 202 and right.json()["outcome"] == "ignored"  # a failed build starts nothing
    token = base64.b64encode(f"{ADO_USER}:{ADO_SECRET}".encode()).decode()
    assert requests.post(url, data=b"{", headers={"Authorization": f"Basic {token}"}, timeout=60).status_code == 400


def test_publish_build_completed_to_a_local_host(hooks_host):
    build_id = f"cli-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "MLOPS_HOME": str(hooks_host.home), "COLUMNS": "200"}
    from devhost.commands_builds import CI_SYSTEMS

    for name in (
        "AGENT_JOBSTATUS",
        "EVENTGRID_TOPIC_ENDPOINT",
        *(n for ci in CI_SYSTEMS for n in (*ci.markers, *ci.build_id)),
    ):
        env.pop(name, None)
    done = subprocess.run(
        [sys.executable, "-m", "devhost", "publish", "build-completed", "--build-id", build_id, "--result",
         "succeeded", "--commit", "abc123", "--param", "alpha=0.3", "--to-host", hooks_host.base_url],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    release_id = release_id_for_build(build_id)
    assert f"release {release_id}" in done.stdout
    hooks_host.started.append(release_id)
    release = hooks_host.release(release_id)
    assert release["trigger"]["sourceVersion"] == "abc123" and release["params"] == {"alpha": 0.3}


# ---- the generic hook, sent by the snippets in pipelines/ (their own shell, openssl and curl) --------
SHA = "0123456789abcdef0123456789abcdef01234567"
SNIPPETS = {
    "jenkins": ("pipelines/jenkins/Jenkinsfile", {"JOB_NAME": "diabetes-train", "BUILD_NUMBER": "{n}",
                "GIT_COMMIT": SHA, "GIT_BRANCH": "origin/main", "GIT_URL": "https://git.example/diabetes.git",
                "BUILD_USER_EMAIL": "jenkins-user@example.com", "MLOPS_RESULT": "SUCCESS"}),
    "gitlab": ("pipelines/gitlab/.gitlab-ci.yml", {"CI_PIPELINE_ID": "{n}", "CI_PIPELINE_IID": "12",
               "CI_COMMIT_SHA": SHA, "CI_COMMIT_REF_NAME": "main", "CI_PROJECT_PATH": "org/diabetes",
               "GITLAB_USER_EMAIL": "gitlab-user@example.com", "MLOPS_RESULT": "success"}),
    "travis": ("pipelines/travis/.travis.yml", {"TRAVIS_BUILD_ID": "{n}", "TRAVIS_BUILD_NUMBER": "9",
               "TRAVIS_TEST_RESULT": "0", "TRAVIS_COMMIT": SHA, "TRAVIS_BRANCH": "main",
               "TRAVIS_REPO_SLUG": "org/diabetes", "TRAVIS_PULL_REQUEST": "false"}),
}  # fmt: skip


def snippet(path: str) -> str:
    """The shell between the `# mlops-notify: begin` and `end` markers, as the CI system runs it."""
    import textwrap

    text = (REPO_ROOT / path).read_text()
    start, end = text.index("# mlops-notify: begin"), text.index("# mlops-notify: end")
    line_start = text.rindex("\n", 0, start) + 1
    return textwrap.dedent(text[line_start:end])


@pytest.mark.parametrize("system", sorted(SNIPPETS))
def test_each_ci_snippet_signs_with_openssl_and_starts_a_release(hooks_host, system):
    path, variables = SNIPPETS[system]
    number = str(int(time.time() * 1000) % 10**9)
    env = {"PATH": os.environ["PATH"], "MLOPS_URL": hooks_host.base_url, "MLOPS_WEBHOOK_SECRET": GENERIC_SECRET}
    env |= {name: value.replace("{n}", number) for name, value in variables.items()}
    done = subprocess.run(["sh", "-ec", snippet(path)], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    answer = json.loads(done.stdout)
    build = f"diabetes-train-{number}" if system == "jenkins" else number
    assert answer["outcome"] == "handled" and answer["releaseId"] == release_id_for_build(build, system)
    hooks_host.started.append(answer["releaseId"])
    trigger = hooks_host.release(answer["releaseId"])["trigger"]
    assert trigger["buildSystem"] == system and trigger["sourceVersion"] == SHA
    assert trigger["sourceBranch"] == "refs/heads/main"
    # The step run again (same build, same result): the same delivery, a duplicate.
    again = subprocess.run(["sh", "-ec", snippet(path)], env=env, capture_output=True, text=True, timeout=60)
    assert json.loads(again.stdout)["outcome"] == "duplicate"
    # Another secret: 401, and curl -f fails the step.
    wrong = subprocess.run(["sh", "-ec", snippet(path)], env=env | {"MLOPS_WEBHOOK_SECRET": "not-it"},
                           capture_output=True, text=True, timeout=60)  # fmt: skip
    assert wrong.returncode != 0 and "401" in wrong.stderr
