"""Datasets for tfrs-userlevel: TFDS builders and an in-memory loader.

`load_splits(name, split)` returns each split as numpy columns. With
`source="raw"` (the default) it reads the raw files with the same reader the
TFDS builder uses (seconds for ML-1M); with `source="tfds"` it goes through
`builder.download_and_prepare()` and `as_dataset` (TFDS's own cache; the
first prepare of ML-1M takes minutes).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from tfrs_userlevel import tables
from tfrs_userlevel.datasets import behavior, splits
from tfrs_userlevel.datasets.movielens_1m import movielens_1m
from tfrs_userlevel.datasets.movielens_100k import movielens_100k
from tfrs_userlevel.datasets.sources import ENV_VAR, DataNotFoundError

DATASETS = {
    "movielens_1m": movielens_1m,
    "movielens_100k": movielens_100k,
}
BUILDERS = {
    "movielens_1m": movielens_1m.Movielens1m,
    "movielens_100k": movielens_100k.Movielens100k,
}
SPLIT_SCHEMES = ("random", "time")
SOURCES = ("raw", "tfds")


def _module(name: str):
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; valid choices are {sorted(DATASETS)}")
    return DATASETS[name]


def feature_spec(name: str, history_length: int = 0) -> list[dict[str, Any]]:
    """The default `FeatureSpec` config (list of field dicts) of a dataset.

    `history_length` > 0 adds the behavior field `history_<item>`: the
    user's last clicked items (see `datasets.behavior`), each with its genres.
    """
    fields = [dict(field) for field in _module(name).FEATURE_SPEC]
    if history_length > 0:
        item = _module(name).ITEM
        fields.append({"name": history_column(name), "dtype": "int64", "role": "behavior",
                       "multivalued": True, "max_length": int(history_length),
                       "shared_vocabulary_with": item, "attributes": ["genres"]})
    return fields


def history_column(name: str) -> str:
    """The behavior column of dataset `name`: "history_<item field>"."""
    return f"history_{_module(name).ITEM}"


def builder(name: str, split: str = "random", data_dir: str | os.PathLike | None = None,
            tfds_dir: str | os.PathLike | None = None):
    """The TFDS builder of `name` with config `split`."""
    _module(name)
    if split not in SPLIT_SCHEMES:
        raise ValueError(f"unknown split {split!r}; valid choices are {list(SPLIT_SCHEMES)}")
    return BUILDERS[name](config=split, data_dir=tfds_dir, raw_dir=data_dir)


def load_splits(
    name: str,
    split: str = "random",
    data_dir: str | os.PathLike | None = None,
    source: str = "raw",
    tfds_dir: str | os.PathLike | None = None,
    history_length: int = 0,
) -> dict[str, dict[str, np.ndarray]]:
    """Loads every split of a dataset into memory.

    Args:
      name: "movielens_1m" or "movielens_100k".
      split: "random" or "time" (the TFDS config).
      data_dir: Root of the raw files (`--data-dir`); `$TFRS_USERLEVEL_DATA`
        otherwise.
      source: "raw" (read the raw files directly) or "tfds".
      tfds_dir: TFDS data directory for `source="tfds"`.
      history_length: > 0 adds `history_<item>`, int64 [N, history_length]:
        each row's last clicks strictly before it (`datasets.behavior`),
        oldest first, padded with -1. Only with split "time": under a random
        split, training rows' histories would hold the clicks of later test
        rows, i.e. test labels.

    Returns:
      {"train"|"validation"|"test": {column: 1-D numpy array}} with every
      feature of the builder (strings as numpy str, ints as int64).
    """
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}; valid choices are {list(SOURCES)}")
    if history_length and split != "time":
        raise ValueError(
            f"click histories need split 'time', got {split!r}: under a random split the "
            "histories of training rows contain the clicks of later validation/test rows")
    if history_length and source != "raw":
        raise ValueError("click histories are built from the raw files (source 'raw'); the "
                         "TFDS builder's examples carry them as the 'history' feature")
    dataset_builder = builder(name, split, data_dir, tfds_dir)
    features = _module(name).FEATURES
    if source == "tfds":
        import tensorflow_datasets as tfds

        dataset_builder.download_and_prepare()
        result = {}
        for split_name in splits.SPLITS:
            examples = dataset_builder.as_dataset(split=split_name).map(
                lambda x: {k: x[k] for k in features})  # without the variable-length history
            batches = tfds.as_numpy(examples.batch(1 << 16))
            parts = list(batches)
            result[split_name] = {
                column: _as_column(np.concatenate([p[column] for p in parts]), dtype)
                for column, dtype in features.items()
            }
        return result
    frame = dataset_builder._read(dataset_builder.locate())
    column = f"{split}_split"
    histories = None
    if history_length:
        histories = behavior.frame_histories(frame, _module(name).ITEM, history_length)
    result = {}
    for split_name in splits.SPLITS:
        rows = frame[column].to_numpy() == split_name
        part = frame[rows]
        result[split_name] = {
            name_: _as_column(part[name_].to_numpy(), dtype) for name_, dtype in features.items()
        }
        if histories is not None:
            result[split_name][history_column(name)] = histories[rows]
    return result


CONFIGS = Path(__file__).resolve().parent / "configs"


def config_path(name: str) -> Path:
    """The run configuration of a built-in dataset (`configs/<name>.yaml`)."""
    path = CONFIGS / f"{name}.yaml"
    if not path.exists():
        choices = sorted(p.stem for p in CONFIGS.glob("*.yaml"))
        raise ValueError(f"no built-in configuration {name!r}; valid choices are {choices}")
    return path


def _movielens_table(name: str):
    """The reader of `format: <name>`: every column of the dataset, both split columns."""

    def read(data, base_dir) -> pa.Table:
        data_dir = None
        if data.files is not None:
            data_dir = Path(os.path.expanduser(str(data.files)))
            if not data_dir.is_absolute() and base_dir is not None:
                data_dir = Path(base_dir) / data_dir
        dataset_builder = builder(name, "random", data_dir)
        frame = dataset_builder._read(dataset_builder.locate())
        return pa.Table.from_pandas(frame, preserve_index=False)

    return read


def _synthetic_table(data, base_dir) -> pa.Table:
    """`format: synthetic`: `rows` generated rows (80/10/10, column "split")."""
    from tfrs_userlevel.datasets import synthetic

    parts = synthetic.SyntheticClicks(seed=0).splits(data.rows or 1_000_000)
    columns = {key: np.concatenate([part[key] for part in parts.values()])
               for key in parts["train"]}
    columns["split"] = np.repeat(list(parts), [len(p["label"]) for p in parts.values()])
    return pa.table(columns)


tables.SOURCES.update({"movielens_1m": _movielens_table("movielens_1m"),
                       "movielens_100k": _movielens_table("movielens_100k"),
                       "synthetic": _synthetic_table})


def _as_column(values: np.ndarray, dtype: type) -> np.ndarray:
    if dtype is str:
        if values.dtype == object and len(values) and isinstance(values[0], bytes):
            return np.char.decode(values.astype(bytes), "utf-8").astype(str)
        return values.astype(str)
    return values.astype(np.int64)


__all__ = ["BUILDERS", "CONFIGS", "DATASETS", "DataNotFoundError", "ENV_VAR", "builder",
           "config_path", "feature_spec", "history_column", "load_splits"]
