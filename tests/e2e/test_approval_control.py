"""Approval as a real control, against a running `mlops up`: only a proven person decides, from no other site.

One release waits for approval through the whole module; every request here is refused, and the test
checks after each that the release is still waiting. Self-approval through the CLI is in test_cli.py.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest

from tests.e2e.conftest import APPROVER, REQUESTER, post_decision, signed, trigger_build, wait_for_state

pytestmark = pytest.mark.e2e

COMMENT = json.dumps({"comment": "ship it"}).encode()


@pytest.fixture(scope="module")
def waiting(host) -> str:
    release_id = trigger_build(host)
    release = wait_for_state(host, release_id, {"awaiting_approval", "failed", "rejected"})
    assert release["state"] == "awaiting_approval", release
    return release_id


def still_waiting(host, release_id: str) -> None:
    release = host.release(release_id)
    assert release["state"] == "awaiting_approval", release
    assert not (release.get("approval") or {}).get("approvals"), release["approval"]


def test_an_unsigned_approve_is_401_and_the_release_still_waits(host, waiting):
    for body in (COMMENT, json.dumps({"by": APPROVER, "comment": "the body names me"}).encode()):
        answer = post_decision(host, waiting, "approve", body, identity=None)
        assert answer.status_code == 401, answer.text
        assert "error" in answer.json()
    still_waiting(host, waiting)


def test_an_unsigned_reject_is_401_too(host, waiting):
    body = json.dumps({"by": APPROVER, "comment": "no"}).encode()
    answer = post_decision(host, waiting, "reject", body, identity=None)
    assert answer.status_code == 401, answer.text
    still_waiting(host, waiting)


def test_a_forged_signature_is_401(host, waiting):
    # Signed for another body than the one sent.
    path = f"/api/releases/{waiting}/approve"
    headers = signed(host, APPROVER)("POST", path, b'{"comment": "something else"}')
    answer = post_decision(host, waiting, "approve", COMMENT, identity=None, headers=headers)
    assert answer.status_code == 401, answer.text
    still_waiting(host, waiting)


def test_a_text_plain_approve_is_415_even_signed(host, waiting):
    answer = post_decision(host, waiting, "approve", COMMENT, content_type="text/plain")
    assert answer.status_code == 415, answer.text
    still_waiting(host, waiting)


def test_a_cross_origin_approve_is_403_before_anything_runs(host, waiting):
    # The classic cross-site form: text/plain, no preflight; and the same with JSON and a valid signature.
    evil = {"Origin": "http://evil.example"}
    form = post_decision(host, waiting, "approve", COMMENT, identity=None, content_type="text/plain", headers=evil)
    signed_json = post_decision(host, waiting, "approve", COMMENT, headers=evil)
    other_port = post_decision(host, waiting, "approve", COMMENT, headers={"Origin": "http://127.0.0.1:1"})
    for answer in (form, signed_json, other_port):
        assert answer.status_code == 403, answer.text
        assert "another site" in answer.json()["error"]
    still_waiting(host, waiting)


def test_a_request_for_another_host_name_is_403(host, waiting):
    port = urlsplit(host.base_url).port
    answer = post_decision(host, waiting, "approve", COMMENT, headers={"Host": f"evil.example:{port}"})
    assert answer.status_code == 403 and "DNS rebinding" in answer.json()["error"]
    still_waiting(host, waiting)


def test_the_hosts_own_origin_passes_the_origin_check(host, waiting):
    # Same origin, but unsigned: the site check lets it through and the identity check answers.
    own = {"Origin": host.base_url}
    answer = post_decision(host, waiting, "approve", COMMENT, identity=None, headers=own)
    assert answer.status_code == 401, answer.text
    still_waiting(host, waiting)


def test_the_release_records_who_requested_it(host, waiting):
    assert host.release(waiting)["trigger"]["requester"] == REQUESTER
