"""Shared by the benchmarks: the machine line printed first, console and verdict formatting."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import numpy as np
from rich.console import Console

from platforms.local.paths import REPO_ROOT


def wide_console(min_width: int = 120) -> Console:
    """Rich falls back to 80 columns when piped (make bench | tee), which wraps the tables."""
    return Console(width=max(min_width, Console().width))


def load_average() -> str:
    """1/5/15-minute load: on a shared 2-core box, anything near 1 or above means contended figures."""
    try:
        return " ".join(f"{value:.2f}" for value in os.getloadavg())
    except OSError:
        return "n/a"


def machine_summary() -> str:
    return (
        f"python {sys.version.split()[0]}, numpy {np.__version__}, {os.cpu_count()} CPUs "
        f"({platform.processor() or platform.machine()}), load average {load_average()}"
    )


def verdict(passed: bool) -> str:
    return "[green]PASS[/green]" if passed else "[red]MISS[/red]"


def git_revision() -> str:
    """The commit measured, with "+changes" when the work tree differs from it (figures depend on the code)."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True)
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO_ROOT, capture_output=True, text=True
        )
    except OSError:
        return "unknown"
    return (head.stdout.strip() or "unknown") + ("+changes" if dirty.stdout.strip() else "")
