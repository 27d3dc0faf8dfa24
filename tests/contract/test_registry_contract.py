"""The Registry contract (functions.ports.Registry), run against every implementation:

- "local": LocalRegistry over a fresh home, publishing through a RecordingPublisher;
- "azure": AzureRegistry over the in-memory MLClient of tests/doubles (azure-ai-ml's own Model entities).

What the port promises and the service relies on (functions/service/steps.py): ``register`` gives a
new version, higher than the last, whose tags carry the lineage tags it was given and the release id;
registering again for the same release (a redelivered RunCompleted) gives the first registration
back; ModelRegistered follows each new version. Who sends it differs, and the contract does not
care: the local registry publishes it itself, on Azure the workspace's Event Grid system topic does
(the fake workspace keeps what it would send). ``champion`` is None until ``set_champion``, then the
model set, and it moves with the next ``set_champion`` (also back, for a rollback).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from functions.domain.lineage import lineage_tags
from functions.domain.refs import ModelRef
from functions.domain.release import Release
from functions.ports import Registry
from platforms.common.model_files import MODEL_FILE

# azure-ai-ml's schemas use marshmallow APIs that marshmallow 4 deprecates: noise, not our concern.
pytestmark = pytest.mark.filterwarnings("ignore::marshmallow.warnings.Marshmallow4Warning")

MODEL_REGISTERED = "Microsoft.MachineLearningServices.ModelRegistered"
NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
# (model name, version, tags) of one ModelRegistered event
Registered = tuple[str, str, dict[str, str]]


@dataclass
class RegistryUnderTest:
    """One implementation over fresh storage, and what the contract needs around it."""

    open: Callable[[], Registry]  # another Registry object on the same storage: a second worker, as it were
    location: Callable[[str], str]  # where a finished job's model is, as that platform's Training says
    model_registered: Callable[[], list[Registered]]  # the ModelRegistered events so far, whoever sent them
    model_name: str


def _local(tmp_path: Path) -> RegistryUnderTest:
    from platforms.local.registry import LocalRegistry
    from platforms.local.training import LocalTraining
    from tests.doubles.publisher import RecordingPublisher

    publisher = RecordingPublisher()
    home = tmp_path / "home"
    training = LocalTraining(home, publisher)

    def location(job: str) -> str:
        # What a finished local job leaves where LocalTraining says its model is: the trained files.
        path = Path(training.model_location(job))
        path.mkdir(parents=True, exist_ok=True)
        (path / MODEL_FILE).write_bytes(f"trained by {job}".encode())
        return str(path)

    def events() -> list[Registered]:
        found = publisher.of_type(MODEL_REGISTERED)  # published by the adapter itself
        return [(e["data"]["ModelName"], str(e["data"]["ModelVersion"]), dict(e["data"]["ModelTags"])) for e in found]

    return RegistryUnderTest(lambda: LocalRegistry(home, publisher), location, events, "diabetes-model")


def _azure(tmp_path: Path) -> RegistryUnderTest:
    from platforms.azure.registry import AzureRegistry
    from platforms.azure.settings import AzureSettings, example_env
    from platforms.azure.training import AzureTraining
    from tests.doubles.azure_ml import FakeMLClient

    settings = AzureSettings.from_env(example_env())
    client = FakeMLClient()
    training = AzureTraining(settings, client, tmp_path / "downloads")

    def events() -> list[Registered]:
        sent = client.models.registered_events  # by the workspace's system topic, not by the adapter
        return [(str(e["ModelName"]), str(e["ModelVersion"]), dict(e["ModelTags"])) for e in sent]

    def location(job: str) -> str:
        client.jobs.add_steps(job, "data_checks", "train", "evaluate")  # the pipeline's step jobs, as Azure makes them
        return training.model_location(job)

    return RegistryUnderTest(lambda: AzureRegistry(settings, client), location, events, "diabetes-model")


@pytest.fixture(params=["local", "azure"])
def under_test(request: pytest.FixtureRequest, tmp_path: Path) -> RegistryUnderTest:
    return {"local": _local, "azure": _azure}[request.param](tmp_path)


@pytest.fixture
def registry(under_test: RegistryUnderTest) -> Registry:
    return under_test.open()


def tags_for(release_id: str, job: str) -> dict[str, str]:
    """The lineage tags the service registers with (functions.domain.lineage)."""
    release = Release.create(release_id, {"kind": "build", "buildId": "42", "sourceVersion": "a" * 40}, {}, NOW)
    release.job = {"name": job}
    evaluation = {"metrics": {"candidate": {"mse": 2900.5, "r2": 0.48}}, "compared": {"data": {"sha256": "ab" * 32}}}
    return lineage_tags(release, evaluation)


def register(under_test: RegistryUnderTest, registry: Registry, release_id: str) -> ModelRef:
    job = f"retrain-{release_id}-0a1b2c3d"
    return registry.register(release_id, job, under_test.location(job), tags_for(release_id, job))


def same_model(a: ModelRef | None, b: ModelRef) -> bool:
    return a is not None and (a.name, a.version, a.location) == (b.name, b.version, b.location)


# ---- register ---------------------------------------------------------------------------------------
def test_register_returns_the_model_with_its_lineage_tags_and_release(under_test, registry):
    job = "retrain-rel-1-0a1b2c3d"
    tags = tags_for("rel-1", job)

    model = registry.register("rel-1", job, under_test.location(job), tags)

    assert model.name == under_test.model_name
    assert model.version.isdigit() and int(model.version) >= 1
    assert model.location
    assert tags.items() <= model.tags.items()
    assert model.tags["release_id"] == "rel-1"


def test_the_release_id_tag_is_the_releases_whatever_the_caller_passed(under_test, registry):
    job = "retrain-rel-2-0a1b2c3d"
    model = registry.register("rel-2", job, under_test.location(job), {"build_id": "42"})
    assert model.tags["release_id"] == "rel-2" and model.tags["build_id"] == "42"


def test_each_registration_gets_a_higher_version(under_test, registry):
    versions = [int(register(under_test, registry, f"rel-{n}").version) for n in range(1, 5)]
    assert versions == sorted(versions) and len(set(versions)) == 4


def test_registering_again_for_a_release_gives_the_first_registration(under_test, registry):
    first = register(under_test, registry, "rel-1")
    register(under_test, registry, "rel-2")

    again = register(under_test, registry, "rel-1")

    assert again == first
    assert int(register(under_test, registry, "rel-3").version) > int(first.version)


def test_model_registered_follows_each_new_version_once(under_test, registry):
    assert under_test.model_registered() == []
    first = register(under_test, registry, "rel-1")
    second = register(under_test, registry, "rel-2")
    register(under_test, registry, "rel-1")  # the first again: no new version, no new event

    events = under_test.model_registered()

    assert [(name, version) for name, version, _ in events] == [
        (first.name, first.version),
        (second.name, second.version),
    ]
    assert [tags["release_id"] for _, _, tags in events] == ["rel-1", "rel-2"]


def test_another_registry_object_sees_the_registrations(under_test, registry):
    first = register(under_test, registry, "rel-1")
    assert register(under_test, under_test.open(), "rel-1") == first


# ---- champion ---------------------------------------------------------------------------------------
def test_no_champion_before_any_model(registry):
    assert registry.champion() is None


def test_no_champion_until_one_is_set(under_test, registry):
    register(under_test, registry, "rel-1")
    register(under_test, registry, "rel-2")
    assert registry.champion() is None


def test_the_champion_is_the_model_set(under_test, registry):
    model = register(under_test, registry, "rel-1")

    registry.set_champion(model)

    champion = registry.champion()
    assert same_model(champion, model)
    assert champion is not None and model.tags.items() <= champion.tags.items()
    assert same_model(under_test.open().champion(), model)


def test_the_champion_moves_with_the_next_set_champion_and_back(under_test, registry):
    first, second = register(under_test, registry, "rel-1"), register(under_test, registry, "rel-2")
    registry.set_champion(first)

    registry.set_champion(second)
    assert same_model(registry.champion(), second)

    registry.set_champion(first)  # a rollback
    assert same_model(registry.champion(), first)


def test_setting_the_same_champion_again_changes_nothing(under_test, registry):
    model = register(under_test, registry, "rel-1")
    registry.set_champion(model)
    registry.set_champion(model)
    assert same_model(registry.champion(), model)


def test_a_new_registration_does_not_change_the_champion(under_test, registry):
    champion = register(under_test, registry, "rel-1")
    registry.set_champion(champion)

    register(under_test, registry, "rel-2")

    assert same_model(registry.champion(), champion)


def test_the_champion_can_be_set_from_what_a_release_record_keeps(under_test, registry):
    """steps.promote rebuilds the ModelRef from the release record (lineage.model_of): name, version, location, tags."""
    model = register(under_test, registry, "rel-1")
    kept = ModelRef(model.name, model.version, model.location, dict(model.tags))

    under_test.open().set_champion(kept)

    assert same_model(registry.champion(), model)


def test_a_model_that_is_not_registered_cannot_be_the_champion(under_test, registry):
    champion = register(under_test, registry, "rel-1")
    registry.set_champion(champion)

    with pytest.raises(LookupError, match=f"{under_test.model_name}:99"):
        registry.set_champion(ModelRef(under_test.model_name, "99", "nowhere"))

    assert same_model(registry.champion(), champion)
