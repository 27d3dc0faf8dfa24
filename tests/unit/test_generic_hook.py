"""POST /api/hooks/generic (signed, time-windowed, delivery id = event id) and release identity per CI system."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from functions import bootstrap
from functions.domain.ids import legacy_release_id, release_id_for_build
from functions.domain.release import Release
from functions.entrypoints.hooks import generic
from functions.links import Links
from functions.service.orchestrator import Orchestrator
from tests.doubles.ports import Calls, fake_ports
from tests.unit.test_hooks import ado_post, answer, build_complete, github_post, request, workflow_run

SECRET = "generic-webhook-secret-0123456789"
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
SHA = "3f2a9c1d0e4b5a6978877665544332211aabbccd"


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch):
    calls = Calls()
    ports = fake_ports(calls)
    orchestrator = Orchestrator(ports, links=Links(), clock=lambda: NOW)
    monkeypatch.setattr(bootstrap, "context", lambda: orchestrator.ctx)
    monkeypatch.setenv("MLOPS_GENERIC_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("MLOPS_GITHUB_WEBHOOK_SECRET", "gh-webhook-secret-0123456789")
    monkeypatch.setenv("MLOPS_HOOK_USER", "azure-devops")
    monkeypatch.setenv("MLOPS_HOOK_SECRET", "ado-hook-secret-9876543210")
    monkeypatch.delenv("MLOPS_GITHUB_WORKFLOWS", raising=False)
    return ports.store, calls


def jenkins_body(**changes: Any) -> dict[str, Any]:
    body = {"system": "jenkins", "buildId": "train-777", "buildNumber": "777", "result": "SUCCESS", "commit": SHA,
            "branch": "main", "repository": "org/diabetes", "requestedBy": "alice@example.com",
            "parameters": {"alpha": 0.3}}  # fmt: skip
    body.update(changes)
    return {key: value for key, value in body.items() if value is not None}


def post(body: Any, *, at: datetime = NOW, delivery: str = "jenkins-train-777", secret: str = SECRET,
         signature: str | None = None, raw: bytes | None = None):  # fmt: skip
    data = raw if raw is not None else json.dumps(body).encode()
    timestamp = str(int(at.timestamp()))
    headers = {
        "Content-Type": "application/json",
        "X-MLOps-Timestamp": timestamp,
        "X-MLOps-Signature": signature or generic.generic_signature(secret, timestamp, data),
        "X-MLOps-Delivery": delivery,
    }
    return generic.generic(request("generic", data, headers))


def test_a_jenkins_style_signed_request_starts_a_release(world):
    store, calls = world
    response = post(jenkins_body())
    assert response.status_code == 202, response.get_body()
    assert answer(response) == {
        "outcome": "handled",
        "eventId": "generic-jenkins-train-777",
        "releaseId": "rel-jenkins-train-777",
    }
    release = store.get("rel-jenkins-train-777")
    assert release.trigger["buildSystem"] == "jenkins" and release.trigger["result"] == "succeeded"
    assert release.trigger["sourceBranch"] == "refs/heads/main" and release.trigger["sourceVersion"] == SHA
    assert release.trigger["requestedFor"] == "alice@example.com" and release.params == {"alpha": 0.3}
    assert any(call[0] == "submit" for call in calls.log)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"signature": "sha256=" + "0" * 64}, "bad or missing X-MLOps-Signature"),
        ({"secret": "another-secret"}, "bad or missing X-MLOps-Signature"),
        ({"at": NOW - timedelta(seconds=301)}, "301 s old, outside the 300 s window"),
        ({"at": NOW + timedelta(seconds=400)}, "400 s in the future"),
    ],
)
def test_a_wrong_signature_or_a_stale_timestamp_is_401_and_records_nothing(world, change, message):
    store, calls = world
    response = post(jenkins_body(), **change)
    assert response.status_code == 401 and message in answer(response)["error"]
    assert store.releases == {} and calls.log == []


def test_the_signature_covers_the_timestamp(world):
    """A captured request replayed with a fresh timestamp does not verify: the old signature signed the old time."""
    data = json.dumps(jenkins_body()).encode()
    old = str(int((NOW - timedelta(hours=1)).timestamp()))
    headers = {"X-MLOps-Timestamp": str(int(NOW.timestamp())), "X-MLOps-Delivery": "d1",
               "X-MLOps-Signature": generic.generic_signature(SECRET, old, data)}  # fmt: skip
    assert generic.generic(request("generic", data, headers)).status_code == 401


@pytest.mark.parametrize("timestamp", ["", "12.5", "-1", "1e9", "٣٣٣", "9" * 13])
def test_a_missing_or_malformed_timestamp_is_401(world, timestamp):
    data = json.dumps(jenkins_body()).encode()
    headers = {"X-MLOps-Timestamp": timestamp, "X-MLOps-Delivery": "d1",
               "X-MLOps-Signature": generic.generic_signature(SECRET, timestamp, data)}  # fmt: skip
    response = generic.generic(request("generic", data, headers))
    assert response.status_code == 401 and "X-MLOps-Timestamp" in answer(response)["error"]


def test_a_replayed_delivery_is_a_duplicate(world):
    store, _ = world
    assert answer(post(jenkins_body()))["outcome"] == "handled"
    again = post(jenkins_body(), at=NOW + timedelta(seconds=30))
    assert again.status_code == 202 and answer(again)["outcome"] == "duplicate"
    # Under another delivery id the signed body still names the same build: the same release, recorded stale.
    relabelled = post(jenkins_body(), delivery="forged-id")
    assert answer(relabelled)["outcome"] == "stale"
    assert list(store.releases) == ["rel-jenkins-train-777"]


def test_the_hook_is_503_until_configured_and_413_for_a_large_body(world, monkeypatch):
    assert post(jenkins_body(), raw=b"x" * (2 * 1024 * 1024 + 1)).status_code == 413
    monkeypatch.delenv("MLOPS_GENERIC_WEBHOOK_SECRET")
    response = post(jenkins_body())
    assert response.status_code == 503 and "MLOPS_GENERIC_WEBHOOK_SECRET" in answer(response)["error"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([1, 2], "body must be a JSON object"),
        (jenkins_body(paramters={"alpha": 1}), "unknown field 'paramters'"),
        (jenkins_body(buildId=None), "no buildId"),
        (jenkins_body(result="green"), "result 'green' is not a build result"),
        (jenkins_body(system="ado"), "has its own way in (/api/hooks/azure-devops)"),
        (jenkins_body(system="schedule"), "reserved"),
        (jenkins_body(system="Jenkins CI"), "lower-case letters or digits"),
        (jenkins_body(parameters=[1]), "parameters must be a JSON object"),
        (jenkins_body(branch={"name": "main"}), "branch must be a string"),
    ],
)
def test_a_malformed_signed_body_is_400_naming_the_problem(world, body, message):
    store, _ = world
    response = post(body)
    assert response.status_code == 400 and message in answer(response)["error"]
    assert store.releases == {}


def test_a_missing_delivery_id_is_400(world):
    response = post(jenkins_body(), delivery="")
    assert response.status_code == 400 and "X-MLOps-Delivery" in answer(response)["error"]


@pytest.mark.parametrize(("word", "outcome"), [("FAILURE", "ignored"), ("ABORTED", "ignored"), ("UNSTABLE", "handled")])
def test_the_ci_systems_own_result_words_are_understood(world, word, outcome):
    assert answer(post(jenkins_body(result=word)))["outcome"] == outcome


def test_a_build_that_was_not_built_starts_nothing(world):
    response = post(jenkins_body(result="NOT_BUILT"))
    assert response.status_code == 202 and answer(response) == {
        "outcome": "ignored",
        "reason": "build train-777 was not built (NOT_BUILT)",
    }


def test_without_a_system_the_build_is_generic(world):
    assert answer(post(jenkins_body(system=None)))["releaseId"] == "rel-generic-train-777"


def test_the_requester_counts_only_when_the_app_trusts_the_generic_hook(world):
    """On Azure (trust_published_requester False) the CI job's own script names the requester: kept for
    reading, compared only with MLOPS_GENERIC_WEBHOOK_TRUST_REQUESTER."""
    store, _ = world
    ctx = bootstrap.context()
    ctx.trust_published_requester = False
    post(jenkins_body())
    assert store.get("rel-jenkins-train-777").trigger["requesterVerified"] is False
    ctx.trust_generic_requester = True
    post(jenkins_body(buildId="train-778"), delivery="d-778")
    trigger = store.get("rel-jenkins-train-778").trigger
    assert "requesterVerified" not in trigger and trigger["requester"] == "alice@example.com"


# ---- release identity per CI system ----------------------------------------------------------
def test_azure_devops_build_777_and_github_run_777_are_two_releases(world):
    store, _ = world
    ado = answer(ado_post(build_complete(build_id=777)))
    gh = answer(github_post(workflow_run(run_id=777)))
    jenkins = answer(post(jenkins_body(buildId="777")))
    assert (ado["releaseId"], gh["releaseId"], jenkins["releaseId"]) == (
        "rel-ado-777",
        "rel-github-777",
        "rel-jenkins-777",
    )
    assert {ado["outcome"], gh["outcome"], jenkins["outcome"]} == {"handled"}
    assert sorted(store.releases) == ["rel-ado-777", "rel-github-777", "rel-jenkins-777"]
    # The same build of the same system stays one release: another notification for ADO build 777 is stale.
    assert answer(ado_post(build_complete(build_id=777, notification=4)))["outcome"] == "stale"


def legacy_release(store, build_id: str, system: str | None = None) -> Release:
    """A release as a store made before build systems were part of release ids."""
    trigger: dict[str, Any] = {"kind": "build", "buildId": build_id, "result": "succeeded"}
    if system:
        trigger["buildSystem"] = system
    release = Release.create(legacy_release_id(build_id), trigger, {}, NOW)
    release.mark_handled("ado-sub-1")
    assert store.create(release)
    return release


def test_a_build_whose_release_predates_build_systems_keeps_that_release(world):
    store, _ = world
    legacy_release(store, "777")
    outcome = answer(ado_post(build_complete(build_id=777)))
    assert outcome["releaseId"] == "rel-777" and outcome["outcome"] == "stale"
    assert sorted(store.releases) == ["rel-777"]


def test_a_migrated_legacy_release_is_kept_only_by_its_own_system(world):
    store, _ = world
    legacy_release(store, "777", system="ado")
    assert answer(github_post(workflow_run(run_id=777)))["releaseId"] == "rel-github-777"
    assert answer(ado_post(build_complete(build_id=777)))["releaseId"] == "rel-777"
    assert sorted(store.releases) == ["rel-777", "rel-github-777"]


def test_release_ids_name_the_system_and_stay_safe():
    assert release_id_for_build("777", "ado") == "rel-ado-777"
    made = release_id_for_build("folder/train job#5", "jenkins")
    assert made.startswith("rel-jenkins-folder-train-job-5-") and len(made) <= 48
    with pytest.raises(ValueError, match="reserved"):
        release_id_for_build("1", "data")


def test_the_pipeline_snippets_are_valid_yaml_whose_script_holds_the_signed_send():
    import yaml

    from devhost.settings import REPO_ROOT

    gitlab = yaml.safe_load((REPO_ROOT / "pipelines/gitlab/.gitlab-ci.yml").read_text())
    assert gitlab["notify-mlops-success"]["when"] == "on_success" and gitlab[".mlops-notify"]["stage"] == ".post"
    travis = yaml.safe_load((REPO_ROOT / "pipelines/travis/.travis.yml").read_text())
    for script in (gitlab[".mlops-notify"]["script"][0], travis["after_script"][0]):
        assert "openssl dgst -sha256 -hmac" in script and "/api/hooks/generic" in script
    jenkinsfile = (REPO_ROOT / "pipelines/jenkins/Jenkinsfile").read_text()
    assert "post {" in jenkinsfile and "withCredentials" in jenkinsfile and "\\" not in jenkinsfile
