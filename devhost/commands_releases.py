"""`mlops releases`, `show`, `approve`, `reject`, `dead-letters`: read and act on a running host over HTTP.

Each command is one HostClient call; without --json the answer is rendered as rich tables, with the
release states in colour. `approve` and `reject` prove who decides (devhost/signing.py): signed as
--by (default `git config user.email`) with $MLOPS_HOME's key, or a signed link's token with --link.
An error from the host (401, 403, 409, 410, ...) is printed with its status and exits 1 (devhost/cli.py).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

from rich.table import Table

from devhost.client import HostClient, HostError
from devhost.console import console
from devhost.signing import GitEmail, LinkToken, LocalSigner, Proof, local_identity
from functions.domain.rollout import step_from_json
from functions.settings import Settings, SettingsError


def cmd_releases(args: argparse.Namespace) -> int:
    """`mlops releases [--json] [--limit N]`: up to --limit releases, one row each."""
    releases = HostClient().releases(limit=args.limit)
    if args.json:
        print(json.dumps(releases, indent=2))
        return 0
    table = Table(title="Releases")
    for column in ("id", "state", "trigger", "candidate", "gate", "updated"):
        table.add_column(column)
    for release in releases:
        gate = release.get("gate") or {}
        table.add_row(
            release["id"], state_label(release["state"]), _trigger(release["trigger"]),
            _candidate_metric(release),
            ("promote" if gate.get("promote") else "reject") if gate else "",
            release.get("updated_at", "")[:16].replace("T", " "),
        )  # fmt: skip
    console.print(table)
    return 0


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
    console.print(f"[bold]{release['id']}[/] {state_label(release['state'])}  {_trigger(release['trigger'])}")
    if release.get("gate"):
        console.print(f"gate: {release['gate']['reason']}")
    if release.get("error"):
        console.print(f"[red]error: {release['error']}[/]")
    rollout = (release.get("production") or {}).get("rollout")
    if rollout and rollout.get("steps"):
        console.print(rollout_table(rollout))
    table = Table(title="Timeline")
    for column in ("at", "step", "detail", "invocation"):
        table.add_column(column)
    for entry in release["timeline"]:  # the invocation: where a long step began, and where it was seen done
        table.add_row(entry["at"], entry["step"], entry["detail"], entry.get("invocation", ""))
    console.print(table)
    return 0


def rollout_table(rollout: dict[str, Any]) -> Table:
    """A release's rollout steps: what the new and the stable deployment served, and the verdict."""
    table = Table(title=f"Rollout against {rollout.get('stable')}")
    for column in ("step", "state", "requests new/stable", "5xx new/stable", "analysis"):
        table.add_column(column)
    for step in rollout["steps"]:
        verdict = step.get("verdict") or {}
        new, old = verdict.get("candidate") or {}, verdict.get("stable") or {}
        summary = verdict.get("summary", "")
        table.add_row(
            step_from_json(step).label,
            step.get("state", "pending"),
            f"{new.get('requests', '-')}/{old.get('requests', '-')}",
            f"{new.get('errors', '-')}/{old.get('errors', '-')}",
            summary.split(": ", 2)[-1] if summary else step.get("reason", ""),
        )
    return table


def cmd_approve(args: argparse.Namespace) -> int:
    """`mlops approve ID [--by IDENTITY | --link TOKEN] [--comment TEXT] [--no-wait]`: the state the release
    moved to; when the approval began the promotion, its steps as they happen until it ends."""
    proof = decision_proof(args)
    release = _decided(lambda: HostClient().approve(args.id, proof, args.comment or ""), proof)
    console.print(f"{release['id']}: {state_label(release['state'])}")
    return _followed(release, args)


def cmd_rollback(args: argparse.Namespace) -> int:
    """`mlops rollback [--to VERSION|RELEASE] --comment TEXT [--by IDENTITY] [--no-wait]`: an earlier version
    back in production through a promotion that tests it before traffic moves; 0 once it is live."""
    if not args.comment.strip():
        raise SettingsError("--comment is empty: say why production goes back")
    proof = decision_proof(args)
    release = _decided(lambda: HostClient().rollback(proof, args.comment, args.to), proof)
    trigger = release["trigger"]
    console.print(f"{release['id']}: rollback from {trigger.get('from') or 'nothing'} to {trigger['to']} "
                  f"({trigger['model']}), {state_label(release['state'])}")  # fmt: skip
    return _followed(release, args)


def _followed(release: dict[str, Any], args: argparse.Namespace) -> int:
    """Follow a promotion to its end unless --no-wait: 0 live (or not followed), 1 otherwise."""
    if release["state"] != "promoting" or args.no_wait:
        return 0

    def show(entry: dict[str, Any]) -> None:
        console.print(f"  {entry['at'][11:19]} {entry['step']}: {entry['detail']}")

    try:
        with console.status("promoting: beside production, tested, then traffic by the rollout policy…"):
            done = HostClient().follow(release["id"], show, timeout_s=args.timeout)
    except HostError as exc:  # e.g. on Azure reading a release needs the function key this command lacks
        console.print(f"the promotion goes on, but it cannot be followed from here ({exc}); see the release's page")
        return 0
    console.print(f"{done['id']}: {state_label(done['state'])}" + (f" ({done['error']})" if done.get("error") else ""))
    if done["state"] == "promoting":
        console.print(f"still promoting after {args.timeout:.0f} s; `mlops show {done['id']}` follows it up")
    return 0 if done["state"] == "live" else 1


def cmd_reject(args: argparse.Namespace) -> int:
    """`mlops reject ID [--by IDENTITY | --link TOKEN] --comment TEXT`: the state the release moved to."""
    proof = decision_proof(args)
    release = _decided(lambda: HostClient().reject(args.id, proof, args.comment), proof)
    console.print(f"{release['id']}: {state_label(release['state'])}")
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
