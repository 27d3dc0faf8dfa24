"""AzureRegistry against an in-memory MLClient: registration with lineage tags, the production tag."""

from __future__ import annotations

import pytest
from azure.ai.ml.entities import Model

from functions.domain.refs import ModelRef
from platforms.azure.registry import AzureRegistry, ModelNotFound
from platforms.azure.settings import AzureSettings, example_env
from tests.doubles.azure_ml import FakeMLClient

# azure-ai-ml's schemas use marshmallow APIs that marshmallow 4 deprecates: noise, not our concern.
pytestmark = pytest.mark.filterwarnings("ignore::marshmallow.warnings.Marshmallow4Warning")

NAME = "diabetes-model"
LINEAGE = {
    "release_id": "rel-1",
    "build_id": "1234",
    "commit": "3f2a9c1",
    "job": "retrain-rel-1-0a1b2c3d",
    "data_sha256": "ab" * 32,
    "metric_mse": "2900.5",
    "metric_r2": "0.48",
}


def location(job: str) -> str:
    return f"azureml://jobs/{job}/outputs/model/paths/"


@pytest.fixture
def client() -> FakeMLClient:
    return FakeMLClient()


@pytest.fixture
def registry(client: FakeMLClient) -> AzureRegistry:
    return AzureRegistry(AzureSettings.from_env(example_env()), client)


def register(registry: AzureRegistry, release: str, job: str | None = None) -> ModelRef:
    job = job or f"retrain-{release}-00000000"
    return registry.register(release, job, location(job), {**LINEAGE, "release_id": release, "job": job})


# ---- register ------------------------------------------------------------------------------
def test_register_creates_a_custom_model_from_the_job_output(registry, client):
    model = registry.register("rel-1", "retrain-rel-1-0a1b2c3d", location("retrain-rel-1-0a1b2c3d"), LINEAGE)

    assert model == ModelRef(NAME, "1", f"azureml:{NAME}:1", LINEAGE)
    assert client.operations() == ["models.list", "models.create_or_update"]
    (entity,) = client.models.received
    assert isinstance(entity, Model)
    assert entity.name == NAME and entity.version is None  # the registry assigns the next version
    assert entity.type == "custom_model"
    assert entity.path == "azureml://jobs/retrain-rel-1-0a1b2c3d/outputs/model/paths/"
    assert entity.tags == LINEAGE
    description = entity.description or ""
    assert "rel-1" in description and "retrain-rel-1-0a1b2c3d" in description
    # What the SDK would send (ModelVersion body), built offline:
    body = entity._to_rest_object().as_dict()["properties"]
    assert body["modelType"] == "custom_model"
    assert body["modelUri"] == "azureml://jobs/retrain-rel-1-0a1b2c3d/outputs/model/paths/"
    assert body["tags"] == LINEAGE and body["isAnonymous"] is False
    assert entity._to_dict() == {
        "name": NAME,
        "type": "custom_model",
        "path": "azureml://jobs/retrain-rel-1-0a1b2c3d/outputs/model/paths/",
        "description": entity.description,
        "properties": {},
        "tags": LINEAGE,
    }


def test_register_tags_carry_the_release_even_when_the_caller_forgot(registry, client):
    model = registry.register("rel-9", "job-9", location("job-9"), {"metric_mse": 2900.5, "stage": "production"})
    assert model.tags == {"metric_mse": "2900.5", "job": "job-9", "release_id": "rel-9"}  # stage is not for here
    assert client.models.tags(NAME, 1) == model.tags


def test_register_is_idempotent_per_release(registry, client):
    first = register(registry, "rel-1")
    again = register(registry, "rel-1")

    assert again == first
    assert client.operations() == ["models.list", "models.create_or_update", "models.list"]
    assert list(client.models.versions[NAME]) == ["1"]


def test_versions_follow_each_other(registry):
    assert [register(registry, f"rel-{n}").version for n in (1, 2, 3)] == ["1", "2", "3"]
    assert register(registry, "rel-2").version == "2"
    assert [m.version for m in registry.list()] == ["1", "2", "3"]


# ---- champion ------------------------------------------------------------------------------
def test_no_champion_before_any_model(registry, client):
    assert registry.champion() is None
    assert client.operations() == ["models.list"]


def test_no_champion_until_one_is_set(registry):
    register(registry, "rel-1")
    assert registry.champion() is None


def test_set_champion_tags_the_model_production(registry, client):
    model = register(registry, "rel-1")
    client.calls.clear()

    registry.set_champion(model)

    assert client.operations() == ["models.get", "models.create_or_update", "models.list"]
    updated = client.models.received[-1]
    assert (updated.name, updated.version) == (NAME, "1")  # an update of that version, not a new one
    assert updated.path == location("retrain-rel-1-00000000")
    assert client.models.tags(NAME, 1) == {**model.tags, "stage": "production"}
    champion = registry.champion()
    assert champion == ModelRef(NAME, "1", f"azureml:{NAME}:1", {**model.tags, "stage": "production"})


def test_set_champion_moves_the_tag(registry, client):
    first, second = register(registry, "rel-1"), register(registry, "rel-2")
    registry.set_champion(first)
    client.calls.clear()

    registry.set_champion(second)

    # The new champion is tagged before the old one is untagged: never a moment without one.
    assert client.calls == [
        ("models.get", NAME, "2"),
        ("models.create_or_update", NAME, "2", {**second.tags, "stage": "production"}),
        ("models.list", NAME),
        ("models.create_or_update", NAME, "1", first.tags),
    ]
    assert "stage" not in client.models.tags(NAME, 1)
    assert client.models.tags(NAME, 2)["stage"] == "production"
    assert registry.champion().version == "2"
    assert list(client.models.versions[NAME]) == ["1", "2"]  # no version was created by the move


def test_set_champion_again_changes_nothing(registry, client):
    model = register(registry, "rel-1")
    registry.set_champion(model)
    client.calls.clear()

    registry.set_champion(model)
    assert client.operations() == ["models.get", "models.list"]


def test_rollback_to_an_older_version(registry):
    first, second = register(registry, "rel-1"), register(registry, "rel-2")
    registry.set_champion(second)
    registry.set_champion(first)
    assert registry.champion().version == "1"


def test_champion_is_the_newest_when_several_carry_the_tag(registry, client):
    for release in ("rel-1", "rel-2", "rel-3"):
        register(registry, release)
    for version in ("1", "3"):  # e.g. someone tagged by hand in the studio
        client.models.versions[NAME][version].tags["stage"] = "production"
    assert registry.champion().version == "3"

    registry.set_champion(registry.get(NAME, 2))
    assert [v for v in ("1", "2", "3") if client.models.tags(NAME, v).get("stage") == "production"] == ["2"]


def test_set_champion_of_an_unregistered_model(registry):
    with pytest.raises(ModelNotFound, match=f"{NAME}:7"):
        registry.set_champion(ModelRef(NAME, "7", f"azureml:{NAME}:7"))


def test_get_and_list(registry):
    model = register(registry, "rel-1")
    assert registry.get(NAME, 1) == model and registry.get(NAME, "2") is None
    assert registry.list() == [model] and registry.list("other-model") == []


def test_find_is_the_registered_version_or_none(registry: AzureRegistry) -> None:
    model = register(registry, "rel-1")

    assert registry.find(NAME, "1") == model  # what a rollback checks before it redeploys a version
    assert registry.find(NAME, "2") is None
    assert registry.find("other-model", "1") is None
