"""The Images contract (functions.ports.Images), run against every implementation:

- "local": LocalImages over a fresh home, publishing through a RecordingPublisher;
- "azure": AcrImages over the fake ACR Tasks client of tests/doubles (scheduled runs stay queued
  until the test lets the registry finish them).

What the port promises and the service relies on: ``build`` packages a model for a release as an
image tagged ``<model version>-<release id>`` (functions.domain.ids.image_tag), so ImagePushed finds
its release; ImagePushed follows, naming that repository, tag and the pushed digest (the local
adapter publishes it itself when it is done; on Azure ACR's system topic sends it when the build
run has pushed); ``lookup(repository, tag)`` finds the pushed image with its digest, the reference
reconcile falls back on when ImagePushed was missed, and is None for what was never pushed.
Building again what is pushed gives the pushed image back and pushes nothing new.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from functions.domain.ids import image_tag, release_id_from_image_tag
from functions.domain.refs import ImageRef, ModelRef
from functions.ports import Images
from platforms.common.model_files import MODEL_FILE

IMAGE_PUSHED = "Microsoft.ContainerRegistry.ImagePushed"
# (repository, tag, digest) of one ImagePushed event
Pushed = tuple[str, str, str]


@dataclass
class ImagesUnderTest:
    """One implementation over a fresh registry, and what the contract needs around it."""

    open: Callable[[], Images]  # another Images object on the same registry
    repository: str  # where this adapter pushes the scoring image
    model: Callable[[str], ModelRef]  # a registered model version, as that platform's Registry gives it
    finish: Callable[[], None]  # let the platform finish what build started (ACR: the run pushes)
    image_pushed: Callable[[], list[Pushed]]  # the ImagePushed events so far, whoever sent them


def _local(tmp_path: Path) -> ImagesUnderTest:
    from platforms.local.images import LocalImages
    from tests.doubles.publisher import RecordingPublisher

    publisher = RecordingPublisher()
    home = tmp_path / "home"

    def model(version: str) -> ModelRef:
        # Where LocalRegistry keeps a version's files: <home>/models/<name>/<version>/.
        directory = home / "models" / "diabetes-model" / version
        directory.mkdir(parents=True, exist_ok=True)
        (directory / MODEL_FILE).write_bytes(f"model version {version}".encode())
        return ModelRef("diabetes-model", version, str(directory), {"release_id": f"rel-{version}"})

    def events() -> list[Pushed]:
        targets = [e["data"]["target"] for e in publisher.of_type(IMAGE_PUSHED)]  # published by the adapter itself
        return [(t["repository"], t["tag"], t["digest"]) for t in targets]

    return ImagesUnderTest(lambda: LocalImages(home, publisher), "diabetes-scoring", model, lambda: None, events)


def _azure(tmp_path: Path) -> ImagesUnderTest:
    from platforms.azure.images import AcrImages
    from platforms.azure.settings import AzureSettings, example_env
    from tests.doubles.azure_mgmt import FakeRegistryTasksClient, FakeUploader

    settings = AzureSettings.from_env(example_env())
    client, uploader = FakeRegistryTasksClient(registry_host=settings.login_server), FakeUploader()

    def model_files(model: ModelRef, directory: Path) -> None:
        # What platforms.azure.models.download_model leaves: the registered version's files.
        (directory / MODEL_FILE).write_bytes(f"model version {model.version}".encode())

    def model(version: str) -> ModelRef:
        name = settings.model_name
        return ModelRef(name, version, f"azureml:{name}:{version}", {"release_id": f"rel-{version}"})

    def events() -> list[Pushed]:
        sent = client.pushed_events  # by ACR's system topic, not by the adapter
        return [(e["target"]["repository"], e["target"]["tag"], e["target"]["digest"]) for e in sent]

    return ImagesUnderTest(
        lambda: AcrImages(settings, client, model_files, uploader=uploader),
        settings.repository,
        model,
        client.finish_runs,
        events,
    )


@pytest.fixture(params=["local", "azure"])
def under_test(request: pytest.FixtureRequest, tmp_path: Path) -> ImagesUnderTest:
    return {"local": _local, "azure": _azure}[request.param](tmp_path)


@pytest.fixture
def images(under_test: ImagesUnderTest) -> Images:
    return under_test.open()


def pushed(under_test: ImagesUnderTest, images: Images, release_id: str, version: str) -> ImageRef:
    """Build and let the platform push; the image as lookup then finds it."""
    built = images.build(release_id, under_test.model(version))
    under_test.finish()
    found = images.lookup(built.repository, built.tag)
    assert found is not None, f"{built.reference} was built but lookup does not find it"
    return found


# ---- build ------------------------------------------------------------------------------------------
def test_build_tags_the_image_with_the_model_version_and_the_release(under_test, images):
    image = images.build("rel-build-42", under_test.model("7"))

    assert image.repository == under_test.repository
    assert image.tag == image_tag("7", "rel-build-42") == "7-rel-build-42"
    assert release_id_from_image_tag(image.tag) == "rel-build-42"
    assert image.reference == f"{under_test.repository}:7-rel-build-42"


def test_image_pushed_follows_with_the_tag_and_the_digest(under_test, images):
    assert under_test.image_pushed() == []

    image = pushed(under_test, images, "rel-1", "3")

    assert under_test.image_pushed() == [(under_test.repository, "3-rel-1", image.digest)]


# ---- lookup -----------------------------------------------------------------------------------------
def test_lookup_finds_the_pushed_image_with_its_digest(under_test, images):
    built = images.build("rel-1", under_test.model("3"))
    under_test.finish()

    found = images.lookup(under_test.repository, "3-rel-1")

    assert found is not None
    assert (found.repository, found.tag, found.location) == (built.repository, built.tag, built.location)
    assert found.digest.startswith("sha256:") and len(found.digest) == len("sha256:") + 64
    assert built.digest in ("", found.digest)  # known at once where the build itself pushes
    assert under_test.open().lookup(under_test.repository, "3-rel-1") == found


def test_lookup_is_none_for_what_was_never_pushed(under_test, images):
    assert images.lookup(under_test.repository, "3-rel-1") is None
    pushed(under_test, images, "rel-1", "3")

    assert images.lookup(under_test.repository, "3-rel-2") is None  # another release
    assert images.lookup(under_test.repository, "4-rel-1") is None  # another model version
    assert images.lookup("other-repository", "3-rel-1") is None


def test_each_release_has_its_own_image(under_test, images):
    first, second = pushed(under_test, images, "rel-1", "3"), pushed(under_test, images, "rel-2", "4")

    assert (first.tag, second.tag) == ("3-rel-1", "4-rel-2")
    assert images.lookup(under_test.repository, "3-rel-1") == first
    assert images.lookup(under_test.repository, "4-rel-2") == second
    assert [tag for _, tag, _ in under_test.image_pushed()] == ["3-rel-1", "4-rel-2"]


def test_building_what_is_pushed_gives_it_back_and_pushes_nothing_new(under_test, images):
    """A redelivered RunCompleted packages the same release and model again."""
    first = pushed(under_test, images, "rel-1", "3")
    events = under_test.image_pushed()

    again = under_test.open().build("rel-1", under_test.model("3"))
    under_test.finish()

    assert (again.repository, again.tag, again.digest) == (first.repository, first.tag, first.digest)
    assert under_test.image_pushed() == events
