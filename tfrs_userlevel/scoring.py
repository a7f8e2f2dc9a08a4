"""Scoring files of rows with a trained or an exported model, batch by batch.

A `Scorer` holds the raw-feature inputs of a model (a training run's model
directory, or a SavedModel written by `tfrs_userlevel.serving`) and maps
columns of raw values to click probabilities. `feature_batches` reads a CSV
(plain or .gz) or Parquet file in batches, any size, into those inputs:

* string fields: the values as text ("" when empty); a multi-valued field is
  one joined string ("Action|Comedy");
* integer fields: int64 (-1 when empty);
* click histories (behavior fields): "|"-joined ids in CSV, or a list column
  in Parquet, oldest first; the model keeps the most recent `max_length`.

Values the training data did not have (and empty ones) land in the field's
out-of-vocabulary bucket, as at serving. `score_file` writes the rows' id
columns and a `probability` column to CSV or Parquet, under a temporary name
renamed when whole.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from tfrs_userlevel.backend import tf
from tfrs_userlevel.features import BEHAVIOR_PADDING
from tfrs_userlevel.serving import SPEC_FILE, ServingModule, input_specs
from tfrs_userlevel.serving import versions as version_folders
from tfrs_userlevel.tables.errors import DataError
from tfrs_userlevel.tables.readers import file_batches
from tfrs_userlevel.training import load_trained

SCORE_BATCH_ROWS = 1 << 16
FILE_FORMATS = {".csv": "csv", ".gz": "csv", ".parquet": "parquet", ".pq": "parquet"}
PROBABILITY = "probability"


@dataclass(frozen=True)
class Input:
    """One raw-feature input of a model: its dtype, and the kept length of a history."""

    name: str
    dtype: str  # "string" | "int64"
    history_length: int | None = None


class Scorer:
    """Raw feature columns -> click probabilities, with a trained or an exported model.

    Args:
      predict: {name: tensor [N] (or [N, L] for a history)} -> {"probability": [N, 1]}.
      inputs: The model's inputs.
      feature_spec: The model's `FeatureSpec` config (roles give the default id
        columns), or None when unknown.
      positive_rate: The training split's click rate (for RIG), or None.
    """

    def __init__(self, predict, inputs: Sequence[Input], feature_spec: list | None = None,
                 positive_rate: float | None = None):
        self._predict = predict
        self.inputs = list(inputs)
        self.feature_spec = feature_spec
        self.positive_rate = positive_rate

    @classmethod
    def from_run(cls, model_dir: str | os.PathLike) -> Scorer:
        """The best weights of a finished training run."""
        model = load_trained(model_dir)
        serve = ServingModule(model).serve
        serve.get_concrete_function()  # traced here, once, not in the first batch
        inputs = _inputs(input_specs(model), model.feature_spec.get_config())
        return cls(lambda features: serve(features), inputs, model.feature_spec.get_config(),
                   model.positive_rate)

    @classmethod
    def from_saved_model(cls, path: str | os.PathLike) -> Scorer:
        """An exported model: a version folder, or a base folder (its latest version)."""
        path = Path(path)
        if not path.is_dir():
            raise DataError(f"--saved-model {path}: no such folder")
        if not (path / "saved_model.pb").exists():
            versions = [v for v in version_folders(path)
                        if (path / str(v) / "saved_model.pb").exists()]
            if not versions:
                raise DataError(f"--saved-model {path}: holds no saved_model.pb, nor version "
                                "folders with one (tfrs-userlevel export writes BASE/<n>/)")
            path = path / str(versions[-1])
        loaded = tf.saved_model.load(str(path))
        if "serving_default" not in loaded.signatures:
            raise DataError(f"--saved-model {path}: has no serving_default signature")
        signature = loaded.signatures["serving_default"]
        spec_path = path / "assets.extra" / SPEC_FILE
        spec = json.loads(spec_path.read_text()) if spec_path.exists() else None
        inputs = _inputs(signature.structured_input_signature[1], spec)

        def predict(features):
            return signature(**features)

        predict.loaded = loaded  # keeps the restored variables alive
        return cls(predict, inputs, spec)

    def default_id_columns(self) -> list[str]:
        """The model's first ID-like user field and first item field: whose row it is."""
        if self.feature_spec is None:
            return []
        ids = [next((f["name"] for f in self.feature_spec if f.get("role") == role), None)
               for role in ("user_personal", "item")]
        return [name for name in ids if name is not None]

    def __call__(self, features: Mapping[str, np.ndarray]) -> np.ndarray:
        """{input name: numpy [N] or [N, L]} -> probabilities float32 [N]."""
        tensors = {i.name: tf.constant(features[i.name], tf.string if i.dtype == "string"
                                       else tf.int64) for i in self.inputs}
        return self._predict(tensors)[PROBABILITY].numpy().reshape(-1)


def _inputs(specs: Mapping[str, tf.TensorSpec], feature_spec: list | None) -> list[Input]:
    lengths = {f["name"]: int(f["max_length"]) for f in feature_spec or []
               if f.get("role") == "behavior"}
    inputs = []
    for name, spec in specs.items():
        history = spec.shape.rank == 2
        inputs.append(Input(name, "string" if spec.dtype == tf.string else "int64",
                            lengths.get(name, 0) if history else None))
    return inputs


def file_format(path: Path, given: str | None = None, option: str = "--input") -> str:
    """csv or parquet, from `given` or the file's extension."""
    if given is not None:
        return given
    fmt = FILE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise DataError(f"{option} {path}: cannot tell the format from the extension "
                        f"{path.suffix or '(none)'!r}; name it .csv, .csv.gz or .parquet, or "
                        "pass --format")
    return fmt


def feature_batches(path: Path, fmt: str, inputs: Sequence[Input],
                    extra_columns: Sequence[str] = (), delimiter: str = ",",
                    batch_rows: int = SCORE_BATCH_ROWS
                    ) -> Iterator[tuple[int, dict[str, np.ndarray], pa.Table]]:
    """Yields (first row, {input: numpy}, arrow table of `extra_columns`) per batch."""
    names = [i.name for i in inputs]
    columns = list(dict.fromkeys([*names, *extra_columns]))
    types = {i.name: pa.string() if i.dtype == "string" or i.history_length is not None
             else pa.int64() for i in inputs
             if not (fmt == "parquet" and i.history_length is not None)}
    for start, table in file_batches(path, fmt, columns, types, delimiter,
                                     batch_rows=batch_rows):
        for offset in range(0, max(table.num_rows, 1), batch_rows):
            part = table.slice(offset, batch_rows)
            if part.num_rows == 0:
                continue
            features = {i.name: _values(part[i.name], i, path) for i in inputs}
            yield start + offset, features, part.select(list(extra_columns))


def _values(column: pa.ChunkedArray, spec: Input, path: Path) -> np.ndarray:
    if spec.history_length is not None:
        return _history(column, spec, path)
    if spec.dtype == "string":
        return column.fill_null("").to_numpy(zero_copy_only=False)
    return column.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)


def _history(column: pa.ChunkedArray, spec: Input, path: Path) -> np.ndarray:
    """A history column ("|"-joined ids, or a list) -> int64 [N, length], padded at the
    front with the padding id, the most recent ids last."""
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        column = pc.split_pattern(column.fill_null(""), "|")
    try:
        lists = column.to_pylist()
        rows = [[int(v) for v in (values or []) if v not in ("", None)] for values in lists]
    except (TypeError, ValueError) as error:
        raise DataError(f"{path}: column {spec.name!r} is a click history: ids joined by "
                        f"'|' (or a list column in Parquet) ({error})") from None
    length = spec.history_length or max((len(r) for r in rows), default=1) or 1
    out = np.full((len(rows), length), BEHAVIOR_PADDING, np.int64)
    for i, values in enumerate(rows):
        kept = values[-length:]
        if kept:
            out[i, length - len(kept):] = kept
    return out


def score_file(scorer: Scorer, source: Path, output: Path, id_columns: Sequence[str],
               source_format: str | None = None, output_format: str | None = None,
               delimiter: str = ",", batch_rows: int = SCORE_BATCH_ROWS) -> int:
    """Scores every row of `source`; writes its `id_columns` and `probability` to
    `output` (written under a temporary name, renamed when whole). Returns the rows."""
    fmt = file_format(source, source_format)
    out_fmt = file_format(output, output_format, "--output")
    partial = output.with_name(f".{output.name}.partial")
    writer, rows = None, 0
    try:
        for _, features, ids in feature_batches(source, fmt, scorer.inputs, id_columns,
                                                delimiter, batch_rows):
            table = ids.append_column(PROBABILITY, pa.array(scorer(features), pa.float32()))
            if writer is None:
                writer = (pa_csv.CSVWriter(str(partial), table.schema) if out_fmt == "csv"
                          else pq.ParquetWriter(str(partial), table.schema))
            writer.write_table(table)
            rows += table.num_rows
        if writer is None:  # no rows: the header alone
            schema = pa.schema([*(pa.field(c, pa.string()) for c in id_columns),
                                pa.field(PROBABILITY, pa.float32())])
            writer = (pa_csv.CSVWriter(str(partial), schema) if out_fmt == "csv"
                      else pq.ParquetWriter(str(partial), schema))
        writer.close()
        writer = None
        os.replace(partial, output)
    finally:
        if writer is not None:
            writer.close()
        if partial.exists():
            partial.unlink()
    return rows
