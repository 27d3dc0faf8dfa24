"""Training, data checks and evaluation of classifiers, through the same functions and CLIs as regressors."""

from __future__ import annotations

import json
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as sk
from sklearn.datasets import load_iris

from ml_pipeline import data_checks, evaluate
from ml_pipeline import train as train_module
from ml_pipeline.data_checks import run_checks
from ml_pipeline.dataset import load_dataset
from ml_pipeline.errors import PipelineInputError
from ml_pipeline.estimators import build_estimator, resolve_params
from ml_pipeline.train import train


def by_name(results) -> dict:
    return {r.name: r for r in results}


@pytest.fixture(scope="module")
def cancer() -> pd.DataFrame:
    return load_dataset("breast_cancer")


@pytest.fixture(scope="module")
def worse_classifier(tmp_path_factory) -> Path:
    output = tmp_path_factory.mktemp("worse-classifier")
    train("breast_cancer", output, overrides={"C": 1e-4})
    return output


def iris_csv(path: Path) -> Path:
    """Three classes with string labels, as a CSV would hold them."""
    iris = load_iris(as_frame=True)
    frame = iris.data.copy()
    frame["target"] = np.asarray(iris.target_names)[iris.target]
    frame.to_csv(path, index=False)
    return path


def test_the_card_records_task_classes_holdout_metrics_and_confusion_matrix(classifier_dir, cancer):
    card = json.loads((classifier_dir / "model_card.json").read_text())
    assert card["task"] == "classification" and card["classes"] == [0, 1]
    assert card["estimator"] == "sklearn.linear_model.LogisticRegression"
    assert set(card["metrics"]) == {"log_loss", "brier", "accuracy", "balanced_accuracy", "roc_auc"}
    model = joblib.load(classifier_dir / "model.joblib")
    holdout = card["split"]["holdout_index"]
    x = cancer.drop(columns="target").to_numpy()[holdout]
    y = cancer["target"].to_numpy()[holdout]
    assert card["metrics"]["log_loss"] == pytest.approx(sk.log_loss(y, model.predict_proba(x)), rel=1e-12)
    assert card["metrics"]["roc_auc"] == pytest.approx(sk.roc_auc_score(y, model.predict_proba(x)[:, 1]), rel=1e-12)
    assert card["confusion_matrix"]["counts"] == sk.confusion_matrix(y, model.predict(x)).tolist()
    # Stratified: the holdout keeps the data's class shares (212 / 357 rows).
    assert np.bincount(y).tolist() == [round(212 * 0.2), round(357 * 0.2)]


def test_string_labels_train_a_multiclass_model_with_macro_auc(tmp_path):
    card = train(str(iris_csv(tmp_path / "iris.csv")), tmp_path / "model", task="classification")
    assert card["classes"] == ["setosa", "versicolor", "virginica"]
    assert card["confusion_matrix"]["labels"] == card["classes"]
    assert 0.9 < card["metrics"]["roc_auc"] <= 1.0
    profile = json.loads((tmp_path / "model" / "profile.json").read_text())
    assert profile["columns"]["target"]["kind"] == "label" and profile["task"] == "classification"


@pytest.mark.parametrize(
    "task, estimator, message",
    [
        ("classification", "sklearn.linear_model.Ridge", "not a scikit-learn classifier"),
        ("regression", "sklearn.linear_model.LogisticRegression", "not a scikit-learn regressor"),
        ("classification", "sklearn.svm.SVC", "no class probabilities"),
    ],
)
def test_an_estimator_that_does_not_fit_the_task_is_refused(task, estimator, message):
    with pytest.raises(PipelineInputError, match=message):
        build_estimator(resolve_params({"estimator": estimator}, task=task), seed=1, task=task)


def test_a_classifier_that_offers_probabilities_when_asked_is_accepted():
    spec = resolve_params({"estimator": "sklearn.svm.SVC", "params": {"probability": True}}, task="classification")
    assert build_estimator(spec, seed=1, task="classification").probability is True


def test_the_task_default_is_logistic_regression_and_overrides_apply():
    assert resolve_params(None, {"C": 0.5}, task="classification") == {
        "estimator": "sklearn.linear_model.LogisticRegression",
        "params": {"max_iter": 10000, "C": 0.5},
    }


def test_cli_estimator_flag_names_the_class(tmp_path, capsys):
    code = train_module.main(
        ["--data", "breast_cancer", "--output", str(tmp_path / "m"), "--estimator",
         "sklearn.ensemble.RandomForestClassifier", "--param", "n_estimators=20"]
    )  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert "RandomForestClassifier" in out and "log_loss=" in out and "roc_auc=" in out
    card = json.loads((tmp_path / "m" / "model_card.json").read_text())
    assert card["params"] == {"n_estimators": 20}


def test_labels_pass_the_checks_against_their_own_reference(cancer, classifier_dir):
    reference = json.loads((classifier_dir / "profile.json").read_text())
    results = by_name(run_checks(cancer, reference=reference, task="classification"))
    assert all(r.passed for r in results.values()), {n: r.summary for n, r in results.items() if not r.passed}
    assert results["target"].summary.startswith("2 classes")
    assert results["distribution_shift"].status == "passed"


def test_an_unseen_class_and_a_class_balance_shift_fail_the_target_check(cancer, classifier_dir):
    reference = json.loads((classifier_dir / "profile.json").read_text())
    shifted = pd.concat([cancer[cancer.target == 1], cancer[cancer.target == 0].head(20)])
    shifted.loc[shifted.index[:3], "target"] = 2
    target = by_name(run_checks(shifted, reference=reference, task="classification"))["target"]
    assert target.status == "failed"
    assert "classes the reference never had: 2" in target.summary
    assert "class proportions moved" in target.summary and target.details["psi"] > 0.25


def test_a_rare_class_fails_the_balance_limit(cancer):
    rare = pd.concat([cancer[cancer.target == 1], cancer[cancer.target == 0].head(2)])
    target = by_name(run_checks(rare, task="classification"))["target"]
    assert target.status == "failed" and "class balance: 0 (0.56%) below 1.00%" in target.summary


def test_string_labels_are_not_a_schema_failure_for_classification_only(tmp_path):
    path = iris_csv(tmp_path / "iris.csv")
    assert data_checks.main(["--data", str(path), "--task", "classification", "--report", str(tmp_path / "r")]) == 0
    assert data_checks.main(["--data", str(path), "--report", str(tmp_path / "r2")]) == 1
    failed = json.loads((tmp_path / "r2").read_text())["failed"]
    assert "schema" in failed and "target" in failed


def test_a_clearly_worse_classifier_loses_on_every_paired_metric(classifier_dir, worse_classifier):
    report = evaluate.evaluate(worse_classifier, classifier_dir, "breast_cancer", resamples=400)
    assert report["task"] == "classification" and report["n"] == 113
    differences = report["differences"]
    for loss in ("log_loss", "brier"):
        assert differences[loss]["direction"] == "lower_is_better"
        assert differences[loss]["intervals"]["0.95"][0] > 0  # the worse model's loss is higher, surely
    assert differences["roc_auc"]["direction"] == "higher_is_better" and differences["roc_auc"]["estimate"] < 0
    assert differences["roc_auc"]["undefined_resamples"] == 0
    assert report["bootstrap"]["whole_resample"] == ["roc_auc", "balanced_accuracy"]
    candidate, champion = report["metrics"]["candidate"], report["metrics"]["champion"]
    assert differences["log_loss"]["estimate"] == pytest.approx(candidate["log_loss"] - champion["log_loss"])
    assert report["confusion_matrices"]["champion"]["labels"] == [0, 1]


def test_identical_classifiers_differ_by_exactly_zero(classifier_dir):
    report = evaluate.evaluate(classifier_dir, classifier_dir, "breast_cancer", resamples=100)
    for entry in report["differences"].values():
        assert entry["estimate"] == 0 and entry["intervals"]["0.95"] == [0.0, 0.0]


def test_a_champion_of_the_other_task_is_a_clear_error(classifier_dir, trained_dir, capsys, tmp_path):
    code = evaluate.main(
        ["--candidate", str(classifier_dir), "--champion", str(trained_dir), "--data", "breast_cancer",
         "--output", str(tmp_path / "e.json")]
    )  # fmt: skip
    assert code == 2
    assert "the champion is a regression model and the candidate a classification one" in capsys.readouterr().err


def test_the_evaluate_cli_prints_the_log_loss_difference(classifier_dir, worse_classifier, tmp_path, capsys):
    code = evaluate.main(
        ["--candidate", str(worse_classifier), "--champion", str(classifier_dir), "--data", "breast_cancer",
         "--output", str(tmp_path / "e.json"), "--resamples", "200"]
    )  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert "candidate log_loss=" in out and "champion log_loss=" in out and "95% CI [+" in out


def test_the_gate_rejects_the_worse_classifier_on_log_loss_with_its_evidence(classifier_dir, worse_classifier):
    from functions.domain.gate import GatePolicy, decide

    report = evaluate.evaluate(worse_classifier, classifier_dir, "breast_cancer", resamples=400)
    decision = decide(report, GatePolicy.for_task({}, "classification"))
    assert not decision.promote and decision.reason.startswith("not better: log_loss improvement -")
    assert decision.evidence["interval"][1] < 0 and decision.evidence["candidate"] > decision.evidence["champion"]
    better = decide(evaluate.evaluate(classifier_dir, worse_classifier, "breast_cancer", resamples=400),
                    GatePolicy.for_task({"metric": "roc_auc"}, "classification"))  # fmt: skip
    assert better.evidence["metric"] == "roc_auc" and better.evidence["improvement"] > 0


def relabelled(target: Path, labels: dict) -> Path:
    """The breast_cancer data with its labels renamed, trained as a classifier into ``target``."""
    frame = load_dataset("breast_cancer")
    frame["target"] = frame["target"].map(labels)
    path = target.parent / f"{target.name}.csv"
    frame.to_csv(path, index=False)
    train(str(path), target, task="classification")
    return path


def test_a_reference_of_the_other_task_fails_the_target_check_clearly(cancer, classifier_dir, trained_dir, diabetes):
    classifier_profile = json.loads((classifier_dir / "profile.json").read_text())
    regressor_profile = json.loads((trained_dir / "profile.json").read_text())
    as_regression = by_name(run_checks(cancer, reference=classifier_profile, task="regression"))
    assert as_regression["target"].status == "failed"
    assert "the reference profile is a classification model's and the task is regression" in (
        as_regression["target"].summary
    )
    as_classification = by_name(run_checks(diabetes, reference=regressor_profile, task="classification"))
    assert "a regression model's and the task is classification" in as_classification["target"].summary


def test_labels_of_another_type_or_name_than_the_champions_are_a_clear_error(classifier_dir, tmp_path):
    named = relabelled(tmp_path / "named", {0: "malignant", 1: "benign"})
    with pytest.raises(PipelineInputError, match="class labels are of different types"):
        evaluate.evaluate(classifier_dir, tmp_path / "named", "breast_cancer", resamples=50)
    relabelled(tmp_path / "renamed", {0: "m", 1: "b"})
    with pytest.raises(PipelineInputError, match="do not include the holdout's benign, malignant"):
        evaluate.evaluate(tmp_path / "named", tmp_path / "renamed", str(named), resamples=50)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # 30 arbitrary rows relabelled
def test_a_champion_with_an_extra_class_leaves_the_candidates_brier_on_the_binary_scale(classifier_dir, tmp_path):
    frame = load_dataset("breast_cancer")
    frame.loc[frame.index[:30], "target"] = 2
    path = tmp_path / "three.csv"
    frame.to_csv(path, index=False)
    train(str(path), tmp_path / "three", task="classification")
    from ml_pipeline.evaluate import ClassifierOutput, compare_classifiers

    card = json.loads((classifier_dir / "model_card.json").read_text())
    holdout = card["split"]["holdout_index"]
    x = frame.drop(columns="target").to_numpy()[holdout]
    y = load_dataset("breast_cancer")["target"].to_numpy()[holdout]

    def output(directory: Path) -> ClassifierOutput:
        model = joblib.load(directory / "model.joblib")
        return ClassifierOutput(model.classes_, model.predict_proba(x), model.predict(x))

    report = compare_classifiers(y, output(classifier_dir), output(tmp_path / "three"), resamples=50)
    assert report["metrics"]["candidate"]["brier"] == pytest.approx(card["metrics"]["brier"], rel=1e-12)


def test_an_estimator_that_needs_arguments_and_a_params_list_are_one_line_errors(tmp_path, capsys):
    with pytest.raises(PipelineInputError, match="cannot be built from parameters alone"):
        build_estimator(resolve_params({"estimator": "sklearn.ensemble.VotingClassifier"}), 1, "classification")
    params = tmp_path / "params.json"
    params.write_text('["a"]')
    code = train_module.main(["--data", "breast_cancer", "--output", str(tmp_path / "m"), "--params", str(params),
                              "--estimator", "sklearn.linear_model.LogisticRegression"])  # fmt: skip
    assert code == 2 and "params file must hold a JSON object" in capsys.readouterr().err


def test_a_continuous_target_as_classification_says_what_is_likely_wrong(tmp_path):
    with pytest.raises(PipelineInputError, match="is the target continuous"):
        frame = load_dataset("diabetes")
        frame["target"] = frame["target"] + np.arange(len(frame)) * 1e-3  # every value unique
        path = tmp_path / "continuous.csv"
        frame.to_csv(path, index=False)
        train(str(path), tmp_path / "m", task="classification")
