"""LocalRegistry: SQLite + files under home, versions assigned atomically, idempotent per release."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from functions.domain.refs import ModelRef
from platforms.local.registry import LocalRegistry, ModelNotFound
from tests.doubles.publisher import RecordingPublisher

MODEL_REGISTERED = "Microsoft.MachineLearningServices.ModelRegistered"


@pytest.fixture
def publisher() -> RecordingPublisher:
    return RecordingPublisher()


@pytest.fixture
def registry(tmp_path: Path, publisher: RecordingPublisher) -> LocalRegistry:
    return LocalRegistry(tmp_path / "home", publisher)


def test_register_copies_the_model_and_publishes_model_registered(registry, publisher, trained_dir, tmp_path):
    model = registry.register("rel-1", "train-rel-1-abc123", str(trained_dir), {"build_id": "1234"})
    assert model == ModelRef(
        "diabetes-model",
        "1",
        str(tmp_path / "home" / "models" / "diabetes-model" / "1"),
        {"build_id": "1234", "release_id": "rel-1"},
    )
    copied = sorted(p.name for p in Path(model.location).iterdir())
    assert copied == sorted(p.name for p in trained_dir.iterdir())
    assert (Path(model.location) / "model.joblib").read_bytes() == (trained_dir / "model.joblib").read_bytes()

    [event] = publisher.events
    assert event["eventType"] == MODEL_REGISTERED
    assert event["subject"] == "models/diabetes-model:1"
    assert event["dataVersion"] == "2"
    assert event["data"] == {
        "ModelName": "diabetes-model",
        "ModelVersion": 1,
        "ModelTags": {"build_id": "1234", "release_id": "rel-1"},
        "ModelProperties": {"release_id": "rel-1", "job": "train-rel-1-abc123"},
    }
    assert type(event["data"]["ModelVersion"]) is int


def test_versions_increment_and_registering_a_release_again_changes_nothing(registry, publisher, trained_dir):
    first = registry.register("rel-1", "job-1", str(trained_dir), {})
    second = registry.register("rel-2", "job-2", str(trained_dir), {})
    again = registry.register("rel-1", "job-1-retried", str(trained_dir), {"other": "tag"})
    assert (first.version, second.version) == ("1", "2")
    assert again == first
    assert [e["data"]["ModelVersion"] for e in publisher.of_type(MODEL_REGISTERED)] == [1, 2]
    assert [m.version for m in registry.list()] == ["1", "2"]
    assert registry.get("diabetes-model", 2) == second
    assert registry.get("diabetes-model", "7") is None


def test_champion_is_none_until_set_then_follows_set_champion(registry, trained_dir):
    assert registry.champion() is None
    first = registry.register("rel-1", "job-1", str(trained_dir), {})
    second = registry.register("rel-2", "job-2", str(trained_dir), {})
    registry.set_champion(first)
    assert registry.champion() == first
    registry.set_champion(second)
    assert registry.champion() == second
    with pytest.raises(ModelNotFound, match="diabetes-model:9"):
        registry.set_champion(ModelRef("diabetes-model", "9", "/nowhere"))
    assert registry.champion() == second


def test_register_refuses_a_missing_model_directory(registry, publisher, tmp_path):
    with pytest.raises(FileNotFoundError, match="job-x"):
        registry.register("rel-1", "job-x", str(tmp_path / "missing"), {})
    assert publisher.events == []
    assert registry.list() == []


def test_state_is_sqlite_in_wal_mode_and_survives_a_new_instance(registry, publisher, trained_dir, tmp_path):
    model = registry.register("rel-1", "job-1", str(trained_dir), {})
    registry.set_champion(model)
    reopened = LocalRegistry(tmp_path / "home", publisher)
    assert reopened.champion() == model
    with sqlite3.connect(tmp_path / "home" / "registry.db") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def run_threads(count: int, target) -> list:
    results: list = [None] * count
    errors: list[BaseException] = []
    barrier = threading.Barrier(count)

    def run(index: int) -> None:
        try:
            barrier.wait()
            results[index] = target(index)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    return results


def test_concurrent_registrations_get_distinct_versions(tmp_path, publisher, trained_dir):
    # One registry instance per thread, like separate handler invocations (or processes) would have.
    home = tmp_path / "home"
    models = run_threads(
        8, lambda i: LocalRegistry(home, publisher).register(f"rel-{i}", f"job-{i}", str(trained_dir), {})
    )
    assert sorted(int(m.version) for m in models) == list(range(1, 9))
    assert len({m.location for m in models}) == 8
    assert sorted(e["data"]["ModelVersion"] for e in publisher.of_type(MODEL_REGISTERED)) == list(range(1, 9))


def test_concurrent_registrations_of_one_release_register_once(tmp_path, publisher, trained_dir):
    home = tmp_path / "home"
    models = run_threads(6, lambda i: LocalRegistry(home, publisher).register("rel-1", "job-1", str(trained_dir), {}))
    assert {m.version for m in models} == {"1"}
    assert len(publisher.of_type(MODEL_REGISTERED)) == 1
