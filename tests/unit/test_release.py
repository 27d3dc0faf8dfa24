from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from functions.domain.release import InvalidTransition, Release, State

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
MODEL = {"name": "m", "version": "1", "location": "/m", "tags": {}}
IMAGE = {"repository": "r", "tag": "1-rel-1", "digest": "", "location": ""}
ENDPOINT = {"name": "e", "scoring_url": "http://127.0.0.1:1/score", "version": "rel-1"}
PASS = [{"passed": True, "summary": "ok"}]
FAIL = [{"passed": False, "summary": "bad"}]
PROMOTE = {"promote": True, "reason": "better", "evidence": {}}

BLOB = {"name": "d.csv", "url": "file:///d.csv", "size": 10, "eventId": "e1", "eventTime": "2026-11-26T10:00:00+00:00"}
OPERATION = {"kind": "beside", "deployment": "rel-1", "handle": {}}
TRANSITIONS = {
    "training_submitted": lambda r: r.training_submitted(NOW, "job", None),
    "training_failed": lambda r: r.training_failed(NOW, "boom"),
    "evaluation_started": lambda r: r.evaluation_started(NOW),
    "gate_decided": lambda r: r.gate_decided(NOW, PROMOTE, {}, {}),
    "packaging_requested": lambda r: r.packaging_requested(NOW, MODEL, IMAGE),
    "image_pushed": lambda r: r.image_pushed(NOW, "r", "1-rel-1", "sha256:x"),
    "staging_tested": lambda r: r.staging_tested(NOW, ENDPOINT, PASS),
    "approval_requested": lambda r: r.approval_requested(NOW, NOW + timedelta(hours=1)),
    "approve": lambda r: r.approve(NOW, "bob", ""),
    "decline": lambda r: r.decline(NOW, "bob", "no"),
    "expire": lambda r: r.expire(NOW),
    "production_direct_tested": lambda r: r.production_direct_tested(NOW, ENDPOINT, PASS),
    "went_live": lambda r: r.went_live(NOW, ENDPOINT, {"rel-1": 100}),
    "operation_started": lambda r: r.operation_started(NOW, OPERATION, NOW, "test:1", "a deployment"),
    "supersede": lambda r: r.supersede(NOW, "rel-2"),
    "fail": lambda r: r.fail(NOW, "reason"),
    "data_arrived": lambda r: r.data_arrived(NOW, BLOB),
    "data_window_closed": lambda r: (r.trigger.setdefault("newest", BLOB), r.data_window_closed(NOW)),
}
ALLOWED = {
    State.COLLECTING: {"data_arrived", "data_window_closed", "fail"},
    State.QUEUED: {"training_submitted", "training_failed", "fail"},
    State.TRAINING: {"training_failed", "evaluation_started", "fail"},
    State.REGISTERING: {"gate_decided", "packaging_requested", "fail"},
    State.PACKAGING: {"image_pushed", "fail"},
    State.DEPLOYING_STAGING: {"staging_tested", "approval_requested", "operation_started", "fail"},
    State.AWAITING_APPROVAL: {"approve", "decline", "expire", "supersede", "fail"},
    State.PROMOTING: {"production_direct_tested", "went_live", "operation_started", "fail"},
    State.LIVE: {"supersede"},
    **{
        s: set()
        for s in (State.REJECTED, State.DECLINED, State.EXPIRED, State.FAILED, State.ROLLED_BACK, State.SUPERSEDED)
    },
}


def release_in(state: State) -> Release:
    release = Release.create("rel-1", {"kind": "build", "buildId": "1"}, {}, NOW)
    release.state = state
    return release


@pytest.mark.parametrize("state", list(State))
@pytest.mark.parametrize("name", list(TRANSITIONS))
def test_every_transition_is_allowed_only_from_its_states(state, name):
    release = release_in(state)
    if name in ALLOWED[state]:
        TRANSITIONS[name](release)
    else:
        with pytest.raises(InvalidTransition):
            TRANSITIONS[name](release)


def test_the_happy_path_moves_through_every_state_with_a_timeline():
    release = Release.create("rel-1", {"kind": "build", "buildId": "1", "buildNumber": "20261126.1"}, {}, NOW)
    seen = [release.state]
    for name in ("training_submitted", "evaluation_started", "gate_decided", "packaging_requested", "image_pushed",
                 "staging_tested", "approval_requested", "approve", "production_direct_tested",
                 "went_live"):  # fmt: skip
        TRANSITIONS[name](release)
        if release.state != seen[-1]:
            seen.append(release.state)
    assert seen == [
        State.QUEUED, State.TRAINING, State.REGISTERING, State.PACKAGING, State.DEPLOYING_STAGING,
        State.AWAITING_APPROVAL, State.PROMOTING, State.LIVE,
    ]  # fmt: skip
    assert release.timeline[0] == {
        "at": NOW.isoformat(timespec="seconds"),
        "step": "created",
        "detail": "build 20261126.1",
    }
    assert all({"at", "step", "detail"} == set(entry) for entry in release.timeline)


def test_gate_rejection_is_final():
    release = release_in(State.REGISTERING)
    release.gate_decided(NOW, {"promote": False, "reason": "not better: ...", "evidence": {}}, {"mse": 1.0}, {})
    assert release.state == State.REJECTED and release.is_final


def test_failed_staging_tests_fail_the_release():
    release = release_in(State.DEPLOYING_STAGING)
    release.staging_tested(NOW, ENDPOINT, FAIL)
    assert release.state == State.FAILED and release.error == "staging tests failed: bad"


def test_failed_direct_production_tests_end_rolled_back_with_nothing_moved():
    release = release_in(State.PROMOTING)
    release.production_direct_tested(NOW, ENDPOINT, FAIL)
    assert release.state == State.ROLLED_BACK and release.production is not None
    assert release.production["traffic_moved"] is False and release.production["rolled_back_to"] is None
    assert "before any traffic moved" in (release.error or "")


def test_an_operation_names_the_invocation_that_began_it_and_the_one_that_saw_it_end():
    release = release_in(State.PROMOTING)
    release.operation_started(NOW, OPERATION, NOW, "on_build_event:aa", "production deployment rel-1")
    assert release.operation is not None and release.operation["number"] == 1
    release.operation_finished(NOW, 1, "succeeded", "up", "follow_operations:bb")
    started, finished = release.timeline[-2:]
    assert (started["step"], started["invocation"]) == ("operation_started", "on_build_event:aa")
    assert (finished["step"], finished["invocation"]) == ("operation_succeeded", "follow_operations:bb")
    assert "began in on_build_event:aa" in finished["detail"] and release.operation is None


def test_one_operation_at_a_time_and_only_its_follower_may_finish_it():
    release = release_in(State.PROMOTING)
    release.operation_started(NOW, OPERATION, NOW, "a:1", "first")
    with pytest.raises(InvalidTransition, match="is following first already"):
        release.operation_started(NOW, OPERATION, NOW, "a:2", "second")
    release.operation_finished(NOW, 1, "failed", "", "follow:1")
    release.operation_started(NOW, OPERATION, NOW, "a:2", "second")  # begun again (a retry)
    with pytest.raises(InvalidTransition, match="not following operation 1"):
        release.operation_finished(NOW, 1, "succeeded", "", "follow:1")  # a pass that saw the first one
    release.operation_finished(NOW, 2, "succeeded", "", "follow:2")


def test_a_rollback_release_starts_claimed_with_its_target_s_model_image_and_deployment():
    target = release_in(State.SUPERSEDED)
    target.candidate = {"model": {"name": "m", "version": "3", "location": "/m/3"}, "metrics": {"mse": 1.0}}
    target.image = {"repository": "r", "tag": "3-rel-1", "digest": "sha256:x", "pushed": True}
    who = {"name": "ops@example.com", "method": "cli", "provider": "local"}
    release = Release.for_rollback("rel-rb", target, NOW, who=who, comment="v4 drifts", from_release="rel-4")
    assert release.state == State.PROMOTING and release.deployment_key == "rel-1"
    assert release.trigger == {"kind": "rollback", "reason": "v4 drifts", "requestedFor": "ops@example.com",
                               "from": "rel-4", "to": "rel-1", "model": "m:3"}  # fmt: skip
    assert release.approval is not None and release.approval["approvals"][0]["name"] == "ops@example.com"
    assert "from rel-4 to rel-1 (m:3): v4 drifts" in release.timeline[-1]["detail"]


def test_json_round_trip():
    release = release_in(State.AWAITING_APPROVAL)
    release.note(NOW, "x", "y")
    assert Release.from_json(release.to_json()).to_json() == release.to_json()
