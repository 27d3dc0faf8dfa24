"""The deterministic, seeded train/holdout split shared by training and evaluation."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

DEFAULT_SEED = 42
DEFAULT_HOLDOUT_FRACTION = 0.2


@dataclass(frozen=True)
class Split:
    seed: int
    holdout_fraction: float
    n_rows: int
    holdout_index: tuple[int, ...]

    @property
    def train_index(self) -> np.ndarray:
        mask = np.ones(self.n_rows, dtype=bool)
        mask[list(self.holdout_index)] = False
        return np.flatnonzero(mask)

    def to_json(self) -> dict:
        record = asdict(self)
        record["holdout_index"] = list(self.holdout_index)
        return record

    @classmethod
    def from_json(cls, record: dict) -> Split:
        return cls(
            seed=int(record["seed"]),
            holdout_fraction=float(record["holdout_fraction"]),
            n_rows=int(record["n_rows"]),
            holdout_index=tuple(int(i) for i in record["holdout_index"]),
        )


def make_split(n_rows: int, seed: int = DEFAULT_SEED, holdout_fraction: float = DEFAULT_HOLDOUT_FRACTION) -> Split:
    """Pick the holdout rows with a seeded permutation; sorted so the record is readable."""
    if not 0.0 < holdout_fraction < 1.0:
        raise ValueError(f"holdout fraction must be between 0 and 1, got {holdout_fraction}")
    n_holdout = max(1, round(n_rows * holdout_fraction))
    if n_holdout >= n_rows:
        raise ValueError(f"{n_rows} rows are too few to keep {n_holdout} for the holdout")
    permutation = np.random.default_rng(seed).permutation(n_rows)
    holdout = np.sort(permutation[:n_holdout])
    return Split(seed, holdout_fraction, n_rows, tuple(int(i) for i in holdout))


def make_stratified_split(
    labels: np.ndarray, seed: int = DEFAULT_SEED, holdout_fraction: float = DEFAULT_HOLDOUT_FRACTION
) -> Split:
    """Hold out the same fraction of every class, so each class with two or more rows is on both sides.

    A plain random holdout of a rare class can miss it, and then AUC and per-class recall are
    undefined on the rows the gate compares. Rows of one class are taken in the order of one
    seeded permutation of all rows, so the choice is as reproducible as ``make_split``'s.
    """
    if not 0.0 < holdout_fraction < 1.0:
        raise ValueError(f"holdout fraction must be between 0 and 1, got {holdout_fraction}")
    labels = np.asarray(labels)
    n_rows = labels.size
    permutation = np.random.default_rng(seed).permutation(n_rows)
    permuted = labels[permutation]
    chosen: list[np.ndarray] = []
    for label in np.unique(labels):
        rows = permutation[permuted == label]
        if rows.size < 2:
            continue  # a class seen once trains the model; it cannot also be held out
        take = min(rows.size - 1, max(1, round(rows.size * holdout_fraction)))
        chosen.append(rows[:take])
    holdout = np.sort(np.concatenate(chosen)) if chosen else np.empty(0, dtype=np.intp)
    if holdout.size == 0:
        raise ValueError(
            f"no class of the {n_rows} rows has two rows to hold one out: is the target continuous (a regression task)?"
        )
    return Split(seed, holdout_fraction, n_rows, tuple(int(i) for i in holdout))
