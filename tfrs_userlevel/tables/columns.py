"""Arrow columns to the model's inputs: field dtypes, values (empties filled by a
default or refused), and 0/1 labels."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tfrs_userlevel.features import Field
from tfrs_userlevel.tables.errors import DataError
from tfrs_userlevel.tables.errors import place as _place


def field_dtype(entry, column: pa.ChunkedArray, path: Path) -> str:
    """The field's dtype: declared, or inferred from the column's arrow type."""
    if entry.dtype is not None:
        return entry.dtype
    kind = column.type
    if entry.separator is not None or pa.types.is_string(kind) or pa.types.is_large_string(
            kind):
        return "string"
    if pa.types.is_integer(kind) or pa.types.is_boolean(kind):
        return "int64"
    if pa.types.is_null(kind):
        raise DataError(f"{path}: column {entry.name!r} is empty in every row; declare its "
                        "dtype and a default, or leave the field out")
    raise DataError(f"{path}: column {entry.name!r} holds {kind} values; a field is a "
                    "category: declare dtype: string to use each value as a category, or "
                    "bucketize the column before training")


def arrow_type(dtype: str) -> pa.DataType:
    return pa.string() if dtype == "string" else pa.int64()


def field_values(entry, dtype: str, column: pa.ChunkedArray, path: Path, fmt: str,
                 start: int = 0) -> np.ndarray:
    """A field's column as numpy (str or int64), empties filled by `default` or refused."""
    column = column.cast(arrow_type(dtype))
    empty = column.is_null()
    if dtype == "string":
        empty = pc.or_(empty, pc.equal(column, ""))
    if pc.any(empty).as_py():
        if entry.default is None:
            row = int(np.flatnonzero(empty.to_numpy(zero_copy_only=False))[0])
            raise DataError(f"{_place(path, fmt, start + row)}: field {entry.name!r} is "
                            "empty; give the field a default (e.g. default: \"\" or default: "
                            "-1) or fill the rows")
        default = str(entry.default) if dtype == "string" else int(entry.default)
        column = pc.if_else(empty, pa.scalar(default, arrow_type(dtype)), column)
    if dtype == "string":
        # An object array of str that shares one str per distinct value (a fixed-width
        # copy, or a new str per row, costs more than the lookup).
        encoded = pc.dictionary_encode(column).combine_chunks()
        return encoded.dictionary.to_numpy(zero_copy_only=False)[
            encoded.indices.to_numpy(zero_copy_only=False)]
    return column.to_numpy(zero_copy_only=False).astype(np.int64)


def label_values(label, column: pa.ChunkedArray, path: Path, fmt: str, start: int = 0
                 ) -> np.ndarray:
    """0/1 labels: the column itself, or `column > positive_above`."""
    name = label.column
    try:
        numbers = column.cast(pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        numbers = None
    if numbers is None or numbers.null_count:
        values = column.to_pylist()
        row = next(i for i, v in enumerate(values)
                   if v is None or not _is_number(v))
        found = "is empty (or NaN)" if values[row] is None else f"holds {values[row]!r}"
        raise DataError(f"{_place(path, fmt, start + row)}: label column {name!r} {found}, "
                        "expected a number")
    values = numbers.to_numpy(zero_copy_only=False)
    bad = np.isnan(values)
    if label.positive_above is None:
        bad |= ~np.isin(values, (0.0, 1.0))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        rule = ("" if label.positive_above is not None else
                "; expected 0 or 1 (set label.positive_above to turn a rating into a click)")
        raise DataError(f"{_place(path, fmt, start + row)}: label column {name!r} holds "
                        f"{values[row].item()!r}{rule}")
    if label.positive_above is not None:
        return (values > label.positive_above).astype(np.int64)
    return values.astype(np.int64)


def _is_number(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def spec_field(entry, dtype: str, min_frequency: int) -> Field:
    if entry.separator is not None and dtype != "string":
        raise DataError(f"data.fields: field {entry.name!r} has a separator, so its values "
                        f"are text; dtype {dtype!r} does not fit")
    return Field(name=entry.name, dtype=dtype, role=entry.role,
                 multivalued=entry.separator is not None or entry.role == "behavior",
                 separator=entry.separator or "|", max_length=entry.max_length,
                 min_count=entry.min_frequency or min_frequency,
                 shared_vocabulary_with=entry.shared_vocabulary_with,
                 hash_buckets=entry.hash_buckets)
