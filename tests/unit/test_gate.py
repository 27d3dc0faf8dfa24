from __future__ import annotations

import numpy as np
import pytest

from functions.domain.gate import GateConfigError, GatePolicy, decide
from ml_pipeline.evaluate import compare_predictions

rng = np.random.default_rng(11)
Y = rng.normal(100.0, 30.0, size=400)
CHAMPION = Y + rng.normal(0.0, 20.0, size=400)
NOISE = rng.normal(0.0, 20.0, size=400)


def report_for(candidate_scale: float | None, same_as_champion: bool = False) -> dict:
    """Candidate errors are the champion-like noise scaled; None means no champion at all."""
    if candidate_scale is None:
        return compare_predictions(Y, Y + NOISE, None)
    candidate = CHAMPION.copy() if same_as_champion else Y + candidate_scale * NOISE
    return compare_predictions(Y, candidate, CHAMPION, resamples=500, seed=3)


@pytest.mark.parametrize(
    "case, report_args, policy, promote, reason_start",
    [
        ("no champion", (None,), GatePolicy(), True, "no champion in production"),
        ("no champion over the limit", (None,), GatePolicy(max_metric_without_champion=100.0), False, "no champion,"),
        ("equal models", (1.0, True), GatePolicy(), False, "not better"),
        (
            "equal models, non-inferiority",
            (1.0, True),
            GatePolicy(mode="non_inferiority", margin=1.0),
            True,
            "not worse",
        ),
        ("slightly better", (0.97,), GatePolicy(), False, "not better"),
        (
            "slightly better, non-inferiority",
            (0.97,),
            GatePolicy(mode="non_inferiority", margin=100.0),
            True,
            "not worse",
        ),
        ("clearly better", (0.5,), GatePolicy(), True, "better"),
        ("clearly better but under min improvement", (0.5,), GatePolicy(min_improvement=1000.0), False, "not better"),
        ("clearly better by mae", (0.5,), GatePolicy(metric="mae"), True, "better"),
        ("clearly better by r2", (0.5,), GatePolicy(metric="r2"), True, "better"),
        ("worse", (1.6,), GatePolicy(), False, "not better"),
        ("worse, non-inferiority", (1.6,), GatePolicy(mode="non_inferiority", margin=10.0), False, "possibly worse"),
    ],
)
def test_gate_decisions(case, report_args, policy, promote, reason_start):
    decision = decide(report_for(*report_args), policy)
    assert decision.promote is promote, (case, decision.reason)
    assert decision.reason.startswith(reason_start), decision.reason
    assert "\n" not in decision.reason
    assert decision.evidence["metric"] == policy.metric
    assert decision.evidence["policy"]["mode"] == policy.mode


def test_evidence_carries_the_numbers_behind_the_decision():
    report = report_for(0.5)
    decision = decide(report, GatePolicy(confidence=0.9))
    evidence = decision.evidence
    assert evidence["candidate"] == report["metrics"]["candidate"]["mse"]
    assert evidence["champion"] == report["metrics"]["champion"]["mse"]
    assert evidence["improvement"] == pytest.approx(-report["differences"]["mse"]["estimate"])
    low, high = report["differences"]["mse"]["intervals"]["0.9"]
    assert evidence["interval"] == [pytest.approx(-high), pytest.approx(-low)]
    assert evidence["n"] == 400 and evidence["confidence"] == 0.9
    assert "90% CI" in decision.reason


def test_r2_improvement_has_the_same_sign_as_the_mse_one():
    report = report_for(0.5)
    by_mse, by_r2 = decide(report, GatePolicy()), decide(report, GatePolicy(metric="r2"))
    assert by_mse.evidence["improvement"] > 0 and by_r2.evidence["improvement"] > 0


@pytest.mark.parametrize(
    "policy_kwargs, message",
    [
        ({"metric": "auc"}, "not in the evaluation report"),
        ({"confidence": 0.97}, "no 0.97 interval"),
        ({"metric": "mse", "direction": "higher_is_better"}, "lower_is_better in the report"),
    ],
)
def test_a_policy_that_does_not_fit_the_report_is_a_config_error(policy_kwargs, message):
    with pytest.raises(GateConfigError, match=message):
        decide(report_for(0.5), GatePolicy(**policy_kwargs))


@pytest.mark.parametrize(
    "settings",
    [{"mode": "better"}, {"confidence": 1.5}, {"margin": -1}, {"direction": "up"}, {"treshold": 1}],
)
def test_invalid_policies_are_refused(settings):
    with pytest.raises(GateConfigError):
        GatePolicy.from_mapping(settings)


def test_a_policy_for_a_task_takes_its_default_metric_and_refuses_the_other_tasks():
    assert GatePolicy.for_task({}, "classification").metric == "log_loss"
    assert GatePolicy.for_task({"mode": "non_inferiority", "margin": 1}, "regression").metric == "mse"
    with pytest.raises(GateConfigError, match="'brier' is a classification metric"):
        GatePolicy.for_task({"metric": "brier"}, "regression")
    with pytest.raises(GateConfigError, match="roc_auc is higher_is_better, the policy says lower_is_better"):
        GatePolicy.for_task({"metric": "roc_auc", "direction": "lower_is_better"}, "classification")
    with pytest.raises(GateConfigError, match="unknown task"):
        GatePolicy.for_task({}, "ranking")


def test_the_gate_metric_table_matches_what_the_evaluation_reports():
    from functions.domain.gate import TASK_METRICS
    from ml_pipeline.evaluate import DIRECTIONS

    assert {m: d for metrics in TASK_METRICS.values() for m, d in metrics.items()} == DIRECTIONS


def test_an_undefined_candidate_metric_is_not_promoted():
    report = {"n": 10, "metrics": {"candidate": {"roc_auc": float("nan")}, "champion": None}, "differences": None}
    decision = decide(report, GatePolicy.for_task({"metric": "roc_auc"}, "classification"))
    assert not decision.promote and "undefined on the holdout rows" in decision.reason
