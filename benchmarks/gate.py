"""Evaluation gate at scale: compare_predictions on 1,000,000 rows with 1,000 paired-bootstrap resamples.

    python -m benchmarks.gate [--rows 1000000] [--resamples 1000] [--baseline-resamples 50]

Measures wall time and peak memory of ml_pipeline.evaluate.compare_predictions, times a naive bootstrap
(rng.integers + fancy-index mean, single-threaded, extrapolated from a few resamples) as a baseline, and
runs functions.domain.gate.decide on the report. Prints figures and PASS/MISS against the targets; always exits 0.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time
import tracemalloc
from dataclasses import dataclass
from typing import Any

import numpy as np
from rich.table import Table

from benchmarks.common import load_average, machine_summary, verdict, wide_console
from functions.domain.gate import decide
from ml_pipeline.bootstrap import DEFAULT_SEED
from ml_pipeline.evaluate import compare_predictions

TARGET_SECONDS = 10.0
TARGET_PEAK_BYTES = 2 * 1024**3
DATA_SEED = 7
MIB = 1024**2

console = wide_console()


@dataclass(frozen=True)
class Synthetic:
    y_true: np.ndarray
    candidate_pred: np.ndarray
    champion_pred: np.ndarray


def synthetic_predictions(rows: int, seed: int = DATA_SEED) -> Synthetic:
    """Champion error sd 10, candidate sd 9.95: mse better by ~1 %, a few standard errors at 1M rows."""
    rng = np.random.default_rng(seed)
    y_true = rng.normal(150.0, 75.0, rows)
    champion = y_true + rng.normal(0.0, 10.0, rows)
    candidate = y_true + rng.normal(0.0, 9.95, rows)
    return Synthetic(y_true, candidate, champion)


def maxrss_bytes() -> int:
    # Linux reports ru_maxrss in KiB (macOS in bytes); this runs on Linux CI and dev hosts.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


@dataclass(frozen=True)
class Measured:
    seconds: list[float]  # one per timed run; the median is the figure, the spread shows the noise
    cpu_seconds: list[float]  # process CPU (all threads) per timed run: steadier than wall time on a shared box
    traced_peak_bytes: int  # tracemalloc: Python and numpy allocations above what was live at the start
    maxrss_before: int
    maxrss_after: int
    report: dict[str, Any]


def measure_compare(data: Synthetic, resamples: int, repeats: int) -> Measured:
    """Timed runs without tracemalloc (it slows allocation), then one run under tracemalloc for the peak."""
    rss_before = maxrss_bytes()
    seconds, cpu_seconds = [], []
    for _ in range(repeats):
        started, cpu_started = time.perf_counter(), time.process_time()
        report = compare_predictions(data.y_true, data.candidate_pred, data.champion_pred, resamples, DEFAULT_SEED)
        seconds.append(time.perf_counter() - started)
        cpu_seconds.append(time.process_time() - cpu_started)
    rss_after = maxrss_bytes()

    tracemalloc.start()
    try:
        traced = compare_predictions(data.y_true, data.candidate_pred, data.champion_pred, resamples, DEFAULT_SEED)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    if traced["differences"] != report["differences"]:
        raise SystemExit("compare_predictions is not deterministic for a fixed seed")
    return Measured(seconds, cpu_seconds, peak, rss_before, rss_after, report)


def naive_bootstrap_seconds(data: Synthetic, resamples: int, measured_resamples: int) -> float:
    """The textbook bootstrap, single-threaded, timed on a few resamples and scaled to ``resamples``."""
    started = time.perf_counter()
    candidate_err, champion_err = data.candidate_pred - data.y_true, data.champion_pred - data.y_true
    per_row = np.column_stack([candidate_err**2 - champion_err**2, np.abs(candidate_err) - np.abs(champion_err)])
    per_row.mean(axis=0)
    prepare = time.perf_counter() - started

    rng = np.random.default_rng(DEFAULT_SEED)
    n = len(per_row)
    started = time.perf_counter()
    for _ in range(measured_resamples):
        per_row[rng.integers(0, n, size=n)].mean(axis=0)
    per_resample = (time.perf_counter() - started) / measured_resamples
    return prepare + per_resample * resamples


def plain_mean_seconds(data: Synthetic) -> float:
    """One pass, no bootstrap: the floor for anything that reads every row."""
    started = time.perf_counter()
    candidate_err, champion_err = data.candidate_pred - data.y_true, data.champion_pred - data.y_true
    float(np.mean(candidate_err**2 - champion_err**2))
    return time.perf_counter() - started


def print_results(measured: Measured, naive_s: float, plain_s: float, args: argparse.Namespace) -> None:
    table = Table(title=f"compare_predictions: {args.rows:,} rows, {args.resamples:,} resamples")
    for column in ("measure", "value", "target", ""):
        table.add_column(column, justify="right")
    wall = statistics.median(measured.seconds)
    spread = f" ({min(measured.seconds):.2f}–{max(measured.seconds):.2f})" if len(measured.seconds) > 1 else ""
    table.add_row(
        f"wall time, median of {len(measured.seconds)}",
        f"{wall:.2f} s{spread}",
        f"≤ {TARGET_SECONDS:g} s",
        verdict(wall <= TARGET_SECONDS),
    )
    cpu = statistics.median(measured.cpu_seconds)
    cores = os.cpu_count() or 1
    table.add_row("CPU time (all threads), median", f"{cpu:.2f} s", "", f"{cpu / wall:.2f} cores busy")
    table.add_row(f"CPU time / {cores} cores", f"{cpu / cores:.2f} s", "", "wall time if every core were free")
    peak = measured.traced_peak_bytes
    table.add_row("peak (tracemalloc)", f"{peak / MIB:,.0f} MiB", "≤ 2 GiB", verdict(peak <= TARGET_PEAK_BYTES))
    growth = (measured.maxrss_after - measured.maxrss_before) / MIB
    table.add_row("max RSS of the process", f"{measured.maxrss_after / MIB:,.0f} MiB", "", "")
    table.add_row("max RSS growth in timed calls", f"{growth:,.0f} MiB", "", "")
    scale = args.resamples / args.baseline_resamples
    table.add_row(f"naive bootstrap (1 thread, ×{scale:g})", f"{naive_s:.2f} s", "", f"ours/naive {wall / naive_s:.2f}")
    table.add_row("plain mean difference", f"{plain_s * 1000:.1f} ms", "", "")
    console.print(table)
    mse = measured.report["differences"]["mse"]
    low, high = mse["intervals"]["0.95"]
    console.print(f"mse difference (candidate - champion) {mse['estimate']:+.3f}, 95% CI [{low:+.3f}, {high:+.3f}]")
    decision = decide(measured.report)
    console.print(f"gate: promote={decision.promote}: {decision.reason}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gate", description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--baseline-resamples", type=int, default=50, help="naive resamples actually run")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of compare_predictions")
    args = parser.parse_args(argv)

    console.print(machine_summary())
    data = synthetic_predictions(args.rows)
    measured = measure_compare(data, args.resamples, max(1, args.repeats))
    naive_s = naive_bootstrap_seconds(data, args.resamples, args.baseline_resamples)
    plain_s = plain_mean_seconds(data)
    print_results(measured, naive_s, plain_s, args)
    console.print(f"load average at the end: {load_average()}")
    return 0  # figures, not a test: a MISS is reported, never an exit status


if __name__ == "__main__":
    sys.exit(main())
