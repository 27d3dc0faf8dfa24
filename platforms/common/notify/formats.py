"""A Notification as each target format's JSON payload: Teams (Workflows), Slack (incoming webhook), JSON.

Pure functions of the notification, so a retried send posts what the first attempt posted. Chat
formats clip long text to the limits their services document (a payload over a limit is refused
whole, and a refused message tells nobody anything); the JSON format keeps everything.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

from functions.domain.notifications import TARGET_FORMATS, Notification

ELLIPSIS = "…"
JSON_SCHEMA_ID = "mlops.notification/v1"
OPEN_RELEASE = "Open the release"

# Teams refuses a message over 28 KB; the margin covers what Teams adds around the card.
TEAMS_MAX_BYTES = 28 * 1024
TEAMS_BUDGET_BYTES = 26 * 1024
TEAMS_COLORS = {"good": "Good", "attention": "Accent", "warning": "Warning", "bad": "Attention"}
# (title, summary, fact name, fact value) lengths, tried in turn until the card fits the budget.
TEAMS_CLIPS = ((200, 3000, 100, 1000), (200, 1500, 80, 400), (150, 600, 60, 150), (100, 300, 40, 60))

# Slack's documented Block Kit limits.
SLACK_MAX_BLOCKS = 50
SLACK_HEADER_CHARS = 150
SLACK_SECTION_CHARS = 3000
SLACK_FIELDS_PER_SECTION = 10
SLACK_FIELD_CHARS = 2000
SLACK_BUTTON_CHARS = 75
SLACK_URL_CHARS = 3000
SLACK_FALLBACK_CHARS = 3000  # the notification text; Slack truncates `text` far later (40,000)

Format = Callable[[Notification], dict[str, Any]]


def clip(text: str, limit: int) -> str:
    """``text`` in at most ``limit`` characters, ending in "…" when something was cut."""
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + ELLIPSIS


def teams(n: Notification) -> dict[str, Any]:
    """The message a Teams Workflows webhook ("Post to a channel when a webhook request is received")
    takes: one Adaptive Card 1.4, clipped until the JSON is well under Teams' 28 KB limit."""
    for clips in TEAMS_CLIPS:
        message = _teams_message(n, clips, len(n.facts))
        if _fits_teams(message):
            return message
    # Still too big: so many facts that even short ones do not fit. Keep the most that do (a
    # binary search, since each try encodes the whole card); the page lists them all.
    low, high = 0, len(n.facts)  # low facts fit (or nothing does), high do not
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if _fits_teams(_teams_message(n, TEAMS_CLIPS[-1], middle)) else (low, middle)
    return _teams_message(n, TEAMS_CLIPS[-1], low)


def _fits_teams(message: dict[str, Any]) -> bool:
    return len(encode(message)) <= TEAMS_BUDGET_BYTES


def _teams_message(n: Notification, clips: tuple[int, int, int, int], shown: int) -> dict[str, Any]:
    title_chars, summary_chars, name_chars, value_chars = clips
    body: list[dict[str, Any]] = [
        {
            "type": "TextBlock",
            "text": teams_text(clip(n.title or n.release_id, title_chars)),
            "size": "Large",
            "weight": "Bolder",
            "wrap": True,
            "color": TEAMS_COLORS.get(n.tone, "Default"),
        }
    ]
    if n.summary:
        body.append({"type": "TextBlock", "text": teams_text(clip(n.summary, summary_chars)), "wrap": True})
    rows = [
        {"title": teams_text(clip(f.name, name_chars)), "value": teams_text(clip(f.value, value_chars))}
        for f in n.facts[:shown]
    ]
    if shown < len(n.facts):
        rows.append({"title": ELLIPSIS, "value": f"{len(n.facts) - shown} more on the release's page"})
    if rows:
        body.append({"type": "FactSet", "facts": rows})
    body.append({"type": "TextBlock", "text": _context_line(n), "size": "Small", "isSubtle": True, "wrap": True})
    card: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
        "msteams": {"width": "Full"},
    }
    if n.url:
        card["actions"] = [{"type": "Action.OpenUrl", "title": OPEN_RELEASE, "url": n.url}]
    attachment = {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}
    return {"type": "message", "attachments": [attachment]}


def teams_text(text: str) -> str:
    """Text for a card that Teams renders as Markdown: a link written into a record (a comment, an error,
    a requester's display name) must not become a disguised link beside the real button. Adaptive
    Cards have no escape character, so a zero-width space breaks "](" apart (a bare URL stays visible
    as what it is)."""
    return text.replace("](", "]\u200b(")


def slack(n: Notification) -> dict[str, Any]:
    """A Slack incoming-webhook message: Block Kit blocks within Slack's limits, and `text` as the
    notification's fallback. mrkdwn text is escaped (&, <, >) so nothing in it becomes a link or a mention."""
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": clip(n.title or n.release_id, SLACK_HEADER_CHARS), "emoji": True},
        }
    ]
    if n.summary:
        blocks.append({"type": "section", "text": _mrkdwn(n.summary, SLACK_SECTION_CHARS)})
    tail = [_slack_context(n)]
    if n.url and len(n.url) <= SLACK_URL_CHARS:  # a clipped URL would be a broken link: no button instead
        tail.insert(0, {"type": "actions", "elements": [_slack_button(n)]})
    room = SLACK_MAX_BLOCKS - len(blocks) - len(tail)
    fields = [_slack_field(f.name, f.value) for f in n.facts]
    for start in range(0, len(fields), SLACK_FIELDS_PER_SECTION)[:room]:
        blocks.append({"type": "section", "fields": fields[start : start + SLACK_FIELDS_PER_SECTION]})
    fallback = f"{n.title}: {n.summary}" if n.summary else n.title
    return {"text": escape_clipped(fallback or n.release_id, SLACK_FALLBACK_CHARS), "blocks": blocks + tail}


def slack_escape(text: str) -> str:
    """Text as Slack's mrkdwn wants it: only &, < and > are escaped."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def escape_clipped(text: str, limit: int) -> str:
    """Escaped, then clipped to ``limit`` characters without cutting an entity such as &amp; in half."""
    escaped = slack_escape(text)
    if len(escaped) <= limit:
        return escaped
    kept, size = [], 0
    for char in text:
        piece = slack_escape(char)
        if size + len(piece) > limit - 1:
            break
        kept.append(piece)
        size += len(piece)
    return "".join(kept) + ELLIPSIS


def _mrkdwn(text: str, limit: int) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": escape_clipped(text, limit)}


def _slack_field(name: str, value: str) -> dict[str, Any]:
    label = f"*{escape_clipped(name, 100)}*\n"
    return {"type": "mrkdwn", "text": label + escape_clipped(value or "-", SLACK_FIELD_CHARS - len(label))}


def _slack_button(n: Notification) -> dict[str, Any]:
    button: dict[str, Any] = {
        "type": "button",
        "text": {"type": "plain_text", "text": clip(OPEN_RELEASE, SLACK_BUTTON_CHARS), "emoji": True},
        "url": n.url,
        "action_id": "open_release",
    }
    if n.tone == "attention":  # the one kind that asks someone to act
        button["style"] = "primary"
    return button


def _slack_context(n: Notification) -> dict[str, Any]:
    return {"type": "context", "elements": [_mrkdwn(_context_line(n), SLACK_SECTION_CHARS)]}


def _context_line(n: Notification) -> str:
    parts = [f"Release {n.release_id}", n.state.replace("_", " "), n.at]
    return " · ".join(part for part in parts if part)


def as_json(n: Notification) -> dict[str, Any]:
    """Our own format, documented by docs/schemas/notification.schema.json: everything, unclipped."""
    return {
        "schema": JSON_SCHEMA_ID,
        "id": n.id,
        "kind": n.kind,
        "releaseId": n.release_id,
        "state": n.state,
        "title": n.title,
        "summary": n.summary,
        "url": n.url,
        "at": n.at,
        "tone": n.tone,
        "facts": [{"name": f.name, "value": f.value} for f in n.facts],
        "evidence": _plain(n.evidence),
        "lineage": {str(k): str(v) for k, v in n.lineage.items()},
    }


def _plain(value: Any) -> Any:
    """``value`` as strict JSON: NaN and infinities (a gate with no data) become null, tuples lists."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, str | int | float):
        return value
    return str(value)


# Keyed exactly by TARGET_FORMATS (a unit test holds it to that).
FORMATS: dict[str, Format] = {"teams": teams, "slack": slack, "json": as_json}


def render(format_name: str, n: Notification) -> dict[str, Any]:
    """The payload of ``n`` in ``format_name`` (one of TARGET_FORMATS); ValueError for another name."""
    formatter = FORMATS.get(format_name)
    if formatter is None:
        raise ValueError(f"unknown notification format {format_name!r} (one of {', '.join(TARGET_FORMATS)})")
    return formatter(n)


def encode(payload: dict[str, Any]) -> bytes:
    """The bytes on the wire: compact UTF-8 JSON, strict (no NaN), as sized against Teams' limit."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")
