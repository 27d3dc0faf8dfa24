"""Releases under a misbehaving event bus (MLOPS_LOCAL_EVENT_CHAOS) end where they would without it.

The local bus drops, duplicates, delays and reorders a share of its deliveries (drops only for events
of releases that exist: a run ended, a model registered, an image pushed). Releases run one after the
other: good ones go to approval and live, one with worse parameters is rejected (and a few more good
ones if the draws had not yet hit a run or image event with both a drop and a duplicate). Every dropped event is
made up for by reconcile asking the platform (MLOPS_MISSED_EVENT_CHECK_SECONDS, a pass every 5 s);
every duplicate is noted and acted on once; nothing is dead-lettered or given up on.
"""

from __future__ import annotations

import json

import pytest

from tests.e2e.conftest import APPROVER, approve_to_the_end, running_host, trigger_build, wait_for_state

pytestmark = pytest.mark.e2e

CHAOS = {"drop": 0.3, "duplicate": 0.3, "delay": 0.15, "reorder": 0.3, "delay_s": 2, "seed": 5}
PLAN = [({}, "live"), ({"alpha": 5.0}, "rejected"), ({}, "live"), ({}, "live")]
EXTRA = 6
STEP_EVENTS = {"Microsoft.MachineLearningServices.RunCompleted", "Microsoft.ContainerRegistry.ImagePushed"}


@pytest.fixture(scope="module")
def chaotic(tmp_path_factory: pytest.TempPathFactory):
    env = {
        "MLOPS_GATE_POLICY": '{"mode": "non_inferiority", "margin": 50}',
        "MLOPS_LOCAL_EVENT_CHAOS": json.dumps(CHAOS),
        "MLOPS_MISSED_EVENT_CHECK_SECONDS": "5",
        "MLOPS_RECONCILE_SCHEDULE": "*/5 * * * * *",
    }
    with running_host(tmp_path_factory.mktemp("chaos-home"), env) as host:
        ended, expected = {}, {}
        # The plan, then (at most EXTRA) more good releases until a run or image event was both dropped
        # and duplicated: which events the draws hit depends on the order threads publish in.
        plan = [*PLAN, *[({}, "live")] * EXTRA]
        for number, (params, end) in enumerate(plan):
            if number >= len(PLAN) and _hit_both(_chaos(host)):
                break
            release_id = trigger_build(host, params, build_id=f"chaos-{number}")
            release = wait_for_state(host, release_id, {"awaiting_approval", "rejected", "failed"}, timeout_s=180)
            if release["state"] == "awaiting_approval":
                release = approve_to_the_end(host, release_id, APPROVER)
            ended[release_id], expected[release_id] = release, end
        yield host, ended, expected, _chaos(host)


def _chaos(host) -> list[dict]:
    path = host.home / "chaos.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _hit_both(chaos: list[dict]) -> bool:
    return all(any(line["action"] == action and line["eventType"] in STEP_EVENTS for line in chaos)
               for action in ("dropped", "duplicated"))  # fmt: skip


def test_every_release_ends_where_it_would_without_chaos(chaotic):
    _, ended, expected, _ = chaotic
    assert {release_id: release["state"] for release_id, release in ended.items()} == expected
    assert all(release["error"] is None for release in ended.values())


def test_the_bus_really_dropped_duplicated_and_delayed_events(chaotic):
    *_, chaos = chaotic
    actions = {line["action"] for line in chaos}
    assert {"dropped", "duplicated"} <= actions and actions & {"delayed", "reordered"}
    assert not any(line["eventType"] == "MLOps.BuildCompleted" and line["action"] == "dropped" for line in chaos)


def test_dropped_events_were_made_up_for_and_duplicates_acted_on_once(chaotic):
    host, ended, _, chaos = chaotic
    # A dropped run or image event leaves its release waiting: only reconcile asking the platform moves it.
    assert _hit_both(chaos)
    for release in ended.values():
        steps = [entry["step"] for entry in release["timeline"]]
        assert steps.count("training_submitted") == 1 and steps.count("live") <= 1
        assert steps.count("image_pushed") <= 1 and steps.count("staging_passed") <= 1
    notes = [entry for release in ended.values() for entry in release["timeline"] if entry["step"] == "duplicate_event"]
    assert notes, "a duplicate delivered after its first copy was handled is noted, not acted on"
    assert host.dead_letters() == []
    assert not (host.home / "undelivered.jsonl").exists()
