from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ml_pipeline import data_checks
from ml_pipeline.data_checks import run_checks


def by_name(results) -> dict:
    return {r.name: r for r in results}


@pytest.fixture(scope="module")
def reference(trained_dir: Path) -> dict:
    return json.loads((trained_dir / "profile.json").read_text())


def test_real_data_passes_every_check_against_its_reference(diabetes, reference):
    results = by_name(run_checks(diabetes, reference=reference))
    assert {name: r.status for name, r in results.items()} == {
        "schema": "passed",
        "missing_values": "passed",
        "row_count": "passed",
        "value_ranges": "passed",
        "duplicates": "passed",
        "target": "passed",
        "distribution_shift": "passed",
    }


def test_without_reference_the_shift_check_is_skipped_not_failed(diabetes):
    results = by_name(run_checks(diabetes))
    assert results["distribution_shift"].status == "skipped"
    assert all(r.passed for r in results.values())


def failing(frame: pd.DataFrame, reference: dict | None) -> set[str]:
    return {r.name for r in run_checks(frame, reference=reference) if not r.passed}


def test_renamed_column_fails_schema(diabetes, reference):
    bad = diabetes.rename(columns={"bmi": "BMI"})
    assert "schema" in failing(bad, reference)
    schema = by_name(run_checks(bad, reference=reference))["schema"]
    assert schema.details["missing"] == ["bmi"] and schema.details["unexpected"] == ["BMI"]


def test_dropped_column_fails_schema_on_count(diabetes, reference):
    assert "schema" in failing(diabetes.drop(columns=["s6"]), reference)


def test_text_column_fails_schema(diabetes):
    bad = diabetes.assign(sex=diabetes["sex"].map(lambda v: "m" if v > 0 else "f"))
    result = by_name(run_checks(bad))["schema"]
    assert not result.passed and result.details["non_numeric"] == ["sex"]


def test_missing_values_fail(diabetes, reference):
    bad = diabetes.copy()
    bad.loc[bad.index[:5], "bp"] = np.nan
    result = by_name(run_checks(bad, reference=reference))["missing_values"]
    assert not result.passed
    assert result.details["missing_counts"]["bp"] == 5
    assert "bp (5 missing" in result.summary


def test_too_few_rows_fail(diabetes, reference):
    assert failing(diabetes.head(20), None) == {"row_count"}


def test_out_of_range_values_fail(diabetes, reference):
    bad = diabetes.copy()
    bad.loc[bad.index[:20], "bmi"] = 5.0  # the scaled features live within about ±0.2
    result = by_name(run_checks(bad, reference=reference))["value_ranges"]
    assert not result.passed
    assert result.details["columns"]["bmi"]["out_of_range"] == 20
    assert "bmi has 20 values" in result.summary


def test_infinite_values_fail_ranges_even_without_reference(diabetes):
    bad = diabetes.copy()
    bad.loc[bad.index[0], "s1"] = np.inf
    assert "value_ranges" in failing(bad, None)


def test_shifted_distribution_fails(diabetes, reference):
    bad = diabetes.copy()
    bad["s5"] = bad["s5"] + 1.5 * bad["s5"].std()
    result = by_name(run_checks(bad, reference=reference))["distribution_shift"]
    assert not result.passed
    entry = result.details["columns"]["s5"]
    assert entry["mean_shift_in_std"] == pytest.approx(1.5, abs=0.2)
    assert entry["psi"] > 0.25
    assert "s5" in result.summary and "bmi" not in result.summary


def test_shift_in_a_categorical_column_is_caught_by_psi(diabetes, reference):
    bad = diabetes.copy()
    values = sorted(bad["sex"].unique())
    bad["sex"] = values[0]  # every row now the same category
    result = by_name(run_checks(bad, reference=reference))["distribution_shift"]
    assert not result.passed and result.details["columns"]["sex"]["psi"] > 0.25


def test_duplicate_rows_fail(diabetes, reference):
    bad = pd.concat([diabetes, diabetes.head(60)], ignore_index=True)
    result = by_name(run_checks(bad, reference=reference))["duplicates"]
    assert not result.passed and result.details["duplicate_rows"] == 60


def test_constant_or_missing_target_fails(diabetes):
    assert "target" in failing(diabetes.assign(target=100.0), None)
    assert "target" in failing(diabetes.drop(columns=["target"]), None)


def test_cli_writes_report_and_exits_0_on_good_data(tmp_path, trained_dir, capsys):
    report = tmp_path / "report.json"
    code = data_checks.main(
        ["--data", "diabetes", "--reference", str(trained_dir / "profile.json"), "--report", str(report)]
    )
    document = json.loads(report.read_text())
    assert code == 0 and document["passed"] is True and document["failed"] == []
    assert document["checks"][0]["name"] == "schema"
    assert all({"name", "passed", "status", "summary", "details"} <= set(c) for c in document["checks"])


def test_cli_exits_1_and_names_each_failed_check(tmp_path, trained_dir, diabetes, write_csv, capsys):
    bad = diabetes.rename(columns={"age": "AGE"})
    bad.loc[bad.index[:3], "bp"] = np.nan
    report = tmp_path / "report.json"
    code = data_checks.main(
        ["--data", str(write_csv(bad)), "--reference", str(trained_dir / "profile.json"), "--report", str(report)]
    )
    out = capsys.readouterr().out
    assert code == 1
    assert "FAILED  schema" in out and "FAILED  missing_values" in out
    assert "check(s) failed: schema, missing_values" in out
    assert json.loads(report.read_text())["failed"] == ["schema", "missing_values"]


@pytest.mark.parametrize(
    "content, message",
    [(None, "not found"), ("", "is empty"), ("a,b,target\n", "has no rows"), (b"\xff\xfe\x00bad", "cannot read")],
)
def test_cli_exits_2_with_one_line_on_unreadable_input(tmp_path, capsys, content, message):
    path = tmp_path / "input.csv"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    code = data_checks.main(["--data", str(path), "--report", str(tmp_path / "r.json")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and message in err and "Traceback" not in err


def test_cli_exits_2_on_unreadable_reference(tmp_path, capsys):
    bad = tmp_path / "profile.json"
    bad.write_text("{not json")
    code = data_checks.main(["--data", "diabetes", "--reference", str(bad), "--report", str(tmp_path / "r.json")])
    assert code == 2 and "not valid JSON" in capsys.readouterr().err
