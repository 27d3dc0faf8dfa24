"""functions.entrypoints.hooks: Azure DevOps and GitHub build webhooks -> MLOps.BuildCompleted -> the orchestrator."""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import urlencode

import azure.functions as func
import pytest

from functions import bootstrap
from functions.domain.events import BuildCompleted, parse_event
from functions.domain.ids import release_id_for_build
from functions.entrypoints.hooks import azure_devops, github
from functions.entrypoints.limits import DEFAULT_LIMITS
from functions.links import Links
from functions.service.orchestrator import Orchestrator
from functions.settings import HookSecrets, Settings
from tests.doubles.ports import Calls, InMemoryReleaseStore, fake_ports

GITHUB_SECRET = "gh-webhook-secret-0123456789"
ADO_USER = "azure-devops"
ADO_SECRET = "ado-hook-secret-9876543210"
SHA = "3f2a9c1d0e4b5a6978877665544332211aabbccd"
DELIVERY = "72d3162e-cc78-11e3-81ab-4c9367dc0958"


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch):
    """An in-memory orchestrator behind the hooks, and the hook secrets configured."""
    calls = Calls()
    ports = fake_ports(calls)
    store = ports.store
    orchestrator = Orchestrator(ports, links=Links())
    monkeypatch.setattr(bootstrap, "context", lambda: orchestrator.ctx)
    monkeypatch.setenv("MLOPS_GITHUB_WEBHOOK_SECRET", GITHUB_SECRET)
    monkeypatch.setenv("MLOPS_HOOK_USER", ADO_USER)
    monkeypatch.setenv("MLOPS_HOOK_SECRET", ADO_SECRET)
    monkeypatch.delenv("MLOPS_GITHUB_WORKFLOWS", raising=False)
    return store, calls


def nothing_recorded(store: InMemoryReleaseStore, calls: Calls) -> bool:
    return store.releases == {} and store.letters == [] and store.parked_events == [] and calls.log == []


def request(route: str, body: bytes, headers: dict[str, str]) -> func.HttpRequest:
    return func.HttpRequest("POST", f"http://127.0.0.1:7071/api/hooks/{route}", headers=headers, body=body)


def answer(response: func.HttpResponse) -> dict[str, Any]:
    assert response.mimetype == "application/json"
    return json.loads(response.get_body())


# ---- GitHub -------------------------------------------------------------------------------
def workflow_run(action: str = "completed", conclusion: str | None = "success", run_id: int = 30433642) -> dict:
    """A workflow_run delivery as GitHub sends it (trimmed to the fields that matter here and a few more)."""
    status = "completed" if action == "completed" else action
    return {
        "action": action,
        "workflow_run": {
            "id": run_id,
            "name": "CI",
            "path": ".github/workflows/ci.yml",
            "run_number": 562,
            "run_attempt": 1,
            "event": "push",
            "status": status,
            "conclusion": conclusion if action == "completed" else None,
            "head_branch": "main",
            "head_sha": SHA,
            "updated_at": "2026-11-26T12:00:00Z",
            "actor": {"login": "octocat", "id": 1},
            "triggering_actor": {"login": "octocat", "id": 1},
            "repository": {"id": 1296269, "full_name": "octo-org/diabetes-model"},
        },
        "workflow": {"id": 159038, "name": "CI", "path": ".github/workflows/ci.yml"},
        "repository": {"id": 1296269, "name": "diabetes-model", "full_name": "octo-org/diabetes-model"},
        "sender": {"login": "octocat", "id": 1},
    }


def github_headers(body: bytes, *, event: str = "workflow_run", delivery: str = DELIVERY, secret: str = GITHUB_SECRET):
    return {
        "Content-Type": "application/json",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery,
        "X-Hub-Signature-256": github.github_signature(secret, body),
        "User-Agent": "GitHub-Hookshot/044aadd",
    }


def github_post(payload: Any, **header_options: Any) -> func.HttpResponse:
    body = json.dumps(payload).encode()
    return github.github(request("github", body, github_headers(body, **header_options)))


def test_signed_completed_success_starts_a_release(world):
    store, calls = world
    response = github_post(workflow_run())
    assert response.status_code == 202
    assert answer(response) == {
        "outcome": "handled",
        "eventId": f"github-{DELIVERY}",
        "releaseId": release_id_for_build("30433642", "github"),
    }
    release = store.get(release_id_for_build("30433642", "github"))
    assert release is not None and calls.count("submit") == 1
    assert release.trigger == {
        "kind": "build",
        "buildSystem": "github",
        "buildId": "30433642",
        "buildNumber": "562",
        "result": "succeeded",
        "sourceVersion": SHA,
        "sourceBranch": "refs/heads/main",
        "repository": "octo-org/diabetes-model",
        "requestedFor": "octocat",
        "parameters": {},
    }


@pytest.mark.parametrize(
    "signature",
    [
        None,  # missing
        "",
        "sha256=" + "0" * 64,  # well-formed, wrong
        "sha1=" + "0" * 40,  # the legacy header's format
        "not a signature at all é",  # non-ASCII must not crash compare_digest
    ],
)
def test_missing_or_bad_signature_is_401_and_records_nothing(world, signature):
    store, calls = world
    body = json.dumps(workflow_run()).encode()
    headers = github_headers(body)
    if signature is None:
        del headers["X-Hub-Signature-256"]
    else:
        headers["X-Hub-Signature-256"] = signature
    response = github.github(request("github", body, headers))
    assert response.status_code == 401
    assert "X-Hub-Signature-256" in answer(response)["error"]
    assert nothing_recorded(store, calls)


def test_signature_of_another_body_or_secret_is_401(world):
    store, calls = world
    body = json.dumps(workflow_run()).encode()
    tampered = body.replace(b'"success"', b'"failure"')
    assert github.github(request("github", tampered, github_headers(body))).status_code == 401
    wrong_secret = github_headers(body, secret="someone-elses-secret")
    assert github.github(request("github", body, wrong_secret)).status_code == 401
    assert nothing_recorded(store, calls)


def test_replayed_delivery_is_a_duplicate_for_the_orchestrator(world):
    store, calls = world
    first = answer(github_post(workflow_run()))
    replay = github_post(workflow_run())  # same body, same signature, same X-GitHub-Delivery
    assert replay.status_code == 202
    assert answer(replay) == {**first, "outcome": "duplicate"}
    release = store.get(first["releaseId"])
    assert calls.count("submit") == 1 and release.has_handled(f"github-{DELIVERY}")
    assert [e["step"] for e in release.timeline].count("duplicate_event") == 1


def test_replay_under_a_forged_delivery_id_still_maps_to_the_same_release(world):
    """The delivery header is not signed: a replay with a new id is a stale event for the same build."""
    store, calls = world
    first = answer(github_post(workflow_run()))
    forged = answer(github_post(workflow_run(), delivery="11111111-2222-3333-4444-555555555555"))
    assert forged["outcome"] == "stale" and forged["releaseId"] == first["releaseId"]
    assert len(store.releases) == 1 and calls.count("submit") == 1


@pytest.mark.parametrize(
    ("conclusion", "result"),
    [("failure", "failed"), ("cancelled", "canceled"), ("timed_out", "failed"), ("skipped", "none"), (None, "none")],
)
def test_completed_without_success_starts_nothing(world, conclusion, result):
    store, calls = world
    response = github_post(workflow_run(conclusion=conclusion))
    assert response.status_code == 202
    assert answer(response) == {
        "outcome": "ignored",
        "eventId": f"github-{DELIVERY}",
        "reason": f"build 30433642 result {result}: no release",
    }
    assert nothing_recorded(store, calls)


@pytest.mark.parametrize("action", ["requested", "in_progress"])
def test_runs_not_completed_are_ignored_before_the_orchestrator(world, action, monkeypatch):
    store, calls = world
    monkeypatch.setattr(bootstrap, "context", lambda: pytest.fail("the service must not be called"))
    response = github_post(workflow_run(action=action))
    assert response.status_code == 202
    assert answer(response)["outcome"] == "ignored" and action in answer(response)["reason"]
    assert nothing_recorded(store, calls)


def test_ping_answers_ok_and_other_events_are_ignored(world):
    store, calls = world
    ping = github_post({"zen": "Keep it logically awesome.", "hook_id": 1}, event="ping")
    assert ping.status_code == 200 and answer(ping) == {"ok": True}
    push = github_post({"ref": "refs/heads/main"}, event="push")
    assert push.status_code == 202 and answer(push)["outcome"] == "ignored"
    assert nothing_recorded(store, calls)


def test_ping_with_a_bad_signature_is_401(world):
    body = b'{"zen": "x"}'
    headers = {**github_headers(body, event="ping"), "X-Hub-Signature-256": "sha256=" + "1" * 64}
    assert github.github(request("github", body, headers)).status_code == 401


@pytest.mark.parametrize(
    ("body", "headers_change", "message"),
    [
        (b"{not json", {}, "body must be JSON"),
        (b"[1, 2]", {}, "JSON object"),
        (json.dumps({"action": "completed"}).encode(), {}, "no workflow_run object"),
        (json.dumps(workflow_run()).encode(), {"X-GitHub-Delivery": ""}, "X-GitHub-Delivery"),
        (json.dumps(workflow_run()).encode(), {"X-GitHub-Event": ""}, "X-GitHub-Event"),
        (json.dumps({**workflow_run(), "workflow_run": {"conclusion": "success"}}).encode(), {}, "workflow_run.id"),
    ],
)
def test_malformed_signed_deliveries_are_400_and_record_nothing(world, body, headers_change, message):
    store, calls = world
    headers = {**github_headers(body), **headers_change}
    response = github.github(request("github", body, headers))
    assert response.status_code == 400 and message in answer(response)["error"]
    assert nothing_recorded(store, calls)


def test_form_encoded_deliveries_are_understood(world):
    store, _ = world
    body = urlencode({"payload": json.dumps(workflow_run())}).encode()
    headers = {**github_headers(body), "Content-Type": "application/x-www-form-urlencoded"}
    response = github.github(request("github", body, headers))
    assert response.status_code == 202 and answer(response)["outcome"] == "handled"
    assert len(store.releases) == 1


def test_workflow_filter(world, monkeypatch):
    store, _ = world
    monkeypatch.setenv("MLOPS_GITHUB_WORKFLOWS", "release.yml, Nightly")
    ignored = answer(github_post(workflow_run()))
    assert ignored["outcome"] == "ignored" and "MLOPS_GITHUB_WORKFLOWS" in ignored["reason"]
    monkeypatch.setenv("MLOPS_GITHUB_WORKFLOWS", "ci.yml")
    assert answer(github_post(workflow_run()))["outcome"] == "handled"
    assert len(store.releases) == 1


def test_github_hook_without_a_secret_is_503_whatever_is_sent(world, monkeypatch):
    store, calls = world
    monkeypatch.delenv("MLOPS_GITHUB_WEBHOOK_SECRET")
    body = json.dumps(workflow_run()).encode()
    for secret in (GITHUB_SECRET, ""):
        response = github.github(request("github", body, github_headers(body, secret=secret)))
        assert response.status_code == 503
        assert answer(response)["error"].startswith("GitHub hook not configured")
    monkeypatch.setenv("MLOPS_GITHUB_WEBHOOK_SECRET", "   ")  # blank is not configured either
    assert github.github(request("github", body, github_headers(body))).status_code == 503
    assert nothing_recorded(store, calls)


def test_secret_is_read_per_request_so_rotation_needs_no_restart(world, monkeypatch):
    store, _ = world
    body = json.dumps(workflow_run()).encode()
    signed_with_old = github_headers(body)
    monkeypatch.setenv("MLOPS_GITHUB_WEBHOOK_SECRET", "rotated-secret-abcdef")
    assert github.github(request("github", body, signed_with_old)).status_code == 401
    signed_with_new = github_headers(body, secret="rotated-secret-abcdef")
    assert github.github(request("github", body, signed_with_new)).status_code == 202
    assert len(store.releases) == 1


def test_oversized_body_is_413(world):
    body = b" " * (DEFAULT_LIMITS.max_body_bytes + 1)
    assert github.github(request("github", body, github_headers(body))).status_code == 413


# ---- Azure DevOps -------------------------------------------------------------------------
def build_complete(result: str = "succeeded", build_id: int = 2727068, notification: int = 3) -> dict:
    """A build.complete service-hook payload (resourceVersion 2.0: the resource is the REST API's Build)."""
    return {
        "subscriptionId": "4f6e6328-0251-4814-a009-c01dfa368e3f",
        "notificationId": notification,
        "id": "33433986-7f56-4969-bfd4-3e59774c75ad",
        "eventType": "build.complete",
        "publisherId": "tfs",
        "message": {"text": f"Build 20261126.1 {result}"},
        "detailedMessage": {"text": f"Build 20261126.1 {result}"},
        "resource": {
            "id": build_id,
            "buildNumber": "20261126.1",
            "status": "completed",
            "result": result,
            "queueTime": "2026-11-26T11:52:00.1Z",
            "startTime": "2026-11-26T11:52:10.2Z",
            "finishTime": "2026-11-26T11:59:58.3Z",
            "url": f"https://dev.azure.com/fabrikam/6f6b7c4e/_apis/build/Builds/{build_id}",
            "definition": {"id": 12, "name": "diabetes-model-ci"},
            "project": {"id": "6f6b7c4e-0000-4000-8000-000000000001", "name": "ml"},
            "sourceBranch": "refs/heads/main",
            "sourceVersion": SHA,
            "reason": "individualCI",
            "repository": {"id": "8a6c2c3e-0000-4000-8000-000000000002", "type": "TfsGit", "name": "diabetes-model"},
            "requestedFor": {"displayName": "Alice Example", "uniqueName": "alice@example.com"},
            "requestedBy": {"displayName": "Microsoft.VisualStudio.Services.TFS", "uniqueName": "svc"},
        },
        "resourceVersion": "2.0",
        "resourceContainers": {"collection": {"id": "c12d0eb8-e382-443b-9f9c-c52cba5014c2"}},
        "createdDate": "2026-11-26T12:00:00.1234567Z",
    }


def basic(user: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()


def ado_post(payload: Any, headers: dict[str, str] | None = None) -> func.HttpResponse:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    if headers is None:
        headers = {"Authorization": basic(ADO_USER, ADO_SECRET)}
    return azure_devops.azure_devops(request("azure-devops", body, {"Content-Type": "application/json", **headers}))


@pytest.mark.parametrize("result", ["succeeded", "partiallySucceeded"])
def test_ado_successful_builds_start_a_release(world, result):
    store, calls = world
    response = ado_post(build_complete(result))
    assert response.status_code == 202
    release_id = release_id_for_build("2727068", "ado")
    assert answer(response) == {
        "outcome": "handled",
        "eventId": "ado-4f6e6328-0251-4814-a009-c01dfa368e3f-3",
        "releaseId": release_id,
    }
    assert store.get(release_id).trigger == {
        "kind": "build",
        "buildSystem": "ado",
        "buildId": "2727068",
        "buildNumber": "20261126.1",
        "result": result,
        "sourceVersion": SHA,
        "sourceBranch": "refs/heads/main",
        "repository": "diabetes-model",
        "requestedFor": "alice@example.com",
        "requester": "alice@example.com",
        "parameters": {},
    }
    assert calls.count("submit") == 1


@pytest.mark.parametrize("result", ["failed", "canceled"])
def test_ado_unsuccessful_builds_are_ignored(world, result):
    store, calls = world
    response = ado_post(build_complete(result))
    assert response.status_code == 202
    assert answer(response)["outcome"] == "ignored"
    assert answer(response)["reason"] == f"build 2727068 result {result}: no release"
    assert nothing_recorded(store, calls)


def test_ado_shared_secret_header_is_accepted(world):
    store, _ = world
    response = ado_post(build_complete(), {"X-MLOps-Secret": ADO_SECRET})
    assert response.status_code == 202 and len(store.releases) == 1


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": basic(ADO_USER, "wrong")},
        {"Authorization": basic("someone", ADO_SECRET)},
        {"Authorization": basic(ADO_USER, ADO_SECRET + "x")},
        {"Authorization": "Basic !!!not-base64!!!"},
        {"Authorization": "Basic " + base64.b64encode(ADO_SECRET.encode()).decode()},  # no ':'
        {"Authorization": f"Bearer {ADO_SECRET}"},
        {"X-MLOps-Secret": "wrong"},
        {"X-MLOps-Secret": ""},
        {"X-MLOps-Secret": "é" + ADO_SECRET},
    ],
)
def test_ado_missing_or_bad_credentials_are_401_and_record_nothing(world, headers):
    store, calls = world
    response = ado_post(build_complete(), headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic ")
    assert "authentication required" in answer(response)["error"]
    assert nothing_recorded(store, calls)


def test_ado_basic_auth_needs_the_user_setting(world, monkeypatch):
    monkeypatch.delenv("MLOPS_HOOK_USER")
    assert ado_post(build_complete(), {"Authorization": basic("", ADO_SECRET)}).status_code == 401
    assert ado_post(build_complete(), {"X-MLOps-Secret": ADO_SECRET}).status_code == 202


def test_ado_hook_without_a_secret_is_503(world, monkeypatch):
    store, calls = world
    monkeypatch.delenv("MLOPS_HOOK_SECRET")
    for headers in ({"Authorization": basic(ADO_USER, "")}, {"X-MLOps-Secret": ""}, {}):
        response = ado_post(build_complete(), headers)
        assert response.status_code == 503
        assert answer(response)["error"].startswith("Azure DevOps hook not configured")
    assert nothing_recorded(store, calls)


def test_ado_redelivered_notification_is_a_duplicate(world):
    store, calls = world
    first = answer(ado_post(build_complete()))
    again = answer(ado_post(build_complete()))
    assert again == {**first, "outcome": "duplicate"}
    assert calls.count("submit") == 1 and len(store.releases) == 1


def test_ado_another_notification_for_the_same_build_is_stale_not_a_second_release(world):
    store, calls = world
    first = answer(ado_post(build_complete(notification=3)))
    other = answer(ado_post(build_complete(notification=4)))
    assert other["outcome"] == "stale" and other["releaseId"] == first["releaseId"]
    assert calls.count("submit") == 1 and len(store.releases) == 1


def test_ado_other_event_types_are_ignored(world):
    store, calls = world
    response = ado_post({**build_complete(), "eventType": "git.push"})
    assert response.status_code == 202
    assert answer(response) == {"outcome": "ignored", "reason": "event type git.push is not build.complete"}
    assert nothing_recorded(store, calls)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"not json", "body must be JSON"),
        (b"", "body must be JSON"),
        ([build_complete()], "JSON object"),
        ({**build_complete(), "eventType": None}, "no eventType"),
        ({**build_complete(), "resource": None}, "no resource object"),
        ({**build_complete(), "resource": {**build_complete()["resource"], "id": None}}, "resource.id"),
        ({**build_complete(), "resource": {**build_complete()["resource"], "id": True}}, "resource.id"),
        ({**build_complete(), "resource": {**build_complete()["resource"], "result": None}}, "resource.result"),
        ({k: v for k, v in build_complete().items() if k not in ("notificationId", "id")}, "notificationId"),
    ],
)
def test_ado_malformed_payloads_are_400_and_record_nothing(world, payload, message):
    store, calls = world
    response = ado_post(payload)
    assert response.status_code == 400 and message in answer(response)["error"]
    assert nothing_recorded(store, calls)


# ---- mapping (pure functions) -------------------------------------------------------------
def test_ado_mapping_is_a_build_completed_event_by_the_contract():
    envelope = azure_devops.ado_build_event(build_complete())
    assert envelope["eventType"] == "MLOps.BuildCompleted" and envelope["dataVersion"] == "1.0"
    assert envelope["subject"] == "builds/2727068" and envelope["topic"] == "hooks/azure-devops"
    assert envelope["eventTime"] == "2026-11-26T11:59:58.3Z"
    assert envelope["data"] == {
        "buildSystem": "ado",
        "buildId": "2727068",
        "buildNumber": "20261126.1",
        "result": "succeeded",
        "sourceVersion": SHA,
        "sourceBranch": "refs/heads/main",
        "repository": "diabetes-model",
        "requestedFor": "alice@example.com",
        "requester": "alice@example.com",
    }
    event = parse_event(envelope)
    assert isinstance(event, BuildCompleted) and event.succeeded and event.release_id == "rel-ado-2727068"


def test_ado_mapping_of_the_older_payload_shape():
    """The documented 2016-style sample: result in status, commit in sourceGetVersion, requester in requests."""
    payload = {
        "id": "4a5d99d6-1c75-4e53-91b9-ee80057d4ce3",
        "eventType": "build.complete",
        "publisherId": "tfs",
        "resource": {
            "uri": "vstfs:///Build/Build/2",
            "id": 2,
            "buildNumber": "ConsumerAddressModule_20150407.1",
            "status": "succeeded",
            "sourceGetVersion": "LG:refs/heads/master:600c52d2d5b655caa111abfd863e5a9bd304bb0e",
            "requests": [{"id": 1, "requestedFor": {"displayName": "Normal Paulk", "uniqueName": "np@example.com"}}],
        },
        "createdDate": "2016-09-19T13:03:26.4285528Z",
    }
    envelope = azure_devops.ado_build_event(payload)
    assert envelope["id"] == "ado-4a5d99d6-1c75-4e53-91b9-ee80057d4ce3"
    assert envelope["data"] == {
        "buildSystem": "ado",
        "buildId": "2",
        "buildNumber": "ConsumerAddressModule_20150407.1",
        "result": "succeeded",
        "sourceVersion": "600c52d2d5b655caa111abfd863e5a9bd304bb0e",
        "sourceBranch": "refs/heads/master",
        "repository": "",
        "requestedFor": "np@example.com",
        "requester": "np@example.com",
    }


def test_ado_results_are_normalised_to_the_build_resource_spelling():
    for given, expected in (("Succeeded", "succeeded"), ("PARTIALLYSUCCEEDED", "partiallySucceeded")):
        payload = build_complete()
        payload["resource"]["result"] = given
        assert azure_devops.ado_build_event(payload)["data"]["result"] == expected


def test_github_mapping_is_a_build_completed_event_by_the_contract():
    envelope = github.github_build_event("workflow_run", DELIVERY, workflow_run())
    assert envelope["id"] == f"github-{DELIVERY}" and envelope["subject"] == "builds/30433642"
    assert envelope["eventTime"] == "2026-11-26T12:00:00Z"
    assert envelope["data"] == {
        "buildSystem": "github",
        "buildId": "30433642",
        "buildNumber": "562",
        "result": "succeeded",
        "sourceVersion": SHA,
        "sourceBranch": "refs/heads/main",
        "repository": "octo-org/diabetes-model",
        "requestedFor": "octocat",
    }
    assert isinstance(parse_event(envelope), BuildCompleted)


def test_event_ids_come_from_the_delivery_and_unsafe_ones_are_hashed():
    assert github.github_build_event("workflow_run", "abc-123", workflow_run())["id"] == "github-abc-123"
    odd = github.github_build_event("workflow_run", "a b/c", workflow_run())["id"]
    assert odd.startswith("github-") and " " not in odd and "/" not in odd
    assert odd == github.github_build_event("workflow_run", "a b/c", workflow_run())["id"]  # stable


def test_hook_secrets_are_read_from_the_environment_and_kept_out_of_repr():
    secrets = Settings.from_env(
        {
            "MLOPS_HOOK_USER": " ado ",
            "MLOPS_HOOK_SECRET": "s3cr3t-value\n",
            "MLOPS_GITHUB_WEBHOOK_SECRET": "gh-s3cr3t",
            "MLOPS_GITHUB_WORKFLOWS": "ci.yml, ,Release",
        }
    ).hook_secrets()
    assert (secrets.ado_user, secrets.ado_secret, secrets.github_secret) == ("ado", "s3cr3t-value", "gh-s3cr3t")
    assert secrets.github_workflows == ("ci.yml", "Release")
    assert "s3cr3t" not in repr(secrets)
    assert Settings.from_env({}).hook_secrets() == HookSecrets()


def test_github_signature_matches_githubs_documented_example():
    # docs.github.com "Validating webhook deliveries": secret "It's a Secret to Everybody", payload "Hello, World!"
    assert github.github_signature("It's a Secret to Everybody", b"Hello, World!") == (
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    )


def test_an_unresolved_key_vault_reference_is_not_a_secret():
    env = {"MLOPS_GITHUB_WEBHOOK_SECRET": "@Microsoft.KeyVault(SecretUri=https://kv/secrets/gh)"}
    secrets = Settings.from_env(env).hook_secrets()
    assert secrets.github_secret == ""


# ---- the requester: comparable with an approver's identity ---------------------------------------
def test_ado_records_requested_for_s_unique_name_as_the_requester_and_nothing_without_one():
    assert azure_devops.ado_build_event(build_complete())["data"]["requester"] == "alice@example.com"
    payload = build_complete()
    payload["resource"]["requestedFor"] = {"displayName": "Alice Example"}  # no uniqueName
    data = azure_devops.ado_build_event(payload)["data"]
    assert data["requestedFor"] == "Alice Example" and "requester" not in data


def test_github_maps_the_triggering_actor_through_mlops_github_identities(world, monkeypatch):
    store, _ = world
    monkeypatch.setenv("MLOPS_GITHUB_IDENTITIES", json.dumps({"OctoCat": "octo@example.com"}))
    assert github_post(workflow_run()).status_code == 202
    release = store.get(release_id_for_build("30433642", "github"))
    assert release is not None
    assert release.trigger["requester"] == "octo@example.com" and release.trigger["requestedFor"] == "octocat"


def test_github_prefers_the_triggering_actor_and_leaves_an_unmapped_login_without_requester():
    identities = {"octocat": "octo@example.com", "hubot": "hubot@example.com"}
    rerun = workflow_run()
    rerun["workflow_run"]["triggering_actor"] = {"login": "Hubot", "id": 2}  # re-run by someone else
    assert github.github_build_event("workflow_run", DELIVERY, rerun, (), identities)["data"]["requester"] == (
        "hubot@example.com"
    )
    unmapped = github.github_build_event("workflow_run", DELIVERY, workflow_run(), (), {"someone": "s@example.com"})
    assert "requester" not in unmapped["data"]
    assert "requester" not in github.github_build_event("workflow_run", DELIVERY, workflow_run())["data"]


@pytest.mark.parametrize("value", ["not json", "[]", '{"octocat": 1}', '{"": "x@example.com"}', '{"octocat": " "}'])
def test_a_malformed_mlops_github_identities_is_a_503_naming_it(world, monkeypatch, value):
    store, calls = world
    monkeypatch.setenv("MLOPS_GITHUB_IDENTITIES", value)
    response = github_post(workflow_run())
    assert response.status_code == 503 and "MLOPS_GITHUB_IDENTITIES" in answer(response)["error"]
    assert nothing_recorded(store, calls)


def test_github_identities_are_read_from_the_environment():
    assert Settings.from_env({}).github_identities() == {}
    assert Settings.from_env({"MLOPS_GITHUB_IDENTITIES": " "}).github_identities() == {}
    env = {"MLOPS_GITHUB_IDENTITIES": '{" OctoCat ": " octo@example.com "}'}
    assert Settings.from_env(env).github_identities() == {"octocat": "octo@example.com"}
