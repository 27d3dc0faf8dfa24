"""Shared by the benchmarks: the machine line printed first, console and verdict formatting."""

from __future__ import annotations

import os
import platform
import sys

import numpy as np
from rich.console import Console


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
