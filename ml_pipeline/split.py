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
