"""The run configuration: one validated tree of `data`, `model` and `train`.

A YAML (or JSON) file of this shape trains a model on the user's own click
logs (`train.py --config FILE`); its reference is generated from these
models. Every section refuses unknown keys and names the path of a bad one.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import pydantic

from tfrs_userlevel.features import DTYPES, ROLES

SPLITS = ("train", "validation", "test")
FILE_FORMATS = ("csv", "parquet", "tfrecord")
# The built-in datasets (`datasets` package): the rows come from their own readers, with
# `files` as the data root (optional) and, for synthetic, `rows` generated rows.
BUILTIN_FORMATS = ("movielens_1m", "movielens_100k", "synthetic")
FORMATS = FILE_FORMATS + BUILTIN_FORMATS


class Section(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")


class RatioSplit(Section):
    """Rows drawn at random (seeded) into the three splits, by fraction."""

    by: Literal["ratio"] = pydantic.Field(description="selects this rule")
    train: float = pydantic.Field(0.8, gt=0, lt=1, description="fraction of rows for training")
    validation: float = pydantic.Field(0.1, ge=0, lt=1,
                                       description="fraction of rows for validation")
    test: float = pydantic.Field(0.1, ge=0, lt=1, description="fraction of rows for testing")
    seed: int = pydantic.Field(2024, description="seed of the random assignment")

    @pydantic.model_validator(mode="after")
    def _fractions(self):
        total = self.train + self.validation + self.test
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"train + validation + test must be 1, got {total:g}")
        return self


class ColumnSplit(Section):
    """Rows assigned by the value of a column (one value, or a list, per split)."""

    by: Literal["column"] = pydantic.Field(description="selects this rule")
    column: str = pydantic.Field(description="the column whose value names the split")
    train: str | int | list[str | int] = pydantic.Field(
        "train", description="the value (or values) of `column` that mark training rows")
    validation: str | int | list[str | int] = pydantic.Field(
        "validation", description="the value (or values) that mark validation rows")
    test: str | int | list[str | int] = pydantic.Field(
        "test", description="the value (or values) that mark test rows")


class TimeSplit(Section):
    """The oldest fraction of rows by `column` for training, then validation, then test."""

    by: Literal["time"] = pydantic.Field(description="selects this rule")
    column: str = pydantic.Field(description="the column that orders the rows in time")
    train: float = pydantic.Field(0.8, gt=0, lt=1, description="oldest fraction, for training")
    validation: float = pydantic.Field(0.1, ge=0, lt=1,
                                       description="next fraction, for validation")
    test: float = pydantic.Field(0.1, ge=0, lt=1, description="newest fraction, for testing")

    _fractions = RatioSplit._fractions


Split = Annotated[RatioSplit | ColumnSplit | TimeSplit, pydantic.Field(discriminator="by")]


class Label(Section):
    """The click label: a 0/1 column, or a numeric column made 0/1 by a threshold."""

    column: str = pydantic.Field(description="the label column (0/1 unless `positive_above`)")
    positive_above: float | None = pydantic.Field(
        None, description="values above this are clicks (1), the rest 0 (e.g. rating > 3)")


class FieldEntry(Section):
    """One input field, named as its column (the serving signature uses the name).

    `dtype` is inferred from the data unless given; a `separator` makes the
    field multi-valued; `hash_buckets` hashes values instead of learning a
    vocabulary; `default` fills empty values (without it they are errors).
    """

    name: str = pydantic.Field(description="the column, and the serving input of that name")
    role: Literal[ROLES] = pydantic.Field(
        description="what the field describes: item, user_personal (the user's id), "
                    "user_other (profile), context or behavior (a click history)")
    dtype: Literal[DTYPES] | None = pydantic.Field(
        None, description="the value type; inferred from the data when not given")
    separator: str | None = pydantic.Field(
        None, description="makes the field multi-valued, split on this string")
    max_length: int = pydantic.Field(8, ge=1, description="values kept per multi-valued row")
    hash_buckets: int | None = pydantic.Field(
        None, ge=1, description="hash values into this many buckets instead of a vocabulary")
    min_frequency: int | None = pydantic.Field(
        None, ge=1, description="this field's vocabulary cut-off (default: data.min_frequency)")
    shared_vocabulary_with: str | None = pydantic.Field(
        None, description="another field whose vocabulary (and ids) this field uses")
    default: str | int | None = pydantic.Field(
        None, description="fills empty values; without it an empty value is an error")


class DataSection(Section):
    """Where the rows are and how they become features, labels and splits."""

    format: Literal[FORMATS] = pydantic.Field(
        description="csv (plain or .gz), parquet, tfrecord (one tf.Example per row), or a "
                    "built-in dataset")
    files: str | list[str] | dict[Literal[SPLITS], str | list[str]] | None = pydantic.Field(
        None, description="a glob or a list of files (relative to the configuration's "
                          "folder), or one per split: {train: ..., validation: ..., test: ...};"
                          " for a built-in dataset, its data root")
    rows: int | None = pydantic.Field(None, ge=10,
                                      description="rows of the synthetic dataset")
    stream: bool = pydantic.Field(
        False, description="for files larger than memory: one pass writes the rows as "
                           "TFRecord shards (counting the training split's vocabularies), "
                           "and training reads the shards")
    shard_dir: str | None = pydantic.Field(
        None, description="where the shards go (default: `<model-dir>/data`); reused when "
                          "they are there")
    split: Split | None = pydantic.Field(
        None, description="how one table becomes three splits: {by: ratio | column | time}")
    label: Label = pydantic.Field(description="the click label")
    fields: list[FieldEntry] = pydantic.Field(min_length=1,
                                              description="the input fields, one per column")
    min_frequency: int = pydantic.Field(
        1, ge=1, description="values seen fewer times in training go to the field's OOV row")
    delimiter: str = pydantic.Field(",", min_length=1, max_length=1,
                                    description="the CSV delimiter")

    @pydantic.model_validator(mode="after")
    def _split_or_files(self):
        if self.format in FILE_FORMATS and self.files is None:
            raise ValueError(f"format {self.format} reads files: give data.files (a glob, a "
                             "list, or {train: ..., validation: ..., test: ...})")
        if self.rows is not None and self.format != "synthetic":
            raise ValueError("rows applies to format synthetic (the rows it generates)")
        per_split = isinstance(self.files, dict)
        if self.stream and self.format not in FILE_FORMATS:
            raise ValueError("stream applies to files (csv, parquet, tfrecord)")
        if self.stream and getattr(self.split, "by", None) == "time":
            raise ValueError("a time split orders the whole table, which a stream never holds;"
                             " give files per split or a split column when streaming")
        if per_split and self.split is not None:
            raise ValueError("give either files per split ({train: ..., validation: ..., "
                             "test: ...}) or one table with a split rule, not both")
        if per_split and set(self.files) != set(SPLITS):
            raise ValueError(f"files per split need train, validation and test; got "
                             f"{sorted(self.files)}")
        if not per_split and self.split is None:
            raise ValueError("one table needs a split rule: split: {by: ratio | column | time}")
        names = [f.name for f in self.fields]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"fields {repeated} are declared more than once")
        if self.label.column in names:
            raise ValueError(f"the label column {self.label.column!r} is also a field")
        histories = [f.name for f in self.fields if f.role == "behavior"]
        if histories:
            raise ValueError(f"field {histories[0]!r}: role behavior (a click history) is "
                             "built by the built-in datasets (train.py --history-length), "
                             "not read from files; declare the columns you have as item, "
                             "user or context fields")
        if "label" in names:
            raise ValueError("a field cannot be named 'label' (the name the training data "
                             "gives the label); rename the column or leave it out")
        return self


class ModelSection(Section):
    """The model: a backbone (or a user-modeling baseline) and a user-level module.

    `backbone`, `baseline` and `user_level` hold `name` (and `preset` for
    GPRec and UDG) plus the options of that layer's constructor; they are
    checked against the layers in `tfrs_userlevel.config.components`.
    """

    backbone: dict[str, Any] = pydantic.Field(
        default_factory=lambda: {"name": "mlp"},
        description="`name` of a backbone plus its constructor options")
    user_level: dict[str, Any] = pydantic.Field(
        default_factory=lambda: {"name": "none"},
        description="`name` (none, gprec, udg, gprec+udg), `preset`, and the layer's options")
    baseline: dict[str, Any] | None = pydantic.Field(
        None, description="`name` of a user-modeling baseline, in place of the backbone, plus "
                          "its options")
    embedding_dim: int = pydantic.Field(16, ge=1, description="width d of every field embedding")
    embedding_l2: float = pydantic.Field(3e-4, ge=0,
                                         description="L2 penalty on the embedding table")
