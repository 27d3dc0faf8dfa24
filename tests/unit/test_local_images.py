"""LocalImages: build context under home, deterministic digest, ACR-shaped ImagePushed, lookup."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from functions.domain.refs import ImageRef, ModelRef
from platforms.local.images import LocalImages, context_digest
from tests.doubles.publisher import RecordingPublisher

IMAGE_PUSHED = "Microsoft.ContainerRegistry.ImagePushed"
SCORING = Path(__file__).resolve().parents[2] / "scoring"


@pytest.fixture
def publisher() -> RecordingPublisher:
    return RecordingPublisher()


@pytest.fixture
def images(tmp_path: Path, publisher: RecordingPublisher) -> LocalImages:
    return LocalImages(tmp_path / "home", publisher)


@pytest.fixture
def model(trained_dir: Path) -> ModelRef:
    return ModelRef("diabetes-model", "3", str(trained_dir), {"release_id": "rel-1"})


def test_build_assembles_a_docker_build_context(images, model, trained_dir, tmp_path):
    image = images.build("rel-1", model)
    context = tmp_path / "home" / "images" / "diabetes-scoring" / "3-rel-1"
    assert image == ImageRef("diabetes-scoring", "3-rel-1", image.digest, str(context))
    assert image.digest.startswith("sha256:") and len(image.digest) == len("sha256:") + 64
    for name in ("Dockerfile", "score.py", "requirements.txt"):
        assert (context / name).read_bytes() == (SCORING / name).read_bytes()
    assert sorted(p.name for p in (context / "model").iterdir()) == sorted(p.name for p in trained_dir.iterdir())
    assert not [p for p in context.parent.iterdir() if p.name.startswith(".")], "no staging leftovers"


def test_image_pushed_has_acr_shape(images, publisher, model):
    image = images.build("rel-1", model)
    [event] = publisher.events
    data = event["data"]
    assert event["eventType"] == IMAGE_PUSHED
    assert event["subject"] == "diabetes-scoring:3-rel-1"
    assert event["dataVersion"] == "1.0"
    assert event["topic"].endswith("/providers/Microsoft.ContainerRegistry/registries/local")
    assert set(data) == {"id", "timestamp", "action", "target", "request"}
    assert data["action"] == "push"
    size = sum(p.stat().st_size for p in Path(image.location).rglob("*") if p.is_file())
    assert data["target"] == {
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "size": size,
        "digest": image.digest,
        "length": size,
        "repository": "diabetes-scoring",
        "tag": "3-rel-1",
    }
    assert data["request"]["host"] == "local.azurecr.io"
    assert data["request"]["method"] == "PUT"
    assert data["request"]["useragent"] == "mlops-local"
    assert data["timestamp"].endswith("Z")


def test_digest_is_deterministic_and_follows_content(tmp_path, publisher, model, trained_dir):
    first = LocalImages(tmp_path / "a", publisher).build("rel-1", model)
    same = LocalImages(tmp_path / "b", publisher).build("rel-1", model)
    other_release = LocalImages(tmp_path / "c", publisher).build("rel-2", model)
    assert first.digest == same.digest == other_release.digest  # the tag is not content

    changed_dir = tmp_path / "changed-model"
    shutil.copytree(trained_dir, changed_dir)
    (changed_dir / "metrics.json").write_text("{}")
    changed = LocalImages(tmp_path / "d", publisher).build("rel-1", ModelRef("diabetes-model", "3", str(changed_dir)))
    assert changed.digest != first.digest
    assert context_digest(Path(first.location)) == (first.digest, publisher.events[0]["data"]["target"]["size"])


def test_digest_covers_paths_not_only_contents(tmp_path):
    for name, files in {"x": {"a": b"1", "b": b"2"}, "y": {"a": b"2", "b": b"1"}, "z": {"ab": b"12"}}.items():
        (tmp_path / name).mkdir()
        for file, content in files.items():
            (tmp_path / name / file).write_bytes(content)
    digests = {context_digest(tmp_path / name)[0] for name in ("x", "y", "z")}
    assert len(digests) == 3


def test_building_the_same_image_again_does_not_push_again(images, publisher, model):
    first = images.build("rel-1", model)
    assert images.build("rel-1", model) == first
    assert len(publisher.of_type(IMAGE_PUSHED)) == 1


def test_lookup(images, model, tmp_path, publisher):
    assert images.lookup("diabetes-scoring", "3-rel-1") is None
    image = images.build("rel-1", model)
    assert images.lookup("diabetes-scoring", "3-rel-1") == image
    assert LocalImages(tmp_path / "home", publisher).lookup("diabetes-scoring", "3-rel-1") == image
    assert images.lookup("other-repo", "3-rel-1") is None


def test_build_refuses_a_missing_model(images, publisher, tmp_path):
    with pytest.raises(FileNotFoundError, match="diabetes-model:1"):
        images.build("rel-1", ModelRef("diabetes-model", "1", str(tmp_path / "nowhere")))
    assert publisher.events == []
