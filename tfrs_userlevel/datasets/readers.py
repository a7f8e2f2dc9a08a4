"""Reading delimited raw files with errors that name the file, line and column."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def read_delimited(path: Path, sep: str, names: list[str], integers: list[str]) -> pd.DataFrame:
    """Reads a header-less Latin-1 file of `names` columns, all as strings,
    then converts `integers` columns to int64.

    Raises:
      ValueError: naming the file (and line and column) when the file cannot
        be parsed, is empty, or holds a non-integer where one is expected.
    """
    try:
        frame = pd.read_csv(path, sep=sep, names=names, header=None, dtype=str,
                            encoding="latin-1", keep_default_na=False,
                            engine="python" if len(sep) > 1 else "c")
    except (OSError, EOFError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise ValueError(f"{path}: cannot be read as {sep!r}-separated {names}: {error}") from error
    if frame.empty:
        raise ValueError(f"{path}: the file is empty; expected rows of {names}")
    for column in integers:
        converted = pd.to_numeric(frame[column], errors="coerce")
        bad = np.flatnonzero(converted.isna().to_numpy())
        if len(bad):
            raise ValueError(f"{path}, line {bad[0] + 1}: column {column!r} must be an integer, "
                             f"got {frame[column].iloc[bad[0]]!r}")
        frame[column] = converted.astype(np.int64)
    return frame

