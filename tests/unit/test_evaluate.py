from __future__ import annotations

import json

import numpy as np
import pytest

from ml_pipeline import evaluate as evaluate_module
from ml_pipeline.bootstrap import bootstrap_means, percentile_intervals
from ml_pipeline.errors import PipelineInputError
from ml_pipeline.evaluate import compare_predictions, evaluate
from ml_pipeline.train import train


def test_hand_computed_example_gives_exact_metrics():
    y = np.array([1.0, 2.0, 3.0, 4.0])
    candidate = np.array([1.0, 2.0, 3.0, 5.0])  # errors 0, 0, 0, 1
    champion = np.array([2.0, 2.0, 2.0, 4.0])  # errors 1, 0, -1, 0
    report = compare_predictions(y, candidate, champion, resamples=200, seed=1)
    assert report["n"] == 4
    assert report["metrics"]["candidate"] == {"mse": 0.25, "rmse": 0.5, "mae": 0.25, "r2": 0.8}
    assert report["metrics"]["champion"] == {"mse": 0.5, "rmse": pytest.approx(0.5**0.5), "mae": 0.5, "r2": 0.6}
    differences = report["differences"]
    assert differences["mse"]["estimate"] == -0.25  # per-row squared-error differences -1, 0, -1, 1
    assert differences["mae"]["estimate"] == -0.25
    assert differences["r2"]["estimate"] == pytest.approx(0.2)
    assert differences["mse"]["direction"] == "lower_is_better" and differences["r2"]["direction"] == "higher_is_better"
    low, high = differences["mse"]["intervals"]["0.95"]
    assert -1.0 <= low <= -0.25 <= high <= 1.0  # a mean of 4 values from {-1, 0, 1} stays in [-1, 1]


def test_no_champion_reports_only_the_candidate():
    y = np.array([1.0, 2.0, 3.0])
    report = compare_predictions(y, y + 1.0, None)
    assert report["metrics"]["champion"] is None and report["differences"] is None
    assert report["metrics"]["candidate"]["mse"] == 1.0


def test_identical_models_have_a_zero_width_interval_at_zero():
    y = np.linspace(0, 1, 50)
    pred = y + 0.1
    report = compare_predictions(y, pred, pred.copy(), resamples=100)
    assert report["differences"]["mse"]["estimate"] == 0.0
    assert report["differences"]["mse"]["intervals"]["0.95"] == [0.0, 0.0]


def test_bootstrap_is_reproducible_and_independent_of_worker_count():
    values = np.random.default_rng(3).normal(size=(5000, 2))
    one = bootstrap_means(values, resamples=120, seed=9, workers=1)
    two = bootstrap_means(values, resamples=120, seed=9, workers=2)
    np.testing.assert_array_equal(one, two)
    assert not np.array_equal(one, bootstrap_means(values, resamples=120, seed=10))


def test_interval_covers_the_true_difference_at_about_its_nominal_rate():
    """Seeded simulation: candidate error sd 1.0, champion 1.2, so the true mse difference is -0.44."""
    rng = np.random.default_rng(2026)
    true_difference = 1.0 - 1.2**2
    simulations, covered = 300, 0
    for i in range(simulations):
        y = rng.normal(size=200)
        candidate = y + rng.normal(scale=1.0, size=200)
        champion = y + rng.normal(scale=1.2, size=200)
        samples = bootstrap_means((candidate - y) ** 2 - (champion - y) ** 2, resamples=400, seed=i, workers=1)
        low, high = percentile_intervals(samples[:, 0], (0.95,))["0.95"]
        covered += low <= true_difference <= high
    coverage = covered / simulations
    assert 0.90 <= coverage <= 0.99, coverage  # nominal 0.95; binomial sd over 300 runs is about 0.013


@pytest.fixture(scope="module")
def worse_dir(tmp_path_factory):
    output = tmp_path_factory.mktemp("worse")
    train("diabetes", output, overrides={"alpha": 5.0})
    return output


def test_evaluate_scores_both_models_on_the_candidates_holdout(trained_dir, worse_dir):
    report = evaluate(worse_dir, trained_dir, "diabetes", resamples=300)
    card = json.loads((worse_dir / "model_card.json").read_text())
    assert report["n"] == len(card["split"]["holdout_index"])
    assert report["metrics"]["candidate"]["mse"] == pytest.approx(card["metrics"]["mse"])
    assert report["compared"]["champion"]["params"] == {"alpha": 0.4}
    assert report["compared"]["champion_trained_on_holdout_rows"] == 0
    assert report["differences"]["mse"]["estimate"] > 0  # alpha=5 is worse
    assert report["differences"]["mse"]["intervals"]["0.95"][0] > 0


def test_champion_that_saw_the_holdout_is_flagged(trained_dir, tmp_path):
    other_split = tmp_path / "other"
    train("diabetes", other_split, seed=1)
    report = evaluate(trained_dir, other_split, "diabetes", resamples=50)
    assert report["compared"]["champion_trained_on_holdout_rows"] > 0
    assert "which favours it" in report["note"]


def test_other_data_than_the_candidates_is_refused(trained_dir, diabetes, write_csv):
    with pytest.raises(PipelineInputError, match="not the data the candidate was trained on"):
        evaluate(trained_dir, None, str(write_csv(diabetes.head(400))))


def test_cli_without_champion_says_so(trained_dir, tmp_path, capsys):
    out = tmp_path / "evaluation.json"
    code = evaluate_module.main(
        ["--candidate", str(trained_dir), "--champion", "none", "--data", "diabetes", "--output", str(out)]
    )
    assert code == 0
    report = json.loads(out.read_text())
    assert report["compared"]["champion"] is None and report["note"].startswith("no champion")
    assert "no champion" in capsys.readouterr().out


def test_cli_missing_model_is_a_one_line_error(tmp_path, capsys):
    code = evaluate_module.main(
        ["--candidate", str(tmp_path), "--champion", "none", "--data", "diabetes", "--output", str(tmp_path / "e")]
    )
    err = capsys.readouterr().err
    assert code == 2 and "has no model.joblib" in err and "Traceback" not in err
