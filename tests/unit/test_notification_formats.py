"""The notification formats: each payload is what its service documents (checked against JSON Schemas
written from the public docs), within its limits, escaped, and free of credentials. Plus the
Notifier port over named channels, which needs no socket."""

from __future__ import annotations

import json
from typing import Any

import pytest

from functions.domain.notifications import TARGET_FORMATS, Fact, Kind, Notification
from functions.ports import Notifier
from platforms.common.notify.formats import (
    FORMATS,
    SLACK_FIELD_CHARS,
    TEAMS_MAX_BYTES,
    as_json,
    encode,
    escape_clipped,
    render,
    slack,
    teams,
)
from platforms.common.notify.webhook import NotificationFailed, Targets, WebhookTarget, _excerpt
from tests.doubles.payload_schemas import validator

PAGE = "https://mlops.example.com/releases/rel-42"
NOT_PASSED_ANYWHERE = "sig=SECRET-9f8e7d6c"


def approval_requested() -> Notification:
    return Notification(
        kind=Kind.APPROVAL_REQUESTED.value,
        release_id="rel-42",
        state="awaiting_approval",
        title="Release rel-42 awaits approval",
        summary="Candidate beats champion on rmse. Staging tests passed. It needs 2 approvals from different people.",
        url=PAGE,
        at="2025-01-02T03:04:05+00:00",
        facts=(
            Fact("State", "awaiting approval"),
            Fact("Build", "20250102.1"),
            Fact("Commit", "0123456789ab"),
            Fact("Requested by", "Ada <ada@example.com> & co"),
            Fact("Model", "diabetes:7"),
            Fact("Gate", "rmse champion 55.1 vs candidate 53.9; improvement +1.2 (95% CI [+0.3, +2.1])"),
            Fact("Data checks", "passed (6 checks)"),
            Fact("Staging tests", "passed: smoke 3/3, load 2/2"),
            Fact("Approvals", "0 of 2"),
            Fact("Decide before", "2025-01-05T03:04:05+00:00"),
            Fact("Tricky", "<b>&</b> <!channel> <https://evil.example|click>"),
            Fact("Twelfth", "the one past Slack's ten fields"),
        ),
        evidence={
            "promote": True,
            "reason": "candidate beats champion on rmse",
            "mode": "superiority",
            "metric": "rmse",
            "champion": 55.1,
            "candidate": 53.9,
            "improvement": 1.2,
            "interval": (0.3, 2.1),
            "confidence": 0.95,
            "n": 89,
        },
        lineage={"build": "20250102.1", "commit": "0123456789abcdef", "model": "diabetes:7"},
    )


def failed_huge() -> Notification:
    return Notification(
        kind=Kind.FAILED.value,
        release_id="rel-43",
        state="failed",
        title="Release rel-43 failed " + "very " * 60,
        summary="Traceback <most recent call last> & more: " + "x" * 5000,
        url=PAGE,
        at="2025-01-02T03:04:05+00:00",
        facts=(Fact("State", "failed"), Fact("Error", "E" * 5000)),
        evidence={"promote": False, "reason": "", "champion": float("nan"), "interval": [float("-inf"), None]},
    )


def live_plain() -> Notification:
    return Notification(
        kind=Kind.LIVE.value,
        release_id="rel-44",
        state="live",
        title="Release rel-44 is live",
        summary="",
        url=PAGE,
        at="2025-01-02T03:04:05+00:00",
    )


def many_facts(count: int) -> Notification:
    facts = tuple(Fact(f"Fact {i}", f"value {i} " + "é" * 1500) for i in range(count))
    return Notification("rolled_back", "rel-45", "rolled_back", "Release rel-45 was rolled back", "s", PAGE, "t", facts)


NOTIFICATIONS = {
    "approval": approval_requested,
    "failed-huge": failed_huge,
    "live-plain": live_plain,
    "many-facts": lambda: many_facts(120),
}


def test_there_is_a_renderer_for_each_target_format_and_only_those() -> None:
    assert set(FORMATS) == set(TARGET_FORMATS)


def test_an_unknown_format_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="unknown notification format 'email'"):
        render("email", approval_requested())


@pytest.mark.parametrize("format_name", TARGET_FORMATS)
@pytest.mark.parametrize("make", NOTIFICATIONS.values(), ids=list(NOTIFICATIONS))
def test_each_format_is_what_its_schema_says(format_name: str, make: Any) -> None:
    payload = render(format_name, make())
    errors = sorted(validator(format_name).iter_errors(payload), key=lambda e: list(e.absolute_path))
    assert not errors, [f"{list(e.absolute_path)}: {e.message[:200]}" for e in errors]
    encoded = encode(payload)  # strict JSON: no NaN, so every receiver can parse it
    assert json.loads(encoded) == json.loads(json.dumps(payload))
    assert NOT_PASSED_ANYWHERE not in encoded.decode("utf-8")


def test_the_schemas_refuse_what_the_services_refuse() -> None:
    """The schemas have teeth: a sample of documented violations fails them."""
    card = teams(approval_requested())
    card["attachments"][0]["contentType"] = "application/vnd.microsoft.card.hero"
    assert not validator("teams").is_valid(card)
    message = slack(approval_requested())
    message["blocks"][0]["text"]["text"] = "h" * 151
    assert not validator("slack").is_valid(message)
    message = slack(approval_requested())
    message["blocks"] = message["blocks"] * 10
    assert not validator("slack").is_valid(message)
    document = as_json(approval_requested())
    document["kind"] = "sent"
    assert not validator("json").is_valid(document)


def test_teams_card_has_the_title_in_the_tone_colour_the_facts_and_the_link() -> None:
    message = teams(approval_requested())
    card = message["attachments"][0]["content"]
    title, summary, facts, context = card["body"]
    assert (title["text"], title["weight"], title["wrap"], title["color"]) == (
        "Release rel-42 awaits approval",
        "Bolder",
        True,
        "Accent",
    )
    assert summary["text"].startswith("Candidate beats champion")
    assert facts["facts"][3] == {"title": "Requested by", "value": "Ada <ada@example.com> & co"}
    assert len(facts["facts"]) == 12
    assert "rel-42" in context["text"]
    assert card["actions"] == [{"type": "Action.OpenUrl", "title": "Open the release", "url": PAGE}]
    assert message["attachments"][0]["contentUrl"] is None
    colours = {kind: teams(Notification(kind, "r", "s", "t", "", PAGE, "a")) for kind in Kind}
    got = {kind.value: m["attachments"][0]["content"]["body"][0]["color"] for kind, m in colours.items()}
    assert got == {
        "approval_requested": "Accent",
        "live": "Good",
        "rolled_back": "Attention",
        "rejected": "Warning",
        "declined": "Warning",
        "failed": "Attention",
        "expired": "Warning",
    }


def test_teams_clips_a_huge_notification_under_the_message_limit() -> None:
    message = teams(failed_huge())
    assert len(encode(message)) < TEAMS_MAX_BYTES
    body = message["attachments"][0]["content"]["body"]
    assert body[1]["text"].endswith("…") and len(body[1]["text"]) < 5000
    assert body[2]["facts"][1]["value"].endswith("…")
    assert body[0]["text"].endswith("…")


def test_teams_drops_facts_that_do_not_fit_and_says_how_many() -> None:
    message = teams(many_facts(2000))
    assert len(encode(message)) < TEAMS_MAX_BYTES
    rows = message["attachments"][0]["content"]["body"][2]["facts"]
    assert 10 < len(rows) < 2000
    assert rows[-1] == {"title": "…", "value": f"{2000 - (len(rows) - 1)} more on the release's page"}
    assert validator("teams").is_valid(message)


def test_slack_message_blocks() -> None:
    message = slack(approval_requested())
    kinds = [block["type"] for block in message["blocks"]]
    assert kinds == ["header", "section", "section", "section", "actions", "context"]
    header, _summary, first, second, actions, context = message["blocks"]
    assert header["text"] == {"type": "plain_text", "text": "Release rel-42 awaits approval", "emoji": True}
    assert message["text"].startswith("Release rel-42 awaits approval: Candidate beats champion")
    assert len(first["fields"]) == 10 and len(second["fields"]) == 2
    assert first["fields"][0] == {"type": "mrkdwn", "text": "*State*\nawaiting approval"}
    assert actions["elements"] == [
        {
            "type": "button",
            "text": {"type": "plain_text", "text": "Open the release", "emoji": True},
            "url": PAGE,
            "action_id": "open_release",
            "style": "primary",
        }
    ]
    assert context["elements"][0]["text"] == "Release rel-42 · awaiting approval · 2025-01-02T03:04:05+00:00"


def test_slack_button_is_primary_only_when_someone_must_act() -> None:
    for make in (failed_huge, live_plain):
        actions = [block for block in slack(make())["blocks"] if block["type"] == "actions"]
        assert "style" not in actions[0]["elements"][0]


def test_slack_escapes_what_mrkdwn_would_turn_into_links_and_mentions() -> None:
    message = slack(approval_requested())
    fields = [field["text"] for block in message["blocks"] for field in block.get("fields", [])]
    assert "*Tricky*\n&lt;b&gt;&amp;&lt;/b&gt; &lt;!channel&gt; &lt;https://evil.example|click&gt;" in fields
    assert "*Requested by*\nAda &lt;ada@example.com&gt; &amp; co" in fields
    mrkdwn = [*fields, slack(failed_huge())["blocks"][1]["text"]["text"]]
    assert all("<" not in text and ">" not in text for text in mrkdwn)
    assert "&lt;most recent call last&gt; &amp; more" in slack(failed_huge())["text"]


def test_slack_clips_to_its_limits_with_a_marker() -> None:
    message = slack(failed_huge())
    header, summary, fields = message["blocks"][:3]
    assert len(header["text"]["text"]) == 150 and header["text"]["text"].endswith("…")
    assert len(summary["text"]["text"]) == 3000 and summary["text"]["text"].endswith("…")
    error = fields["fields"][1]["text"]
    assert len(error) == SLACK_FIELD_CHARS and error.startswith("*Error*\nEEE") and error.endswith("…")
    assert len(message["text"]) <= 3000 and message["text"].endswith("…")


def test_slack_clipping_never_cuts_an_entity_in_half() -> None:
    clipped = escape_clipped("&" * 1000, 12)
    assert clipped == "&amp;&amp;…"
    assert escape_clipped("a<b", 10) == "a&lt;b"


def test_slack_keeps_to_fifty_blocks_however_many_facts() -> None:
    message = slack(many_facts(1000))
    assert len(message["blocks"]) == 50
    assert message["blocks"][-2]["type"] == "actions" and message["blocks"][-1]["type"] == "context"
    assert validator("slack").is_valid(message)


def test_slack_leaves_out_a_button_it_could_only_break() -> None:
    long_url = Notification("live", "r", "live", "t", "", "https://example.com/" + "a" * 3000, "at")
    assert "actions" not in [block["type"] for block in slack(long_url)["blocks"]]


def test_json_format_is_the_whole_notification_unclipped() -> None:
    n = failed_huge()
    document = as_json(n)
    assert document["schema"] == "mlops.notification/v1"
    assert (document["kind"], document["releaseId"], document["tone"]) == ("failed", "rel-43", "bad")
    assert document["summary"] == n.summary
    assert document["facts"][1] == {"name": "Error", "value": "E" * 5000}
    assert document["evidence"]["champion"] is None  # NaN is no JSON
    assert document["evidence"]["interval"] == [None, None]
    approval = as_json(approval_requested())
    assert approval["evidence"]["interval"] == [0.3, 2.1]
    assert approval["lineage"] == {"build": "20250102.1", "commit": "0123456789abcdef", "model": "diabetes:7"}
    assert approval["url"] == PAGE


class Recording:
    def __init__(self) -> None:
        self.sent: list[Notification] = []

    def send(self, n: Notification) -> None:
        self.sent.append(n)


def test_targets_is_the_notifier_port_over_named_channels() -> None:
    first, second = Recording(), Recording()
    targets: Notifier = Targets({"teams-ops": first, "file": second})  # mypy holds it to the port
    assert targets.targets() == ["teams-ops", "file"]
    targets.send("file", live_plain())
    assert (first.sent, second.sent) == ([], [live_plain()])
    with pytest.raises(NotificationFailed, match="no notification target named 'slack'"):
        targets.send("slack", live_plain())


def test_a_webhook_target_never_shows_its_url() -> None:
    url = "https://prod-01.westeurope.logic.azure.com/workflows/abc123def/triggers?api-version=1&sig=SECRET123"
    target = WebhookTarget("teams-ops", "teams", url)
    assert "SECRET123" not in repr(target) and "logic.azure.com" not in repr(target)
    assert "teams-ops" in repr(target)
    with pytest.raises(ValueError, match="unknown notification format"):
        WebhookTarget("x", "email", url)


def test_an_error_body_that_echoes_the_url_loses_it() -> None:
    url = "https://hooks.slack.com/services/T0001/B0002/XXXXsecretXXXX?sig=SECRET123"
    excerpt = _excerpt(f"no such hook {url}\n\x00 or sig SECRET123 or path /services/T0001/B0002/XXXXsecretXXXX", url)
    assert "SECRET123" not in excerpt and "XXXXsecretXXXX" not in excerpt and "hooks.slack.com" not in excerpt
    assert excerpt.startswith("no such hook")
    assert "\n" not in excerpt and "\x00" not in excerpt
    assert len(_excerpt("y" * 1000, url)) == 200
    assert _excerpt("", url) == "(no body)"


def test_a_markdown_link_in_a_record_cannot_become_a_disguised_link_in_teams():
    n = Notification("declined", "rel-1", "declined", "Release rel-1 was declined",
                     "declined by bob: see [Approve the fix here](https://evil.example/login)", "https://h/api/ui/releases/rel-1",
                     "2026-12-02T00:00:00+00:00", (Fact("Comment", "[click](https://evil.example)"),))  # fmt: skip
    text = json.dumps(teams(n), ensure_ascii=False)
    assert "](https://evil.example" not in text and "]\u200b(https://evil.example/login)" in text
