from __future__ import annotations

import json
import logging
import shutil

import joblib
import numpy as np
import pytest

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
