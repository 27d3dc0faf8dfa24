"""A classifier's whole loop over HTTP against a running `mlops up` on scikit-learn's breast_cancer data.

MLOPS_TRAINING_DATA=breast_cancer makes the task classification: LogisticRegression, a stratified
holdout, label checks, and the gate's default policy (superiority on log loss, paired bootstrap).
"""

from __future__ import annotations

import os

import joblib
import numpy as np
import pytest
import requests

from ml_pipeline.dataset import DEFAULT_TARGET, feature_columns, load_dataset
from tests.e2e.conftest import APPROVER, approve_to_the_end, running_host, trigger_build, wait_for_state

pytestmark = pytest.mark.e2e
CLASSIFICATION = {"MLOPS_TRAINING_DATA": "breast_cancer"}
RESTING = {"awaiting_approval", "rejected", "failed"}


@pytest.fixture(scope="module")
def cancer_host(tmp_path_factory):
    with running_host(tmp_path_factory.mktemp("mlops-classifier-home"), CLASSIFICATION) as client:
        yield client


@pytest.fixture(scope="module")
def first_live(cancer_host):
    """A heavily regularised classifier (C=0.01): no champion yet, so it is promoted on its own."""
    release_id = trigger_build(cancer_host, {"C": 0.01})
    waiting = wait_for_state(cancer_host, release_id, RESTING)
    assert waiting["state"] == "awaiting_approval", waiting
    live = approve_to_the_end(cancer_host, release_id, APPROVER)
    assert live["state"] == "live", live
    return live


def feature_rows(n: int) -> np.ndarray:
    frame = load_dataset("breast_cancer")
    return frame[feature_columns(frame, DEFAULT_TARGET)].to_numpy(dtype=np.float64)[:n]


def test_a_clearly_worse_classifier_is_rejected_on_log_loss_with_its_evidence(cancer_host, first_live):
    release_id = trigger_build(cancer_host, {"C": 1e-4})
    rejected = wait_for_state(cancer_host, release_id, RESTING)
    assert rejected["state"] == "rejected", rejected
    gate = rejected["gate"]
    assert gate["evidence"]["metric"] == "log_loss" and gate["reason"].startswith("not better: log_loss")
    assert gate["evidence"]["candidate"] > gate["evidence"]["champion"]
    difference = gate["evaluation"]["differences"]["log_loss"]
    assert difference["direction"] == "lower_is_better" and difference["intervals"]["0.95"][0] > 0
    assert cancer_host.release(first_live["id"])["state"] == "live"


def test_a_better_classifier_goes_through_the_gate_staging_and_approval_to_live(cancer_host, first_live):
    release_id = trigger_build(cancer_host, {})  # the default C=1.0: lower log loss than C=0.01
    waiting = wait_for_state(cancer_host, release_id, RESTING)
    assert waiting["state"] == "awaiting_approval", waiting
    gate = waiting["gate"]
    assert gate["promote"] and gate["reason"].startswith("better: log_loss improvement +")
    low, high = gate["evidence"]["interval"]
    assert 0 < low < high and gate["evaluation"]["bootstrap"]["method"] == "paired percentile bootstrap"
    assert gate["evaluation"]["metrics"]["champion"]["log_loss"] == gate["evidence"]["champion"]

    live = approve_to_the_end(cancer_host, release_id, APPROVER)
    assert live["state"] == "live", live
    steps = [entry["step"] for entry in live["timeline"]]
    for step in ("gate_passed", "staging_passed", "approved", "production_direct_passed", "live"):
        assert step in steps

    rows = feature_rows(25)
    url = live["production"]["live_endpoint"]["scoring_url"]
    answer = requests.post(url, json={"data": rows.tolist(), "probabilities": True}, timeout=30)
    assert answer.status_code == 200, answer.text
    model = joblib.load(os.path.join(live["candidate"]["model"]["location"], "model.joblib"))
    served = answer.json()
    assert served["result"] == model.predict(rows).tolist()
    assert served["classes"] == model.classes_.tolist() == [0, 1]
    assert served["probabilities"] == model.predict_proba(rows).tolist()
    labels_only = requests.post(url, json={"data": rows.tolist()}, timeout=30).json()
    assert labels_only == {"result": served["result"]}


def test_a_gate_metric_that_does_not_fit_classifiers_stops_the_app_at_start_naming_it(tmp_path):
    unfitting = {**CLASSIFICATION, "MLOPS_GATE_POLICY": '{"metric": "mse"}'}
    with pytest.raises(RuntimeError, match="host did not start") as caught, running_host(tmp_path, unfitting):
        pass
    assert "MLOPS_GATE_POLICY: metric 'mse' is a regression metric" in str(caught.value)
