"""The Deployer contract (functions.ports.Deployer), run against every implementation:

- "local": LocalDeployer over a fresh home: real azmlinfsrv processes and the production router;
- "azure": AzureDeployer (AciStaging + AksProduction) over the fake SDK clients of tests/doubles,
  whose operations stay in flight until the test lets the platform finish them.

What the port promises and the service relies on: a ``begin_*`` call returns an Operation whose
handle is plain JSON (the timer that follows it may be another process); ``follow`` looks once and
ends "succeeded" (with the endpoint to test, for a deployment) once the platform is done. A deployment
begun beside the serving one gets no traffic until ``begin_traffic`` moves it; ``traffic`` and
``deployments`` say what is; ``remove`` refuses a deployment that still has traffic; bad weights are
refused before anything is sent.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from functions.domain.refs import ImageRef, ModelRef, Operation, Progress
from functions.ports import Deployer


@dataclass
class DeployerUnderTest:
    deployer: Deployer
    image: Callable[[str], ImageRef]  # the pushed image of a release (key)
    model: ModelRef
    finish: Callable[[], None]  # let the platform get on with what is in flight
    looks: int  # how many looks an operation may take at most here


def _local(tmp_path: Path, trained_dir: Path) -> Iterator[DeployerUnderTest]:
    from platforms.local.deployer import LocalDeployer
    from platforms.local.images import LocalImages
    from platforms.local.inference_server import free_port
    from tests.doubles.publisher import RecordingPublisher

    images = LocalImages(tmp_path, RecordingPublisher())
    model = ModelRef("diabetes-model", "1", str(trained_dir))
    deployer = LocalDeployer(tmp_path, production_port=free_port())
    try:
        # A real server takes a second or two to answer: each look is a tenth of a second apart.
        yield DeployerUnderTest(deployer, lambda key: images.build(key, model), model, lambda: time.sleep(0.1), 600)
    finally:
        deployer.stop_all()


def _azure() -> Iterator[DeployerUnderTest]:
    from platforms.azure.deployer import AzureDeployer
    from platforms.azure.production import AksProduction
    from platforms.azure.settings import AzureSettings, example_env
    from platforms.azure.staging import AciStaging
    from tests.doubles.azure_endpoints import FakeMLClient
    from tests.doubles.azure_mgmt import FakeContainerInstanceClient

    settings = AzureSettings.from_env(example_env())
    ml, aci = FakeMLClient(), FakeContainerInstanceClient()
    ml.settle_at_once = aci.container_groups.settle_at_once = False

    def finish() -> None:
        ml.settle()
        aci.container_groups.settle()

    def image(key: str) -> ImageRef:
        tag = f"1-{key}"
        location = f"{settings.login_server}/{settings.repository}:{tag}"
        return ImageRef(settings.repository, tag, f"sha256:{key:0>64}"[:71], location)

    deployer = AzureDeployer(AciStaging(settings, aci, readiness=lambda url: True), AksProduction(settings, ml))
    yield DeployerUnderTest(deployer, image, ModelRef("diabetes-model", "1", "azureml:diabetes-model:1"), finish, 5)


@pytest.fixture(params=["local", "azure"])
def under_test(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DeployerUnderTest]:
    if request.param == "local":
        yield from _local(tmp_path, request.getfixturevalue("trained_dir"))
    else:
        yield from _azure()


def until_done(under: DeployerUnderTest, operation: Operation) -> Progress:
    """Follow as the timer would, from the handle as it was stored (JSON), until it has ended."""
    stored = json.loads(json.dumps({"kind": operation.kind, "deployment": operation.deployment,
                                    "handle": operation.handle}))  # fmt: skip
    followed = Operation(stored["kind"], stored["deployment"], stored["handle"])
    for _ in range(under.looks):
        progress = under.deployer.follow(followed)
        if progress.finished:
            return progress
        under.finish()
    raise AssertionError(f"{operation.kind} {operation.deployment} still running after {under.looks} looks")


def deployed_beside(under: DeployerUnderTest, key: str) -> Progress:
    progress = until_done(under, under.deployer.begin_beside(key, under.image(key), under.model))
    assert progress.state == "succeeded", progress.detail
    return progress


def routed(under: DeployerUnderTest, weights: dict[str, int]) -> Progress:
    progress = until_done(under, under.deployer.begin_traffic(weights))
    assert progress.state == "succeeded", progress.detail
    return progress


def test_beside_comes_up_with_no_traffic_and_its_direct_endpoint(under_test):
    operation = under_test.deployer.begin_beside("rel-a", under_test.image("rel-a"), under_test.model)
    assert operation.kind == "beside" and operation.deployment == "rel-a"
    progress = deployed_beside(under_test, "rel-a")
    assert progress.endpoint is not None and progress.endpoint.version == "rel-a"
    assert under_test.deployer.direct("rel-a").version == "rel-a"
    assert under_test.deployer.traffic() == {} and under_test.deployer.deployments() == ["rel-a"]


def test_traffic_moves_only_when_asked_and_production_says_who_serves(under_test):
    deployer = under_test.deployer
    deployed_beside(under_test, "rel-a")
    routed(under_test, {"rel-a": 100})
    assert deployer.traffic() == {"rel-a": 100} and deployer.production_endpoint().version == "rel-a"
    deployed_beside(under_test, "rel-b")
    assert deployer.traffic() == {"rel-a": 100}, "a deployment beside gets no traffic by being there"
    assert sorted(deployer.deployments()) == ["rel-a", "rel-b"]
    routed(under_test, {"rel-a": 90, "rel-b": 10})
    assert deployer.traffic() == {"rel-a": 90, "rel-b": 10}
    routed(under_test, {"rel-b": 100, "rel-a": 0})
    assert deployer.traffic() == {"rel-b": 100} and deployer.production_endpoint().version == "rel-b"


def test_remove_refuses_what_has_traffic_and_forgets_what_it_removed(under_test):
    deployer = under_test.deployer
    deployed_beside(under_test, "rel-a")
    routed(under_test, {"rel-a": 100})
    deployed_beside(under_test, "rel-b")
    with pytest.raises(RuntimeError, match="traffic"):
        deployer.remove("rel-a")
    deployer.remove("rel-b")
    under_test.finish()
    assert deployer.deployments() == ["rel-a"] and deployer.traffic() == {"rel-a": 100}
    deployer.remove("rel-b")  # gone already: fine


@pytest.mark.parametrize("weights", [{}, {"rel-a": 50}, {"rel-a": 101, "rel-b": -1}, {"rel-nope": 100}])
def test_bad_weights_are_refused_before_anything_moves(under_test, weights):
    deployed_beside(under_test, "rel-a")
    with pytest.raises(RuntimeError, match=r"traffic|weight|deployment"):  # DeploymentError, ProductionError
        under_test.deployer.begin_traffic(weights)
    assert under_test.deployer.traffic() == {}


def test_beside_again_for_the_same_key_and_image_is_the_same_deployment(under_test):
    deployed_beside(under_test, "rel-a")
    deployed_beside(under_test, "rel-a")
    assert under_test.deployer.deployments() == ["rel-a"]


def test_staging_comes_up_and_is_removed_twice_without_error(under_test):
    operation = under_test.deployer.begin_staging("rel-s", under_test.image("rel-s"), under_test.model)
    assert operation.kind == "staging"
    progress = until_done(under_test, operation)
    assert progress.state == "succeeded" and progress.endpoint is not None
    assert progress.endpoint.scoring_url.endswith("/score") and progress.endpoint.version == "rel-s"
    under_test.deployer.remove_staging("rel-s")
    under_test.deployer.remove_staging("rel-s")


def test_a_mirror_is_set_and_ended_by_a_traffic_change_where_production_can_mirror(under_test):
    """Shadow: where ``can_mirror()`` says so, a traffic change with a mirror succeeds with the weights as
    asked (the mirror takes none of them) and a later change without one ends it; elsewhere a mirror is
    refused before anything is sent, naming why, and the weights stay as they were."""
    deployer = under_test.deployer
    deployed_beside(under_test, "rel-a")
    routed(under_test, {"rel-a": 100})
    deployed_beside(under_test, "rel-b")
    if not deployer.can_mirror():
        with pytest.raises(RuntimeError, match="mirror"):
            deployer.begin_traffic({"rel-a": 100}, {"rel-b": 50})
        assert deployer.traffic() == {"rel-a": 100}
        return
    progress = until_done(under_test, deployer.begin_traffic({"rel-a": 100}, {"rel-b": 50}))
    assert progress.state == "succeeded", progress.detail
    assert deployer.traffic() == {"rel-a": 100}
    routed(under_test, {"rel-a": 90, "rel-b": 10})
    assert deployer.traffic() == {"rel-a": 90, "rel-b": 10}


@pytest.mark.parametrize("mirror", [{"rel-b": 50, "rel-c": 10}, {"rel-b": 101}, {"rel-nope": 50}])
def test_a_bad_mirror_is_refused_before_anything_moves(under_test, mirror):
    deployed_beside(under_test, "rel-a")
    deployed_beside(under_test, "rel-b")
    with pytest.raises(RuntimeError, match=r"mirror|deployment"):
        under_test.deployer.begin_traffic({"rel-a": 100}, mirror)
    assert under_test.deployer.traffic() == {}
