"""`mlops releases`, `show`, `approve`, `reject`, `dead-letters`: read and act on a running host over HTTP.

Each command is one HostClient call; without --json the answer is rendered as rich tables, with the
release states in colour.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from rich.table import Table

from devhost.client import HostClient
from devhost.console import console


def cmd_releases(args: argparse.Namespace) -> int:
    """`mlops releases [--json] [--limit N]`: up to --limit releases, one row each."""
    releases = HostClient().releases(limit=args.limit)
    if args.json:
        print(json.dumps(releases, indent=2))
        return 0
    table = Table(title="Releases")
    for column in ("id", "state", "trigger", "candidate mse", "gate", "updated"):
        table.add_column(column)
    for release in releases:
        metrics = (release.get("candidate") or {}).get("metrics") or {}
        gate = release.get("gate") or {}
        table.add_row(
            release["id"], state_label(release["state"]), _trigger(release["trigger"]),
            f"{metrics['mse']:.1f}" if "mse" in metrics else "",
            ("promote" if gate.get("promote") else "reject") if gate else "",
            release.get("updated_at", "")[:16].replace("T", " "),
        )  # fmt: skip
    console.print(table)
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    """`mlops show ID [--json]`: one release, its gate reason, its error and its timeline."""
    release = HostClient().release(args.id)
    if args.json:
        print(json.dumps(release, indent=2))
        return 0
    console.print(f"[bold]{release['id']}[/] {state_label(release['state'])}  {_trigger(release['trigger'])}")
    if release.get("gate"):
        console.print(f"gate: {release['gate']['reason']}")
    if release.get("error"):
        console.print(f"[red]error: {release['error']}[/]")
    table = Table(title="Timeline")
    for column in ("at", "step", "detail"):
        table.add_column(column)
    for entry in release["timeline"]:
        table.add_row(entry["at"], entry["step"], entry["detail"])
    console.print(table)
    return 0


def cmd_approve(args: argparse.Namespace) -> int:
    """`mlops approve ID --by NAME [--comment TEXT]`: the state the release moved to."""
    release = HostClient().approve(args.id, args.by, args.comment or "")
    console.print(f"{release['id']}: {state_label(release['state'])}")
    return 0


def cmd_reject(args: argparse.Namespace) -> int:
    """`mlops reject ID --by NAME --comment TEXT`: the state the release moved to."""
    release = HostClient().reject(args.id, args.by, args.comment)
    console.print(f"{release['id']}: {state_label(release['state'])}")
    return 0


def cmd_dead_letters(args: argparse.Namespace) -> int:
    """`mlops dead-letters [--json]`: the events the host could not process, and why."""
    letters = HostClient().dead_letters()
    if args.json:
        print(json.dumps(letters, indent=2))
        return 0
    table = Table(title="Dead letters")
    for column in ("received", "function", "event id", "type", "reason"):
        table.add_column(column)
    for letter in letters:
        table.add_row(letter["received_at"], letter["function"], letter["event_id"], letter["event_type"],
                      letter["reason"])  # fmt: skip
    console.print(table)
    return 0


# ---- rendering -----------------------------------------------------------------------------
def state_label(state: str) -> str:
    """The state in rich markup, coloured by outcome (white for a state without a colour of its own)."""
    colour = {"live": "green", "awaiting_approval": "cyan", "rejected": "yellow", "failed": "red",
              "rolled_back": "red", "declined": "yellow", "expired": "yellow"}.get(state, "white")  # fmt: skip
    return f"[{colour}]{state}[/]"


def _trigger(trigger: dict[str, Any]) -> str:
    """What started the release, in a few words: `build N {params}` or the trigger's kind."""
    if trigger.get("kind") == "build":
        params = f" {json.dumps(trigger['parameters'])}" if trigger.get("parameters") else ""
        return f"build {trigger.get('buildNumber') or trigger.get('buildId')}{params}"
    return str(trigger.get("kind"))
