"""`mlops demo --data breast_cancer` / `make demo-classifier`: the release loop with a classifier.

The same loop as devhost/demo.py, for scikit-learn's breast_cancer data (MLOPS_TASK classification,
the default estimator LogisticRegression, the gate on log loss): a first, heavily regularised model
goes live (no champion yet); a more heavily regularised one is clearly worse and the gate rejects it
with its paired-bootstrap evidence; the default parameters are better (log loss interval above 0)
and, once approved, roll out shadow -> canary -> live under live traffic. Production answers labels,
and probabilities with class names when asked ("probabilities": true); each time the demo checks them
against the registered model's. No fault injection here: devhost/demo.py shows the automatic rollback.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import requests

from devhost.client import HostClient
from devhost.commands_host import cmd_down, settings_for_port, start_detached
from devhost.console import console
from devhost.demo import (
    DEMO_ROLLOUT_POLICY,
    LIVE_TRAFFIC_RATE_PER_S,
    _approve_in_rollout,
    _failed,
    _policy_said,
    _reset_home,
    _rows,
    _run_build,
    _shares_seen,
    _summary,
    cli_hint,
    first_release_live,
)
from devhost.traffic import LiveTraffic
from platforms.common.model_files import MODEL_FILE

DATA = "breast_cancer"
# C is LogisticRegression's inverse regularisation strength: smaller is more regularised, here worse.
FIRST_PARAMS = {"C": 0.01}
WORSE_PARAMS = {"C": 0.0001}
NEWER_PARAMS: dict[str, Any] = {}
ROWS_TO_SCORE = 3
TOLERANCE = 1e-9


def run_classifier_demo(port: int, keep_running: bool = True, timeout_s: float = 180.0) -> int:
    started = time.monotonic()
    os.environ["MLOPS_TRAINING_DATA"] = DATA
    os.environ["MLOPS_TASK"] = "classification"
    os.environ.setdefault("MLOPS_ROLLOUT_POLICY", json.dumps(DEMO_ROLLOUT_POLICY))
    settings = settings_for_port(port)
    console.rule(f"[bold]ML release loop with a classifier ({DATA}; gate: {settings.gate_policy.metric})")
    _reset_home(settings)
    if start_detached(settings, port) != 0:
        return 1
    client = HostClient(settings.host_url)
    try:
        first, approver, signer = first_release_live(client, settings, FIRST_PARAMS, "a first classifier", timeout_s)
        if first["state"] != "live":
            return _failed(first)
        production_url = first["production"]["live_endpoint"]["scoring_url"]
        if not score_classifier(first, production_url):
            return 1

        worse = _run_build(client, WORSE_PARAMS, "rejected", timeout_s)
        if worse["state"] != "rejected":
            return _failed(worse)

        with LiveTraffic(production_url, _rows(DATA), rate_per_s=LIVE_TRAFFIC_RATE_PER_S) as traffic:
            console.print(f"[bold]→ live traffic:[/] {LIVE_TRAFFIC_RATE_PER_S:g} scoring requests a second to "
                          f"{production_url} from here on; rollout policy: {_policy_said(settings)}")  # fmt: skip
            newer = _run_build(client, NEWER_PARAMS, "awaiting_approval", timeout_s)
            if newer["state"] != "awaiting_approval":
                return _failed(newer)
            newer = _approve_in_rollout(client, newer, signer, approver, "lower log loss", traffic, timeout_s)
            if newer["state"] != "live":
                return _failed(newer)
            _shares_seen(newer)
        if not score_classifier(newer, production_url):
            return 1
        _summary([client.release(r["id"]) for r in (first, worse, newer)], production_url, "log_loss",
                 _rows(DATA)[0])  # fmt: skip
        console.print(f"ask for probabilities: add \"probabilities\": true to the request body; "
                      f"`{cli_hint('down')}` stops everything")  # fmt: skip
        console.print(f"\n[dim]whole demo: {time.monotonic() - started:.0f} s[/]")
    finally:
        if not keep_running:
            cmd_down()
    return 0


def score_classifier(release: dict[str, Any], production_url: str) -> bool:
    """Ask production for labels and probabilities; say whether they are the registered model's."""
    import joblib
    import numpy as np

    rows = np.asarray(_rows(DATA)[:ROWS_TO_SCORE])
    response = requests.post(production_url, json={"data": rows.tolist(), "probabilities": True}, timeout=30)
    response.raise_for_status()
    served = response.json()
    model = joblib.load(os.path.join(release["candidate"]["model"]["location"], MODEL_FILE))
    labels_equal = served["result"] == model.predict(rows).tolist() and served["classes"] == model.classes_.tolist()
    gap = float(np.max(np.abs(np.asarray(served["probabilities"]) - model.predict_proba(rows))))
    same = labels_equal and gap <= TOLERANCE
    shown = ", ".join(
        f"{label} (p={max(p):.3f})" for label, p in zip(served["result"], served["probabilities"], strict=True)
    )
    verdict = "equal to" if same else "[red]DIFFERENT from[/]"
    console.print(f"✔ production {production_url} classified {ROWS_TO_SCORE} rows: {shown}; classes "
                  f"{served['classes']} ({verdict} the registered model's labels and probabilities, "
                  f"max |diff| {gap:.1e})")  # fmt: skip
    return same
