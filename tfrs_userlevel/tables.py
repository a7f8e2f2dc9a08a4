"""Reading the user's click logs (CSV, Parquet, TFRecord) into split columns.

`read_splits(data, base_dir)` turns a run configuration's `data` section
(`tfrs_userlevel.config.sections.DataSection`) into the feature specification
and `{"train"|"validation"|"test": {column: numpy [N]}}` with a 0/1 "label"
column, which the training loop takes as it takes the built-in datasets.

CSV and Parquet are read with pyarrow, TFRecord (`tf.train.Example`, one row
per record) with tf.data. Every row is checked: a missing column, a value of
the wrong type, an empty value in a field without a `default`, a label that
is not 0/1 (and has no `positive_above` rule), a glob that matches nothing
and an empty split each raise `DataError` naming the file, the line (CSV;
the header is line 1), row (Parquet) or record (TFRecord), and the column.
"""

from __future__ import annotations

import csv
import glob
import gzip
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from tfrs_userlevel.features import FeatureSpec, Field

SPLITS = ("train", "validation", "test")
LABEL = "label"


class DataError(ValueError):
    """A file, column or row of the user's data that cannot be read as configured."""


# format -> (data section, base_dir) -> the whole table of a built-in dataset. The
# `datasets` package registers its readers here when it is imported.
SOURCES: dict[str, Callable[[Any, Any], pa.Table]] = {}
# Rows per batch of a streamed Parquet file (CSV streams in blocks of 32 MB).
STREAM_BATCH_ROWS = 1 << 18


# Files --------------------------------------------------------------------------------------
def expand(pattern: str | Sequence[str], base_dir: str | os.PathLike | None,
           where: str) -> list[Path]:
    """The sorted files of a glob (or a list of globs); relative ones start at base_dir."""
    patterns = [pattern] if isinstance(pattern, str) else list(pattern)
    files: list[Path] = []
    for text in patterns:
        path = Path(os.path.expanduser(text))
        if not path.is_absolute() and base_dir is not None:
            path = Path(base_dir) / path
        matched = sorted(Path(p) for p in glob.glob(str(path), recursive=True)
                         if Path(p).is_file())
        if not matched:
            raise DataError(f"{where}: {text!r} matches no file (looked for {path})")
        files += matched
    return files


def _place(path: Path, fmt: str, row: int) -> str:
    """Where row `row` (0-based, of the data) of a file is, in the words of its format."""
    if fmt == "csv":
        return f"{path}, line {row + 2}"
    return f"{path}, {'record' if fmt == 'tfrecord' else 'row'} {row + 1}"


def read_table(path: Path, fmt: str, columns: Sequence[str],
               types: Mapping[str, pa.DataType], delimiter: str = ",") -> pa.Table:
    """The named columns of one file, with the given arrow types where given."""
    if fmt == "csv":
        return _read_csv(path, columns, types, delimiter)
    if fmt == "parquet":
        return _read_parquet(path, columns, types)
    return _read_tfrecord(path, columns, types)


def _missing(path: Path, have: Sequence[str], columns: Sequence[str]) -> None:
    absent = [c for c in columns if c not in have]
    if absent:
        raise DataError(f"{path}: no column {absent[0]!r}; the file's columns are "
                        f"{list(have)}")


def _read_csv(path, columns, types, delimiter) -> pa.Table:
    parse = pa_csv.ParseOptions(delimiter=delimiter)
    header: list[str] = []
    try:
        header = _header(path, parse)
        _missing(path, header, columns)
        convert = pa_csv.ConvertOptions(include_columns=list(columns),
                                        column_types=dict(types), strings_can_be_null=False)
        return pa_csv.read_csv(path, parse_options=parse, convert_options=convert)
    except pa.ArrowInvalid as error:
        problem = _csv_problem(path, str(error), delimiter, header, types)
        raise DataError(f"{path}: {problem}" if not problem.startswith(",") else
                        f"{path}{problem}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: cannot be read as CSV: {error}") from None


def _open_text(path: Path):
    return (gzip.open if str(path).endswith(".gz") else open)(
        path, "rt", newline="", errors="replace")


def _header(path: Path, parse: pa_csv.ParseOptions) -> list[str]:
    """The column names of a CSV file (its first line)."""
    with _open_text(path) as lines:
        return next(csv.reader(lines, delimiter=parse.delimiter), [])


def _csv_problem(path: Path, message: str, delimiter: str, header=(), types=None) -> str:
    """pyarrow's message, with the line of a row whose column count is wrong, or of a
    value that is not of its column's declared type."""
    message = message.removeprefix("CSV parse error: ")
    if "conversion error" in message and message.startswith("In CSV column #"):
        number = message.removeprefix("In CSV column #").split(":", 1)[0]
        if number.isdigit() and int(number) < len(header):
            name = header[int(number)]
            text = pa_csv.read_csv(path, parse_options=pa_csv.ParseOptions(
                delimiter=delimiter), convert_options=pa_csv.ConvertOptions(
                include_columns=[name], column_types={name: pa.string()}))[name]
            try:
                _cast(text, (types or {}).get(name, pa.int64()), path, "csv", name)
            except DataError as located:
                return str(located).removeprefix(str(path))
    if message.startswith("Expected ") and " columns, got " in message:
        with _open_text(path) as lines:
            reader = csv.reader(lines, delimiter=delimiter)
            width = len(next(reader, []))
            for row in reader:
                if len(row) != width:
                    return (f"line {reader.line_num}: expected {width} columns, found "
                            f"{len(row)}: {delimiter.join(row)[:200]!r}")
    return _csv_message(message, [])


def _csv_message(message: str, header: Sequence[str]) -> str:
    """pyarrow's "In CSV column #3: Row #7: ..." in terms of column names and lines."""
    text = message.removeprefix("CSV parse error: ").removeprefix("In CSV column #")
    if text != message.removeprefix("CSV parse error: ") and ":" in text:
        number, rest = text.split(":", 1)
        if number.isdigit() and int(number) < len(header):
            text = f"column {header[int(number)]!r}:{rest}"
    return text.replace("Row #", "line ")


def _read_parquet(path, columns, types) -> pa.Table:
    try:
        schema = pq.read_schema(path)
        _missing(path, schema.names, columns)
        table = pq.read_table(path, columns=list(columns))
    except (pa.ArrowInvalid, OSError) as error:
        raise DataError(f"{path}: cannot be read as Parquet: {error}") from None
    for name, wanted in types.items():
        table = table.set_column(table.schema.get_field_index(name), name,
                                 _cast(table[name], wanted, path, "parquet", name))
    return table


def _cast(column: pa.ChunkedArray, wanted: pa.DataType, path: Path, fmt: str,
          name: str, start: int = 0) -> pa.ChunkedArray:
    if column.type == wanted:
        return column
    try:
        return column.cast(wanted)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        for row, value in enumerate(column.to_pylist()):
            try:
                pa.array([value]).cast(wanted)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                raise DataError(f"{_place(path, fmt, start + row)}: column {name!r} holds "
                                f"{value!r}, expected {wanted}") from None
        raise


def _read_tfrecord(path, columns, types) -> pa.Table:
    from tfrs_userlevel.backend import tf

    values: dict[str, list] = {name: [] for name in columns}
    try:
        records = list(tf.data.TFRecordDataset(str(path)).as_numpy_iterator())
    except tf.errors.OpError as error:
        raise DataError(f"{path}: cannot be read as TFRecord: {error.message}") from None
    for number, record in enumerate(records):
        try:
            example = tf.train.Example.FromString(record)
        except Exception:  # noqa: BLE001  (protobuf's DecodeError has no stable home)
            raise DataError(f"{_place(path, 'tfrecord', number)}: not a tf.train.Example"
                            ) from None
        feature = example.features.feature
        for name in columns:
            if name not in feature:
                raise DataError(f"{_place(path, 'tfrecord', number)}: no feature {name!r}; "
                                f"the record has {sorted(feature)}")
            kind = feature[name].WhichOneof("kind")
            items = list(getattr(feature[name], kind).value) if kind else []
            if len(items) != 1:
                raise DataError(f"{_place(path, 'tfrecord', number)}: feature {name!r} holds "
                                f"{len(items)} values, expected one per row (join the "
                                "values of a multi-valued field with its separator)")
            item = items[0]
            values[name].append(item.decode("utf-8", "replace") if isinstance(item, bytes)
                                else item)
    table = pa.table({name: pa.array(items) for name, items in values.items()})
    for name, wanted in types.items():
        table = table.set_column(table.schema.get_field_index(name), name,
                                 _cast(table[name], wanted, path, "tfrecord", name))
    return table


# Columns ------------------------------------------------------------------------------------
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


def _arrow_type(dtype: str) -> pa.DataType:
    return pa.string() if dtype == "string" else pa.int64()


def field_values(entry, dtype: str, column: pa.ChunkedArray, path: Path, fmt: str,
                 start: int = 0) -> np.ndarray:
    """A field's column as numpy (str or int64), empties filled by `default` or refused."""
    column = column.cast(_arrow_type(dtype))
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
        column = pc.if_else(empty, pa.scalar(default, _arrow_type(dtype)), column)
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


# Splits -------------------------------------------------------------------------------------
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


# The whole section --------------------------------------------------------------------------
def read_splits(data, base_dir: str | os.PathLike | None = None
                ) -> tuple[FeatureSpec, dict[str, dict[str, np.ndarray]]]:
    """The feature specification and the split columns of a `data` section.

    Returns:
      (spec, {"train"|"validation"|"test": {field: numpy [N], "label": int64 [N]}}).
    """
    entries = list(data.fields)
    if data.format not in ("csv", "parquet", "tfrecord"):
        return _read_source(data, base_dir, entries)
    if isinstance(data.files, dict):
        sources = {split: expand(data.files[split], base_dir, f"data.files.{split}")
                   for split in SPLITS}
    else:
        sources = {None: expand(data.files, base_dir, "data.files")}
    # Declared-string and separator fields are read as text as written ("007").
    columns, declared = _columns_and_types(data, entries)
    dtypes: dict[str, str] = {}
    parts: dict[str | None, list[tuple[dict[str, np.ndarray], pa.Table, list[str]]]] = {}
    for split, files in sources.items():
        for path in files:
            table = read_table(path, data.format, columns, declared, data.delimiter)
            for entry in entries:
                dtypes.setdefault(entry.name, field_dtype(entry, table[entry.name], path))
            arrays = {e.name: field_values(e, dtypes[e.name], table[e.name], path, data.format)
                      for e in entries}
            arrays[LABEL] = label_values(data.label, table[data.label.column], path,
                                         data.format)
            places = _Places(path, data.format)
            parts.setdefault(split, []).append((arrays, table, places))
    splits = _assemble(data, parts)
    spec = FeatureSpec([_field(e, dtypes[e.name], data.min_frequency) for e in entries])
    return spec, splits


def _read_source(data, base_dir, entries) -> tuple[FeatureSpec, dict]:
    """A built-in dataset: its reader's table, then the same fields, labels and splits."""
    if data.format not in SOURCES:
        raise DataError(f"data.format {data.format!r}: the built-in datasets come with this "
                        "repository's `datasets` package; import datasets first")
    path = Path(data.format)
    table = SOURCES[data.format](data, base_dir)
    columns = [e.name for e in entries] + [data.label.column]
    split_column = getattr(data.split, "column", None)
    _missing(path, table.schema.names, columns + ([split_column] if split_column else []))
    dtypes = {e.name: field_dtype(e, table[e.name], path) for e in entries}
    arrays = {e.name: field_values(e, dtypes[e.name], table[e.name], path, "source")
              for e in entries}
    arrays[LABEL] = label_values(data.label, table[data.label.column], path, "source")
    splits = _assemble(data, {None: [(arrays, table, _Places(path, "source"))]})
    spec = FeatureSpec([_field(e, dtypes[e.name], data.min_frequency) for e in entries])
    return spec, splits


# Streaming ------------------------------------------------------------------------------------
def file_batches(path: Path, fmt: str, columns: Sequence[str],
                 types: Mapping[str, pa.DataType], delimiter: str = ",",
                 batch_rows: int | None = None):
    """Yields (first row, arrow table) of consecutive batches of one file."""
    if fmt == "tfrecord":  # read a file at a time
        yield 0, _read_tfrecord(path, columns, types)
        return
    if fmt == "parquet":
        try:
            handle = pq.ParquetFile(path)
            _missing(path, handle.schema_arrow.names, columns)
            batches = handle.iter_batches(batch_size=batch_rows or STREAM_BATCH_ROWS,
                                          columns=list(columns))
        except (pa.ArrowInvalid, OSError) as error:
            raise DataError(f"{path}: cannot be read as Parquet: {error}") from None
        start = 0
        for batch in batches:
            table = pa.Table.from_batches([batch])
            for name, wanted in types.items():
                table = table.set_column(
                    table.schema.get_field_index(name), name,
                    _cast(table[name], wanted, path, "parquet", name, start))
            yield start, table
            start += table.num_rows
        return
    parse = pa_csv.ParseOptions(delimiter=delimiter)
    header = _header(path, parse)
    _missing(path, header, columns)
    convert = pa_csv.ConvertOptions(include_columns=list(columns), column_types=dict(types),
                                    strings_can_be_null=False)
    start = 0
    try:
        with pa_csv.open_csv(path, parse_options=parse, convert_options=convert,
                             read_options=pa_csv.ReadOptions(block_size=32 << 20)) as reader:
            for batch in reader:
                yield start, pa.Table.from_batches([batch])
                start += batch.num_rows
    except pa.ArrowInvalid as error:
        problem = _csv_problem(path, str(error), delimiter, header, types)
        raise DataError(f"{path}: {problem}" if not problem.startswith(",") else
                        f"{path}{problem}") from None


def stream_to_shards(data, base_dir, out_dir: str | os.PathLike) -> FeatureSpec:
    """Reads the configured files batch by batch and writes each split as TFRecord shards.

    One pass: `tfrs_userlevel.streaming.write_tfrecords` counts the training split's
    vocabularies while it writes (`<split>.manifest.json`). Memory holds a batch, not
    the table. A ratio split draws each row's split from (seed, file, batch), so it is
    reproducible but its fractions are approximate.

    Returns:
      The feature specification (dtypes read from the first batch).
    """
    entries = list(data.fields)
    columns, declared = _columns_and_types(data, entries)
    if isinstance(data.files, dict):
        sources = {split: expand(data.files[split], base_dir, f"data.files.{split}")
                   for split in SPLITS}
    else:
        sources = {None: expand(data.files, base_dir, "data.files")}
    dtypes: dict[str, str] = {}

    def batches():
        for split, files in sources.items():
            for number, path in enumerate(files):
                for index, (start, table) in enumerate(file_batches(
                        path, data.format, columns, declared, data.delimiter)):
                    places = _Places(path, data.format, start)
                    for entry in entries:
                        dtypes.setdefault(entry.name, field_dtype(entry, table[entry.name],
                                                                  path))
                    arrays = {e.name: field_values(e, dtypes[e.name], table[e.name], path,
                                                   data.format, start)
                              for e in entries}
                    arrays[LABEL] = label_values(data.label, table[data.label.column], path,
                                                 data.format, start)
                    if split is not None:
                        yield split, arrays
                        continue
                    for part, rows in _stream_split(data.split, table, places,
                                                    (number, index)).items():
                        if len(rows):
                            yield part, {k: v[rows] for k, v in arrays.items()}

    # One pass feeds every split: each split's writer runs in its own thread and takes
    # that split's batches as they come.
    writers: dict[str, _SplitWriter] = {}
    out_dir = Path(out_dir)
    spec = None
    for split, arrays in batches():
        if spec is None:
            spec = FeatureSpec([_field(e, dtypes[e.name], data.min_frequency)
                                for e in entries])
        writers.setdefault(split, _SplitWriter(spec, out_dir, split)).add(arrays)
    if spec is None:
        raise DataError("data: the files hold no rows")
    for split in SPLITS:
        if split not in writers:
            raise DataError(f"data: the {split} split is empty; check data.split and "
                            "data.files")
        writers[split].close()
    return spec


class _SplitWriter:
    """Feeds one split's batches to `streaming.write_tfrecords` through a generator."""

    def __init__(self, spec: FeatureSpec, out_dir: Path, prefix: str):
        import queue
        import threading

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


def _stream_split(rule, table: pa.Table, places, key: tuple[int, int]
                  ) -> dict[str, np.ndarray]:
    if rule.by == "column":
        return split_rows(rule, table, places)
    draw = np.random.default_rng([rule.seed, *key]).random(table.num_rows)
    train, validation = rule.train, rule.train + rule.validation
    return {"train": np.flatnonzero(draw < train),
            "validation": np.flatnonzero((draw >= train) & (draw < validation)),
            "test": np.flatnonzero(draw >= validation)}


def _columns_and_types(data, entries) -> tuple[list[str], dict[str, pa.DataType]]:
    columns = [e.name for e in entries] + [data.label.column]
    split_column = getattr(data.split, "column", None)
    if split_column is not None and split_column not in columns:
        columns.append(split_column)
    declared = {e.name: _arrow_type(e.dtype) for e in entries if e.dtype is not None}
    if data.format == "csv":
        declared |= {e.name: pa.string() for e in entries if e.separator is not None}
    return columns, declared


class _Places:
    """Row -> "file, line N" for one file (lazily, only when an error needs it)."""

    def __init__(self, path: Path, fmt: str, start: int = 0):
        self.path, self.fmt, self.start = path, fmt, start

    def __getitem__(self, row: int) -> str:
        return _place(self.path, self.fmt, self.start + int(row))


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


def _field(entry, dtype: str, min_frequency: int) -> Field:
    if entry.separator is not None and dtype != "string":
        raise DataError(f"data.fields: field {entry.name!r} has a separator, so its values "
                        f"are text; dtype {dtype!r} does not fit")
    return Field(name=entry.name, dtype=dtype, role=entry.role,
                 multivalued=entry.separator is not None or entry.role == "behavior",
                 separator=entry.separator or "|", max_length=entry.max_length,
                 min_count=entry.min_frequency or min_frequency,
                 shared_vocabulary_with=entry.shared_vocabulary_with,
                 hash_buckets=entry.hash_buckets)
