"""The error of the user's data, and where a row is in the words of its format."""

from __future__ import annotations

from pathlib import Path


class DataError(ValueError):
    """A file, column or row of the user's data that cannot be read as configured."""


def place(path: Path, fmt: str, row: int) -> str:
    """Where row `row` (0-based, of the data) of a file is: CSV lines count the header
    (line 1), Parquet rows and TFRecord records count from 1."""
    if fmt == "csv":
        return f"{path}, line {row + 2}"
    return f"{path}, {'record' if fmt == 'tfrecord' else 'row'} {row + 1}"
