"""Duplicated, shuffled and interleaved deliveries end exactly where the clean order ends."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from functions.domain.ids import image_tag, release_id_for_build
from functions.links import Links
from tests import payloads as p
from tests.doubles.clock import Clock
from tests.doubles.followed import Followed
from tests.doubles.ports import Calls, fake_ports

BUILDS = ("101", "202")
COMPARED = ("id", "state", "trigger", "params", "job", "candidate", "champion", "gate", "image", "staging",
            "approval", "production", "error")  # fmt: skip


def clean_events(build_id: str) -> list[tuple[str, dict]]:
    release = release_id_for_build(build_id)
    return [
        ("on_build_event", p.build_completed(build_id, event_id=f"b-{build_id}")),
        ("on_ml_event", p.run_completed(f"job-{release}", release, event_id=f"r-{build_id}")),
        ("on_ml_event", p.model_registered(1, release, event_id=f"m-{build_id}")),
        ("on_registry_event", p.image_pushed(image_tag("1", release), event_id=f"i-{build_id}")),
    ]


def run(deliveries: list[tuple[str, dict]]) -> tuple[dict[str, dict], Calls]:
    calls = Calls()
    ports = fake_ports(calls)
    orchestrator = Followed(ports, links=Links(), clock=Clock())
    for function, payload in deliveries:
        orchestrator.receive(function, payload)
    releases = {r.id: {k: v for k, v in r.to_json().items() if k in COMPARED} for r in ports.store.list()}
    return releases, calls


CLEAN_RELEASES, CLEAN_CALLS = run([e for b in BUILDS for e in clean_events(b)])


@st.composite
def messy_deliveries(draw: st.DrawFn) -> list[tuple[str, dict]]:
    deliveries = []
    for build_id in BUILDS:
        for event in clean_events(build_id):
            deliveries.extend([event] * draw(st.integers(min_value=1, max_value=3)))
    return draw(st.permutations(deliveries))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messy_deliveries())
def test_any_order_with_duplicates_matches_the_clean_order(deliveries):
    releases, calls = run(deliveries)
    assert releases == CLEAN_RELEASES
    for name in ("submit", "register", "build", "begin_staging"):
        assert calls.count(name) == CLEAN_CALLS.count(name) == len(BUILDS)


def test_the_clean_order_reaches_approval_for_both_releases():
    assert {r["state"] for r in CLEAN_RELEASES.values()} == {"awaiting_approval", "superseded"}
