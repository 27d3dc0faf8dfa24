"""platforms.azure.publisher.EventGridPublisher and `mlops publish build-completed` (no network)."""

from __future__ import annotations

from typing import Any

import pytest
from azure.core.credentials import AzureKeyCredential
from azure.core.exceptions import ServiceRequestError
from azure.eventgrid import EventGridEvent, EventGridPublisherClient
from azure.identity import DefaultAzureCredential

from devhost.cli import build_parser
from devhost.commands_builds import cmd_publish_build
from functions.domain.events import BUILD_COMPLETED
from functions.settings import SettingsError
from platforms.azure.publisher import EventGridPublisher, credential_for
from platforms.azure.settings import AzureSettings, example_env
from tests.doubles.ports import FakePublisher

ENDPOINT = "https://egt-mlops-builds.westeurope-1.eventgrid.azure.net/api/events"
SHA = "3f2a9c1d0e4b5a6978877665544332211aabbccd"


class RecordingClient:
    """Stands in for EventGridPublisherClient: keeps what send() was given."""

    def __init__(self, fail: Exception | None = None) -> None:
        self.sent: list[list[EventGridEvent]] = []
        self.closed = False
        self.fail = fail

    def send(self, events: list[EventGridEvent], **kwargs: Any) -> None:
        if self.fail:
            raise self.fail
        self.sent.append(list(events))

    def close(self) -> None:
        self.closed = True


# ---- EventGridPublisher -------------------------------------------------------------------
def test_publish_sends_one_event_grid_event_and_returns_its_id():
    client = RecordingClient()
    publisher = EventGridPublisher(ENDPOINT, AzureKeyCredential("unused"), client=client)
    data = {"buildId": "1234", "result": "succeeded", "parameters": {"alpha": 0.4}}
    event_id = publisher.publish(BUILD_COMPLETED, "builds/1234", data)
    [[event]] = client.sent
    assert isinstance(event, EventGridEvent)
    assert (event.event_type, event.subject, event.data, event.data_version) == (
        "MLOps.BuildCompleted",
        "builds/1234",
        data,
        "1.0",
    )
    assert event_id == str(event.id) and event_id
    assert event.topic is None  # Event Grid fills in the topic of a custom topic
    assert publisher.publish(BUILD_COMPLETED, "builds/1234", data) != event_id  # a fresh id per event


def test_send_errors_reach_the_caller():
    publisher = EventGridPublisher(ENDPOINT, AzureKeyCredential("k"), client=RecordingClient(ServiceRequestError("no")))
    with pytest.raises(ServiceRequestError):
        publisher.publish(BUILD_COMPLETED, "builds/1", {"buildId": "1", "result": "succeeded"})


def test_close_and_context_manager_close_the_client():
    client = RecordingClient()
    with EventGridPublisher(ENDPOINT, AzureKeyCredential("k"), client=client) as publisher:
        publisher.publish(BUILD_COMPLETED, "builds/1", {"buildId": "1", "result": "succeeded"})
    assert client.closed


def test_endpoint_must_be_https():
    with pytest.raises(ValueError, match="https"):
        EventGridPublisher("http://topic.example/api/events", AzureKeyCredential("k"), client=RecordingClient())


def test_the_real_client_is_built_without_network():
    publisher = EventGridPublisher(ENDPOINT, AzureKeyCredential("k"))
    assert isinstance(publisher._client, EventGridPublisherClient)
    assert "AzureKeyCredential" in repr(publisher._client) and "'k'" not in repr(publisher._client)
    publisher.close()


def test_from_settings_uses_the_topic_endpoint_and_an_identity_by_default():
    settings = AzureSettings.from_env(example_env())
    publisher = EventGridPublisher.from_settings(settings)
    assert publisher.endpoint == settings.topic_endpoint
    assert "DefaultAzureCredential" in repr(publisher._client)
    keyed = EventGridPublisher.from_settings(settings, credential=AzureKeyCredential("k"))
    assert "AzureKeyCredential" in repr(keyed._client)


def test_credential_for():
    keyed = credential_for("topic-key")
    assert isinstance(keyed, AzureKeyCredential) and keyed.key == "topic-key"
    assert isinstance(credential_for(None), DefaultAzureCredential)
    assert isinstance(credential_for(""), DefaultAzureCredential)


# ---- mlops publish build-completed --------------------------------------------------------
def publish_args(*options: str):
    return build_parser().parse_args(["publish", "build-completed", *options])


def test_cli_builds_the_data_from_its_options(capsys):
    publisher = FakePublisher()
    args = publish_args(
        "--build-id", "1234", "--result", "succeeded", "--build-number", "20261126.1", "--commit", SHA,
        "--branch", "refs/heads/main", "--repository", "org/repo", "--requested-for", "alice@example.com",
        "--param", "alpha=0.4", "--param", "solver=auto", "--topic-endpoint", ENDPOINT,
    )  # fmt: skip
    assert cmd_publish_build(args, publisher=publisher, env={}) == 0
    assert publisher.events == [
        (
            "MLOps.BuildCompleted",
            "builds/1234",
            {
                "buildSystem": "generic",
                "buildId": "1234",
                "buildNumber": "20261126.1",
                "result": "succeeded",
                "sourceVersion": SHA,
                "sourceBranch": "refs/heads/main",
                "repository": "org/repo",
                "requestedFor": "alice@example.com",
                "parameters": {"alpha": 0.4, "solver": "auto"},
            },
        )
    ]
    out = capsys.readouterr().out
    assert "event evt-1: MLOps.BuildCompleted for build 1234 (succeeded)" in out
    assert ENDPOINT in out and "release rel-generic-1234" in out


def test_cli_defaults_come_from_azure_devops_variables():
    env = {
        "BUILD_BUILDID": "5678",
        "BUILD_BUILDNUMBER": "20261126.3",
        "BUILD_SOURCEVERSION": SHA,
        "BUILD_SOURCEBRANCH": "refs/heads/release/1.2",
        "BUILD_REPOSITORY_NAME": "diabetes-model",
        "BUILD_REQUESTEDFOREMAIL": "bob@example.com",
        "BUILD_REQUESTEDFOR": "Bob Example",
        "AGENT_JOBSTATUS": "SucceededWithIssues",
        "GITHUB_RUN_ID": "999",  # Azure DevOps' variables win if both are present
    }
    publisher = FakePublisher()
    assert cmd_publish_build(publish_args(), publisher=publisher, env=env) == 0
    assert publisher.events[0][2] == {
        "buildSystem": "ado",
        "buildId": "5678",
        "buildNumber": "20261126.3",
        "result": "partiallySucceeded",
        "sourceVersion": SHA,
        "sourceBranch": "refs/heads/release/1.2",
        "repository": "diabetes-model",
        "requestedFor": "bob@example.com",
    }


def test_cli_defaults_come_from_github_actions_variables():
    env = {
        "GITHUB_RUN_ID": "30433642",
        "GITHUB_RUN_NUMBER": "562",
        "GITHUB_SHA": SHA,
        "GITHUB_REF": "refs/heads/main",
        "GITHUB_REPOSITORY": "octo-org/diabetes-model",
        "GITHUB_ACTOR": "octocat",
    }
    publisher = FakePublisher()
    assert cmd_publish_build(publish_args("--result", "success"), publisher=publisher, env=env) == 0
    assert publisher.events[0] == (
        "MLOps.BuildCompleted",
        "builds/30433642",
        {
            "buildSystem": "github",
            "buildId": "30433642",
            "buildNumber": "562",
            "result": "succeeded",
            "sourceVersion": SHA,
            "sourceBranch": "refs/heads/main",
            "repository": "octo-org/diabetes-model",
            "requestedFor": "octocat",
        },
    )


def test_cli_options_win_over_the_environment_and_only_the_required_fields_are_needed():
    publisher = FakePublisher()
    env = {"GITHUB_RUN_ID": "1", "GITHUB_SHA": SHA}
    args = publish_args("--build-id", "42", "--result", "succeeded", "--commit", "abc123")
    assert cmd_publish_build(args, publisher=publisher, env=env) == 0
    expected = {"buildSystem": "github", "buildId": "42", "buildNumber": "42", "result": "succeeded"}
    assert publisher.events[0][2] == {**expected, "sourceVersion": "abc123"}


@pytest.mark.parametrize(
    ("options", "env", "message"),
    [
        (("--result", "succeeded"), {}, "--build-id is required"),
        (("--build-id", "1"), {}, "--result is required"),
        (("--build-id", "1", "--result", "green"), {}, "'green'"),
        (("--build-id", "1"), {"AGENT_JOBSTATUS": "Weird"}, "'Weird'"),
    ],
)
def test_cli_missing_or_bad_options_are_settings_errors(options, env, message):
    publisher = FakePublisher()
    with pytest.raises(SettingsError, match=message):
        cmd_publish_build(publish_args(*options), publisher=publisher, env=env)
    assert publisher.events == []


def test_cli_an_unsuccessful_build_is_published_but_names_no_release(capsys):
    publisher = FakePublisher()
    assert cmd_publish_build(publish_args("--build-id", "7", "--result", "failed"), publisher=publisher, env={}) == 0
    assert publisher.events[0][2]["result"] == "failed"
    out = capsys.readouterr().out
    assert "no release" in out and "rel-7" not in out


@pytest.mark.parametrize("endpoint", [None, "http://topic.example/api/events"])
def test_cli_needs_an_https_topic_endpoint(endpoint):
    env = {"EVENTGRID_TOPIC_ENDPOINT": endpoint} if endpoint else {}
    with pytest.raises(SettingsError, match="EVENTGRID_TOPIC_ENDPOINT"):
        cmd_publish_build(publish_args("--build-id", "1", "--result", "succeeded"), env=env)


def test_cli_goes_through_the_event_grid_publisher_and_closes_it(capsys):
    client = RecordingClient()
    publisher = EventGridPublisher(ENDPOINT, AzureKeyCredential("k"), client=client)
    env = {"EVENTGRID_TOPIC_ENDPOINT": ENDPOINT}
    assert cmd_publish_build(publish_args("--build-id", "9", "--result", "succeeded"), publisher, env) == 0
    [[event]] = client.sent
    assert event.subject == "builds/9" and event.data["buildId"] == "9" and client.closed
    assert f"event {event.id}" in capsys.readouterr().out


def test_cli_a_failed_send_is_exit_1_and_never_prints_the_key(capsys):
    key = "TOPIC-KEY-d2hhdCBhIHNlY3JldA=="
    publisher = EventGridPublisher(ENDPOINT, AzureKeyCredential(key), client=RecordingClient(ServiceRequestError("x")))
    env = {"EVENTGRID_TOPIC_ENDPOINT": ENDPOINT, "EVENTGRID_TOPIC_KEY": key}
    assert cmd_publish_build(publish_args("--build-id", "9", "--result", "succeeded"), publisher, env) == 1
    captured = capsys.readouterr()
    assert "failed" in captured.out and key not in captured.out + captured.err


def test_cli_uses_the_topic_key_from_the_environment():
    from devhost.commands_builds import _topic_publisher

    keyed = _topic_publisher(ENDPOINT, {"EVENTGRID_TOPIC_KEY": "topic-key"})
    assert isinstance(keyed, EventGridPublisher)
    assert "AzureKeyCredential" in repr(keyed._client)
    identity = _topic_publisher(ENDPOINT, {})
    assert isinstance(identity, EventGridPublisher)
    assert "DefaultAzureCredential" in repr(identity._client)


def test_cli_topic_endpoint_and_to_host_are_exclusive():
    with pytest.raises(SystemExit):
        publish_args("--topic-endpoint", ENDPOINT, "--to-host", "http://127.0.0.1:7071")
