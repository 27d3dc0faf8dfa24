"""`mlops releases`: the candidate column shows the gate's metric, whichever task the models are for."""

from __future__ import annotations

import pytest

from devhost.commands_releases import _candidate_metric


@pytest.mark.parametrize(
    "release, shown",
    [
        ({"gate": {"evidence": {"metric": "mse", "candidate": 3547.91}}}, "mse 3547.9"),
        ({"gate": {"evidence": {"metric": "log_loss", "candidate": 0.08521}}}, "log_loss 0.0852"),
        ({"candidate": {"metrics": {"log_loss": 0.1, "brier": 0.03}}}, "log_loss 0.1000"),
        ({"candidate": {"metrics": {"mse": 3000.0, "r2": 0.4}}}, "mse 3000.0"),
        ({"candidate": None, "gate": None}, ""),
    ],
)
def test_the_candidate_column_names_its_metric(release, shown):
    assert _candidate_metric(release) == shown
