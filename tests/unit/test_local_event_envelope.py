"""The Event Grid envelope and routing of the local event bus (pure: no delivery)."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from platforms.local.events import LocalEventBus, build_event, event_time, route_for, webhook_url

SUBSCRIPTION = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/local/providers"


@pytest.mark.parametrize(
    ("event_type", "function", "topic", "data_version"),
    [
        ("MLOps.BuildCompleted", "on_build_event", f"{SUBSCRIPTION}/Microsoft.EventGrid/topics/mlops-builds", "1.0"),
        (
            "Microsoft.MachineLearningServices.RunCompleted",
            "on_ml_event",
            f"{SUBSCRIPTION}/Microsoft.MachineLearningServices/workspaces/local",
            "2",
        ),
        (
            "Microsoft.MachineLearningServices.ModelRegistered",
            "on_ml_event",
            f"{SUBSCRIPTION}/Microsoft.MachineLearningServices/workspaces/local",
            "2",
        ),
        (
            "Microsoft.ContainerRegistry.ImagePushed",
            "on_registry_event",
            f"{SUBSCRIPTION}/Microsoft.ContainerRegistry/registries/local",
            "1.0",
        ),
    ],
)
def test_envelope_and_route_per_source(event_type, function, topic, data_version):
    event = build_event(event_type, "some/subject", {"k": 1})
    assert set(event) == {"id", "topic", "subject", "eventType", "eventTime", "data", "dataVersion", "metadataVersion"}
    assert uuid.UUID(event["id"])
    assert event["topic"] == topic
    assert event["subject"] == "some/subject"
    assert event["eventType"] == event_type
    assert event["data"] == {"k": 1}
    assert event["dataVersion"] == data_version
    assert event["metadataVersion"] == "1"
    assert route_for(event_type).function == function


def test_event_time_has_seven_fractional_digits_in_utc():
    assert event_time(datetime(2026, 11, 26, 13, 0, 0, 123456, tzinfo=UTC)) == "2026-11-26T13:00:00.1234560Z"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z", build_event("MLOps.X", "s", {})["eventTime"])


def test_given_id_and_time_are_kept():
    event = build_event("MLOps.BuildCompleted", "s", {}, event_id="e-1", moment=datetime(2026, 1, 2, tzinfo=UTC))
    assert (event["id"], event["eventTime"]) == ("e-1", "2026-01-02T00:00:00.0000000Z")


def test_unknown_event_type_names_the_routed_ones():
    with pytest.raises(ValueError, match=r"MLOps\.\*"):
        route_for("Microsoft.KeyVault.SecretNewVersionCreated")


def test_blob_created_goes_to_the_storage_function():
    assert route_for("Microsoft.Storage.BlobCreated").function == "on_storage_event"


def test_webhook_url_is_core_tools_eventgrid_webhook():
    assert (
        webhook_url("http://127.0.0.1:7071/", "on_ml_event")
        == "http://127.0.0.1:7071/runtime/webhooks/eventgrid?functionName=on_ml_event"
    )


def test_unroutable_event_type_is_refused_at_publish(tmp_path: Path) -> None:
    bus = LocalEventBus(tmp_path, "http://127.0.0.1:9", deliver_in_background=False)
    with pytest.raises(ValueError, match=r"no subscription takes event type 'Contoso\.Thing'"):
        bus.publish("Contoso.Thing", "x", {})
    assert bus.next_due() is None  # nothing queued, nothing started
