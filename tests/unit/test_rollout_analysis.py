"""The rollout policy setting and the analysis that decides each step: pure functions, numbers checked."""

from __future__ import annotations

import pytest

from functions.domain.analysis import analyse, distribution_shift, diverges, percentile
from functions.domain.refs import Evidence, Served
from functions.domain.rollout import RolloutConfigError, RolloutPolicy, RolloutStep, policy_from_json
from functions.settings import Settings, SettingsError

SHADOW = RolloutStep("shadow", 50, 60.0, 20)
CANARY = RolloutStep("canary", 10, 60.0, 20)
QUIET = RolloutPolicy.from_mapping({"latency": {"decides": False}})


def served(requests: int, errors: int = 0, latency: float = 5.0, predictions: tuple = ()) -> Served:
    return Served(requests, errors, tuple([latency] * min(requests, 200)), predictions)


def evidence(new: Served, old: Served, pairs: tuple = (), shadow: bool = True) -> Evidence:
    if shadow:
        return Evidence({"stable": old}, {"new": new}, {"new": pairs}, "test")
    return Evidence({"stable": old, "new": new}, {}, {}, "test")


def checks(verdict: dict) -> dict:
    return {check["name"]: check for check in verdict["checks"]}


# ---- the policy ------------------------------------------------------------------------


def test_the_default_policy_is_shadow_then_canary_10_50_100():
    policy = RolloutPolicy()
    assert [(s.kind, s.share) for s in policy.steps] == [
        ("shadow", 50),
        ("canary", 10),
        ("canary", 50),
        ("canary", 100),
    ]
    assert policy.describe() == "shadow 50% → canary 10% → canary 50% → canary 100%"
    assert policy_from_json(policy.to_json()) == policy


def test_window_and_minimum_apply_to_every_step_unless_a_step_says_otherwise():
    policy = RolloutPolicy.from_mapping(
        {
            "window_s": 5,
            "min_requests": 7,
            "steps": [{"kind": "canary", "share": 20, "window_s": 1}, {"kind": "canary", "share": 100}],
        }
    )
    assert [(s.window_s, s.min_requests) for s in policy.steps] == [(1.0, 7), (5.0, 7)]
    assert RolloutPolicy.from_mapping({"steps": []}).immediate


@pytest.mark.parametrize(
    ("document", "named"),
    [
        ({"stpes": []}, "unknown field(s) in the rollout policy: stpes"),
        ({"steps": [{"kind": "blue-green", "share": 100}]}, "steps[1].kind must be one of shadow, canary"),
        ({"steps": [{"kind": "canary", "share": 0}]}, "steps[1].share must be a whole percent 1..100"),
        ({"steps": [{"kind": "canary", "share": 50}]}, "the last step must be"),
        (
            {
                "steps": [
                    {"kind": "canary", "share": 50},
                    {"kind": "canary", "share": 10},
                    {"kind": "canary", "share": 100},
                ]
            },
            "canary shares must rise",
        ),
        (
            {
                "steps": [
                    {"kind": "canary", "share": 10},
                    {"kind": "shadow", "share": 10},
                    {"kind": "canary", "share": 100},
                ]
            },
            "shadow steps come before",
        ),
        ({"window_s": -1}, "window_s must be a number >= 0"),
        ({"min_requests": 2.5}, "min_requests must be a whole number >= 1"),
        ({"latency": {"decides": "no"}}, "latency.decides must be true or false"),
        ({"errors": {"alpha": "small"}}, "errors.alpha must be a number"),
        ({"divergence": {"tolerance": 1}}, "unknown field(s) in divergence: tolerance"),
        ({"divergence": {"max_share": 5}}, "divergence.max_share is a fraction 0..1 (0.05 for 5%)"),
        ({"errors": {"alpha": 5}}, "errors.alpha is a fraction 0..1"),
        ({"latency": {"min_samples": 2.5}}, "latency.min_samples must be a whole number >= 1"),
        ({"window_s": 900, "max_wait_s": 600}, "the window of shadow 50%, canary 10%, canary 50% is longer"),
    ],
)
def test_a_bad_policy_is_refused_naming_the_field(document, named):
    with pytest.raises(RolloutConfigError, match=None) as raised:
        RolloutPolicy.from_mapping(document)
    assert named in str(raised.value)


def test_the_setting_is_validated_at_start():
    assert Settings.from_env({"MLOPS_ROLLOUT_POLICY": '{"steps": []}'}).rollout_policy.immediate
    with pytest.raises(SettingsError, match="MLOPS_ROLLOUT_POLICY: unknown field"):
        Settings.from_env({"MLOPS_ROLLOUT_POLICY": '{"windows": 3}'})
    with pytest.raises(SettingsError, match="not valid JSON"):
        Settings.from_env({"MLOPS_ROLLOUT_POLICY": "{steps"})


def test_the_fault_injection_setting_is_validated_and_local_only():
    fault = Settings.from_env({"MLOPS_LOCAL_FAULT": '{"deployments": "rel-*", "bias": 50, "share": 0.3}'}).local_fault
    assert fault == {"deployments": "rel-*", "bias": 50.0, "share": 0.3, "error_share": 0.0, "after_requests": 0}
    assert Settings.from_env({}).local_fault == {}
    for bad, said in [
        ('{"bias": 5}', "deployments must name"),
        ('{"deployments": "x"}', "injects nothing"),
        ('{"deployments": "x", "bias": 1, "share": 2}', "share must be between 0 and 1"),
        ('{"deployments": "x", "error_share": 0.5, "after_requests": 1.5}', "after_requests must be a whole"),
        ('{"deployments": "x", "bias": 1, "colour": 1}', "unknown field(s) colour"),
    ]:
        with pytest.raises(SettingsError, match=None) as raised:
            Settings.from_env({"MLOPS_LOCAL_FAULT": bad})
        assert said in str(raised.value)
    with pytest.raises(SettingsError, match="unset it on Azure"):
        Settings.from_env({"MLOPS_PLATFORM": "azure", "MLOPS_LOCAL_FAULT": '{"deployments": "x", "bias": 1}'})


# ---- the analysis ----------------------------------------------------------------------


def test_a_healthy_shadow_step_passes_with_its_numbers():
    pairs = tuple((100.0 + i, 104.0 + i) for i in range(40))  # a different model, within tolerance
    verdict = analyse(SHADOW, evidence(served(40), served(80), pairs), "new", "stable", QUIET, waited_out=False)
    assert verdict["passed"] and verdict["summary"].startswith("shadow 50%: passed: 40 mirrored requests (min 20)")
    found = checks(verdict)
    assert found["divergence"]["diverging"] == 0 and found["divergence"]["rows"] == 40
    assert found["errors"]["candidate"] == [0, 40] and found["errors"]["p_value"] == 1.0
    assert verdict["candidate"] == {"deployment": "new", "requests": 40, "errors": 0, "p95_ms": 5.0}


def test_rows_beyond_the_tolerance_fail_the_shadow_step():
    pairs = tuple((100.0, 100.0 + (300.0 if i % 4 == 0 else 0.0)) for i in range(40))
    verdict = analyse(SHADOW, evidence(served(40), served(80), pairs), "new", "stable", QUIET, waited_out=False)
    divergence = checks(verdict)["divergence"]
    assert not verdict["passed"] and "failed (divergence)" in verdict["summary"]
    assert divergence["diverging"] == 10 and divergence["share"] == 0.25


def test_a_shifted_distribution_fails_even_when_each_row_is_within_tolerance():
    pairs = tuple((100.0 + i, 140.0 + i) for i in range(60))  # every row +40: within 50%, but all moved
    verdict = analyse(SHADOW, evidence(served(60), served(80), pairs), "new", "stable", QUIET, waited_out=False)
    divergence = checks(verdict)["divergence"]
    assert divergence["diverging"] == 0 and divergence["shift"] > 0.35 and not verdict["passed"]


@pytest.mark.parametrize(
    ("new_errors", "old", "passed"),
    [(0, (0, 360), True), (1, (0, 360), True), (4, (0, 360), False), (3, (30, 360), True), (40, (0, 0), False)],
)
def test_errors_are_judged_by_an_exact_test_that_holds_for_small_counts(new_errors, old, passed):
    verdict = analyse(
        CANARY, evidence(served(40, new_errors), served(old[1], old[0]), shadow=False), "new", "stable", QUIET,
        waited_out=False,
    )  # fmt: skip
    assert checks(verdict)["errors"]["passed"] is passed and verdict["passed"] is passed


def test_latency_is_recorded_and_decides_only_when_the_policy_says_so():
    slow = Served(100, 0, tuple(30.0 + i % 7 for i in range(100)))
    fast = Served(300, 0, tuple(5.0 + i % 5 for i in range(300)))
    recorded = analyse(CANARY, evidence(slow, fast, shadow=False), "new", "stable", QUIET, waited_out=False)
    latency = checks(recorded)["latency"]
    assert (
        recorded["passed"] and latency["decides"] is False and latency["p95_ratio"] >= 4 and latency["p_value"] < 0.01
    )
    deciding = analyse(CANARY, evidence(slow, fast, shadow=False), "new", "stable", RolloutPolicy(), waited_out=False)
    assert not deciding["passed"] and "failed (latency)" in deciding["summary"]


def test_too_little_traffic_fails_the_step_saying_so():
    verdict = analyse(CANARY, evidence(served(3), served(80), shadow=False), "new", "stable", QUIET, waited_out=True)
    assert not verdict["passed"]
    assert "3 requests (min 20): too little traffic to judge within the step's max wait" in verdict["summary"]


def test_canary_steps_record_the_prediction_shift_without_deciding():
    new = served(40, predictions=tuple(300.0 + i for i in range(40)))
    old = served(80, predictions=tuple(100.0 + i for i in range(80)))
    verdict = analyse(CANARY, evidence(new, old, shadow=False), "new", "stable", QUIET, waited_out=False)
    shift = checks(verdict)["shift"]
    assert verdict["passed"] and shift["shift"] == 1.0 and shift["decides"] is False


def test_labels_diverge_when_they_differ_and_shift_by_total_variation():
    assert diverges("cat", "dog", 0.5, 0.0) and not diverges("cat", "cat", 0.5, 0.0)
    assert distribution_shift(["a", "a", "b", "b"], ["a", "a", "a", "a"]) == 0.5
    assert not diverges(100.0, 149.0, 0.5, 0.0) and diverges(100.0, 151.0, 0.5, 0.0)
    assert diverges(0.0, 0.2, 0.5, 0.1) and not diverges(0.0, 0.05, 0.5, 0.1)


def test_percentiles_by_nearest_rank():
    assert percentile([], 95) == 0.0
    assert percentile(list(range(1, 101)), 95) == 95.0 and percentile([3.0], 95) == 3.0
