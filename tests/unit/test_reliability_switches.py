"""The local platform's test switches (MLOPS_LOCAL_CRASH_AFTER, MLOPS_LOCAL_EVENT_CHAOS) and
MLOPS_MISSED_EVENT_CHECK_SECONDS: parsed strictly, refused on Azure, and doing what they say."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from functions.bootstrap import _timeouts
from functions.domain.release import Release
from functions.service.context import Timeouts
from functions.settings import Settings, SettingsError
from platforms.local.chaos import CHAOS_FILE, EventChaos
from platforms.local.crash_point import crash_after
from platforms.local.events import LocalEventBus

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


# ---- MLOPS_LOCAL_CRASH_AFTER -------------------------------------------------------------------
@pytest.mark.parametrize("spec", ["image_pushed", "operation_started#2", "approved@rel-ado-*", "live#1@rel-x"])
def test_a_crash_point_is_a_step_an_occurrence_and_a_release_pattern(spec):
    assert Settings.from_env({"MLOPS_LOCAL_CRASH_AFTER": spec}).local_crash_after == spec


@pytest.mark.parametrize("spec", ["Image Pushed", "approved#0", "approved#x", "approved@", "approved@rel;rm"])
def test_a_malformed_crash_point_stops_the_app_naming_the_setting(spec):
    with pytest.raises(SettingsError, match="MLOPS_LOCAL_CRASH_AFTER must look like"):
        Settings.from_env({"MLOPS_LOCAL_CRASH_AFTER": spec})


@pytest.mark.parametrize("where", [{"MLOPS_PLATFORM": "azure"}, {"WEBSITE_SITE_NAME": "func-mlops"}])
def test_the_switches_are_refused_on_azure_and_on_app_service_whatever_the_platform_says(where):
    switches = (("MLOPS_LOCAL_CRASH_AFTER", "approved"), ("MLOPS_LOCAL_EVENT_CHAOS", '{"drop": 0.1}'),
                ("MLOPS_LOCAL_FAULT", '{"deployments": "x", "bias": 1}'))  # fmt: skip
    for name, value in switches:
        with pytest.raises(SettingsError, match=f"{name} .*unset it on Azure"):
            Settings.from_env({**where, name: value})


def _release_with(steps: list[str], release_id: str = "rel-ado-1") -> Release:
    release = Release.create(release_id, {"kind": "build"}, {}, NOW)
    for step in steps:
        release.note(NOW, step, "")
    return release


def test_the_crash_point_fires_once_on_the_nth_save_of_its_step_for_matching_releases_only(tmp_path: Path):
    killed: list[str] = []
    hook = crash_after("operation_started#2@rel-ado-*", tmp_path / "fired", kill=lambda: killed.append("x"))
    hook(_release_with(["operation_started"]))
    hook(_release_with(["operation_started", "operation_started"], "rel-github-1"))
    assert killed == []
    hook(_release_with(["operation_started", "operation_succeeded", "operation_started"]))
    assert killed == ["x"]
    # A host restarted with the same switch does not die again on the next save of that release.
    again = crash_after("operation_started#2@rel-ado-*", tmp_path / "fired", kill=lambda: killed.append("y"))
    again(_release_with(["operation_started", "operation_started", "note"]))
    assert killed == ["x"]


# ---- MLOPS_LOCAL_EVENT_CHAOS -------------------------------------------------------------------
def test_chaos_settings_are_shares_with_defaults():
    chaos = Settings.from_env({"MLOPS_LOCAL_EVENT_CHAOS": '{"drop": 0.2, "seed": 7}'}).local_event_chaos
    assert chaos == {"drop": 0.2, "duplicate": 0.0, "delay": 0.0, "reorder": 0.0, "delay_s": 2.0, "seed": 7}


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        ('{"drop": 1.5}', "drop must be a share between 0 and 1"),
        ('{"lose": 0.1}', "unknown field"),
        ('{"delay_s": 600}', "delay_s must be between 0 and 60"),
        ('{"seed": 1.5}', "seed must be a whole number"),
        ('{"drop": true}', "drop must be a number"),
    ],
)
def test_bad_chaos_settings_are_named(raw, words):
    with pytest.raises(SettingsError, match=words):
        Settings.from_env({"MLOPS_LOCAL_EVENT_CHAOS": raw})


def _event(event_type: str, number: int = 0) -> dict:
    return {"id": f"e{number}", "eventType": event_type, "subject": "s"}


def test_chaos_never_drops_an_event_that_creates_a_release(tmp_path: Path):
    chaos = EventChaos(tmp_path, {"drop": 1.0})
    assert chaos.deliveries(_event("MLOps.BuildCompleted")) == [0.0]
    assert chaos.deliveries(_event("Microsoft.Storage.BlobCreated")) == [0.0]
    assert chaos.deliveries(_event("Microsoft.MachineLearningServices.RunCompleted")) == []
    logged = [json.loads(line) for line in (tmp_path / CHAOS_FILE).read_text().splitlines()]
    assert [(line["action"], line["eventType"]) for line in logged] == [
        ("dropped", "Microsoft.MachineLearningServices.RunCompleted")
    ]


def test_chaos_is_repeatable_from_its_seed_and_does_each_thing_in_its_share(tmp_path: Path):
    settings = {"drop": 0.1, "duplicate": 0.2, "delay": 0.1, "reorder": 0.2, "delay_s": 3.0, "seed": 11}
    events = [_event("Microsoft.ContainerRegistry.ImagePushed", n) for n in range(2000)]
    first = [EventChaos(tmp_path / "a", settings).deliveries(e) for e in events[:50]]
    assert first == [EventChaos(tmp_path / "b", settings).deliveries(e) for e in events[:50]]
    chaos = EventChaos(tmp_path / "c", settings)
    outcomes = [chaos.deliveries(e) for e in events]
    dropped = sum(1 for d in outcomes if not d) / len(events)
    doubled = sum(1 for d in outcomes if len(d) == 2) / len(events)
    delayed = sum(1 for d in outcomes if d and d[0] == 3.0) / len(events)
    assert 0.07 < dropped < 0.13 and 0.14 < doubled < 0.22 and 0.06 < delayed < 0.12
    assert all(0.0 <= s <= 3.0 for d in outcomes for s in d)


def test_the_bus_queues_each_copy_chaos_asks_for_at_its_delay(tmp_path: Path):
    class Fixed(EventChaos):
        def deliveries(self, event: dict) -> list[float]:
            return [0.0, 2.5]  # duplicated, the copy 2.5 s later

    bus = LocalEventBus(
        tmp_path, "http://127.0.0.1:9", clock=lambda: NOW, deliver_in_background=False, chaos=Fixed(tmp_path, {})
    )
    event_id = bus.publish("Microsoft.ContainerRegistry.ImagePushed", "s", {})
    queued = sorted(bus._queue)
    assert [q.due for q in queued] == [NOW, NOW + timedelta(seconds=2.5)]
    assert {q.event["id"] for q in queued} == {event_id}  # the same event id twice: a duplicate
    bus._queue.clear()  # nothing to record as undelivered at exit


# ---- MLOPS_MISSED_EVENT_CHECK_SECONDS ------------------------------------------------------------
def test_the_missed_event_check_sets_both_rechecks_and_defaults_to_theirs():
    assert _timeouts(Settings.from_env({})).training_check == Timeouts.training_check
    assert _timeouts(Settings.from_env({})).packaging_check == Timeouts.packaging_check
    timeouts = _timeouts(Settings.from_env({"MLOPS_MISSED_EVENT_CHECK_SECONDS": "20"}))
    assert timeouts.training_check == timeouts.packaging_check == timedelta(seconds=20)
    with pytest.raises(SettingsError, match="MLOPS_MISSED_EVENT_CHECK_SECONDS must be between 1 and 86400"):
        Settings.from_env({"MLOPS_MISSED_EVENT_CHECK_SECONDS": "0"})
    # On Azure each check is a call to Azure ML or ACR per waiting release: a minute at least.
    with pytest.raises(SettingsError, match="between 60 and 86400"):
        Settings.from_env({"MLOPS_PLATFORM": "azure", "MLOPS_MISSED_EVENT_CHECK_SECONDS": "5"})
