from __future__ import annotations

import json
import logging
import shutil

import joblib
import numpy as np
import pytest
from sklearn.linear_model import Ridge

from tests.scoring_helpers import load_score_module


@pytest.fixture
def score(trained_dir, monkeypatch):
    monkeypatch.setenv("AZUREML_MODEL_DIR", str(trained_dir))
    monkeypatch.setenv("SCORING_MAX_ROWS", "50")
    module = load_score_module()
    module.init()
    return module


@pytest.fixture
def rows(diabetes) -> list[list[float]]:
    return diabetes.drop(columns=["target"]).to_numpy()[:7].tolist()


def test_valid_request_returns_exactly_model_predict(score, trained_dir, rows):
    expected = joblib.load(trained_dir / "model.joblib").predict(np.array(rows)).tolist()
    assert score.run(json.dumps({"data": rows})) == {"result": expected}


def test_model_is_found_under_name_and_version(tmp_path, trained_dir, monkeypatch, rows):
    nested = tmp_path / "diabetes-model" / "3"
    nested.mkdir(parents=True)
    shutil.copy(trained_dir / "model.joblib", nested / "model.joblib")
    monkeypatch.setenv("AZUREML_MODEL_DIR", str(tmp_path))
    module = load_score_module()
    module.init()
    assert len(module.run(json.dumps({"data": rows}))["result"]) == 7


def test_missing_model_fails_init_with_the_directory_named(tmp_path, monkeypatch):
    monkeypatch.setenv("AZUREML_MODEL_DIR", str(tmp_path))
    module = load_score_module()
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        module.init()


def test_bad_max_rows_setting_fails_init(trained_dir, monkeypatch):
    monkeypatch.setenv("AZUREML_MODEL_DIR", str(trained_dir))
    monkeypatch.setenv("SCORING_MAX_ROWS", "lots")
    with pytest.raises(ValueError, match="SCORING_MAX_ROWS"):
        load_score_module().init()


ROW = [0.01] * 10
BAD_BODIES = {
    "not json": ("{data: nope", "not valid JSON"),
    "not an object": (json.dumps([ROW]), 'with a "data" field'),
    "no data field": (json.dumps({"rows": [ROW]}), 'with a "data" field'),
    "empty": (json.dumps({"data": []}), "non-empty list"),
    "data not a list": (json.dumps({"data": "x"}), "non-empty list"),
    "wrong width": (json.dumps({"data": [[1.0, 2.0]]}), "rows of 10 numbers; got shape 1x2"),
    "flat list": (json.dumps({"data": ROW}), "got shape 10"),
    "ragged rows": (json.dumps({"data": [ROW, ROW[:9]]}), "rows differ in length"),
    "string value": (json.dumps({"data": [[*ROW[:9], "7"]]}), 'found "7" (str)'),
    "null value": (json.dumps({"data": [[*ROW[:9], None]]}), "found null"),
    "boolean value": (json.dumps({"data": [[*ROW[:9], True]]}), "found true (bool)"),
    "nan": ('{"data": [[NaN, 0, 0, 0, 0, 0, 0, 0, 0, 0]]}', "NaN or Infinity"),
    "infinity": ('{"data": [[Infinity, 0, 0, 0, 0, 0, 0, 0, 0, 0]]}', "NaN or Infinity"),
    "too many rows": (json.dumps({"data": [ROW] * 51}), "51 rows; at most 50"),
}


@pytest.mark.parametrize("case", list(BAD_BODIES))
def test_bad_input_is_a_400_with_a_clear_message(score, case):
    body, message = BAD_BODIES[case]
    response = score.run(body)
    assert response.status_code == 400
    assert message in json.loads(response.get_data())["error"]


def test_true_inside_other_fields_does_not_trip_the_boolean_check(score):
    assert len(score.run(json.dumps({"data": [ROW], "explain": True}))["result"]) == 1


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[dict] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(record.getMessage()))


def test_each_request_logs_one_structured_line(score, rows):
    collect = Collect()
    score.logger.addHandler(collect)
    try:
        score.run(json.dumps({"data": rows}), {"X-Request-Id": "req-42"})
        score.run("not json")
    finally:
        score.logger.removeHandler(collect)
    first, second = collect.lines
    assert (first["event"], first["request_id"], first["rows"], first["status"]) == ("score", "req-42", 7, 200)
    assert (second["rows"], second["status"]) == (0, 400) and len(second["request_id"]) == 36
    assert first["ms"] >= 0 and second["ms"] >= 0


# ---------------------------------------------------------------- classifiers and the fast path


def _serve(estimator, directory, monkeypatch):
    joblib.dump(estimator, directory / "model.joblib")
    monkeypatch.setenv("AZUREML_MODEL_DIR", str(directory))
    module = load_score_module()
    collect = Collect()
    module.logger.addHandler(collect)
    try:
        module.init()
    finally:
        module.logger.removeHandler(collect)
    return module, collect.lines[0]["path"]


@pytest.fixture(scope="module")
def breast_cancer():
    from sklearn.datasets import load_breast_cancer

    return load_breast_cancer(return_X_y=True)


@pytest.fixture(scope="module")
def iris_named():
    from sklearn.datasets import load_iris

    data = load_iris()
    return data.data, data.target_names[data.target]  # string labels: "setosa", ...


def test_a_binary_classifier_answers_its_labels_exactly_as_predict(breast_cancer, tmp_path, monkeypatch):
    from sklearn.linear_model import LogisticRegression

    x, y = breast_cancer
    model = LogisticRegression(max_iter=10_000).fit(x, y)
    score, path = _serve(model, tmp_path, monkeypatch)
    answer = score.run(json.dumps({"data": x[:60].tolist()}))
    assert path.startswith("linear")
    assert answer == {"result": model.predict(x[:60]).tolist()}
    assert set(answer["result"]) == {0, 1} and all(type(label) is int for label in answer["result"])


def test_probabilities_come_with_the_class_names_on_request(iris_named, tmp_path, monkeypatch):
    from sklearn.linear_model import LogisticRegression

    x, y = iris_named
    model = LogisticRegression(max_iter=10_000).fit(x, y)
    score, path = _serve(model, tmp_path, monkeypatch)
    rows = x[::10]
    answer = score.run(json.dumps({"data": rows.tolist(), "probabilities": True}))
    assert path.startswith("linear")
    assert answer["result"] == model.predict(rows).tolist() and {"setosa", "virginica"} <= set(answer["result"])
    assert answer["classes"] == ["setosa", "versicolor", "virginica"]
    assert answer["probabilities"] == model.predict_proba(rows).tolist()
    assert score.run(json.dumps({"data": rows.tolist(), "probabilities": False})).keys() == {"result"}


def test_a_regressor_refuses_probabilities_and_the_field_must_be_a_boolean(score):
    for body, message in (
        ({"data": [ROW], "probabilities": True}, "not a classifier"),
        ({"data": [ROW], "probabilities": "yes"}, "must be true or false"),
    ):
        response = score.run(json.dumps(body))
        assert response.status_code == 400 and message in json.loads(response.get_data())["error"]


def test_the_default_regressor_takes_the_fast_path_and_answers_bit_for_bit(trained_dir, tmp_path, monkeypatch, rows):
    model = joblib.load(trained_dir / "model.joblib")
    score, path = _serve(model, tmp_path, monkeypatch)
    many = np.random.default_rng(7).normal(scale=0.05, size=(500, 10))
    assert path.startswith("linear")
    for batch in (rows[:1], rows, many.tolist()):
        assert score.run(json.dumps({"data": batch}))["result"] == model.predict(np.array(batch)).tolist()


def test_an_estimator_with_its_own_predict_keeps_predict(breast_cancer, tmp_path, monkeypatch):
    from sklearn.tree import DecisionTreeClassifier

    x, y = breast_cancer
    tree = DecisionTreeClassifier(random_state=0, max_depth=3).fit(x, y)
    score, path = _serve(tree, tmp_path, monkeypatch)
    assert path == "predict()"
    assert score.run(json.dumps({"data": x[:20].tolist()}))["result"] == tree.predict(x[:20]).tolist()

    shifted = ShiftedRidge().fit(x, y.astype(float))  # a linear model subclassed outside scikit-learn
    assert score.fast_predictor(shifted) is None
    (tmp_path / "shifted").mkdir()
    score, path = _serve(shifted, tmp_path / "shifted", monkeypatch)
    assert path == "predict()"
    assert score.run(json.dumps({"data": x[:3].tolist()}))["result"] == shifted.predict(x[:3]).tolist()


def test_the_probe_at_init_keeps_predict_when_the_fast_path_would_differ(trained_dir, score):
    model = joblib.load(trained_dir / "model.joblib")
    fast = score.fast_predictor(model)
    assert fast is not None and score._same_as_predict(fast, model, 10)
    assert not score._same_as_predict(lambda rows: fast(rows) + 1e-12, model, 10)


class ShiftedRidge(Ridge):  # at module level, so joblib pickles it by reference
    def predict(self, X):
        return super().predict(X) + 1.0
