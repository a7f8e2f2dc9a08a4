"""Reading delimited raw files with errors that name the file, line and column."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from tfrs_userlevel.tables.errors import DataError


def read_delimited(path: Path, sep: str, names: list[str], integers: list[str],
                   optional: tuple[str, ...] = ()) -> pd.DataFrame:
    """Reads a header-less Latin-1 file of `names` columns, all as strings,
    then converts `integers` columns to int64. Every column but the `optional`
    ones must hold a value on every line.

    Raises:
      DataError: naming the file (and line and column) when the file cannot
        be parsed, is empty, has a line with too few or too many columns, or
        holds a non-integer where one is expected.
    """
    try:
        frame = pd.read_csv(path, sep=sep, names=names, header=None, dtype=str,
                            encoding="latin-1", keep_default_na=False,
                            engine="python" if len(sep) > 1 else "c")
    except (OSError, EOFError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise DataError(f"{path}: cannot be read as {sep!r}-separated {names}: {error}") from error
    if frame.empty:
        raise DataError(f"{path}: the file is empty; expected rows of {names}")
    _check_column_counts(path, sep, names)
    for column in names:
        if column in optional:
            continue
        empty = np.flatnonzero((frame[column].str.strip() == "").to_numpy())
        if len(empty):
            raise DataError(f"{path}, line {_line(path, empty[0])}: column {column!r} is "
                            "empty")
    for column in integers:
        converted = pd.to_numeric(frame[column], errors="coerce")
        bad = np.flatnonzero(converted.isna().to_numpy())
        if len(bad):
            raise DataError(f"{path}, line {_line(path, bad[0])}: column {column!r} must be an "
                            f"integer, got {frame[column].iloc[bad[0]]!r}")
        frame[column] = converted.astype(np.int64)
    return frame


def _check_column_counts(path: Path, sep: str, names: list[str]) -> None:
    """Refuses a line with fewer columns than `names` (pandas reads the missing ones as
    empty strings, which would pass as values)."""
    with open(path, encoding="latin-1") as handle:
        lines = pd.Series(handle.read().splitlines())
    counts = lines.str.count(re.escape(sep)).to_numpy() + 1
    short = np.flatnonzero((counts < len(names)) & (lines.str.strip() != "").to_numpy())
    if len(short):
        line, found = int(short[0]), int(counts[short[0]])
        raise DataError(f"{path}, line {line + 1}: {found} of the {len(names)} columns "
                        f"{names}; {names[found]!r} and later are missing")


def _line(path: Path, row: int) -> int:
    """The 1-based line of data row `row` (pandas skips blank lines; the file may have
    them)."""
    with open(path, encoding="latin-1") as handle:
        seen = -1
        for number, text in enumerate(handle, start=1):
            if text.strip():
                seen += 1
                if seen == row:
                    return number
    return row + 1
