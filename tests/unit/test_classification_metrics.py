"""Classification metrics, the stratified split and the whole-resample bootstrap, against scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as sk

from ml_pipeline.bootstrap import bootstrap_means, bootstrap_statistic
from ml_pipeline.metrics import (
    aligned_probabilities,
    balanced_accuracy,
    class_positions,
    classification_metrics,
    confusion_matrix,
    per_row_brier,
    per_row_log_loss,
    roc_auc,
)
from ml_pipeline.split import make_split, make_stratified_split


@pytest.mark.parametrize("n_classes", [2, 3, 5])
def test_each_metric_equals_scikit_learns(n_classes):
    rng = np.random.default_rng(n_classes)
    truth = rng.integers(0, n_classes, 300)
    probabilities = rng.dirichlet(np.ones(n_classes), 300)
    probabilities[:5] = np.round(probabilities[:5], 1)  # ties, which AUC counts as a half
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    predicted = probabilities.argmax(axis=1)

    got = classification_metrics(probabilities, predicted, truth)

    labels = list(range(n_classes))
    assert got["log_loss"] == pytest.approx(sk.log_loss(truth, probabilities, labels=labels), rel=1e-12)
    assert got["brier"] == pytest.approx(
        sk.brier_score_loss(truth, probabilities[:, 1] if n_classes == 2 else probabilities, labels=labels),
        rel=1e-12,
    )
    assert got["accuracy"] == sk.accuracy_score(truth, predicted)
    assert got["balanced_accuracy"] == pytest.approx(sk.balanced_accuracy_score(truth, predicted), rel=1e-12)
    expected_auc = (
        sk.roc_auc_score(truth, probabilities[:, 1])
        if n_classes == 2
        else sk.roc_auc_score(truth, probabilities, multi_class="ovr", average="macro")
    )
    assert got["roc_auc"] == pytest.approx(expected_auc, rel=1e-12)


def test_per_row_values_average_to_the_metrics():
    probabilities = np.array([[0.9, 0.1], [0.2, 0.8], [0.5, 0.5], [1.0, 0.0]])
    truth = np.array([0, 1, 0, 1])
    log_loss = per_row_log_loss(probabilities, truth)
    # The last row gives the true class probability 0: clipped to machine epsilon, not infinite.
    assert np.isfinite(log_loss).all() and log_loss[-1] == pytest.approx(-np.log(np.finfo(float).eps))
    assert per_row_brier(probabilities, truth).tolist() == pytest.approx([0.01, 0.04, 0.25, 1.0])


def test_auc_of_one_class_is_undefined_not_an_error():
    assert np.isnan(roc_auc(np.array([[0.3, 0.7], [0.6, 0.4]]), np.array([1, 1])))


def test_labels_map_onto_classes_and_unknown_ones_are_refused():
    classes = np.array(["cat", "dog", "eel"])
    assert class_positions(np.array(["eel", "cat"]), classes).tolist() == [2, 0]
    with pytest.raises(ValueError):
        class_positions(np.array(["fox"]), classes)


def test_a_class_a_model_never_saw_gets_probability_zero():
    aligned = aligned_probabilities(np.array([[0.25, 0.75]]), np.array(["cat", "eel"]), np.array(["cat", "dog", "eel"]))
    assert aligned.tolist() == [[0.25, 0.0, 0.75]]


def test_confusion_matrix_rows_are_true_classes():
    matrix = confusion_matrix(np.array([0, 0, 1, 1, 1]), np.array([0, 1, 1, 1, 0]), np.array(["no", "yes"]))
    assert matrix["labels"] == ["no", "yes"] and matrix["counts"] == [[1, 1], [1, 2]]
    assert balanced_accuracy(np.array([0, 0, 1, 1, 1]), np.array([0, 1, 1, 1, 0]), 2) == pytest.approx(
        (1 / 2 + 2 / 3) / 2
    )


def test_whole_resample_statistics_draw_the_rows_bootstrap_means_draws():
    values = np.random.default_rng(3).normal(size=(257, 2))
    means = bootstrap_means(values, resamples=130, seed=11, workers=2)
    resampled = bootstrap_statistic(lambda rows: values[rows].mean(axis=0), 257, resamples=130, seed=11)
    assert resampled.shape == (130, 2)
    np.testing.assert_allclose(resampled, means, rtol=0, atol=1e-14)


def test_stratified_split_holds_out_each_class_in_proportion_and_is_seeded():
    labels = np.array([0] * 90 + [1] * 10 + [2] * 3 + [3])  # class 3 has one row: it can only train
    split = make_stratified_split(labels, seed=5, holdout_fraction=0.2)
    held = labels[list(split.holdout_index)]
    assert np.bincount(held, minlength=4).tolist() == [18, 2, 1, 0]
    assert split == make_stratified_split(labels, seed=5, holdout_fraction=0.2)
    assert split != make_stratified_split(labels, seed=6, holdout_fraction=0.2)
    assert set(split.train_index) | set(split.holdout_index) == set(range(labels.size))


def test_a_plain_split_can_miss_a_rare_class_which_is_why_classifiers_stratify():
    labels = np.array([0] * 98 + [1] * 2)
    missed = [seed for seed in range(20) if not (labels[list(make_split(100, seed).holdout_index)] == 1).any()]
    assert missed  # some seeds hold out no row of class 1
    for seed in missed:
        assert (labels[list(make_stratified_split(labels, seed).holdout_index)] == 1).sum() == 1
