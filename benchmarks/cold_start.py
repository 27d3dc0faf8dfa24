"""Cold start: how long a fresh interpreter takes to import the Function App, against importing its heavy deps eagerly.

    python -m benchmarks.cold_start [--repeats 9] [--time-limit 300]

Each case runs in a fresh interpreter (``sys.executable -c CODE``, cwd = the repository), round-robin so machine
noise hits every case alike, after one untimed warm-up run each (.pyc files and the OS file cache are warm, as
on a Functions host that restarts a worker). Reports median and min wall time per case:

- floor: ``pass``, the interpreter's own start-up;
- function_app: ``import function_app``, what the Functions worker does when it indexes the app;
- eager: function_app plus everything the orchestrator, the ML pipeline and the local adapters would pull in if
  they imported at module load (scikit-learn, pandas, scipy, joblib, numpy, requests, ...).

Also checks that ``import function_app`` leaves the heavy libraries out of sys.modules, and lists the biggest
imports (``-X importtime``). Prints PASS/MISS against the targets; always exits 0.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from benchmarks.common import git_revision

REPO_ROOT = Path(__file__).resolve().parent.parent
TARGET_SECONDS = 0.4
TARGET_RATIO = 0.25
RUN_TIMEOUT = 60.0

# What the app's code imports lazily (functions.bootstrap's local adapters, ml_pipeline, their libraries).
EAGER_MODULES = (
    "function_app",
    "platforms.local.deployer",
    "platforms.local.events",
    "platforms.local.images",
    "platforms.local.notifier",
    "platforms.local.registry",
    "platforms.local.store",
    "platforms.common.endpoint_tests",
    "platforms.local.training",
    # the Azure adapters: azure-ai-ml, azure-data-tables, the management clients, azure-eventgrid
    "platforms.azure.training",
    "platforms.azure.production",
    "platforms.azure.table_store",
    "platforms.azure.images",
    "platforms.azure.staging",
    "platforms.azure.publisher",
    "ml_pipeline.evaluate",
    "ml_pipeline.train",
    "ml_pipeline.dataset",
    "ml_pipeline.data_checks",
    "ml_pipeline.estimators",
    "sklearn.linear_model",
    "sklearn.ensemble",
    "sklearn.datasets",
    "pandas",
    "scipy.stats",
    "joblib",
    "numpy",
    "requests",
)
HEAVY = ("sklearn", "pandas", "scipy", "azure.ai.ml", "joblib", "numpy")
CASES = {
    "floor (python -c pass)": "pass",
    "import function_app": "import function_app",
    "eager (app + heavy deps)": "import " + ", ".join(EAGER_MODULES),
}

console = Console(width=None if sys.stdout.isatty() else 150)  # wide tables when piped to a file


@dataclass
class Case:
    name: str
    code: str
    seconds: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds) if self.seconds else float("nan")

    @property
    def best(self) -> float:
        return min(self.seconds) if self.seconds else float("nan")


def run_once(code: str, *extra: str) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, *extra, "-c", code],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        env=_clean_env(),
    )
    return time.perf_counter() - started, done


def _clean_env() -> dict[str, str]:
    """The caller's environment minus anything that would change what a fresh worker imports."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONSTARTUP", "PYTHONPROFILEIMPORTTIME")}


def measure(cases: list[Case], repeats: int, time_limit: float) -> None:
    for case in cases:  # warm-up: compile .pyc files, fill the OS file cache
        _, done = run_once(case.code)
        if done.returncode != 0:
            case.failures.append(done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed")
    deadline = time.monotonic() + time_limit
    for _ in range(repeats):
        for case in cases:
            if case.failures:
                continue
            seconds, done = run_once(case.code)
            if done.returncode == 0:
                case.seconds.append(seconds)
            else:
                case.failures.append(done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed")
        if time.monotonic() > deadline:
            console.print(f"[yellow]time limit {time_limit:g} s reached: fewer repetitions than asked[/yellow]")
            break


def heavy_after_app_import() -> dict[str, Any]:
    """Which heavy libraries ``import function_app`` loaded (none expected), and whether azure-ai-ml exists."""
    code = (
        "import importlib.util, json, sys\n"
        "import function_app\n"
        f"heavy = {HEAVY!r}\n"
        "loaded = [m for m in heavy if m in sys.modules]\n"
        "try:\n"
        "    azure_ml = importlib.util.find_spec('azure.ai.ml') is not None\n"
        "except ModuleNotFoundError:\n"
        "    azure_ml = False\n"
        "print(json.dumps({'loaded': loaded, 'modules': len(sys.modules), 'azure_ai_ml_installed': azure_ml}))\n"
    )
    _, done = run_once(code)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def biggest_imports(limit: int = 8) -> list[tuple[str, float]]:
    """What ``import function_app`` spends its time on: the modules it imports directly or one level below,
    by cumulative time in one ``-X importtime`` run (nested entries are included in their parent's time)."""
    _, done = run_once("import function_app", "-X", "importtime")
    subtree: list[tuple[int, str, float]] = []  # importtime lists children before their parent
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or line.count("|") != 2:
            continue
        _, cumulative, name = line.split("|")
        if not cumulative.strip().isdigit():
            continue
        depth = (len(name) - len(name.lstrip(" ")) - 1) // 2  # one space, then two more per level
        if depth == 0 and name.strip() != "function_app":
            subtree = []  # the subtree of an interpreter start-up import (site, encodings...)
            continue
        if depth == 0:
            break
        subtree.append((depth, name.strip(), int(cumulative) / 1e6))
    entries = [("  " * (depth - 1) + name, seconds) for depth, name, seconds in subtree if depth <= 2]
    return sorted(entries, key=lambda item: -item[1])[:limit]


def verdict(passed: bool) -> str:
    return "[green]PASS[/green]" if passed else "[red]MISS[/red]"


def print_results(cases: list[Case]) -> None:
    floor, app, eager = cases
    table = Table(title=f"Cold start: fresh interpreter, {len(app.seconds)} timed runs each")
    for column in ("case", "median s", "min s", "above floor s", "target", ""):
        table.add_column(column, justify="right")
    for case in cases:
        above = case.median - floor.median
        table.add_row(case.name, f"{case.median:.3f}", f"{case.best:.3f}", f"{above:.3f}", "", "")
    ratio = app.median / eager.median if eager.median else float("nan")
    above_ratio = (app.median - floor.median) / (eager.median - floor.median) if eager.median > floor.median else 0
    table.add_row(
        "import function_app, median",
        f"{app.median:.3f}",
        "",
        "",
        f"≤ {TARGET_SECONDS:g} s",
        verdict(app.median <= TARGET_SECONDS),
    )
    table.add_row(
        "function_app / eager",
        f"{ratio:.3f}",
        "",
        f"{above_ratio:.3f}",
        f"≤ {TARGET_RATIO:g}",
        verdict(ratio <= TARGET_RATIO),
    )
    console.print(table)
    for case in cases:
        if case.failures:
            console.print(f"[red]{case.name} failed:[/red] {case.failures[0]}", highlight=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cold_start", description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=9, help="timed runs per case (at least 7 for the figures)")
    parser.add_argument("--time-limit", type=float, default=300.0, help="stop repeating after this many seconds")
    args = parser.parse_args(argv)
    console.print(f"python {sys.version.split()[0]} ({sys.executable}), {os.cpu_count()} CPUs, commit {git_revision()}")

    cases = [Case(name, code) for name, code in CASES.items()]
    measure(cases, max(1, args.repeats), args.time_limit)
    print_results(cases)

    heavy = heavy_after_app_import()
    if "error" in heavy:
        console.print(f"[red]import function_app failed:[/red] {heavy['error']}", highlight=False)
    else:
        loaded = heavy["loaded"]
        state = "[green]none loaded[/green]" if not loaded else f"[red]loaded: {', '.join(loaded)}[/red]"
        console.print(f"after import function_app ({heavy['modules']} modules), heavy libraries {HEAVY}: {state}")
        if not heavy["azure_ai_ml_installed"]:
            console.print("azure-ai-ml is not installed here, so the eager figure leaves it out (it would add more)")
    console.print("biggest imports under function_app (-X importtime, cumulative, one run; indented: nested):")
    for name, seconds in biggest_imports():
        console.print(f"  {name:<40} {seconds * 1000:7.1f} ms", highlight=False)
    return 0  # figures, not a test: a MISS is reported, never an exit status


if __name__ == "__main__":
    sys.exit(main())
