"""A rollout through its steps with fakes: the clock moved by hand, the evidence said by the test."""

from __future__ import annotations

from datetime import timedelta

import pytest

from functions.domain.refs import Evidence, Served
from functions.domain.release import State
from functions.domain.rollout import RolloutPolicy
from functions.links import Links
from functions.service.context import Timeouts
from tests.doubles.clock import Clock
from tests.doubles.followed import Followed
from tests.doubles.ports import Calls, fake_ports
from tests.unit.test_orchestrator import RELEASE, person, second_release_awaiting_approval

POLICY = RolloutPolicy.from_mapping(
    {
        "steps": [
            {"kind": "shadow", "share": 50},
            {"kind": "canary", "share": 10},
            {"kind": "canary", "share": 50},
            {"kind": "canary", "share": 100},
        ],
        "window_s": 60,
        "min_requests": 20,
        "max_wait_s": 600,
        "keep_previous_s": 120,
        "latency": {"decides": False},
    }
)


@pytest.fixture
def world():
    calls = Calls()
    clock = Clock()
    ports = fake_ports(calls)
    orchestrator = Followed(
        ports, links=Links(), clock=clock, timeouts=Timeouts(approval=timedelta(hours=1)), rollout_policy=POLICY
    )
    return orchestrator, ports, calls, clock


def healthy(new: str, stable: str = RELEASE, requests: int = 40) -> Evidence:
    """Both deployments answer well; mirrored rows agree with the stable ones."""
    stable_served = Served(requests * 4, 0, tuple([5.0] * 50), tuple(float(100 + i) for i in range(50)))
    new_served = Served(requests, 0, tuple([5.0] * 50), tuple(float(100 + i) for i in range(50)))
    pairs = tuple((float(100 + i), float(101 + i)) for i in range(50))
    return Evidence({stable: stable_served, new: new_served}, {new: new_served}, {new: pairs}, "fake")


def biased(new: str, stable: str = RELEASE) -> Evidence:
    """The new deployment adds 500 to a third of the rows it answers."""
    evidence = healthy(new, stable)
    pairs = tuple((float(100 + i), float(100 + i + (500 if i % 3 == 0 else 0))) for i in range(60))
    return Evidence(evidence.served, evidence.mirrored, {new: pairs}, "fake")


def erroring(new: str, stable: str = RELEASE) -> Evidence:
    evidence = healthy(new, stable)
    served = dict(evidence.served)
    served[new] = Served(40, 12, served[new].latencies_ms, served[new].predictions)
    return Evidence(served, evidence.mirrored, evidence.pairs, "fake")


def window_over(orchestrator: Followed, clock: Clock, seconds: float = 61) -> None:
    clock.advance(seconds=seconds)
    orchestrator.follow(passes=3)


def traffic_calls(calls: Calls) -> list[str]:
    return [arg for name, arg in calls.log if name == "begin_traffic"]


def test_a_good_release_goes_shadow_then_canary_10_50_100_and_live_with_each_verdict(world):
    orchestrator, ports, calls, clock = world
    second = second_release_awaiting_approval(orchestrator, ports)
    ports.evidence.serve(healthy(second))
    release = orchestrator.approve(second, person("bob"), "")
    assert release.state == State.PROMOTING and release.rollout["steps"][0]["state"] == "holding"
    assert ports.deployer.weights == {RELEASE: 100} and ports.deployer.mirror == {second: 50}
    window_over(orchestrator, clock)
    assert ports.deployer.weights == {RELEASE: 90, second: 10} and ports.deployer.mirror == {}
    window_over(orchestrator, clock)
    assert ports.deployer.weights == {RELEASE: 50, second: 50}
    window_over(orchestrator, clock)
    release = ports.store.get(second)
    assert release.state == State.LIVE and ports.deployer.weights == {second: 100}
    assert ports.registry.champion().tags["release_id"] == second
    steps = release.rollout["steps"]
    assert [s["state"] for s in steps] == ["passed"] * 4
    assert all(s["verdict"]["passed"] for s in steps[:3]) and "verdict" not in steps[3]
    shadow = {check["name"]: check for check in steps[0]["verdict"]["checks"]}
    assert shadow["divergence"]["rows"] == 50 and shadow["divergence"]["diverging"] == 0
    assert shadow["errors"]["candidate"] == [0, 40] and shadow["latency"]["decides"] is False
    assert traffic_calls(calls)[-4:] == [
        f"{RELEASE}=100 mirror {second}=50", f"{RELEASE}=90,{second}=10", f"{RELEASE}=50,{second}=50", f"{second}=100",
    ]  # fmt: skip
    passed = [e["detail"] for e in release.timeline if e["step"] == "rollout_step_passed"]
    assert len(passed) == 3 and passed[0].startswith("shadow 50%: passed")


def test_biased_predictions_in_shadow_roll_back_with_the_evidence(world):
    orchestrator, ports, _, clock = world
    second = second_release_awaiting_approval(orchestrator, ports)
    ports.evidence.serve(biased(second))
    orchestrator.approve(second, person("bob"), "")
    window_over(orchestrator, clock)
    release = ports.store.get(second)
    assert release.state == State.ROLLED_BACK and "divergence" in release.error
    verdict = release.rollout["steps"][0]["verdict"]
    divergence = next(c for c in verdict["checks"] if c["name"] == "divergence")
    assert divergence["diverging"] == 20 and divergence["share"] == pytest.approx(1 / 3, abs=1e-6)
    # Traffic back to the stable deployment at once (ending the mirror), the new deployment removed.
    assert ports.deployer.weights == {RELEASE: 100} and ports.deployer.mirror == {}
    assert second not in ports.deployer.deployments()
    assert ports.registry.champion().tags["release_id"] == RELEASE
    assert ports.store.get(RELEASE).state == State.LIVE
    told = [(title, body) for release_id, title, body in ports.notifier.messages if release_id == second]
    assert any("rolled back" in title.lower() and "divergence" in body for title, body in told), told
    assert [e for e in release.timeline if e["step"] == "production_restored"]


def test_errors_in_the_canary_roll_back(world):
    orchestrator, ports, _, clock = world
    second = second_release_awaiting_approval(orchestrator, ports)
    ports.evidence.serve(healthy(second))
    orchestrator.approve(second, person("bob"), "")
    window_over(orchestrator, clock)  # shadow passes
    ports.evidence.serve(erroring(second))
    window_over(orchestrator, clock)  # canary 10% sees 12/40 errors against none
    release = ports.store.get(second)
    assert release.state == State.ROLLED_BACK and "errors" in release.error
    errors = next(c for c in release.rollout["steps"][1]["verdict"]["checks"] if c["name"] == "errors")
    assert errors["candidate"] == [12, 40] and errors["p_value"] < 0.05
    assert ports.deployer.weights == {RELEASE: 100}


def test_a_step_holds_until_its_window_is_over_and_its_minimum_reached(world):
    orchestrator, ports, _, clock = world
    second = second_release_awaiting_approval(orchestrator, ports)
    ports.evidence.serve(healthy(second, requests=5))  # fewer than the 20 the step wants
    orchestrator.approve(second, person("bob"), "")
    window_over(orchestrator, clock, 30)
    assert ports.store.get(second).rollout["steps"][0]["state"] == "holding"  # window not over
    window_over(orchestrator, clock, 31)
    assert ports.store.get(second).rollout["steps"][0]["state"] == "holding"  # too few requests yet
    ports.evidence.serve(healthy(second, requests=25))
    window_over(orchestrator, clock, 1)
    assert ports.store.get(second).rollout["steps"][0]["state"] == "passed"


def test_too_little_traffic_within_the_max_wait_rolls_back(world):
    orchestrator, ports, _, clock = world
    second = second_release_awaiting_approval(orchestrator, ports)
    ports.evidence.serve(healthy(second, requests=3))
    orchestrator.approve(second, person("bob"), "")
    window_over(orchestrator, clock, 601)
    release = ports.store.get(second)
    assert release.state == State.ROLLED_BACK and "too little traffic to judge" in release.error
    assert ports.deployer.weights == {RELEASE: 100}


def test_an_unreadable_evidence_store_is_looked_at_again_not_a_verdict(world):
    orchestrator, ports, _, clock = world
    second = second_release_awaiting_approval(orchestrator, ports)
    ports.evidence.serve(healthy(second))
    orchestrator.approve(second, person("bob"), "")
    ports.evidence.broken = True
    window_over(orchestrator, clock)
    release = ports.store.get(second)
    assert release.state == State.PROMOTING and release.rollout["steps"][0]["state"] == "holding"
    ports.evidence.broken = False
    window_over(orchestrator, clock, 1)
    assert ports.store.get(second).rollout["steps"][0]["state"] == "passed"


def test_shadow_is_skipped_where_production_cannot_mirror(world):
    orchestrator, ports, calls, _ = world
    ports.deployer.mirrors = False
    second = second_release_awaiting_approval(orchestrator, ports)
    ports.evidence.serve(healthy(second))
    release = orchestrator.approve(second, person("bob"), "")
    assert release.rollout["steps"][0]["state"] == "skipped"
    assert ports.deployer.weights == {RELEASE: 90, second: 10}
    assert not any("mirror" in arg for arg in traffic_calls(calls))


def test_the_previous_deployment_stays_warm_for_the_policy_s_time_then_goes(world):
    orchestrator, ports, _, clock = world
    second = second_release_awaiting_approval(orchestrator, ports)
    ports.evidence.serve(healthy(second))
    orchestrator.approve(second, person("bob"), "")
    for _ in range(3):
        window_over(orchestrator, clock)
    assert ports.store.get(second).state == State.LIVE
    assert RELEASE in ports.deployer.deployments()  # warm: an instant rollback
    clock.advance(seconds=121)
    orchestrator.reconcile()  # the timer pass runs due background work
    assert RELEASE not in ports.deployer.deployments()


def test_the_first_release_takes_all_traffic_at_once(world):
    orchestrator, ports, _, _ = world
    second_release_awaiting_approval(orchestrator, ports)  # the first went live with no rollout
    first = ports.store.get(RELEASE)
    assert first.rollout is None and first.state == State.LIVE
    assert "nothing served before it" in next(e["detail"] for e in first.timeline if e["step"] == "rollout_skipped")


def test_a_step_error_mid_rollout_resumes_the_step_without_deploying_or_testing_again(world):
    orchestrator, ports, calls, clock = world
    second = second_release_awaiting_approval(orchestrator, ports)
    ports.evidence.serve(healthy(second))
    real_mark = ports.evidence.mark

    def mark_fails_once():
        ports.evidence.mark = real_mark
        raise RuntimeError("router restarting")

    ports.evidence.mark = mark_fails_once
    orchestrator.approve(second, person("bob"), "")
    release = ports.store.get(second)
    assert release.step_attempts == 1 and release.rollout["steps"][0]["state"] == "holding"
    assert [name for name, arg in calls.log if arg == second].count("begin_beside") == 1
    assert [name for name, _ in calls.log].count("integration") == 4  # two staging, two direct: no re-test
    window_over(orchestrator, clock)
    assert ports.store.get(second).rollout["steps"][0]["state"] == "passed"


def test_a_retry_after_a_step_passed_begins_the_next_step_not_that_one_again(world):
    orchestrator, ports, _, clock = world
    second = second_release_awaiting_approval(orchestrator, ports)
    ports.evidence.serve(healthy(second))
    orchestrator.approve(second, person("bob"), "")
    window_over(orchestrator, clock)  # shadow passes, canary 10% holding
    real_begin = ports.deployer.begin_traffic

    def busy_once(weights, mirror=None):
        ports.deployer.begin_traffic = real_begin
        raise RuntimeError("endpoint busy")

    ports.deployer.begin_traffic = busy_once
    window_over(orchestrator, clock)  # canary 10% passes; beginning canary 50% fails once, then is retried
    release = ports.store.get(second)
    assert [s["state"] for s in release.rollout["steps"]] == ["passed", "passed", "holding", "pending"]
    assert [e["step"] for e in release.timeline].count("rollout_step_passed") == 2
    assert ports.deployer.weights == {RELEASE: 50, second: 50}


def test_a_failed_read_at_the_window_s_end_looks_again_from_the_same_mark(world):
    orchestrator, ports, _, clock = world
    second = second_release_awaiting_approval(orchestrator, ports)
    ports.evidence.serve(healthy(second))
    orchestrator.approve(second, person("bob"), "")
    mark = ports.store.get(second).rollout["steps"][0]["mark"]
    real_since = ports.evidence.since
    reads = []

    def fails_on_the_second_read(at, deployments):
        reads.append(at)
        if len(reads) == 2:
            raise RuntimeError("timed out")
        return real_since(at, deployments)

    ports.evidence.since = fails_on_the_second_read
    window_over(orchestrator, clock)
    release = ports.store.get(second)
    assert release.step_attempts == 0 and release.rollout["steps"][0]["state"] == "passed"
    assert all(at == mark for at in reads[:3])


def test_a_rollout_that_says_no_sends_production_back_before_it_saves_the_verdict(world, monkeypatch):
    """A host that dies right after the verdict must not leave the new deployment with traffic: the
    restore is in the outbox before the release is final."""
    from functions.domain.release import Release

    orchestrator, ports, _, clock = world
    second = second_release_awaiting_approval(orchestrator, ports)
    ports.evidence.serve(biased(second))
    orchestrator.approve(second, person("bob"), "")
    back_at_verdict: list[bool] = []
    real = Release.rollout_step_analysed

    def watched(self, now, index, verdict):
        back_at_verdict.append(ports.deployer.weights == {RELEASE: 100} and not ports.deployer.mirror)
        real(self, now, index, verdict)

    monkeypatch.setattr(Release, "rollout_step_analysed", watched)
    window_over(orchestrator, clock)
    assert ports.store.get(second).state == State.ROLLED_BACK
    assert back_at_verdict and all(back_at_verdict)  # production was back on the stable deployment already
