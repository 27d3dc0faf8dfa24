"""The approval control in the service: who may decide, how many must, until when (functions.service.commands)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from functions.domain.approval import ApprovalConfigError, ApprovalPolicy, AutoApprove, Principal, requester_of
from functions.domain.gate import GatePolicy
from functions.domain.release import State
from functions.links import Links
from functions.service.context import Timeouts
from functions.service.results import Conflict, Forbidden, Gone, Invalid
from tests import payloads as p
from tests.doubles.clock import Clock
from tests.doubles.followed import Followed
from tests.doubles.ports import Calls, fake_ports
from tests.unit.test_orchestrator import JOB, RELEASE, TAG, deliver_a_better_second_release

ALICE = Principal("alice@example.com", "oid-alice", "aad", "easy_auth", ("grp-ml",))  # started the build
BOB = Principal("bob@example.com", "oid-bob", "aad", "easy_auth", ("grp-ml",))
CAROL = Principal("carol@example.com", "oid-carol", "aad", "easy_auth", ())


def world(policy: ApprovalPolicy, *, requester: str | None = "alice@example.com", gate: GatePolicy | None = None):
    ports = fake_ports(Calls())
    clock = Clock()
    orchestrator = Followed(
        ports, links=Links(), clock=clock, approval_policy=policy, policy=gate,
        timeouts=Timeouts(approval=timedelta(hours=policy.deadline_hours)),
    )  # fmt: skip
    build = p.build_completed("1234")
    build["data"]["requestedFor"] = "Alice Example"  # a display name: not comparable on its own
    if requester is not None:
        build["data"]["requester"] = requester
    orchestrator.receive("on_build_event", build)
    orchestrator.receive("on_ml_event", p.run_completed(JOB, RELEASE))
    orchestrator.receive("on_registry_event", p.image_pushed(TAG))
    return orchestrator, ports, clock


def steps(ports, release_id: str = RELEASE) -> list[str]:
    return [entry["step"] for entry in ports.store.get(release_id).timeline]


def last_detail(ports, release_id: str = RELEASE) -> str:
    return ports.store.get(release_id).timeline[-1]["detail"]


def test_the_requester_cannot_approve_and_the_refusal_is_in_the_timeline():
    orchestrator, ports, _ = world(ApprovalPolicy())
    with pytest.raises(Forbidden, match="started this release and may not approve it"):
        orchestrator.approve(RELEASE, ALICE, "mine, looks good")
    release = ports.store.get(RELEASE)
    assert release.state == State.AWAITING_APPROVAL and steps(ports)[-1] == "approve_refused"
    assert last_detail(ports).startswith("alice@example.com, object id oid-alice, via easy_auth (aad) may not approve")
    assert orchestrator.approve(RELEASE, BOB, "ok").state == State.LIVE
    assert ports.store.get(RELEASE).approval["approvals"][0]["object_id"] == "oid-bob"


def test_only_named_approvers_and_members_of_named_groups_may_approve():
    policy = ApprovalPolicy(approvers=("carol@example.com", "group:grp-release-managers"))
    orchestrator, _, _ = world(policy)
    with pytest.raises(Forbidden, match=r"bob@example\.com is not an approver"):
        orchestrator.approve(RELEASE, BOB, "")
    manager = Principal("dan@example.com", "oid-dan", "aad", "easy_auth", ("grp-release-managers",))
    assert orchestrator.approve(RELEASE, manager, "").state == State.LIVE


def test_a_groups_overage_fails_closed_for_group_rules():
    orchestrator, _, _ = world(ApprovalPolicy(approvers=("group:grp-ml",)))
    overage = Principal("bob@example.com", "oid-bob", "aad", "easy_auth", None)  # too many groups to list
    with pytest.raises(Forbidden, match="did not list their groups"):
        orchestrator.approve(RELEASE, overage, "")


def test_two_distinct_approvers_are_needed_when_the_policy_says_two():
    orchestrator, ports, _ = world(ApprovalPolicy(required_approvals=2))
    first = orchestrator.approve(RELEASE, BOB, "one")
    assert (
        first.state == State.AWAITING_APPROVAL
        and "approved by bob@example.com [easy_auth, aad, oid-bob] (1 of 2): one" in last_detail(ports)
    )
    with pytest.raises(Conflict, match="has approved it already"):
        orchestrator.approve(RELEASE, BOB, "again")
    same_object_other_name = Principal("Bob@Example.com", "OID-BOB", "aad", "easy_auth")
    with pytest.raises(Conflict):
        orchestrator.approve(RELEASE, same_object_other_name, "")
    assert orchestrator.approve(RELEASE, CAROL, "two").state == State.LIVE
    assert [a["name"] for a in ports.store.get(RELEASE).approval["approvals"]] == [
        "bob@example.com",
        "carol@example.com",
    ]


def test_a_decision_after_the_deadline_is_gone_and_expires_the_release_at_once():
    orchestrator, ports, clock = world(ApprovalPolicy(deadline_hours=1))
    clock.advance(hours=1)  # the timer has not run
    with pytest.raises(Gone, match="deadline has passed"):
        orchestrator.approve(RELEASE, BOB, "")
    assert ports.store.get(RELEASE).state == State.EXPIRED and steps(ports)[-2:] == ["expired", "approve_refused"]


def test_a_requester_that_cannot_be_compared_fails_closed_unless_the_policy_allows_it():
    orchestrator, _, _ = world(ApprovalPolicy(), requester=None)
    with pytest.raises(Forbidden, match="cannot be compared"):
        orchestrator.approve(RELEASE, BOB, "")
    relaxed, _, _ = world(ApprovalPolicy(unknown_requester="allow"), requester=None)
    assert relaxed.approve(RELEASE, BOB, "").state == State.LIVE


def test_solo_work_can_allow_self_approval():
    orchestrator, _, _ = world(ApprovalPolicy(allow_self_approval=True))
    assert orchestrator.approve(RELEASE, ALICE, "").state == State.LIVE


def test_declining_needs_an_approver_and_a_comment():
    orchestrator, _, _ = world(ApprovalPolicy(approvers=("carol@example.com",)))
    with pytest.raises(Invalid, match="comment"):
        orchestrator.decline(RELEASE, CAROL, "  ")
    with pytest.raises(Forbidden):
        orchestrator.decline(RELEASE, BOB, "no")
    declined = orchestrator.decline(RELEASE, CAROL, "wait for the data fix")
    assert declined.state == State.DECLINED and declined.approval["declined_by"]["object_id"] == "oid-carol"


def test_auto_approve_promotes_on_overwhelming_evidence_and_records_the_policy_as_approver():
    policy = ApprovalPolicy(auto_approve=AutoApprove(min_confidence=0.99))
    orchestrator, ports, _ = world(policy, gate=GatePolicy(confidence=0.99))
    assert ports.store.get(RELEASE).state == State.AWAITING_APPROVAL  # no champion: no interval, a person decides
    orchestrator.approve(RELEASE, BOB, "")
    release = ports.store.get(deliver_a_better_second_release(orchestrator, ports))
    assert release.state == State.LIVE
    [approval] = release.approval["approvals"]
    assert approval["name"] == "approval policy" and approval["method"] == "policy"
    assert approval["comment"].startswith("auto-approved by policy: better:")


@pytest.mark.parametrize(
    ("document", "named"),
    [
        ({"approvers": "bob"}, "approvers must be a list"),
        ({"required_approvals": 0}, "required_approvals must be at least 1"),
        ({"required_approvals": True}, "required_approvals has the wrong type"),
        ({"unknown_requester": "maybe"}, "unknown_requester must be deny or allow"),
        ({"deadline_hours": -1}, "deadline_hours must be positive"),
        ({"aprovers": []}, "unknown approval policy field(s): aprovers"),
        ({"auto_approve": {"min_confidence": 0.3}}, "auto_approve.min_confidence"),
        ({"approvers": ["group:"]}, "names nobody"),
    ],
)
def test_a_bad_policy_names_its_field(document, named):
    with pytest.raises(ApprovalConfigError, match=named.replace("(", r"\(").replace(")", r"\)")):
        ApprovalPolicy.from_mapping(document)


def test_the_requester_is_the_recorded_identity_or_an_email_shaped_requested_for():
    assert requester_of({"requester": "alice@example.com", "requestedFor": "Alice"}) == "alice@example.com"
    assert requester_of({"requestedFor": "alice@example.com"}) == "alice@example.com"
    assert requester_of({"requestedFor": "octocat"}) is None and requester_of({}) is None


def test_a_requester_published_on_the_azure_topic_is_not_evidence_and_fails_closed():
    """Anyone able to publish BuildCompleted could name someone else as the requester: on Azure only the
    authenticated CI hooks' requester is compared."""
    ports = fake_ports(Calls())
    orchestrator = Followed(ports, links=Links(), trust_published_requester=False)
    build = p.build_completed("1234")
    build["data"]["requester"] = "bob@example.com"  # alice's pipeline names bob...
    orchestrator.receive("on_build_event", build)
    orchestrator.receive("on_ml_event", p.run_completed(JOB, RELEASE))
    orchestrator.receive("on_registry_event", p.image_pushed(TAG))
    with pytest.raises(Forbidden, match="cannot be compared"):  # ...so alice could approve her own release
        orchestrator.approve(RELEASE, ALICE, "")
    release = ports.store.get(RELEASE)
    assert release is not None and release.trigger["requester"] == "bob@example.com"  # kept for people to read


def test_the_hooks_requester_is_compared_on_azure_too():
    ports = fake_ports(Calls())
    orchestrator = Followed(ports, links=Links(), trust_published_requester=False)
    build = p.build_completed("1234")
    build["topic"] = "hooks/azure-devops"  # what the Azure DevOps hook builds in-process
    build["data"]["requester"] = "alice@example.com"
    orchestrator.receive("on_build_event", build)
    orchestrator.receive("on_ml_event", p.run_completed(JOB, RELEASE))
    orchestrator.receive("on_registry_event", p.image_pushed(TAG))
    with pytest.raises(Forbidden, match="self-approval"):
        orchestrator.approve(RELEASE, ALICE, "")
    assert orchestrator.approve(RELEASE, BOB, "").state == State.LIVE


def test_one_person_under_a_name_and_under_an_object_id_counts_once():
    orchestrator, _, _ = world(ApprovalPolicy(required_approvals=2))
    orchestrator.approve(RELEASE, BOB, "by session")
    link_for_the_object_id = Principal("oid-bob", provider="mlops", method="link")
    with pytest.raises(Conflict, match="approved it already"):
        orchestrator.approve(RELEASE, link_for_the_object_id, "by link")


def test_after_the_timer_expired_it_a_decision_is_still_gone_not_a_conflict():
    orchestrator, ports, clock = world(ApprovalPolicy(deadline_hours=1))
    clock.advance(hours=2)
    orchestrator.reconcile()
    assert ports.store.get(RELEASE).state == State.EXPIRED
    with pytest.raises(Gone):
        orchestrator.approve(RELEASE, BOB, "")


def test_repeated_refusals_do_not_grow_the_release_and_wrong_states_are_only_logged():
    orchestrator, ports, _ = world(ApprovalPolicy())
    for _ in range(50):
        with pytest.raises(Forbidden):
            orchestrator.approve(RELEASE, ALICE, "")
    assert steps(ports).count("approve_refused") == 1
    orchestrator.approve(RELEASE, BOB, "")
    before = len(ports.store.get(RELEASE).timeline)
    for _ in range(50):
        with pytest.raises(Conflict):
            orchestrator.approve(RELEASE, CAROL, "")
    assert len(ports.store.get(RELEASE).timeline) == before
