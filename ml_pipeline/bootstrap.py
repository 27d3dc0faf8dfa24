"""Paired bootstrap of mean per-row loss differences, and of statistics computed on whole resamples.

Resamples are drawn in blocks, each block with its own generator spawned from one seed, so
the result is the same whatever the number of worker threads. numpy releases the GIL
while drawing and gathering, so blocks run in parallel on every core. Each worker reuses
its buffers: on large inputs, allocating fresh arrays per resample costs more in page
faults than the arithmetic itself.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np

DEFAULT_RESAMPLES = 1000
DEFAULT_SEED = 20261126
INTERVAL_LEVELS = (0.8, 0.9, 0.95, 0.99)
_RESAMPLES_PER_BLOCK = 25


def bootstrap_means(
    values: np.ndarray, resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED, workers: int | None = None
) -> np.ndarray:
    """Means of ``values`` (shape (n,) or (n, k)) over row resamples: shape (resamples, k)."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 1:
        values = values[:, None]
    n_rows, n_columns = values.shape
    if n_rows == 0:
        raise ValueError("cannot bootstrap zero rows")
    if resamples < 1:
        raise ValueError("resamples must be at least 1")
    columns = [np.ascontiguousarray(values[:, j]) for j in range(n_columns)]
    blocks = list(range(0, resamples, _RESAMPLES_PER_BLOCK))
    seeds = np.random.SeedSequence(seed).spawn(len(blocks))
    means = np.empty((resamples, n_columns))

    def run_blocks(block_numbers: list[int]) -> None:
        uniform = np.empty(n_rows)
        rows = np.empty(n_rows, dtype=np.intp)
        gathered = np.empty(n_rows)
        for block in block_numbers:
            for r in _draw_block(seeds[block], blocks[block], resamples, uniform, rows):
                for j, column in enumerate(columns):
                    np.take(column, rows, out=gathered, mode="clip")  # clip: u * n may round up to n
                    means[r, j] = gathered.sum() / n_rows

    workers = max(1, min(workers or os.cpu_count() or 1, len(blocks)))
    assignments = [list(range(w, len(blocks), workers)) for w in range(workers)]
    if workers == 1:
        run_blocks(assignments[0])
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(run_blocks, assignments))
    return means


def _draw_block(
    seed: np.random.SeedSequence, first: int, resamples: int, uniform: np.ndarray, rows: np.ndarray
) -> Iterator[int]:
    """Fill ``rows`` with one resample's row numbers per step of one block; yields the resample's number."""
    rng = np.random.Generator(np.random.SFC64(seed))
    n_rows = rows.size
    for r in range(first, min(first + _RESAMPLES_PER_BLOCK, resamples)):
        # floor(u * n) with 53-bit uniforms: unbiased to ~n / 2**53, and it fills in place.
        rng.random(out=uniform)
        np.multiply(uniform, n_rows, out=uniform)
        np.copyto(rows, uniform, casting="unsafe")
        yield r


def bootstrap_statistic(
    statistic: Callable[[np.ndarray], np.ndarray],
    n_rows: int,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> np.ndarray:
    """``statistic(rows)`` (shape (k,)) on each resample's row numbers: shape (resamples, k).

    The rows are the ones ``bootstrap_means`` draws with the same seed, so a statistic that is
    not a mean of rows (AUC, balanced accuracy) is resampled exactly like the per-row losses
    beside it. One thread: the statistic is Python code and holds the GIL.
    """
    if n_rows == 0:
        raise ValueError("cannot bootstrap zero rows")
    if resamples < 1:
        raise ValueError("resamples must be at least 1")
    blocks = list(range(0, resamples, _RESAMPLES_PER_BLOCK))
    seeds = np.random.SeedSequence(seed).spawn(len(blocks))
    uniform = np.empty(n_rows)
    rows = np.empty(n_rows, dtype=np.intp)
    values: list[np.ndarray] = []
    for block, first in enumerate(blocks):
        for _ in _draw_block(seeds[block], first, resamples, uniform, rows):
            values.append(np.atleast_1d(statistic(np.minimum(rows, n_rows - 1))))
    return np.asarray(values, dtype=np.float64)


def percentile_intervals(samples: np.ndarray, levels: tuple[float, ...] = INTERVAL_LEVELS) -> dict[str, list[float]]:
    """Two-sided percentile intervals, keyed by level as text (``"0.95"``)."""
    intervals = {}
    for level in levels:
        tail = (1.0 - level) / 2.0
        low, high = np.quantile(samples, [tail, 1.0 - tail])
        intervals[f"{level:g}"] = [float(low), float(high)]
    return intervals
