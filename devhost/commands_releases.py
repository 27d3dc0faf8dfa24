"""`mlops releases`, `show`, `approve`, `reject`, `rollback`, `dead-letters`, `parked`: read and act on a running
host over HTTP.

Each command is one HostClient call; without --json the answer is rendered as rich tables, with the
release states in colour. What the host sends is printed as it is (devhost/console.py): a comment with
`[red]` in it is neither styled nor an error, and no table cuts an id. `approve` and `reject` prove who
decides (devhost/signing.py): signed as --by (default `git config user.email`) with $MLOPS_HOME's key, or a
signed link's token with --link. An error from the host (401, 403, 409, 410, ...) is printed with its status
and exits 1 (devhost/cli.py).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Callable
from typing import Any

from rich.table import Table
from rich.text import Text

from devhost.client import HostClient, HostError
from devhost.console import Listing, console, literal
from devhost.signing import GitEmail, LinkToken, LocalSigner, Proof, local_identity
from functions.domain.input_limits import DEFAULT_PAGE
from functions.domain.rollout import step_from_json
from functions.settings import Settings, SettingsError


def cmd_releases(args: argparse.Namespace) -> int:
    """`mlops releases [--json] [--limit N]`: up to --limit releases, one row each."""
    releases = HostClient().releases(limit=args.limit)
    if args.json:
        print(json.dumps(releases, indent=2))
        return 0
    listing = Listing("Releases", ("id", "state", "trigger", "candidate", "gate", "updated"), ids={"id"})
    for release in releases:
        listing.add_row(release["id"], state_label(release["state"]), _trigger(release["trigger"]),
                        _candidate_metric(release), _gate_decision(release),
                        _when(release.get("updated_at"))[:16])  # fmt: skip
    listing.print(console)
    return 0


def _gate_decision(release: dict[str, Any]) -> str:
    gate = release.get("gate") or {}
    return ("promote" if gate.get("promote") else "reject") if gate else ""


def _candidate_metric(release: dict[str, Any]) -> str:
    """The gate's metric for the candidate (``mse 3547.9``, ``log_loss 0.0852``), else its mse or log loss."""
    evidence = (release.get("gate") or {}).get("evidence") or {}
    metrics = (release.get("candidate") or {}).get("metrics") or {}
    name = evidence.get("metric") or next((m for m in ("mse", "log_loss") if m in metrics), None)
    value = evidence.get("candidate") if evidence.get("metric") else metrics.get(name) if name else None
    if name is None or not isinstance(value, int | float):
        return ""
    return f"{name} {value:.1f}" if name == "mse" else f"{name} {value:.4f}"


def cmd_show(args: argparse.Namespace) -> int:
    """`mlops show ID [--json]`: one release, its gate reason, its error and its timeline."""
    release = HostClient().release(args.id)
    if args.json:
        print(json.dumps(release, indent=2))
        return 0
    heading = Text.assemble(literal(release["id"], "bold"), " ", state_label(release["state"]), "  ",
                            literal(_trigger(release["trigger"])))  # fmt: skip
    console.print(heading, soft_wrap=True)
    if release.get("gate"):
        console.print(Text.assemble("gate: ", literal(release["gate"]["reason"])))
    if release.get("error"):
        console.print(literal(f"error: {release['error']}", "red"))
    rollout = (release.get("production") or {}).get("rollout")
    if rollout and rollout.get("steps"):
        console.print(rollout_table(rollout))
    timeline_listing(release["timeline"]).print(console)
    return 0


def timeline_listing(timeline: list[dict[str, Any]]) -> Listing:
    """A release's timeline; the invocation says where a long step began, and where it was seen done."""
    listing = Listing("Timeline", ("at", "step", "detail", "invocation"), ids={"invocation"})
    for entry in timeline:
        detail = entry["detail"]
        if entry.get("count"):  # a repeat counted on its entry (duplicate and stale events)
            detail += f" (×{entry['count']}, last {_when(entry.get('last_at'))})"
        listing.add_row(_when(entry["at"]), entry["step"], detail, entry.get("invocation", ""))
    return listing


def rollout_table(rollout: dict[str, Any]) -> Table:
    """A release's rollout steps: what the new and the stable deployment served, and the verdict."""
    columns = ("step", "state", "requests new/stable", "5xx new/stable", "analysis")
    listing = Listing(f"Rollout against {rollout.get('stable')}", columns)
    for step in rollout["steps"]:
        verdict = step.get("verdict") or {}
        new, old = verdict.get("candidate") or {}, verdict.get("stable") or {}
        summary = verdict.get("summary", "")
        listing.add_row(
            step_from_json(step).label,
            step.get("state", "pending"),
            f"{new.get('requests', '-')}/{old.get('requests', '-')}",
            f"{new.get('errors', '-')}/{old.get('errors', '-')}",
            summary.split(": ", 2)[-1] if summary else step.get("reason", ""),
        )
    return listing.table()


def cmd_approve(args: argparse.Namespace) -> int:
    """`mlops approve ID [--by IDENTITY | --link TOKEN] [--comment TEXT] [--no-wait]`: the state the release
    moved to; when the approval began the promotion, its steps as they happen until it ends."""
    proof = decision_proof(args)
    release = _decided(lambda: HostClient().approve(args.id, proof, args.comment or ""), proof)
    _print_moved(release)
    return _followed(release, args)


def cmd_rollback(args: argparse.Namespace) -> int:
    """`mlops rollback [--to VERSION|RELEASE] --comment TEXT [--by IDENTITY] [--no-wait]`: an earlier version
    back in production through a promotion that tests it before traffic moves; 0 once it is live."""
    if not args.comment.strip():
        raise SettingsError("--comment is empty: say why production goes back")
    proof = decision_proof(args)
    release = _decided(lambda: HostClient().rollback(proof, args.comment, args.to), proof)
    trigger = release["trigger"]
    what = f"rollback from {trigger.get('from') or 'nothing'} to {trigger['to']} ({trigger['model']}), "
    console.print(Text.assemble(literal(release["id"]), ": ", literal(what), state_label(release["state"])),
                  soft_wrap=True)  # fmt: skip
    return _followed(release, args)


def _print_moved(release: dict[str, Any]) -> None:
    """`ID: state`, on one line whatever the width, so the id can be copied."""
    console.print(Text.assemble(literal(release["id"]), ": ", state_label(release["state"])), soft_wrap=True)


def _followed(release: dict[str, Any], args: argparse.Namespace) -> int:
    """Follow a promotion to its end unless --no-wait: 0 live (or not followed), 1 otherwise."""
    if release["state"] != "promoting" or args.no_wait:
        return 0

    def show(entry: dict[str, Any]) -> None:
        console.print(literal(f"  {entry['at'][11:19]} {entry['step']}: {entry['detail']}"))

    try:
        with console.status("promoting: beside production, tested, then traffic by the rollout policy…"):
            done = HostClient().follow(release["id"], show, timeout_s=args.timeout)
    except HostError as exc:  # e.g. on Azure reading a release needs the function key this command lacks
        said = f"the promotion goes on, but it cannot be followed from here ({exc}); see the release's page"
        console.print(literal(said))
        return 0
    error = literal(f" ({done['error']})" if done.get("error") else "")
    console.print(Text.assemble(literal(done["id"]), ": ", state_label(done["state"]), error), soft_wrap=True)
    if done["state"] == "promoting":
        console.print(literal(f"still promoting after {args.timeout:.0f} s; `mlops show {done['id']}` follows it up"))
    return 0 if done["state"] == "live" else 1


def cmd_reject(args: argparse.Namespace) -> int:
    """`mlops reject ID [--by IDENTITY | --link TOKEN] --comment TEXT`: the state the release moved to."""
    proof = decision_proof(args)
    release = _decided(lambda: HostClient().reject(args.id, proof, args.comment), proof)
    _print_moved(release)
    return 0


def decision_proof(args: argparse.Namespace, git_email: GitEmail | None = None) -> Proof:
    """What proves who decides: the --link token as it is, else a signature as --by (default: git's email)
    with the key in $MLOPS_HOME."""
    if args.link is not None:
        if not args.link.strip():
            raise SettingsError("--link is empty: paste the token of the link you were sent")
        return LinkToken(args.link.strip())
    identity = local_identity(args.by, "--by", git_email)
    return LocalSigner.for_home(Settings.from_env().home, identity)


def _decided(call: Callable[[], dict[str, Any]], proof: Proof) -> dict[str, Any]:
    """The host's answer; a 401 says whose signature (or which kind of proof) the host did not accept."""
    try:
        return call()
    except HostError as exc:
        if exc.status != 401:
            raise
        if isinstance(proof, LocalSigner):
            hint = (f"signed as {proof.identity} with the key in $MLOPS_HOME ({Settings.from_env().home}); "
                    "the host must run with the same MLOPS_HOME")  # fmt: skip
        else:
            hint = "the link's token was not accepted (expired, or made for another release or decision?)"
        raise HostError(f"{exc} ({hint})", exc.status) from None


def cmd_dead_letters(args: argparse.Namespace) -> int:
    """`mlops dead-letters [--json] [--limit N] [--before CURSOR]`: a page of the events the host could not
    process, newest first, and why; then the command for the next page, if there is one."""
    page = HostClient().dead_letters_page(limit=args.limit, before=args.before)
    listing = Listing("Dead letters", ("received", "event id", "type", "function", "reason", "size"), ids={"event id"})
    for letter in page["dead_letters"]:
        listing.add_row(_when(letter.get("received_at")), letter["event_id"], letter["event_type"], letter["function"],
                        letter["reason"], _size(letter.get("size")))  # fmt: skip
    return _print_page(args, "dead-letters", page["dead_letters"], page.get("next"), listing)


def cmd_parked(args: argparse.Namespace) -> int:
    """`mlops parked [--json] [--limit N] [--before CURSOR]`: a page of the events that arrived before their
    release was ready for them (each waits until it expires into a dead letter); then the next page's command."""
    try:
        page = HostClient().parked_page(limit=args.limit, before=args.before)
    except HostError as exc:
        if exc.status != 404:
            raise
        raise HostError(f"{exc} (a host older than this mlops has no parked events to show)", exc.status) from None
    columns = ("release", "event id", "type", "parked", "expires")
    listing = Listing("Parked events", columns, ids={"release", "event id"})
    for event in page["parked"]:
        listing.add_row(event["release_id"], event["event_id"], event["event_type"], _when(event.get("parked_at")),
                        _when(event.get("expires_at")))  # fmt: skip
    return _print_page(args, "parked", page["parked"], page.get("next"), listing)


def _print_page(
    args: argparse.Namespace, command: str, items: list[dict[str, Any]], cursor: str | None, listing: Listing
) -> int:
    """--json: the items as a JSON list on stdout, as before paging, and the next page's command on stderr;
    else the listing and the next page's command below it."""
    follow_on = next_page_command(command, args.limit, cursor, args.json) if cursor else None
    if args.json:
        print(json.dumps(items, indent=2))
        if follow_on:
            print(f"next page: {follow_on}", file=sys.stderr)
        return 0
    listing.print(console)
    if follow_on:
        console.print(Text.assemble("next page: ", literal(follow_on)), soft_wrap=True)
    return 0


def next_page_command(command: str, limit: int, cursor: str, as_json: bool = False) -> str:
    """The `mlops` command that prints the page after this one, quoted so it can be pasted into a shell."""
    options = [*(["--json"] if as_json else []), *(["--limit", str(limit)] if limit != DEFAULT_PAGE else [])]
    return shlex.join(["mlops", command, *options, "--before", cursor])


# ---- rendering -----------------------------------------------------------------------------
def state_label(state: str) -> Text:
    """The state, coloured by outcome (white for a state without a colour of its own)."""
    colour = {"live": "green", "awaiting_approval": "cyan", "rejected": "yellow", "failed": "red",
              "rolled_back": "red", "declined": "yellow", "expired": "yellow"}.get(state, "white")  # fmt: skip
    return literal(state, colour)


def _trigger(trigger: dict[str, Any]) -> str:
    """What started the release, in a few words: `build N {params}` or the trigger's kind."""
    if trigger.get("kind") == "build":
        params = f" {json.dumps(trigger['parameters'])}" if trigger.get("parameters") else ""
        return f"build {trigger.get('buildNumber') or trigger.get('buildId')}{params}"
    return str(trigger.get("kind"))


def _when(at: str | None) -> str:
    """An ISO time to the second, with a space where it may wrap: ``2026-12-04 01:53:00``."""
    return (at or "")[:19].replace("T", " ")


def _size(size: int | None) -> str:
    """Bytes in a few characters; ``?`` where an older host did not say."""
    if not isinstance(size, int):
        return "?"
    return f"{size} B" if size < 1024 else f"{size / 1024:.1f} KiB"
