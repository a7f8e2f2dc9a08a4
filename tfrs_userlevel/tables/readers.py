"""Files to arrow tables: CSV (plain or .gz) and Parquet with pyarrow, TFRecord
(`tf.train.Example`, one row per record) with tf.data; whole, or batch by batch."""

from __future__ import annotations

import csv
import glob
import gzip
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from tfrs_userlevel.tables.errors import DataError
from tfrs_userlevel.tables.errors import place as _place

# Rows per batch of a streamed Parquet file (CSV streams in blocks of 32 MB).
STREAM_BATCH_ROWS = 1 << 18


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


def read_table(path: Path, fmt: str, columns: Sequence[str],
               types: Mapping[str, pa.DataType], delimiter: str = ",") -> pa.Table:
    """The named columns of one file, with the given arrow types where given."""
    if fmt == "csv":
        return _read_csv(path, columns, types, delimiter)
    if fmt == "parquet":
        return _read_parquet(path, columns, types)
    return _read_tfrecord(path, columns, types)


def require_columns(path: Path, have: Sequence[str], columns: Sequence[str]) -> None:
    absent = [c for c in columns if c not in have]
    if absent:
        raise DataError(f"{path}: no column {absent[0]!r}; the file's columns are "
                        f"{list(have)}")


def _read_csv(path, columns, types, delimiter) -> pa.Table:
    parse = pa_csv.ParseOptions(delimiter=delimiter)
    header: list[str] = []
    try:
        header = _header(path, parse)
        require_columns(path, header, columns)
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
            if "invalid UTF8" in message:
                return _bad_utf8(path, delimiter, name) or _csv_message(message, header)
            try:
                text = pa_csv.read_csv(path, parse_options=pa_csv.ParseOptions(
                    delimiter=delimiter), convert_options=pa_csv.ConvertOptions(
                    include_columns=[name], column_types={name: pa.string()}))[name]
            except pa.ArrowInvalid:  # a value that is not even text
                return _bad_utf8(path, delimiter, name) or _csv_message(message, header)
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
    return _csv_message(message, header)


def _bad_utf8(path: Path, delimiter: str, name: str) -> str | None:
    """", line N: ..." of the first value of column `name` that is not UTF-8."""
    values = pa_csv.read_csv(path, parse_options=pa_csv.ParseOptions(delimiter=delimiter),
                             convert_options=pa_csv.ConvertOptions(
                                 include_columns=[name], column_types={name: pa.binary()}))
    for row, value in enumerate(values[name].to_pylist()):
        try:
            (value or b"").decode("utf-8")
        except UnicodeDecodeError:
            return (f", line {row + 2}: column {name!r} holds {value[:60]!r}, which is not "
                    "UTF-8 text; save the file as UTF-8 (iconv -f latin1 -t utf-8, say)")
    return None


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
        require_columns(path, schema.names, columns)
        table = pq.read_table(path, columns=list(columns), page_checksum_verification=True)
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


def file_batches(path: Path, fmt: str, columns: Sequence[str],
                 types: Mapping[str, pa.DataType], delimiter: str = ",",
                 batch_rows: int | None = None):
    """Yields (first row, arrow table) of consecutive batches of one file."""
    if fmt == "tfrecord":  # read a file at a time
        yield 0, _read_tfrecord(path, columns, types)
        return
    if fmt == "parquet":
        try:
            handle = pq.ParquetFile(path, page_checksum_verification=True)
            require_columns(path, handle.schema_arrow.names, columns)
            batches = handle.iter_batches(batch_size=batch_rows or STREAM_BATCH_ROWS,
                                          columns=list(columns))
        except (pa.ArrowInvalid, OSError) as error:
            raise DataError(f"{path}: cannot be read as Parquet: {error}") from None
        start = 0
        while True:
            try:
                batch = next(batches, None)
            except (pa.ArrowInvalid, OSError) as error:
                raise DataError(f"{path}: cannot be read as Parquet (row {start + 1} "
                                f"onwards): {error}") from None
            if batch is None:
                break
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
    require_columns(path, header, columns)
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
