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

    by: Literal["ratio"]
    train: float = pydantic.Field(0.8, gt=0, lt=1)
    validation: float = pydantic.Field(0.1, ge=0, lt=1)
    test: float = pydantic.Field(0.1, ge=0, lt=1)
    seed: int = 2024

    @pydantic.model_validator(mode="after")
    def _fractions(self):
        total = self.train + self.validation + self.test
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"train + validation + test must be 1, got {total:g}")
        return self


class ColumnSplit(Section):
    """Rows assigned by the value of a column (one value, or a list, per split)."""

    by: Literal["column"]
    column: str
    train: str | int | list[str | int] = "train"
    validation: str | int | list[str | int] = "validation"
    test: str | int | list[str | int] = "test"


class TimeSplit(Section):
    """The oldest fraction of rows by `column` for training, then validation, then test."""

    by: Literal["time"]
    column: str
    train: float = pydantic.Field(0.8, gt=0, lt=1)
    validation: float = pydantic.Field(0.1, ge=0, lt=1)
    test: float = pydantic.Field(0.1, ge=0, lt=1)

    _fractions = RatioSplit._fractions


Split = Annotated[RatioSplit | ColumnSplit | TimeSplit, pydantic.Field(discriminator="by")]


class Label(Section):
    """The click label: a 0/1 column, or a numeric column made 0/1 by a threshold."""

    column: str
    positive_above: float | None = None


class FieldEntry(Section):
    """One input field, named as its column (the serving signature uses the name).

    `dtype` is inferred from the data unless given; a `separator` makes the
    field multi-valued; `hash_buckets` hashes values instead of learning a
    vocabulary; `default` fills empty values (without it they are errors).
    """

    name: str
    role: Literal[ROLES]
    dtype: Literal[DTYPES] | None = None
    separator: str | None = None
    max_length: int = pydantic.Field(8, ge=1)
    hash_buckets: int | None = pydantic.Field(None, ge=1)
    min_frequency: int | None = pydantic.Field(None, ge=1)
    shared_vocabulary_with: str | None = None
    default: str | int | None = None


class DataSection(Section):
    """Where the rows are and how they become features, labels and splits."""

    format: Literal[FORMATS]
    files: str | list[str] | dict[Literal[SPLITS], str | list[str]] | None = None
    rows: int | None = pydantic.Field(None, ge=10)
    # Stream files larger than memory: one pass writes the rows as TFRecord shards (and
    # counts the vocabularies of the training split), and training reads the shards.
    stream: bool = False
    # Where the shards go (default: <model-dir>/data); reused when they are there.
    shard_dir: str | None = None
    split: Split | None = None
    label: Label
    fields: list[FieldEntry] = pydantic.Field(min_length=1)
    min_frequency: int = pydantic.Field(1, ge=1)
    delimiter: str = pydantic.Field(",", min_length=1, max_length=1)

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

    backbone: dict[str, Any] = pydantic.Field(default_factory=lambda: {"name": "mlp"})
    user_level: dict[str, Any] = pydantic.Field(default_factory=lambda: {"name": "none"})
    baseline: dict[str, Any] | None = None
    embedding_dim: int = pydantic.Field(16, ge=1)
    embedding_l2: float = pydantic.Field(3e-4, ge=0)
