"""The whole loop over HTTP against a running `mlops up`."""

from __future__ import annotations

import json
import os

import joblib
import pytest
import requests
from sklearn.datasets import load_diabetes

from tests import payloads as p
from tests.e2e.conftest import APPROVER, approve_to_the_end, post_decision, post_webhook, trigger_build, wait_for_state

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def approved(host):
    release_id = trigger_build(host)
    waiting = wait_for_state(host, release_id, {"awaiting_approval", "failed", "rejected"})
    assert waiting["state"] == "awaiting_approval", waiting
    return approve_to_the_end(host, release_id, APPROVER)


def test_approve_path_goes_live_and_production_serves_the_registered_model(approved):
    assert approved["state"] == "live", approved
    assert approved["approval"]["by"] == APPROVER
    rows = load_diabetes().data[:5]
    response = requests.post(
        approved["production"]["live_endpoint"]["scoring_url"], json={"data": rows.tolist()}, timeout=30
    )
    assert response.status_code == 200
    model = joblib.load(os.path.join(approved["candidate"]["model"]["location"], "model.joblib"))
    assert response.json()["result"] == model.predict(rows).tolist()
    steps = [entry["step"] for entry in approved["timeline"]]
    for step in ("training_submitted", "gate_passed", "packaging", "image_pushed", "staging_passed",
                 "approval_requested", "approved", "production_direct_passed", "live"):  # fmt: skip
        assert step in steps


def test_worse_parameters_are_rejected_by_the_gate_with_evidence(host, approved):
    release_id = trigger_build(host, {"alpha": 5.0})
    rejected = wait_for_state(host, release_id, {"rejected", "awaiting_approval", "failed"})
    assert rejected["state"] == "rejected", rejected
    gate = rejected["gate"]
    assert gate["promote"] is False and gate["reason"].startswith("possibly worse")  # the host runs non-inferiority
    assert gate["evidence"]["champion"] < gate["evidence"]["candidate"]
    assert gate["evaluation"]["differences"]["mse"]["intervals"]["0.95"][0] > 0
    assert host.release(approved["id"])["state"] == "live"


def test_the_same_image_pushed_three_times_deploys_staging_once(host, approved):
    image = approved["image"]
    event = p.image_pushed(image["tag"], repository=image["repository"])
    for _ in range(3):
        assert post_webhook(host, "on_registry_event", json.dumps([event])).status_code == 202
    release = host.release(approved["id"])
    steps = [entry["step"] for entry in release["timeline"]]
    assert steps.count("image_pushed") == 1 and steps.count("staging_passed") == 1
    assert steps.count("stale_event") >= 1
    # The two redeliveries of the same event: counted on one timeline entry, not appended twice.
    (duplicate,) = [entry for entry in release["timeline"] if entry["step"] == "duplicate_event"]
    assert duplicate["count"] == 2 and duplicate["detail"] == f"event {event['id']} delivered again"


def test_http_api_errors_are_json_with_the_right_status(host, approved):
    base = f"{host.base_url}/api/releases"
    missing = requests.get(f"{base}/rel-does-not-exist", timeout=10)
    assert missing.status_code == 404 and "rel-does-not-exist" in missing.json()["error"]
    again = post_decision(host, approved["id"], "approve", b'{"comment": "again"}', identity="someone@example.com")
    assert again.status_code == 409 and "live" in again.json()["error"]
    bad = post_decision(host, approved["id"], "approve", b"{nope")
    assert bad.status_code == 400 and "JSON" in bad.json()["error"]
    listing = requests.get(base, timeout=10).json()["releases"]
    assert approved["id"] in [r["id"] for r in listing]


def test_webhook_semantics_of_the_real_app(host):
    validation = [{"id": "v1", "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent",
                   "data": {"validationCode": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6"}}]  # fmt: skip
    answer = post_webhook(host, "on_ml_event", json.dumps(validation), "SubscriptionValidation")
    assert answer.status_code == 200 and answer.json() == {"validationResponse": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6"}
    assert post_webhook(host, "on_ml_event", "[]", "Unsubscribe").status_code == 202
    assert post_webhook(host, "on_ml_event", "[]", None).status_code == 400
    assert post_webhook(host, "no_such_function", "[]").status_code == 404
    assert post_webhook(host, "on_ml_event", "{not json").status_code == 400


def test_malformed_events_are_acknowledged_and_dead_lettered(host):
    bad = {"id": "bad-build-1", "eventType": "MLOps.BuildCompleted", "data": {"result": "succeeded"},
           "subject": "x", "eventTime": "2026-11-26T12:00:00Z", "dataVersion": "", "metadataVersion": "1"}  # fmt: skip
    assert post_webhook(host, "on_build_event", json.dumps([bad])).status_code == 202
    assert post_webhook(host, "on_build_event", json.dumps([bad])).status_code == 202
    letters = [d for d in host.dead_letters() if d["event_id"] == "bad-build-1"]
    assert len(letters) == 1 and "no buildId" in letters[0]["reason"]
