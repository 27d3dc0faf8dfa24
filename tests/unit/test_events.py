from __future__ import annotations

import pytest

from functions.domain import events as ev
from functions.domain import ids
from tests import payloads as p


def as_cloud_event(event: dict) -> dict:
    return p.cloud_event(event["eventType"], event["subject"], event["data"], event["topic"], event_id=event["id"])


BOTH = pytest.mark.parametrize("schema", [lambda e: e, as_cloud_event], ids=["eventgrid", "cloudevents"])


@BOTH
def test_build_completed(schema):
    event = ev.parse_event(schema(p.build_completed("1234", parameters={"alpha": 0.1})))
    assert isinstance(event, ev.BuildCompleted)
    assert (event.build_id, event.result, event.branch, event.repository) == (
        "1234", "succeeded", "refs/heads/main", "org/repo",
    )  # fmt: skip
    assert event.commit.startswith("3f2a9c1d") and event.requested_by == "alice@example.com"
    assert event.parameters == {"alpha": 0.1} and event.succeeded
    assert event.release_id == "rel-generic-1234"


def test_build_completed_needs_only_build_id_and_result():
    event = ev.parse_event(
        p.event_grid("MLOps.BuildCompleted", "b", {"buildId": 7, "result": "partiallySucceeded"}, "t")
    )
    assert isinstance(event, ev.BuildCompleted)
    assert event.build_id == "7" and event.succeeded and event.parameters == {}


@BOTH
def test_run_completed_camel_case(schema):
    event = ev.parse_event(schema(p.run_completed("job-1", "rel-1")))
    assert isinstance(event, ev.RunFinished) and event.succeeded
    assert event.run_id == "job-1" and event.release_id == "rel-1" and event.experiment_name == "diabetes-retraining"


@BOTH
def test_run_status_changed(schema):
    event = ev.parse_event(schema(p.run_status_changed("job-1", "rel-1", "Canceled")))
    assert isinstance(event, ev.RunFinished)
    assert event.failed and event.status == "Canceled"


@BOTH
@pytest.mark.parametrize("version", [20, "20"])
def test_model_registered_pascal_case_with_number_or_string_version(schema, version):
    event = ev.parse_event(schema(p.model_registered(version, "rel-1")))
    assert isinstance(event, ev.ModelRegistered)
    assert (event.model_name, event.model_version, event.release_id) == ("diabetes-model", "20", "rel-1")


def test_model_registered_sample_from_azure_docs():
    sample = {
        "source": "/subscriptions/{subscription-id}/resourceGroups/{resource-group-name}/providers/"
        "Microsoft.MachineLearningServices/workspaces/{workspace-name}",
        "subject": "models/sklearn_regression_model:20",
        "type": "Microsoft.MachineLearningServices.ModelRegistered",
        "time": "2017-06-26T18:41:00.9584103Z",
        "id": "831e1650-001e-001b-66ab-eeb76e069631",
        "data": {
            "ModelName": "sklearn_regression_model",
            "ModelVersion": 20,
            "ModelTags": {"area": "diabetes", "type": "regression"},
            "ModelProperties": {"type": "test"},
        },
        "specversion": "1.0",
    }
    event = ev.parse_event(sample)
    assert isinstance(event, ev.ModelRegistered)
    assert event.model_version == "20" and event.release_id is None


@BOTH
def test_dataset_drift(schema):
    data = {
        "DataDriftId": "01d29aa4-e6a4-470a-9ef3-66660d21f8ef",
        "DataDriftName": "myDriftMonitor",
        "RunId": "01d29aa4_1592941035",
        "BaseDatasetId": "3c56d136-0f64-4657-a0e8-5162089a88a3",
        "TargetDatasetId": "d7e74d2e-c972-4266-b5fb-6c9c182d2a74",
        "DriftCoefficient": 0.83,
        "StartTime": "2020-06-15T00:00:00+00:00",
        "EndTime": "2020-06-22T00:00:00+00:00",
    }
    event = ev.parse_event(
        schema(p.event_grid("Microsoft.MachineLearningServices.DatasetDriftDetected", "d", data, p.ML_TOPIC))
    )
    assert isinstance(event, ev.DriftDetected) and event.drift_coefficient == 0.83


@BOTH
def test_image_pushed_and_deleted(schema):
    pushed = ev.parse_event(schema(p.image_pushed("3-rel-1234")))
    assert isinstance(pushed, ev.ImageEvent) and pushed.action == "push"
    assert (pushed.repository, pushed.tag, pushed.release_id) == ("diabetes-scoring", "3-rel-1234", "rel-1234")
    assert pushed.digest.startswith("sha256:")
    deleted = ev.parse_event(schema(p.image_pushed("3-rel-1234", action="delete")))
    assert deleted.type == ev.IMAGE_DELETED


@BOTH
def test_image_deleted_as_azure_sends_it_has_a_digest_and_no_tag(schema):
    deleted = ev.parse_event(schema(p.image_deleted("sha256:" + "cd" * 32)))
    assert isinstance(deleted, ev.ImageEvent) and deleted.type == ev.IMAGE_DELETED
    assert (deleted.repository, deleted.tag, deleted.digest) == ("diabetes-scoring", "", "sha256:" + "cd" * 32)
    assert deleted.release_id is None and deleted.subject == "diabetes-scoring"


def test_empty_data_version_is_fine():
    event = p.run_completed("job", "rel-1")
    event["dataVersion"] = ""
    parsed = ev.parse_event(event)
    assert isinstance(parsed, ev.RunFinished) and parsed.run_id == "job"


@pytest.mark.parametrize(
    "payload, message",
    [
        (None, "must be a JSON object"),
        ({"eventType": "MLOps.BuildCompleted", "data": {}}, "no id"),
        ({"id": "1", "data": {}}, "no event type"),
        ({"id": "1", "eventType": "Other.Type", "data": {}}, "unhandled event type"),
        ({"id": "1", "eventType": "MLOps.BuildCompleted", "data": "text"}, "data must be an object"),
        ({"id": "1", "eventType": "MLOps.BuildCompleted", "data": {"buildId": "1"}}, "no result"),
        (
            {"id": "1", "eventType": "MLOps.BuildCompleted", "data": {"buildId": ["1"], "result": "x"}},
            "must be a string",
        ),
        (
            {
                "id": "1",
                "eventType": "MLOps.BuildCompleted",
                "data": {"buildId": "1", "result": "succeeded", "parameters": [1]},
            },
            "must be an object",
        ),
        ({"specversion": "0.3", "id": "1", "type": "MLOps.BuildCompleted"}, "specversion"),
        ({"id": "1", "eventType": "Microsoft.ContainerRegistry.ImagePushed", "data": {}}, "no target"),
        (
            {"id": "1", "eventType": "Microsoft.MachineLearningServices.RunCompleted", "data": {"runTags": {}}},
            "no runId",
        ),
    ],
)
def test_invalid_payloads_say_why(payload, message):
    with pytest.raises(ev.InvalidEvent, match=message):
        ev.parse_event(payload)


@pytest.mark.parametrize(
    "build_id, release_id",
    [("1234", "rel-generic-1234"), ("20261126.3", None), ("feature/x y", None), ("a" * 80, None)],
)
def test_release_ids_are_safe_for_image_tags_and_stable(build_id, release_id):
    made = ids.release_id_for_build(build_id)
    assert made == ids.release_id_for_build(build_id)
    assert made.startswith("rel-") and len(made) <= ids.MAX_RELEASE_ID
    assert all(c.isalnum() or c == "-" for c in made)
    if release_id:
        assert made == release_id
    assert ids.release_id_from_image_tag(ids.image_tag("12", made)) == made


def test_model_registered_in_camel_case_too():
    data = {"modelName": "diabetes-model", "modelVersion": "4", "modelTags": {"release_id": "rel-9"}}
    event = ev.parse_event(p.event_grid("Microsoft.MachineLearningServices.ModelRegistered", "m", data, p.ML_TOPIC))
    assert isinstance(event, ev.ModelRegistered)
    assert (event.model_name, event.model_version, event.release_id) == ("diabetes-model", "4", "rel-9")


def test_every_event_type_the_parser_knows_has_exactly_one_handler():
    from functions.service.handlers import HANDLERS

    assert set(HANDLERS) == set(ev._PARSERS)
