"""`mlops ui` (open the approval page, signed in) and `mlops notifications` (what people were told).

`mlops ui [ID] [--as IDENTITY] [--no-open]` mints a one-time sign-in link with the key in $MLOPS_HOME
(the same key the host checks; holding that folder is the credential), valid for 10 minutes and for
one use, as --as (default `git config user.email`); it prints the link and opens it in the browser.

`mlops notifications [--release ID] [--format teams|slack|json] [--json]` reads
$MLOPS_HOME/notifications.jsonl, the local file every notification also goes to; --format prints
the payload that target format receives (the same renderer the webhooks use).
"""

from __future__ import annotations

import argparse
import json
import time
import webbrowser
from typing import Any
from urllib.parse import quote

from rich.table import Table

from devhost.console import console, literal
from devhost.signing import local_identity
from functions.domain.notifications import TARGET_FORMATS, Notification
from functions.entrypoints.identity.local_signature import load_or_create_key
from functions.entrypoints.ui.sessions import mint_login
from functions.settings import Settings
from platforms.common.notify.formats import encode, render
from platforms.local.notifier import read_notifications


def add_ui_parsers(commands: argparse._SubParsersAction) -> None:
    ui = commands.add_parser("ui", help="open the approval page in the browser, signed in as you")
    ui.add_argument("id", nargs="?", help="open this release's page instead of the list")
    ui.add_argument("--as", dest="identity", metavar="IDENTITY",
                    help="sign in as this UPN/email; default: git config user.email")  # fmt: skip
    ui.add_argument("--no-open", action="store_true", help="print the sign-in link only")
    ui.set_defaults(handler=cmd_ui)

    sent = commands.add_parser("notifications", help="the notifications sent, from $MLOPS_HOME/notifications.jsonl")
    sent.add_argument("--release", metavar="ID", help="only this release's")
    sent.add_argument("--format", choices=TARGET_FORMATS, help="print the payload this target format receives")
    sent.add_argument("--json", action="store_true", help="the records as JSON lines")
    sent.set_defaults(handler=cmd_notifications)


def login_url(settings: Settings, identity: str, release_id: str | None = None, now_s: int | None = None) -> str:
    """A one-time sign-in link to the page (or to one release's page) for ``identity``."""
    token = mint_login(load_or_create_key(settings.home), identity, int(time.time() if now_s is None else now_s))
    url = f"{settings.public_url}/api/ui/login?token={quote(token, safe='')}"
    if release_id:
        url += "&next=" + quote(f"/api/ui/releases/{quote(release_id, safe='')}", safe="")
    return url


def cmd_ui(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    identity = local_identity(args.identity, "--as")
    url = login_url(settings, identity, args.id)
    console.print(f"sign-in link for {identity} (one use, 10 minutes):")
    print(url)
    if not args.no_open and not webbrowser.open(url):
        console.print("no browser found here: open the link above yourself")
    return 0


def cmd_notifications(args: argparse.Namespace) -> int:
    home = Settings.from_env().home
    records = [r for r in read_notifications(home) if not args.release or r["release_id"] == args.release]
    if args.format:
        for record in records:
            note = Notification.from_json({k: v for k, v in record.items() if k != "sent_at"})
            print(json.dumps(render(args.format, note), indent=2))
        return 0
    if args.json:
        for record in records:
            print(json.dumps(record))
        return 0
    table = Table(title="Notifications")
    for column in ("sent", "release", "kind", "title", "link"):
        table.add_column(column)
    for record in records:
        sent_at = str(record.get("sent_at", ""))[:19].replace("T", " ")
        table.add_row(sent_at, literal(record["release_id"]), literal(record.get("kind", "")),
                      literal(record.get("title", "")), literal(record.get("url", "")))  # fmt: skip
    console.print(table)
    if not records:
        console.print("none yet")
    return 0


def describe_payloads(record: dict[str, Any]) -> list[str]:
    """One line per target format: what a Teams, a Slack and a JSON target receive for this notification."""
    note = Notification.from_json({k: v for k, v in record.items() if k != "sent_at"})
    lines = []
    for name in TARGET_FORMATS:
        payload = render(name, note)
        size = f"{len(encode(payload)) / 1024:.1f} KB"
        if name == "teams":
            card = payload["attachments"][0]["content"]
            facts = sum(len(block.get("facts", [])) for block in card["body"])
            action = card["actions"][0]
            lines.append(f"teams: Adaptive Card {card['version']} \"{card['body'][0]['text']}\", {facts} facts, "
                         f"button \"{action['title']}\" -> {action['url']} ({size})")  # fmt: skip
        elif name == "slack":
            kinds = [block["type"] for block in payload["blocks"]]
            lines.append(f"slack: Block Kit, {len(kinds)} blocks ({', '.join(kinds)}), fallback text "
                         f"\"{payload['text'][:60]}…\" ({size})")  # fmt: skip
        else:
            lines.append(f"json: {payload['schema']} kind {payload['kind']}, evidence "
                         f"{sorted(payload['evidence'])}, lineage {sorted(payload['lineage'])} ({size})")  # fmt: skip
    return lines
