"""The shared HTTP endpoint tester's verdicts, over a fake transport (no socket, no server).

The same tester against real servers: tests/integration/test_local_testing.py (azmlinfsrv) and
tests/integration/test_azure_testing.py (a stand-in for the AKS endpoint).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import joblib
import pytest

from functions.domain.refs import Endpoint, ModelRef
from platforms.common.endpoint_tests import NOT_VALIDATION, HttpEndpointTester, health_url
from tests.doubles.http_client import Answer, FakeHttp, Sent
from tests.scoring_helpers import load_score_module

ENDPOINT = Endpoint("staging-rel-1", "http://staging.test:5001/score", "rel-1")


def checks_of(report: Any) -> dict[str, dict[str, Any]]:
    return {check["name"]: check for check in report.checks}


@pytest.fixture(scope="module")
def scores(trained_dir: Path) -> Callable[..., Answer]:
    """An answer that behaves like azmlinfsrv with score.py: GET / is healthy, POST /score scores or says 400;
    ``malformed`` overrides what a body score.py refuses gets."""
    score = load_score_module()
    model = joblib.load(trained_dir / "model.joblib")
    vars(score).update(model=model, n_features=int(model.n_features_in_))

    def with_answers(malformed: tuple[int, Any] = (400, {"error": "bad input"})) -> Answer:
        def answer(sent: Sent) -> tuple[int, Any]:
            if sent.method == "GET":
                return 200, "Healthy"
            try:
                rows = score.parse_request(sent.body.decode())[0]
            except score.BadRequest:
                return malformed
            return 200, {"result": model.predict(rows).tolist()}

        return answer

    return with_answers


@pytest.fixture
def model(trained_dir: Path) -> ModelRef:
    return ModelRef("diabetes-model", "1", str(trained_dir))


def test_health_url_is_the_server_root():
    assert health_url("http://127.0.0.1:5101/score") == "http://127.0.0.1:5101/"
    assert health_url("https://x.azurecontainer.io/score?verbose=true") == "https://x.azurecontainer.io/"


def test_a_serving_endpoint_passes_and_is_asked_what_the_checks_say(scores, model):
    http = FakeHttp(scores())
    tester = HttpEndpointTester(rows=20, http=http)

    smoke, integration = tester.smoke(ENDPOINT), tester.integration(ENDPOINT, model)

    assert smoke.passed and integration.passed, (smoke.summary, integration.summary)
    assert [(sent.method, sent.url) for sent in http.sent] == [
        ("GET", "http://staging.test:5001/"),
        *[("POST", ENDPOINT.scoring_url)] * 4,
    ]
    assert len(http.sent[2].json()["data"]) == 20
    assert http.sent[3].body == b'{"data": [[1, 2]]}'


@pytest.mark.parametrize("status", sorted(NOT_VALIDATION))
def test_a_refusal_before_the_scoring_script_is_not_a_rejected_input(scores, model, status):
    tester = HttpEndpointTester(http=FakeHttp(lambda sent: (status, {"error": "refused"})))

    checks = checks_of(tester.integration(ENDPOINT, model))

    for name in ("wrong_shape_rejected", "non_json_rejected"):
        assert not checks[name]["passed"]
        assert f"-> {status}" in checks[name]["detail"]
        assert f"({NOT_VALIDATION[status]}: refused before the scoring script saw it)" in checks[name]["detail"]


def test_a_server_error_for_malformed_input_is_not_a_rejection(scores, model):
    tester = HttpEndpointTester(http=FakeHttp(scores(malformed=(500, {"error": "Traceback ..."}))))

    report = tester.integration(ENDPOINT, model)

    checks = checks_of(report)
    assert checks["predictions_match_model"]["passed"]
    assert not checks["wrong_shape_rejected"]["passed"] and not checks["non_json_rejected"]["passed"]
    assert "-> 500" in checks["wrong_shape_rejected"]["detail"]
    assert "(expected a 4xx)" in checks["wrong_shape_rejected"]["detail"]
    assert "2/3 checks failed" in report.summary


@pytest.mark.parametrize("result", [[""], [None], [{"label": 1}], "0.5", []])
def test_answers_that_are_not_one_number_or_label_per_row_fail(model, result):
    tester = HttpEndpointTester(rows=1, http=FakeHttp(lambda sent: (200, {"result": result})))

    smoke = checks_of(tester.smoke(ENDPOINT))
    integration = checks_of(tester.integration(ENDPOINT, model))

    assert smoke["health"]["passed"]
    assert not smoke["score_one_row"]["passed"]
    assert 'expected {"result": [a number or a class label]}' in smoke["score_one_row"]["detail"]
    assert not integration["predictions_match_model"]["passed"]


def test_an_answer_that_is_not_json_is_a_failed_check_not_an_exception(model):
    tester = HttpEndpointTester(http=FakeHttp(lambda sent: (200, b"<html>a proxy's error page</html>")))

    smoke = tester.smoke(ENDPOINT)

    assert not smoke.passed
    assert "<html>a proxy's error page</html>" in checks_of(smoke)["score_one_row"]["detail"]


def test_a_regressor_answering_labels_fails_integration(model):
    tester = HttpEndpointTester(rows=1, http=FakeHttp(lambda sent: (200, {"result": ["yes"]})))
    assert checks_of(tester.smoke(ENDPOINT))["score_one_row"]["passed"]  # a label is a fine answer in itself
    assert not checks_of(tester.integration(ENDPOINT, model))["predictions_match_model"]["passed"]


@pytest.fixture(scope="module")
def classifier_answers(classifier_dir: Path) -> Callable[..., Answer]:
    """score.py with the classifier behind it: labels, and probabilities with class names on request;
    ``tamper`` changes the answer it would give."""
    score = load_score_module()
    model = joblib.load(classifier_dir / "model.joblib")
    vars(score).update(model=model, n_features=int(model.n_features_in_))

    def with_answers(tamper: Callable[[dict[str, Any]], None] = lambda answer: None) -> Answer:
        def answer(sent: Sent) -> tuple[int, Any]:
            if sent.method == "GET":
                return 200, "Healthy"
            try:
                rows, probabilities = score.parse_request(sent.body.decode())
            except score.BadRequest:
                return 400, {"error": "bad input"}
            document: dict[str, Any] = {"result": model.predict(rows).tolist()}
            if probabilities:
                document.update(classes=model.classes_.tolist(), probabilities=model.predict_proba(rows).tolist())
            tamper(document)
            return 200, document

        return answer

    return with_answers


@pytest.fixture
def classifier(classifier_dir: Path) -> ModelRef:
    return ModelRef("cancer-model", "1", str(classifier_dir))


def test_a_classifier_endpoint_passes_with_labels_and_probabilities_equal_to_the_models(classifier_answers, classifier):
    http = FakeHttp(classifier_answers())
    tester = HttpEndpointTester(data="breast_cancer", rows=20, http=http)

    checks = checks_of(tester.integration(ENDPOINT, classifier))

    assert checks["predictions_match_model"]["passed"], checks["predictions_match_model"]
    assert "20 labels equal the model's; probabilities of 0, 1" in checks["predictions_match_model"]["detail"]
    asked = [json.loads(sent.body) for sent in http.sent if sent.method == "POST" and sent.body.startswith(b"{")]
    assert any(body.get("probabilities") is True and len(body["data"]) == 20 for body in asked)


def flip_first_label(answer: dict[str, Any]) -> None:
    answer["result"][0] = 1 - answer["result"][0]


def nudge_a_probability(answer: dict[str, Any]) -> None:
    if "probabilities" in answer:
        answer["probabilities"][3][0] += 1e-6


def rename_classes(answer: dict[str, Any]) -> None:
    if "classes" in answer:
        answer["classes"] = ["benign", "malignant"]


@pytest.mark.parametrize(
    "tamper, said",
    [
        (flip_first_label, "labels differ from the model's (1 of 20)"),
        (nudge_a_probability, "probabilities differ from the model's (max |diff| 1e-06"),
        (rename_classes, "classes ['benign', 'malignant'] are not the model's [0, 1]"),
    ],
)
def test_a_classifier_endpoint_that_answers_otherwise_fails(classifier_answers, classifier, tamper, said):
    tester = HttpEndpointTester(data="breast_cancer", rows=20, http=FakeHttp(classifier_answers(tamper)))
    check = checks_of(tester.integration(ENDPOINT, classifier))["predictions_match_model"]
    assert not check["passed"] and said in check["detail"]


def test_boolean_labels_are_a_classifiers_answer_in_the_smoke_test():
    tester = HttpEndpointTester(rows=1, http=FakeHttp(lambda sent: (200, {"result": [True]})))
    assert checks_of(tester.smoke(ENDPOINT))["score_one_row"]["passed"]
