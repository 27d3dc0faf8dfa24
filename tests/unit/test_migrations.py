"""`mlops migrate build-systems`: legacy releases (rel-<build>) learn their CI system, once, and keep their ids."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from devhost import commands_migrate
from devhost.cli import build_parser
from functions.domain import events as ev
from functions.domain.ids import legacy_release_id
from functions.domain.release import Release
from functions.links import Links
from functions.ports import ConcurrencyError
from functions.service.context import Context
from functions.service.handlers import build_release_id
from functions.service.migrations import legacy_build_releases, stamp_build_systems
from tests.doubles.ports import Calls, InMemoryReleaseStore, fake_ports

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def clock() -> datetime:
    return NOW


def legacy(store: Any, build_id: str, **trigger: Any) -> Release:
    release = Release.create(legacy_release_id(build_id), {"kind": "build", "buildId": build_id, **trigger}, {}, NOW)
    assert store.create(release)
    return release


def test_only_legacy_build_releases_without_a_system_are_stamped_and_the_ids_stay():
    store = InMemoryReleaseStore()
    legacy(store, "777")
    legacy(store, "778", buildSystem="github")  # stamped already
    assert store.create(Release.create("rel-ado-779", {"kind": "build", "buildId": "779"}, {}, NOW))
    assert store.create(Release.create("rel-drift-e1", {"kind": "drift"}, {}, NOW))
    stamps = stamp_build_systems(store, "ado", clock)
    assert [(s.release_id, s.build_id, s.outcome) for s in stamps] == [("rel-777", "777", "stamped")]
    stamped = store.get("rel-777")
    assert stamped is not None and stamped.trigger["buildSystem"] == "ado"
    assert stamped.timeline[-1]["step"] == "build system recorded" and "from ado" in stamped.timeline[-1]["detail"]
    assert sorted(store.releases) == ["rel-777", "rel-778", "rel-ado-779", "rel-drift-e1"]
    assert stamp_build_systems(store, "ado", clock) == []  # idempotent: nothing left to do


def build(system: str, event_id: str) -> ev.BuildCompleted:
    return ev.BuildCompleted(
        id=event_id, type=ev.BUILD_COMPLETED, subject="builds/777", time="", source="", data={},
        build_id="777", result="succeeded", system=system,
    )  # fmt: skip


def test_after_the_migration_the_other_systems_build_of_that_number_is_a_release_of_its_own():
    ports = fake_ports(Calls())
    legacy(ports.store, "777")
    context = Context(ports, Links("http://127.0.0.1:7071"))
    github = build("github", "gh-1")
    assert build_release_id(context, github) == "rel-777"  # before: taken for the Azure DevOps release
    stamp_build_systems(ports.store, "ado", clock)
    assert build_release_id(context, github) == "rel-github-777"
    assert build_release_id(context, build("ado", "ado-1")) == "rel-777"  # the same build of the same system


def test_a_dry_run_changes_nothing_and_named_releases_are_checked():
    store = InMemoryReleaseStore()
    legacy(store, "1")
    legacy(store, "2")
    assert [s.outcome for s in stamp_build_systems(store, "gitlab", clock, dry_run=True)] == ["would stamp"] * 2
    assert all("buildSystem" not in r.trigger for r in store.list())
    stamps = stamp_build_systems(store, "gitlab", clock, only=["rel-2", "rel-9", "rel-2"])
    assert [(s.release_id, s.outcome) for s in stamps] == [("rel-9", "not found"), ("rel-2", "stamped")]
    assert [r.id for r in legacy_build_releases(store.list())] == ["rel-1"]


@pytest.mark.parametrize("system", ["data", "Jenkins!", "x"])
def test_a_system_that_cannot_name_builds_is_refused(system: str):
    with pytest.raises(ValueError, match="build system"):
        stamp_build_systems(InMemoryReleaseStore(), system, clock)


def test_a_release_moved_meanwhile_is_read_again_and_stamped():
    store = InMemoryReleaseStore()
    legacy(store, "5")
    saves: list[int] = []
    real_save = store.save

    def save(release: Release) -> None:
        saves.append(release.version)
        if len(saves) == 1:  # the app moved it between our read and our write
            moved = store.get(release.id)
            assert moved is not None
            moved.note(NOW, "approval requested", "x")
            real_save(moved)
            raise ConcurrencyError(release.id)
        real_save(release)

    store.save = save  # type: ignore[method-assign]
    assert [s.outcome for s in stamp_build_systems(store, "travis", clock)] == ["stamped"]
    final = store.get("rel-5")
    assert final is not None and final.trigger["buildSystem"] == "travis" and len(saves) == 2
    assert [e["step"] for e in final.timeline][-2:] == ["approval requested", "build system recorded"]


def test_the_command_stamps_the_local_sqlite_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys):
    from platforms.local.store import SqliteReleaseStore

    monkeypatch.setenv("MLOPS_PLATFORM", "local")
    monkeypatch.setenv("MLOPS_HOME", str(tmp_path))
    legacy(SqliteReleaseStore(tmp_path / "releases.db"), "42")
    args = build_parser().parse_args(["migrate", "build-systems", "--system", "ado", "--dry-run"])
    assert args.handler(args) == 0
    assert "rel-42 (build 42): would stamp" in capsys.readouterr().out
    assert commands_migrate.cmd_migrate_build_systems(argparse.Namespace(system="ado", release=[], dry_run=False)) == 0
    assert "1 stamped" in capsys.readouterr().out
    stamped = SqliteReleaseStore(tmp_path / "releases.db").get("rel-42")
    assert stamped is not None and stamped.trigger["buildSystem"] == "ado"
    missing = argparse.Namespace(system="ado", release=["rel-404"], dry_run=False)
    assert commands_migrate.cmd_migrate_build_systems(missing) == 1
