"""Invocation durations: no invocation waits for a platform operation, measured on a running local host.

    python -m benchmarks.invocations [--time-limit 600]

Starts `mlops up` on free 127.0.0.1 ports with a fresh $MLOPS_HOME, then drives the whole loop over HTTP:
a release to live (build → staging → approval → beside, direct tests, traffic), a second one beside it
(alpha 0.3), and `rollback` to the first. Then it reads the host's log:

- ``Executed 'Functions.NAME' (..., Duration=Nms)``: the host's line for every invocation, grouped by
  trigger (Event Grid, HTTP, timer) and by function: count, median, longest;
- ``invocation NAME took N ms: began ... / saw ... succeeded``: the app's line for each invocation that
  began a long step or saw one end, with the log's millisecond timestamps: how long each platform
  operation ran (from the end of the invocation that began it to the end of the one that saw it done).

The baseline, measured in the same run, is the platform operations themselves: the ratio is the longest
Event Grid or HTTP invocation over the longest operation. Targets: that ratio below 1 (no request or
delivery lasts as long as the deployment it began) and every Event Grid invocation under Event Grid's
30 s wait. Prints PASS/MISS; always exits 0. Bounded: each wait has a deadline, the whole run --time-limit.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from rich.table import Table

from benchmarks.common import git_revision, machine_summary, verdict, wide_console

EVENT_GRID_WAIT_S = 30.0
TARGET_RATIO = 1.0
EXECUTED = re.compile(r"^\[(?P<at>[^\]]+)\] Executed 'Functions\.(?P<name>\w+)' \((?P<outcome>\w+), Id=[^,]+, "
                      r"Duration=(?P<ms>\d+)ms\)")  # fmt: skip
NOTED = re.compile(r"^\[(?P<at>[^\]]+)\] invocation (?P<name>\S+) took (?P<ms>\d+) ms: (?P<what>.*)$")
STEP = re.compile(r"^(?P<verb>began|saw) (?P<what>.+) of (?P<release>rel-[\w-]+)(?: (?P<state>succeeded|failed))?$")

if TYPE_CHECKING:
    from tests.e2e.conftest import RunningHost

console = wide_console()


@dataclass(frozen=True)
class Noted:
    at: datetime
    invocation: str
    ms: int
    verb: str
    what: str
    release: str


def _at(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S,%f")


def read_log(path: Path) -> tuple[dict[str, list[int]], list[Noted]]:
    durations: dict[str, list[int]] = defaultdict(list)
    noted: list[Noted] = []
    for line in path.read_text(errors="replace").splitlines():
        if match := EXECUTED.match(line):
            durations[match["name"]].append(int(match["ms"]))
        elif match := NOTED.match(line):
            for part in match["what"].split("; "):
                if step := STEP.match(part):
                    noted.append(Noted(_at(match["at"]), match["name"], int(match["ms"]), step["verb"],
                                       step["what"], step["release"]))  # fmt: skip
    return durations, noted


def triggers_of_the_app() -> dict[str, str]:
    """function name -> its trigger's binding name, as the host indexes function_app.py."""
    import function_app
    from devhost.indexing import indexed_functions, trigger_of

    functions = indexed_functions(function_app.app)
    return {str(f.get_function_name()): trigger_of(f).get_binding_name() for f in functions}


def drive(host: RunningHost, deadline: float) -> list[str]:
    """Two releases live, then a rollback to the first; the release ids."""
    from tests.e2e.conftest import APPROVER, approve_to_the_end, signed, trigger_build, wait_for_state

    ids = []
    for params in ({}, {"alpha": 0.3}):
        release_id = trigger_build(host, params)
        left = max(deadline - time.monotonic(), 1)
        waiting = wait_for_state(host, release_id, {"awaiting_approval", "failed", "rejected"}, timeout_s=left)
        if waiting["state"] != "awaiting_approval":
            raise RuntimeError(f"{release_id} ended {waiting['state']}: {waiting.get('error')}")
        ended = approve_to_the_end(host, release_id, APPROVER)
        if ended["state"] != "live":
            raise RuntimeError(f"{release_id} ended {ended['state']}: {ended.get('error')}")
        ids.append(release_id)
    rollback = host.rollback(signed(host, APPROVER), "benchmark: back to the first", ids[0])
    done = wait_for_state(host, rollback["id"], {"live", "rolled_back", "failed"})
    if done["state"] != "live":
        raise RuntimeError(f"rollback {rollback['id']} ended {done['state']}: {done.get('error')}")
    return [*ids, rollback["id"]]


def operations(noted: list[Noted]) -> list[tuple[str, str, Noted, Noted]]:
    """(release, step, the invocation that began it, the one that saw it end), in the order they began."""
    begun: dict[tuple[str, str], Noted] = {}
    pairs = []
    for entry in noted:
        key = (entry.release, entry.what)
        if entry.verb == "began":
            begun[key] = entry
        elif key in begun:
            pairs.append((entry.release, entry.what, begun.pop(key), entry))
    return pairs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--time-limit", type=float, default=600.0, help="seconds for the whole run (default 600)")
    args = parser.parse_args(argv)
    from devhost.settings import apply_app_setting_defaults
    from tests.e2e.conftest import running_host

    apply_app_setting_defaults()
    console.print(f"[bold]invocation durations[/] · {machine_summary()} · {git_revision()}")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="mlops-bench-") as home:
        policy = {"MLOPS_GATE_POLICY": '{"mode": "non_inferiority", "margin": 50}'}
        with running_host(Path(home), policy) as host:
            releases = drive(host, started + args.time_limit)
        durations, noted = read_log(Path(home) / "host.log")
    elapsed = time.monotonic() - started
    triggers = triggers_of_the_app()

    table = Table(title=f"Invocations by trigger ({len(releases)} releases, {elapsed:.0f} s)")
    for column in ("trigger", "function", "invocations", "median ms", "longest ms"):
        table.add_column(column, justify="right" if column.endswith(("ms", "invocations")) else "left")
    longest_by_trigger: dict[str, tuple[int, str]] = {}
    for name in sorted(durations, key=lambda n: (triggers.get(n, "?"), n)):
        values, trigger = durations[name], triggers.get(name, "?")
        table.add_row(trigger, name, str(len(values)), f"{statistics.median(values):.0f}", str(max(values)))
        longest_by_trigger[trigger] = max(longest_by_trigger.get(trigger, (0, "")), (max(values), name))
    console.print(table)

    steps = Table(title="Long steps: begun by one invocation, seen done by a later one")
    for column in ("release", "step", "began in", "its ms", "seen done by", "operation ms", "began ms / operation ms"):
        steps.add_column(column)
    pairs = operations(noted)
    longest_operation = 0.0
    for release, what, began, ended in pairs:
        operation_ms = (ended.at - began.at).total_seconds() * 1000
        longest_operation = max(longest_operation, operation_ms)
        ratio_text = f"{began.ms / operation_ms:.3f}" if operation_ms else "—"
        steps.add_row(release, what.split(" rel-")[0], began.invocation.split(":")[0], str(began.ms),
                      ended.invocation.split(":")[0], f"{operation_ms:.0f}", ratio_text)  # fmt: skip
    console.print(steps)

    requests_longest = max((longest_by_trigger.get(t, (0, ""))[0] for t in ("eventGridTrigger", "httpTrigger")),
                           default=0)  # fmt: skip
    event_grid_longest = longest_by_trigger.get("eventGridTrigger", (0, ""))[0]
    ratio = requests_longest / longest_operation if longest_operation else float("inf")
    all_separate = all(began.invocation != ended.invocation for _, _, began, ended in pairs) and bool(pairs)
    for trigger, (ms, name) in sorted(longest_by_trigger.items()):
        console.print(f"longest {trigger}: {ms} ms ({name})")
    console.print(f"longest platform operation (baseline): {longest_operation:.0f} ms")
    console.print(f"ratio longest Event Grid/HTTP invocation ÷ longest operation: {ratio:.3f} "
                  f"(target < {TARGET_RATIO:g}) {verdict(ratio < TARGET_RATIO)}")  # fmt: skip
    console.print(f"longest Event Grid invocation {event_grid_longest / 1000:.2f} s (target < {EVENT_GRID_WAIT_S:g} s) "
                  f"{verdict(event_grid_longest / 1000 < EVENT_GRID_WAIT_S)}")  # fmt: skip
    console.print(
        f"{len(pairs)} operations, each begun and seen done by different invocations: {verdict(all_separate)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
