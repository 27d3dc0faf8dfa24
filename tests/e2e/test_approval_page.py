"""The approver's experience end to end: a real host, real notification receivers, Debian's chromium.

One host with two approvals required and four notification targets on 127.0.0.1: Teams, Slack and
JSON receivers, and one that is down. A first release goes live (two people approve it with the CLI)
so the second has a champion and a difference to draw. Then, in the browser, each person through
their own one-time sign-in link (`mlops ui`): the requester's approval is refused in words, the first
approver leaves it waiting (1 of 2), the second sends it live. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from devhost.settings import REPO_ROOT
from platforms.local.inference_server import free_port
from tests.doubles.http_server import serving
from tests.doubles.payload_schemas import validator
from tests.e2e.conftest import APPROVER, REQUESTER, RunningHost, running_host, signed, trigger_build, wait_for_state
from tests.integration.test_webhook_notifications import Receiver

SECOND_APPROVER = "e2e-second@example.com"
ARTIFACTS = REPO_ROOT / "test-artifacts" / "approval-page"
FORMATS = ("teams", "slack", "json")


def chromium_path() -> str:
    found = os.environ.get("MLOPS_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    message = "Debian's chromium is needed for the browser tests: apt-get install chromium (.ci/run does)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    with serving(server):
        yield server


@pytest.fixture(scope="module")
def page_host(tmp_path_factory: pytest.TempPathFactory, receiver: Receiver) -> Iterator[RunningHost]:
    base = receiver.url.split("?", 1)[0].rsplit("/", 1)[0]
    dead = f"http://127.0.0.1:{free_port()}/nobody-listens"  # a port nothing listens on
    targets = " ".join([*(f"{fmt}:{base}/{fmt}" for fmt in FORMATS), f"down=json:{dead}"])
    env = {
        "MLOPS_GATE_POLICY": '{"mode": "non_inferiority", "margin": 50}',
        "MLOPS_APPROVAL_POLICY": '{"required_approvals": 2}',
        "MLOPS_NOTIFICATION_TARGETS": targets,
        # Webhooks are sent by the timer's pass (never inside an invocation): run it every 2 seconds here.
        "MLOPS_RECONCILE_SCHEDULE": "*/2 * * * * *",
    }
    with running_host(tmp_path_factory.mktemp("mlops-page-home"), env) as host:
        yield host


@pytest.fixture(scope="module")
def awaiting(page_host: RunningHost) -> str:
    """The second release, awaiting approval, with the first one live as its champion."""
    first = trigger_build(page_host)
    wait_for_state(page_host, first, {"awaiting_approval"})
    page_host.approve(first, signed(page_host, APPROVER), "first")
    page_host.approve(first, signed(page_host, SECOND_APPROVER), "second")
    wait_for_state(page_host, first, {"live"})
    second = trigger_build(page_host, {"alpha": 0.45})
    wait_for_state(page_host, second, {"awaiting_approval"})
    return second


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


def sign_in_link(host: RunningHost, identity: str, release_id: str | None = None) -> str:
    """What `mlops ui --no-open --as IDENTITY [ID]` prints: the last line is the link."""
    urls = {"MLOPS_HOST_URL": host.base_url, "MLOPS_PUBLIC_URL": host.base_url}
    env = {**os.environ, "MLOPS_HOME": str(host.home), **urls}
    args = [sys.executable, "-m", "devhost", "ui", "--no-open", "--as", identity, *([release_id] if release_id else [])]
    done = subprocess.run(args, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60, check=True)
    return done.stdout.strip().splitlines()[-1]


def shoot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_sign_in_list_evidence_refusal_and_two_approvals_in_a_real_browser(page_host, awaiting, browser):
    # The requester signs in: the list, the release, its evidence; their approval is refused in words.
    requester = browser.new_context()
    page = requester.new_page()
    page.goto(sign_in_link(page_host, REQUESTER))
    assert page.url == f"{page_host.base_url}/api/ui"
    expect(page.get_by_text(f"Signed in as {REQUESTER}")).to_be_visible()
    row = page.get_by_role("row").filter(has_text=awaiting)
    assert "awaiting approval" in row.inner_text()
    shoot(page, "1-list")
    row.get_by_role("link", name=awaiting).click()
    expect(page.get_by_role("heading", name=f"Release {awaiting} awaiting approval")).to_be_visible()
    chart = page.get_by_role("img", name="mse improvement with its intervals")
    expect(chart).to_be_visible()
    assert chart.bounding_box()["width"] > 300
    expect(page.get_by_role("img", name="mse: champion and challenger")).to_be_visible()
    assert page.locator("#difference line.threshold").count() == 1
    assert page.locator("#difference text", has_text="95% (the gate's)").count() == 1
    shoot(page, "2-release-evidence")
    page.get_by_label("Comment for the approval (optional)").fill("my own build, looks fine")
    page.get_by_role("button", name="Approve").click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("Your approval was refused")
    assert "self-approval" in alert.inner_text()
    shoot(page, "3-self-approval-refused")
    requester.close()

    # The first approver, keyboard only: the comment field by its label, Tab to the button, Enter.
    first = browser.new_context()
    page = first.new_page()
    page.goto(sign_in_link(page_host, APPROVER, awaiting))
    assert page.url == f"{page_host.base_url}/api/ui/releases/{awaiting}"
    page.get_by_label("Comment for the approval (optional)").focus()
    page.keyboard.type("non-inferior within the margin at 95%")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Approve"
    with page.expect_navigation():
        page.keyboard.press("Enter")
    expect(page.get_by_text("1 of 2", exact=True)).to_be_visible()
    expect(page.get_by_text("You have approved this release; it waits for someone else.")).to_be_visible()
    assert page_host.release(awaiting)["state"] == "awaiting_approval"
    shoot(page, "4-first-of-two")
    first.close()

    # The second approver sends it on: the promotion runs, the page shows it live.
    second = browser.new_context()
    page = second.new_page()
    page.goto(sign_in_link(page_host, SECOND_APPROVER, awaiting))
    page.get_by_label("Comment for the approval (optional)").fill("ship it")
    page.get_by_role("button", name="Approve").click()
    # The approval begins the promotion; the page says so and reloads itself while the follow timer
    # carries it on: beside production, tested directly, then traffic.
    expect(page.get_by_role("heading", name=f"Release {awaiting} promoting")).to_be_visible()
    expect(page.get_by_role("status")).to_contain_text("This page reloads every 3 seconds")
    shoot(page, "5-promoting")
    expect(page.get_by_role("heading", name=f"Release {awaiting} live")).to_be_visible(timeout=120_000)
    timeline = page.locator("ol.timeline").inner_text()
    assert f"approved by {APPROVER}" in timeline and SECOND_APPROVER in timeline and "ship it" in timeline
    assert "production direct passed" in timeline and "operation started" in timeline
    assert page.get_by_role("status").count() == 0  # at rest: no more reloading
    shoot(page, "6-live")
    second.close()
    approvals = page_host.release(awaiting)["approval"]["approvals"]
    assert [(a["name"], a["method"]) for a in approvals] == [(APPROVER, "session"), (SECOND_APPROVER, "session")]


def test_a_used_sign_in_link_and_a_cross_site_form_are_refused(page_host, awaiting, browser):
    link = sign_in_link(page_host, APPROVER)
    context = browser.new_context()
    page = context.new_page()
    page.goto(link)
    other = browser.new_context().new_page()
    response = other.goto(link)  # the same link again, from another browser: used up
    assert response.status == 409 and "used already" in other.content()
    evil = other.context.new_page()
    evil.set_content(
        f'<form method="post" action="{page_host.base_url}/api/ui/releases/{awaiting}/approve">'
        '<input name="comment" value="x"><input name="token" value="forged"><button>go</button></form>'
    )
    with evil.expect_navigation() as navigation:
        evil.get_by_role("button", name="go").click()
    assert navigation.value.status == 403 and "another site" in evil.content()
    context.close()
    other.context.close()


def received(receiver: Receiver) -> dict[str, list[dict[str, Any]]]:
    by_path: dict[str, list[dict[str, Any]]] = {}
    for request in list(receiver.received):
        by_path.setdefault(request["path"].rsplit("/", 1)[-1], []).append(json.loads(request["body"]))
    return by_path


def test_every_target_got_its_format_and_the_dead_one_is_in_the_timeline(page_host, awaiting, receiver):
    page_url = f"{page_host.base_url}/api/ui/releases/{awaiting}"
    deadline = time.monotonic() + 60
    while not all(page_url in json.dumps(received(receiver).get(fmt, [])) for fmt in FORMATS):
        assert time.monotonic() < deadline, f"not every receiver got {awaiting}'s notifications: {received(receiver)}"
        time.sleep(0.5)
    by_path = received(receiver)
    for fmt in FORMATS:
        check = validator(fmt)
        for payload in by_path[fmt]:
            check.validate(payload)
    [approval] = [n for n in by_path["json"] if n["kind"] == "approval_requested" and n["releaseId"] == awaiting]
    assert approval["url"] == page_url and approval["evidence"]["metric"] == "mse"
    assert approval["evidence"]["champion"] is not None and approval["lineage"]["model"].endswith(":2")
    teams = [m for m in by_path["teams"] if page_url in json.dumps(m)]
    slack = [m for m in by_path["slack"] if page_url in json.dumps(m)]
    assert teams and slack
    assert teams[0]["attachments"][0]["contentType"] == "application/vnd.microsoft.card.adaptive"
    while True:  # the dead target's failure, noted by the timer's pass that tried it
        release = page_host.release(awaiting)
        notes = [e["detail"] for e in release["timeline"] if e["step"] == "notification_failed"]
        if notes or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    expected = "notification to down failed: NotificationFailed: down: could not reach"
    assert any(note.startswith(expected) for note in notes)
    assert all("nobody-listens" not in note and "127.0.0.1" not in note for note in notes)  # no URL
    assert release["state"] in {"awaiting_approval", "promoting", "live"}  # the dead target changed nothing
