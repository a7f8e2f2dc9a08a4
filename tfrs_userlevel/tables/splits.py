"""Rows to splits: by a seeded ratio, by a column's values, by time, or per batch of a
stream."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tfrs_userlevel.tables.errors import DataError
from tfrs_userlevel.tables.errors import place as _place

SPLITS = ("train", "validation", "test")


def split_rows(rule, table: pa.Table, places: Sequence[str]) -> dict[str, np.ndarray]:
    """Row indices of each split of one table, by the configured rule."""
    n = table.num_rows
    if rule.by == "ratio":
        order = np.random.default_rng(rule.seed).permutation(n)
        return _by_fraction(order, rule)
    if rule.by == "time":
        column = table[rule.column]
        if column.null_count:
            row = int(np.flatnonzero(column.is_null().to_numpy(zero_copy_only=False))[0])
            raise DataError(f"{places[row]}: time column {rule.column!r} is empty")
        order = np.argsort(column.to_numpy(zero_copy_only=False), kind="stable")
        return _by_fraction(order, rule)
    values = table[rule.column].cast(pa.string())
    rows, known = {}, []
    for split in SPLITS:
        wanted = getattr(rule, split)
        wanted = [str(w) for w in (wanted if isinstance(wanted, list) else [wanted])]
        known += wanted
        rows[split] = np.flatnonzero(_member(values, wanted))
    other = np.flatnonzero(~_member(values, known))
    if len(other):
        raise DataError(f"{places[other[0]]}: split column {rule.column!r} holds "
                        f"{values[int(other[0])].as_py()!r}, which is none of {known}")
    return rows


def _member(values: pa.ChunkedArray, wanted: Sequence[str]) -> np.ndarray:
    mask = pc.is_in(values, value_set=pa.array(wanted, pa.string()))
    return pc.fill_null(mask, False).to_numpy(zero_copy_only=False)


def _by_fraction(order: np.ndarray, rule) -> dict[str, np.ndarray]:
    n = len(order)
    n_validation, n_test = round(n * rule.validation), round(n * rule.test)
    n_train = n - n_validation - n_test
    parts = {"train": order[:n_train], "validation": order[n_train:n_train + n_validation],
             "test": order[n_train + n_validation:]}
    return {split: np.sort(rows) if rule.by == "ratio" else rows
            for split, rows in parts.items()}


def stream_split(rule, table: pa.Table, places, key: tuple[int, int]
                  ) -> dict[str, np.ndarray]:
    if rule.by == "column":
        return split_rows(rule, table, places)
    draw = np.random.default_rng([rule.seed, *key]).random(table.num_rows)
    train, validation = rule.train, rule.train + rule.validation
    return {"train": np.flatnonzero(draw < train),
            "validation": np.flatnonzero((draw >= train) & (draw < validation)),
            "test": np.flatnonzero(draw >= validation)}


class Places:
    """Row -> "file, line N" for one file (lazily, only when an error needs it)."""

    def __init__(self, path: Path, fmt: str, start: int = 0):
        self.path, self.fmt, self.start = path, fmt, start

    def __getitem__(self, row: int) -> str:
        return _place(self.path, self.fmt, self.start + int(row))


