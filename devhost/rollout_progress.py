"""A release's rollout as it happens, for the demo: a progress bar per step, the timeline beneath.

Each step's bar fills with the requests the new deployment answered in it (mirrored copies in shadow,
live requests in canary: read from the production router, as the analysis reads them) towards the
step's minimum, and says how much of its window has passed; when the analysis decides, the bar says
passed or failed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from devhost.client import FOLLOWED_STATES, HostClient
from devhost.console import console
from functions.domain.rollout import step_from_json
from platforms.local.evidence import EvidenceError, RouterEvidence


def follow_rollout(
    client: HostClient,
    release_id: str,
    production_url: str,
    on_entry: Callable[[dict[str, Any]], None],
    timeout_s: float,
    printed: int = 0,
) -> dict[str, Any]:
    """Poll the release until it comes to rest, drawing its rollout steps; the release as last seen."""
    evidence = RouterEvidence(production_url.removesuffix("/score"))
    bars: dict[int, Any] = {}
    deadline = time.monotonic() + timeout_s
    columns = (TextColumn("{task.description:<16}"), BarColumn(bar_width=30), MofNCompleteColumn(),
               TextColumn("{task.fields[said]}"))  # fmt: skip
    with Progress(*columns, console=console, transient=False) as progress:
        while True:
            release = client.release(release_id)
            for entry in release["timeline"][printed:]:
                on_entry(entry)
            printed = len(release["timeline"])
            rollout = (release.get("production") or {}).get("rollout") or {}
            for index, step in enumerate(rollout.get("steps") or []):
                _draw(progress, bars, index, step, release, evidence)
            if release["state"] not in FOLLOWED_STATES or time.monotonic() > deadline:
                return release
            time.sleep(0.3)


def _draw(
    progress: Progress,
    bars: dict[int, Any],
    index: int,
    step: dict[str, Any],
    release: dict[str, Any],
    evidence: RouterEvidence,
) -> None:
    state = step.get("state", "pending")
    if state == "pending":
        return
    name = step_from_json(step).label
    if index not in bars:
        total = int(step.get("min_requests") or 1) if step.get("share") != 100 else 1
        bars[index] = progress.add_task(name, total=total, said="moving traffic…")
    task = bars[index]
    if state in ("passed", "failed", "skipped"):
        verdict = step.get("verdict") or {}
        answered = int((verdict.get("candidate") or {}).get("requests") or 0)
        total = progress.tasks[task].total or 1
        mark = {"passed": "[green]✔ passed[/]", "failed": "[red]✘ failed[/]"}.get(state, "skipped")
        reason = escape(_failed_checks(verdict)) if state == "failed" else ""  # the analysis's words: literal
        progress.update(task, completed=min(answered, total) if state == "failed" else total,
                        said=f"{mark}{reason}")  # fmt: skip
        return
    if state != "holding":
        return
    key = (release.get("production") or {}).get("deployment") or release["id"]
    try:
        read = evidence.since(dict(step.get("mark") or {}), [key])
    except EvidenceError:
        return
    served = (read.mirrored if step.get("kind") == "shadow" else read.served).get(key)
    answered = served.requests if served else 0
    started = datetime.fromisoformat(str(step["started_at"]))
    elapsed = (datetime.now(UTC) - started).total_seconds()
    window = float(step.get("window_s") or 0)
    what = "mirrored" if step.get("kind") == "shadow" else "live"
    progress.update(task, completed=min(answered, progress.tasks[task].total or answered),
                    said=f"{what} requests · {min(elapsed, window):.0f}/{window:g} s window")  # fmt: skip


def _failed_checks(verdict: dict[str, Any]) -> str:
    failed = [c for c in verdict.get("checks") or [] if c.get("decides") and not c.get("passed")]
    return ": " + "; ".join(c.get("summary", c.get("name", "")) for c in failed) if failed else ""
