"""Reading the user's click logs (CSV, Parquet, TFRecord) into split columns.

`read_splits(data, base_dir)` turns a run configuration's `data` section
(`tfrs_userlevel.config.sections.DataSection`) into the feature specification
and `{"train"|"validation"|"test": {column: numpy [N]}}` with a 0/1 "label"
column, which the training loop takes as it takes the built-in datasets.
`stream_to_shards` does the same batch by batch for files larger than memory,
writing TFRecord shards.

Every row is checked: a missing column, a value of the wrong type, an empty
value in a field without a `default`, a label that is not 0/1 (and has no
`positive_above` rule), a glob that matches nothing and an empty split each
raise `DataError` naming the file, the line (CSV; the header is line 1), row
(Parquet) or record (TFRecord), and the column.

Modules: `readers` (files to arrow tables), `columns` (fields and labels),
`splits` (split rules).
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from tfrs_userlevel.features import FeatureSpec
from tfrs_userlevel.tables import readers
from tfrs_userlevel.tables.columns import (
    arrow_type,
    field_dtype,
    field_values,
    label_values,
    spec_field,
)
from tfrs_userlevel.tables.errors import DataError
from tfrs_userlevel.tables.readers import expand, file_batches, read_table, require_columns
from tfrs_userlevel.tables.splits import SPLITS, Places, split_rows, stream_split

LABEL = "label"
FILE_FORMATS = ("csv", "parquet", "tfrecord")

# format -> (data section, base_dir) -> the whole table of a built-in dataset.
# `tfrs_userlevel.datasets` registers its readers here when it is imported.
SOURCES: dict[str, Callable[[Any, Any], pa.Table]] = {}


def read_splits(data, base_dir: str | os.PathLike | None = None
                ) -> tuple[FeatureSpec, dict[str, dict[str, np.ndarray]]]:
    """The feature specification and the split columns of a `data` section.

    Returns:
      (spec, {"train"|"validation"|"test": {field: numpy [N], "label": int64 [N]}}).
    """
    columns, declared = _columns_and_types(data)
    dtypes: dict[str, str] = {}
    parts: dict[str | None, list] = {}
    if data.format not in FILE_FORMATS:
        if data.format not in SOURCES:
            raise DataError(f"data.format {data.format!r}: the built-in datasets are read by "
                            "tfrs_userlevel.datasets; import it first")
        path = Path(data.format)
        table = SOURCES[data.format](data, base_dir)
        require_columns(path, table.schema.names, columns)
        parts[None] = [(_prepare(data, table, path, "source", dtypes), table,
                        Places(path, "source"))]
    else:
        for split, files in _sources(data, base_dir).items():
            for path in files:
                table = read_table(path, data.format, columns, declared, data.delimiter)
                parts.setdefault(split, []).append(
                    (_prepare(data, table, path, data.format, dtypes), table,
                     Places(path, data.format)))
    return _spec(data, dtypes), _assemble(data, parts)


def stream_to_shards(data, base_dir, out_dir: str | os.PathLike) -> FeatureSpec:
    """Reads the configured files batch by batch and writes each split as TFRecord shards.

    One pass: `tfrs_userlevel.streaming.write_tfrecords` counts the training split's
    vocabularies while it writes (`<split>.manifest.json`). Memory holds a batch, not
    the table. A ratio split draws each row's split from (seed, file, batch), so it is
    reproducible but its fractions are approximate.

    Returns:
      The feature specification (dtypes read from the first batch).
    """
    columns, declared = _columns_and_types(data)
    dtypes: dict[str, str] = {}

    def batches():
        for split, files in _sources(data, base_dir).items():
            for number, path in enumerate(files):
                for index, (start, table) in enumerate(file_batches(
                        path, data.format, columns, declared, data.delimiter)):
                    arrays = _prepare(data, table, path, data.format, dtypes, start)
                    if split is not None:
                        yield split, arrays
                        continue
                    for part, rows in stream_split(data.split, table,
                                                   Places(path, data.format, start),
                                                   (number, index)).items():
                        if len(rows):
                            yield part, {k: v[rows] for k, v in arrays.items()}

    # One pass feeds every split: each split's writer runs in its own thread and takes
    # that split's batches as they come.
    writers: dict[str, _SplitWriter] = {}
    spec = None
    for split, arrays in batches():
        spec = spec or _spec(data, dtypes)
        writers.setdefault(split, _SplitWriter(spec, Path(out_dir), split)).add(arrays)
    if spec is None:
        raise DataError("data: the files hold no rows")
    for writer in writers.values():
        writer.close()
    for split in SPLITS:
        if split not in writers:
            raise DataError(f"data: the {split} split is empty; check data.split and "
                            "data.files")
    return spec


def _sources(data, base_dir) -> dict[str | None, list[Path]]:
    """The files of each split ({split: files}), or of the one table ({None: files})."""
    if isinstance(data.files, dict):
        return {split: expand(data.files[split], base_dir, f"data.files.{split}")
                for split in SPLITS}
    return {None: expand(data.files, base_dir, "data.files")}


def _columns_and_types(data) -> tuple[list[str], dict[str, pa.DataType]]:
    """The columns to read, and the arrow types of those whose type is declared
    (separator fields of a CSV are read as text, as written: "007")."""
    entries = data.fields
    columns = [e.name for e in entries] + [data.label.column]
    split_column = getattr(data.split, "column", None)
    if split_column is not None and split_column not in columns:
        columns.append(split_column)
    declared = {e.name: arrow_type(e.dtype) for e in entries if e.dtype is not None}
    if data.format == "csv":
        declared |= {e.name: pa.string() for e in entries if e.separator is not None}
    return columns, declared


def _prepare(data, table: pa.Table, path: Path, fmt: str, dtypes: dict[str, str],
             start: int = 0) -> dict[str, np.ndarray]:
    """The fields and the label of one table (or batch) as numpy; `dtypes` keeps each
    field's dtype from the first table that showed it."""
    for entry in data.fields:
        dtypes.setdefault(entry.name, field_dtype(entry, table[entry.name], path))
    arrays = {e.name: field_values(e, dtypes[e.name], table[e.name], path, fmt, start)
              for e in data.fields}
    arrays[LABEL] = label_values(data.label, table[data.label.column], path, fmt, start)
    return arrays


def _spec(data, dtypes: dict[str, str]) -> FeatureSpec:
    return FeatureSpec([spec_field(e, dtypes[e.name], data.min_frequency)
                        for e in data.fields])


def _assemble(data, parts) -> dict[str, dict[str, np.ndarray]]:
    if None not in parts:
        splits = {split: _concatenate([arrays for arrays, _, _ in parts[split]])
                  for split in SPLITS}
    else:
        pieces = {split: [] for split in SPLITS}
        for arrays, table, places in parts[None]:
            for split, rows in split_rows(data.split, table, places).items():
                pieces[split].append({k: v[rows] for k, v in arrays.items()})
        splits = {split: _concatenate(pieces[split]) for split in SPLITS}
    for split, columns in splits.items():
        if len(columns[LABEL]) == 0:
            raise DataError(f"data: the {split} split is empty; check data.split"
                            + (" and data.files" if None not in parts else ""))
    return splits


def _concatenate(chunks: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    if len(chunks) == 1:
        return chunks[0]
    return {key: np.concatenate([c[key] for c in chunks]) for key in chunks[0]}


class _SplitWriter:
    """Feeds one split's batches to `streaming.write_tfrecords` from a thread."""

    def __init__(self, spec: FeatureSpec, out_dir: Path, prefix: str):
        from tfrs_userlevel import streaming

        self._queue: queue.Queue = queue.Queue(maxsize=2)
        self._error: list[BaseException] = []

        def chunks():
            while (item := self._queue.get()) is not None:
                yield item

        def write():
            try:
                streaming.write_tfrecords(chunks(), spec, out_dir, prefix=prefix)
            except BaseException as error:  # noqa: BLE001  (re-raised by close)
                self._error.append(error)
                while self._queue.get() is not None:
                    pass

        self._thread = threading.Thread(target=write, daemon=True)
        self._thread.start()

    def add(self, arrays: dict[str, np.ndarray]) -> None:
        if self._error:
            raise self._error[0]
        self._queue.put(arrays)

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()
        if self._error:
            raise self._error[0]


__all__ = ["DataError", "LABEL", "SOURCES", "SPLITS", "read_splits", "readers",
           "stream_to_shards"]
