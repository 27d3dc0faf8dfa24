from __future__ import annotations

import json

import joblib
import numpy as np
import pytest

from ml_pipeline import train as train_module
from ml_pipeline.errors import PipelineInputError
from ml_pipeline.train import train


def test_outputs_are_written_with_the_documented_fields(trained_dir):
    assert {p.name for p in trained_dir.iterdir()} >= {
        "model.joblib",
        "metrics.json",
        "profile.json",
        "model_card.json",
    }
    metrics = json.loads((trained_dir / "metrics.json").read_text())
    assert {"mse", "rmse", "mae", "r2", "n_train", "n_holdout"} <= set(metrics)
    card = json.loads((trained_dir / "model_card.json").read_text())
    assert card["estimator"] == "sklearn.linear_model.Ridge" and card["params"] == {"alpha": 0.4}
    assert card["rows"] == {"train": 354, "holdout": 88}
    assert card["split"]["seed"] == 42 and len(card["split"]["holdout_index"]) == 88
    assert len(card["data"]["sha256"]) == 64
    assert {"scikit-learn", "numpy", "python"} <= set(card["libraries"])


def test_default_model_lands_near_the_seeds_holdout_mse(trained_dir):
    mse = json.loads((trained_dir / "metrics.json").read_text())["mse"]
    assert 2800 < mse < 3800  # the seed reports about 3,300 on its own split


def test_same_seed_gives_the_same_model_and_metrics(tmp_path, trained_dir):
    again = tmp_path / "again"
    train("diabetes", again)
    assert (again / "metrics.json").read_text() == (trained_dir / "metrics.json").read_text()
    first, second = joblib.load(trained_dir / "model.joblib"), joblib.load(again / "model.joblib")
    np.testing.assert_array_equal(first.coef_, second.coef_)


def test_another_seed_gives_another_split(tmp_path, trained_dir):
    card = train("diabetes", tmp_path / "other", seed=7)
    original = json.loads((trained_dir / "model_card.json").read_text())
    assert card["split"]["holdout_index"] != original["split"]["holdout_index"]


def test_params_file_swaps_the_estimator(tmp_path):
    params = tmp_path / "params.json"
    params.write_text(
        json.dumps({"estimator": "sklearn.ensemble.RandomForestRegressor", "params": {"n_estimators": 20}})
    )
    assert train_module.main(["--data", "diabetes", "--output", str(tmp_path / "rf"), "--params", str(params)]) == 0
    model = joblib.load(tmp_path / "rf" / "model.joblib")
    assert type(model).__name__ == "RandomForestRegressor" and model.n_estimators == 20
    assert model.random_state == 42  # seeded so the forest is reproducible too


def test_param_override_changes_one_value(tmp_path):
    card = train("diabetes", tmp_path / "m", overrides={"alpha": 2.0})
    assert card["params"] == {"alpha": 2.0}


@pytest.mark.parametrize(
    "document, message",
    [
        ({"estimator": "sklearn.linear_model.NoSuchModel"}, "unknown estimator"),
        ({"estimator": "sklearn.linear_model.LogisticRegression"}, "not a scikit-learn regressor"),
        ({"estimator": "sklearn.cluster.KMeans"}, "not a scikit-learn regressor"),
        ({"estimator": "os.system"}, "must be a scikit-learn class path"),
        ({"estimator": "sklearn.linear_model.Ridge", "params": {"alhpa": 1}}, "no parameter(s) alhpa"),
        ({"estimator": "sklearn.linear_model.Ridge", "params": {"alpha": "much"}}, "alpha"),
        ({"model": "x"}, "unknown keys: model"),
    ],
)
def test_bad_params_are_clear_errors(tmp_path, document, message):
    with pytest.raises(PipelineInputError, match=None) as caught:
        train("diabetes", tmp_path / "m", document)
    assert message in str(caught.value)


def test_cli_reports_bad_params_in_one_line(tmp_path, capsys):
    params = tmp_path / "p.json"
    params.write_text(json.dumps({"estimator": "sklearn.linear_model.Nope"}))
    code = train_module.main(["--data", "diabetes", "--output", str(tmp_path / "m"), "--params", str(params)])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("train: error: unknown estimator") and "Traceback" not in err


def test_csv_with_missing_values_is_refused(tmp_path, diabetes, write_csv):
    bad = diabetes.copy()
    bad.loc[bad.index[0], "bmi"] = np.nan
    with pytest.raises(PipelineInputError, match="missing or infinite"):
        train(str(write_csv(bad)), tmp_path / "m")


def test_csv_input_trains_like_the_builtin_data(tmp_path, diabetes, write_csv, trained_dir):
    card = train(str(write_csv(diabetes)), tmp_path / "m")
    reference = json.loads((trained_dir / "model_card.json").read_text())
    assert card["metrics"]["mse"] == pytest.approx(reference["metrics"]["mse"], rel=1e-9)
