"""Deterministic 80/10/10 splits shared by the MovieLens builders.

Both rules work on rows sorted by (user_id, item_id), the order in which the
builders yield them:

* random: `numpy.random.default_rng(seed).permutation(n)`; the first
  `int(0.8 n)` permuted row indices are train, the next `(n - n_train) // 2`
  validation, the rest test. With seed 2024 on ML-1M this reproduces the
  canonical `random_split` column (800,167 / 100,021 / 100,021).
* time: rows ordered by (timestamp, user_id, item_id); the earliest
  `int(0.8 n)` are train, then validation, then test (a global time split).
"""

from __future__ import annotations

import numpy as np

from tfrs_userlevel.tables.errors import DataError

SPLITS = ("train", "validation", "test")
CANONICAL_SEED = 2024


def split_sizes(n: int) -> tuple[int, int, int]:
    """Row counts of train / validation / test for `n` rows."""
    n_train = int(0.8 * n)
    n_val = (n - n_train) // 2
    return n_train, n_val, n - n_train - n_val


def random_split(n: int, seed: int = CANONICAL_SEED) -> np.ndarray:
    """Split name (`SPLITS`) of each of `n` rows under the random rule."""
    n_train, n_val, _ = split_sizes(n)
    permutation = np.random.default_rng(seed).permutation(n)
    names = np.empty(n, dtype=object)
    names[permutation[:n_train]] = "train"
    names[permutation[n_train:n_train + n_val]] = "validation"
    names[permutation[n_train + n_val:]] = "test"
    return names


def time_split(timestamp: np.ndarray, user_id: np.ndarray, item_id: np.ndarray) -> np.ndarray:
    """Split name of each row under the global time rule (no missing timestamps)."""
    if np.any(timestamp < 0):
        raise DataError("time_split needs a timestamp on every row")
    n = len(timestamp)
    n_train, n_val, _ = split_sizes(n)
    order = np.lexsort((item_id, user_id, timestamp))
    names = np.empty(n, dtype=object)
    names[order[:n_train]] = "train"
    names[order[n_train:n_train + n_val]] = "validation"
    names[order[n_train + n_val:]] = "test"
    return names
