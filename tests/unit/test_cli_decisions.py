"""`mlops approve/reject/trigger build` prove who is asking: what they send, byte for byte, with no host.

HTTP is a recording fake of ``requests.request`` and git a fake of ``subprocess.run``; the signature is
checked with the host's own ``verify`` and the key in the test's $MLOPS_HOME.
"""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from devhost.cli import main
from devhost.demo import CI_REQUESTER, DEFAULT_APPROVER, demo_approver
from devhost.signing import LINK_HEADER, LinkToken, LocalSigner, git_user_email, local_identity
from functions.entrypoints.identity.local_signature import (
    IDENTITY_HEADER,
    SIGNATURE_HEADER,
    BadSignature,
    Signed,
    key_path,
    load_or_create_key,
    verify,
)
from functions.settings import SettingsError
from tests.doubles.host_response import FakeResponse

HOST = "http://127.0.0.1:7199"


@dataclass
class Sent:
    method: str
    url: str
    data: bytes | None
    headers: dict[str, str]


@dataclass
class FakeHost:
    answer: FakeResponse = field(default_factory=lambda: FakeResponse(200, {"id": "rel-1", "state": "live"}))
    sent: list[Sent] = field(default_factory=list)

    def request(self, method: str, url: str, *, data: bytes | None, timeout: float, headers: dict[str, str]) -> Any:
        self.sent.append(Sent(method, url, data, dict(headers)))
        return self.answer


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MLOPS_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MLOPS_HOST_URL", HOST)
    return tmp_path / "home"


@pytest.fixture
def fake_host(monkeypatch: pytest.MonkeyPatch) -> FakeHost:
    host = FakeHost()
    monkeypatch.setattr(requests, "request", host.request)
    return host


def git_answers(monkeypatch: pytest.MonkeyPatch, email: str, returncode: int = 0) -> list[list[str]]:
    """`git config user.email` answers ``email``; the commands git was asked, in order."""
    asked: list[list[str]] = []

    def run(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        asked.append(command)
        return subprocess.CompletedProcess(command, returncode, stdout=f"{email}\n" if email else "", stderr="")

    monkeypatch.setattr(subprocess, "run", run)
    return asked


def verified(home: Path, sent: Sent) -> Signed | None:
    path = sent.url.removeprefix(HOST)
    return verify(load_or_create_key(home), sent.method, path, sent.headers, sent.data or b"", int(time.time()))


# --- approve / reject ------------------------------------------------------------------------------------


def test_approve_signs_the_exact_request_as_by(home: Path, fake_host: FakeHost) -> None:
    assert main(["approve", "rel-1", "--by", "alice@example.com", "--comment", "looks good"]) == 0

    (sent,) = fake_host.sent
    assert (sent.method, sent.url) == ("POST", f"{HOST}/api/releases/rel-1/approve")
    assert sent.headers["Content-Type"] == "application/json"
    assert json.loads(sent.data or b"") == {"comment": "looks good"}  # no "by": the host would ignore it
    assert verified(home, sent) == Signed("alice@example.com")
    assert key_path(home).stat().st_mode & 0o777 == 0o600


def test_the_signature_covers_the_body_and_the_path(home: Path, fake_host: FakeHost) -> None:
    main(["approve", "rel-1", "--by", "alice@example.com"])
    (sent,) = fake_host.sent
    assert json.loads(sent.data or b"") == {"comment": ""}
    key, now = load_or_create_key(home), int(time.time())
    with pytest.raises(BadSignature):
        verify(key, "POST", "/api/releases/rel-1/approve", sent.headers, b'{"comment": "other"}', now)
    with pytest.raises(BadSignature):
        verify(key, "POST", "/api/releases/rel-2/approve", sent.headers, sent.data or b"", now)


def test_reject_signs_as_the_git_user_by_default(
    home: Path, fake_host: FakeHost, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_host.answer = FakeResponse(200, {"id": "rel-1", "state": "declined"})
    asked = git_answers(monkeypatch, "carol@example.com")

    assert main(["reject", "rel-1", "--comment", "not now"]) == 0

    assert asked == [["git", "config", "user.email"]]
    (sent,) = fake_host.sent
    assert sent.url == f"{HOST}/api/releases/rel-1/reject"
    assert json.loads(sent.data or b"") == {"comment": "not now"}
    assert verified(home, sent) == Signed("carol@example.com")
    assert "rel-1: declined" in capsys.readouterr().out


def test_without_by_and_without_a_git_email_the_error_names_by(
    home: Path, fake_host: FakeHost, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    git_answers(monkeypatch, "", returncode=1)
    assert main(["approve", "rel-1"]) == 1
    out = capsys.readouterr().out
    assert "--by" in out and "git config user.email" in out
    assert fake_host.sent == []


def test_an_empty_by_is_refused(home: Path, fake_host: FakeHost, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["approve", "rel-1", "--by", "  "]) == 1
    assert "--by is empty" in capsys.readouterr().out and fake_host.sent == []


def test_link_sends_the_token_instead_of_a_signature(home: Path, fake_host: FakeHost) -> None:
    assert main(["approve", "rel-1", "--link", "tok.en-123", "--comment", "ok"]) == 0
    (sent,) = fake_host.sent
    assert sent.headers[LINK_HEADER] == "tok.en-123"
    assert SIGNATURE_HEADER not in sent.headers and IDENTITY_HEADER not in sent.headers
    assert json.loads(sent.data or b"") == {"comment": "ok"}
    assert not key_path(home).exists()  # a link needs no local key


def test_by_and_link_together_are_a_usage_error(home: Path, fake_host: FakeHost) -> None:
    with pytest.raises(SystemExit) as usage:
        main(["approve", "rel-1", "--by", "a@example.com", "--link", "t"])
    assert usage.value.code == 2 and fake_host.sent == []


def test_reject_still_needs_a_comment(home: Path, fake_host: FakeHost) -> None:
    with pytest.raises(SystemExit) as usage:
        main(["reject", "rel-1", "--by", "a@example.com"])
    assert usage.value.code == 2


@pytest.mark.parametrize(
    ("status", "error"),
    [(401, "the signature does not match"), (403, "alice@example.com started this release"),
     (409, "release rel-1 is live"), (410, "the approval deadline passed")],
)  # fmt: skip
def test_a_refusal_prints_the_status_and_exits_1(
    home: Path, fake_host: FakeHost, capsys: pytest.CaptureFixture[str], status: int, error: str
) -> None:
    fake_host.answer = FakeResponse(status, {"error": error})
    assert main(["approve", "rel-1", "--by", "alice@example.com"]) == 1
    out = " ".join(capsys.readouterr().out.split())
    assert f"-> {status}: {error}" in out
    if status == 401:
        assert "signed as alice@example.com" in out and "MLOPS_HOME" in out


def test_a_refused_link_says_so(home: Path, fake_host: FakeHost, capsys: pytest.CaptureFixture[str]) -> None:
    fake_host.answer = FakeResponse(401, {"error": "the link expired"})
    assert main(["reject", "rel-1", "--link", "t", "--comment", "no"]) == 1
    out = " ".join(capsys.readouterr().out.split())
    assert "401" in out and "the link expired" in out and "link's token was not accepted" in out


def test_a_release_id_is_sent_percent_encoded_and_signed_as_sent(home: Path, fake_host: FakeHost) -> None:
    main(["approve", "rel 1/x", "--by", "alice@example.com"])
    (sent,) = fake_host.sent
    assert sent.url == f"{HOST}/api/releases/rel%201%2Fx/approve"
    assert verified(home, sent) == Signed("alice@example.com")


# --- trigger build ----------------------------------------------------------------------------------------


def _delivered(fake_host: FakeHost) -> dict[str, Any]:
    (sent,) = fake_host.sent
    assert sent.url == f"{HOST}/runtime/webhooks/eventgrid?functionName=on_build_event"
    (event,) = json.loads(sent.data or b"")
    return event["data"]


def test_trigger_build_names_the_requester(home: Path, fake_host: FakeHost) -> None:
    fake_host.answer = FakeResponse(202, None)
    assert main(["trigger", "build", "--commit", "abc", "--build-id", "b-1", "--requester", "dave@example.com"]) == 0
    data = _delivered(fake_host)
    assert data["requester"] == "dave@example.com" and data["buildId"] == "b-1"


def test_trigger_build_requester_defaults_to_the_git_user(
    home: Path, fake_host: FakeHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_host.answer = FakeResponse(202, None)
    git_answers(monkeypatch, "erin@example.com")
    assert main(["trigger", "build", "--commit", "abc"]) == 0
    assert _delivered(fake_host)["requester"] == "erin@example.com"


def test_trigger_build_without_any_identity_names_requester(
    home: Path, fake_host: FakeHost, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    git_answers(monkeypatch, "")
    assert main(["trigger", "build", "--commit", "abc"]) == 1
    assert "--requester" in capsys.readouterr().out and fake_host.sent == []


# --- the pieces -------------------------------------------------------------------------------------------


def test_git_user_email_is_empty_when_git_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(*args: Any, **kwargs: Any) -> Any:
        raise FileNotFoundError("git")

    monkeypatch.setattr(subprocess, "run", missing)
    assert git_user_email() == ""


def test_local_identity_prefers_the_option() -> None:
    assert local_identity(" a@example.com ", "--by", lambda: "git@example.com") == "a@example.com"
    assert local_identity(None, "--by", lambda: "git@example.com") == "git@example.com"
    with pytest.raises(SettingsError, match="--requester"):
        local_identity(None, "--requester", lambda: "")


def test_proofs_do_not_show_their_secrets() -> None:
    assert "deadbeef" not in repr(LocalSigner("a@example.com", b"deadbeef"))
    assert "s3cret" not in repr(LinkToken("s3cret"))
    signer = LocalSigner("a@example.com", b"k", clock=lambda: 1_764_633_600.9)
    assert signer("POST", "/p", b"")["X-MLOps-Timestamp"] == "1764633600"


def test_the_demo_approves_as_the_git_user_never_as_its_ci_requester(monkeypatch: pytest.MonkeyPatch) -> None:
    assert demo_approver(lambda: "frank@example.com") == "frank@example.com"
    assert demo_approver(lambda: "") == DEFAULT_APPROVER
    assert demo_approver(lambda: CI_REQUESTER.upper()) == DEFAULT_APPROVER
    git_answers(monkeypatch, "grace@example.com")
    assert demo_approver() == "grace@example.com"


# --- rollback, and following a promotion ------------------------------------------------------------------
@dataclass
class ScriptedHost:
    """Answers requests in order (the last one again once the script is used up)."""

    answers: list[FakeResponse]
    sent: list[Sent] = field(default_factory=list)

    def request(self, method: str, url: str, *, data: bytes | None, timeout: float, headers: dict[str, str]) -> Any:
        self.sent.append(Sent(method, url, data, dict(headers)))
        return self.answers[min(len(self.sent), len(self.answers)) - 1]


ROLLBACK: dict[str, Any] = {"id": "rel-rollback-1", "state": "promoting", "error": None, "timeline": [],
            "trigger": {"kind": "rollback", "from": "rel-2", "to": "rel-1", "model": "m:1"}}  # fmt: skip


def test_rollback_is_signed_and_followed_until_live(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    step = {"at": "2026-12-02T03:00:01+00:00", "step": "production_direct_passed", "detail": "tested"}
    live = {**ROLLBACK, "state": "live", "timeline": [step]}
    host = ScriptedHost([FakeResponse(202, ROLLBACK), FakeResponse(200, ROLLBACK), FakeResponse(200, live)])
    monkeypatch.setattr(requests, "request", host.request)
    monkeypatch.setattr(time, "sleep", lambda seconds: None)

    assert main(["rollback", "--to", "1", "--by", "ops@example.com", "--comment", "v2 drifts"]) == 0

    posted = host.sent[0]
    assert (posted.method, posted.url) == ("POST", f"{HOST}/api/production/rollback")
    assert json.loads(posted.data or b"") == {"comment": "v2 drifts", "to": "1"}
    assert verified(home, posted) == Signed("ops@example.com")
    out = capsys.readouterr().out
    assert "rollback from rel-2 to rel-1 (m:1)" in out and "production_direct_passed" in out and "live" in out


def test_a_rollback_without_a_comment_is_refused_before_anything_is_sent(home: Path, fake_host: FakeHost) -> None:
    assert main(["rollback", "--by", "ops@example.com", "--comment", "  "]) == 1
    assert fake_host.sent == []


def test_an_approval_whose_promotion_cannot_be_followed_says_so_and_succeeds(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    promoting = {"id": "rel-1", "state": "promoting", "timeline": []}
    refused = FakeResponse(401, {"error": "function key required"})
    host = ScriptedHost([FakeResponse(202, promoting), refused, FakeResponse(202, promoting)])
    monkeypatch.setattr(requests, "request", host.request)
    assert main(["approve", "rel-1", "--by", "alice@example.com"]) == 0
    assert "cannot be followed from here" in capsys.readouterr().out
    assert main(["approve", "rel-1", "--by", "alice@example.com", "--no-wait"]) == 0
    assert [s.method for s in host.sent] == ["POST", "GET", "POST"]


def test_show_draws_the_rollout_with_what_each_step_served_and_its_verdict() -> None:
    from rich.console import Console

    from devhost.commands_releases import rollout_table

    rollout = {
        "stable": "rel-old",
        "steps": [
            {"kind": "shadow", "share": 50, "window_s": 60.0, "min_requests": 40, "state": "passed",
             "verdict": {"summary": "shadow 50%: passed: 60 mirrored requests (min 40); errors 0/60 vs 0/120",
                         "candidate": {"requests": 60, "errors": 0}, "stable": {"requests": 120, "errors": 0}}},
            {"kind": "canary", "share": 10, "window_s": 60.0, "min_requests": 40, "state": "failed",
             "verdict": {"summary": "canary 10%: failed (errors): errors 9/40 vs 0/360",
                         "candidate": {"requests": 40, "errors": 9}, "stable": {"requests": 360, "errors": 0}}},
            {"kind": "canary", "share": 100, "window_s": 60.0, "min_requests": 40, "state": "pending"},
        ],
    }  # fmt: skip
    console = Console(width=200, record=True)
    console.print(rollout_table(rollout))
    text = console.export_text()
    assert "Rollout against rel-old" in text
    assert "shadow 50%" in text and "60/120" in text and "errors 0/60 vs 0/120" in text
    assert "failed" in text and "40/360" in text and "9/0" in text and "errors 9/40 vs 0/360" in text
    assert "canary 100%" in text and "pending" in text
