"""The whole release loop with the Azure adapters over fake SDK clients: every SDK call, in order."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from functions.domain.approval import Principal
from functions.domain.release import State
from functions.links import Links
from functions.service.context import Ports
from platforms.azure.deployer import AzureDeployer
from platforms.azure.images import AcrImages
from platforms.azure.production import AksProduction
from platforms.azure.registry import AzureRegistry
from platforms.azure.settings import AzureSettings, example_env
from platforms.azure.staging import AciStaging
from platforms.azure.training import AzureTraining
from tests import payloads as p
from tests.doubles.azure_endpoints import FakeMLClient as FakeEndpointsClient
from tests.doubles.azure_mgmt import FakeContainerInstanceClient, FakeRegistryTasksClient, FakeUploader
from tests.doubles.azure_ml import FakeMLClient
from tests.doubles.followed import Followed
from tests.doubles.ports import (
    Calls,
    FakeEvidence,
    FakeNotifier,
    FakePublisher,
    FakeTester,
    InMemoryReleaseStore,
    data_checks_report,
    evaluation_report,
)

SETTINGS = AzureSettings.from_env(example_env())


def person(name: str) -> Principal:
    """A proven identity, as the entry layer hands it over (here: the local CLI's signature)."""
    return Principal(name, provider="local", method="cli")


class Tap(list):
    """One fake client's call list that also writes every call, tagged, into a shared log."""

    def __init__(self, tag: str, log: list[str]) -> None:
        super().__init__()
        self.tag, self.log = tag, log

    def append(self, call: Any) -> None:
        super().append(call)
        name = call[0] if isinstance(call, tuple) else call.operation
        self.log.append(f"{self.tag}:{name}")


def write_model(model: Any, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "model.joblib").write_bytes(b"model bytes")


@pytest.fixture
def loop(tmp_path: Path):
    log: list[str] = []
    ml, endpoints = FakeMLClient(), FakeEndpointsClient()
    tasks, aci = FakeRegistryTasksClient(), FakeContainerInstanceClient()
    ml.calls = ml.jobs.calls = ml.models.calls = Tap("ml", log)
    endpoints.calls = Tap("ml", log)
    tasks.calls = Tap("acr", log)
    aci.calls = aci.container_groups.calls = Tap("aci", log)
    tester = FakeTester(Calls())
    ports = Ports(
        store=InMemoryReleaseStore(),
        training=AzureTraining(SETTINGS, ml, tmp_path / "downloads"),
        registry=AzureRegistry(SETTINGS, ml),
        images=AcrImages(SETTINGS, tasks, write_model, uploader=FakeUploader()),
        deployer=AzureDeployer(
            AciStaging(SETTINGS, aci, readiness=lambda url: True),
            AksProduction(SETTINGS, endpoints),
        ),
        tester=tester,
        notifier=FakeNotifier(),
        publisher=FakePublisher(),
        evidence=FakeEvidence(),
    )
    return Followed(ports, links=Links(), promote_inline=False), ports, ml, log


def test_build_event_to_live_with_every_sdk_call_in_order(loop):
    orchestrator, ports, ml, log = loop
    orchestrator.receive("on_build_event", p.build_completed("4242", parameters={"alpha": 0.3}))
    release = ports.store.list()[0]
    assert release.state == State.TRAINING
    submitted = ml.jobs.submissions[0].job
    assert submitted.tags == {"release_id": release.id, "build_id": "4242", "commit": release.trigger["sourceVersion"]}
    assert submitted.settings.default_compute == SETTINGS.compute

    ml.jobs.finish(
        release.job_name,
        "Completed",
        evaluation={"evaluation.json": json.dumps(evaluation_report(40.0, None))},
        checks={"data_checks.json": json.dumps(data_checks_report())},
    )
    orchestrator.receive("on_ml_event", p.run_completed(release.job_name, release.id))
    release = ports.store.get(release.id)
    assert release.state == State.PACKAGING
    assert release.candidate["model"]["location"] == "azureml:diabetes-model:1"
    tag = release.image["tag"]
    assert tag == f"1-{release.id}"

    orchestrator.receive("on_ml_event", p.model_registered(1, release.id))
    orchestrator.receive("on_registry_event", p.image_pushed(tag, repository=SETTINGS.repository))
    release = ports.store.get(release.id)
    assert release.state == State.AWAITING_APPROVAL, release.error
    assert release.staging["endpoint"]["scoring_url"].endswith(":5001/score")

    release = orchestrator.approve(release.id, person("bob@example.com"), "ship it")  # alice started it
    assert release.state == State.PROMOTING  # on Azure the HTTP request only claims the promotion
    event_type, subject, data = ports.publisher.events[-1]
    orchestrator.receive("on_build_event", p.event_grid(event_type, subject, data, p.BUILD_TOPIC))
    release = ports.store.get(release.id)
    assert release.state == State.LIVE, release.error
    assert release.data_checks["passed"] is True and len(release.data_checks["checks"]) == 5
    calls = list(log)
    assert ports.registry.champion().version == "1"

    assert calls == [
        # build completed: submit the retraining pipeline
        "ml:models.list",  # champion lookup (none yet)
        "ml:jobs.create_or_update",
        # run completed: evaluation, gate, register, package
        "ml:jobs.download",  # the evaluation output
        "ml:jobs.download",  # the data checks' output, for the release's record
        "ml:jobs.list",  # the pipeline's step jobs: the model is registered from the train step's output
        "ml:models.list",  # already registered for this release?
        "ml:models.create_or_update",
        "acr:runs.list",  # image already pushed?
        "acr:get_build_source_upload_url",
        "acr:schedule_run",
        # image pushed: staging on ACI begun, not awaited
        "aci:begin_create_or_update",
        # the follow timer: the group is up (one GET and one probe); older staging groups go
        "aci:get",
        "aci:list_by_resource_group",
        # approved (MLOps.ReleaseApproved): the first promotion creates the endpoint, begun, not awaited
        "ml:online_endpoints.get",
        "ml:online_endpoints.begin_create_or_update",
        # the follow timer: the endpoint is there, so the release's deployment is begun beside (0% traffic)
        "ml:online_endpoints.get",
        "ml:online_deployments.get",
        "ml:online_deployments.begin_create_or_update",
        # the follow timer: the deployment is up; after its direct tests the traffic change is begun
        "ml:online_endpoints.get",
        "ml:online_deployments.get",
        "ml:online_endpoints.get",  # the traffic before (none) and the champion before, saved first
        "ml:models.list",
        "ml:online_endpoints.get",
        "ml:online_deployments.list",
        "ml:online_endpoints.begin_create_or_update",
        # the follow timer: production routes to it; the champion tag moves
        "ml:online_endpoints.get",
        "ml:models.get",
        "ml:models.create_or_update",
        "ml:models.list",
        "ml:online_endpoints.get",  # the traffic now, for the record
        "ml:online_deployments.list",
        # live: the staging group goes, older production deployments would too
        "aci:begin_delete",
        "ml:online_deployments.list",
    ]
    production, staging = ports.deployer.production, ports.deployer.staging
    assert production.ml_client.waited() == [] and staging.aci_client.container_groups.waited() == []
