"""Reading delimited raw files with errors that name the file, line and column."""

from __future__ import annotations

import io
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
        text = path.read_text(encoding="latin-1")
        frame = pd.read_csv(io.StringIO(text), sep=sep, names=names, header=None, dtype=str,
                            keep_default_na=False, engine="python" if len(sep) > 1 else "c")
    except (OSError, EOFError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise DataError(f"{path}: cannot be read as {sep!r}-separated {names}: {error}") from error
    if frame.empty:
        raise DataError(f"{path}: the file is empty; expected rows of {names}")
    lines = pd.Series(text.splitlines())
    data_lines = np.flatnonzero((lines.str.strip() != "").to_numpy())  # pandas skips blanks
    # A line with fewer columns than `names`: pandas reads the missing ones as empty
    # strings, which would pass as values.
    counts = lines.iloc[data_lines].str.count(re.escape(sep)).to_numpy() + 1
    short = np.flatnonzero(counts < len(names))
    if len(short):
        found = int(counts[short[0]])
        raise DataError(f"{path}, line {data_lines[short[0]] + 1}: {found} of the "
                        f"{len(names)} columns {names}; {names[found]!r} and later are missing")
    for column in names:
        if column in optional:
            continue
        empty = np.flatnonzero((frame[column].str.strip() == "").to_numpy())
        if len(empty):
            raise DataError(f"{path}, line {data_lines[empty[0]] + 1}: column {column!r} is "
                            "empty")
    for column in integers:
        converted = pd.to_numeric(frame[column], errors="coerce")
        bad = np.flatnonzero(converted.isna().to_numpy())
        if len(bad):
            raise DataError(f"{path}, line {data_lines[bad[0]] + 1}: column {column!r} must be "
                            f"an integer, got {frame[column].iloc[bad[0]]!r}")
        frame[column] = converted.astype(np.int64)
    return frame
