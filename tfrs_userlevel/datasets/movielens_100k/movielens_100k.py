"""MovieLens 100K for CTR prediction, label rating > 3.

One row per rating, sorted by (user_id, item_id):
  user_id (int64, personal), age (int64), gender (string), occupation
  (string), zip (string); item_id (int64), year (int64, from the release
  date; 0 for the one item without a date), genres (string, pipe-joined
  genre names from the 19 flags of u.item); label (int64, rating > 3),
  rating, timestamp (int64, complete).

Configs: `random` (80/10/10, seed 2024) and `time` (global 80/10/10 by time).
Raw files: the official `u.data`, `u.user`, `u.item`, `u.genre`.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import tensorflow_datasets as tfds

from tfrs_userlevel.datasets import builder, sources, splits
from tfrs_userlevel.datasets.readers import read_delimited
from tfrs_userlevel.tables.errors import DataError

URL = "https://files.grouplens.org/datasets/movielens/ml-100k.zip"
FOLDERS = ("movielens-100k", "ml-100k")
_FILES = ("u.data", "u.user", "u.item", "u.genre")

INSTRUCTIONS = (
    "Provide the MovieLens 100K files in one of these ways:\n"
    f"  * download {URL}, unzip it and pass --data-dir to the folder that holds ml-100k/\n"
    f"    (or set ${sources.ENV_VAR});\n"
    "  * put u.data, u.user, u.item and u.genre under "
    "~/tensorflow_datasets/downloads/manual/ml-100k/;\n"
    "  * or let TFDS download the zip (needs internet access)."
)

FEATURES = {
    "user_id": np.int64, "age": np.int64, "gender": str, "occupation": str, "zip": str,
    "item_id": np.int64, "year": np.int64, "genres": str,
    "label": np.int64, "rating": np.int64, "timestamp": np.int64,
}

ITEM = "item_id"  # the item id field; click histories list its values

FEATURE_SPEC = [
    {"name": "item_id", "dtype": "int64", "role": "item"},
    {"name": "genres", "dtype": "string", "role": "item"},
    {"name": "year", "dtype": "int64", "role": "item"},
    {"name": "user_id", "dtype": "int64", "role": "user_personal"},
    {"name": "age", "dtype": "int64", "role": "user_other"},
    {"name": "gender", "dtype": "string", "role": "user_other"},
    {"name": "occupation", "dtype": "string", "role": "user_other"},
    {"name": "zip", "dtype": "string", "role": "user_other"},
]


def _missing_files(path: Path) -> str | None:
    missing = [name for name in _FILES if not (path / name).is_file()]
    return f"missing {', '.join(missing)}" if missing else None


def read_movielens_100k(path: str | os.PathLike) -> pd.DataFrame:
    """Reads and joins the raw files into one frame sorted by (user_id, item_id)."""
    path = Path(path)
    ratings = read_delimited(path / "u.data", "\t", ["user_id", "item_id", "rating", "timestamp"],
                    ["user_id", "item_id", "rating", "timestamp"])
    users = read_delimited(path / "u.user", "|", ["user_id", "age", "gender", "occupation", "zip"],
                  ["user_id", "age"])
    genre_names = read_delimited(path / "u.genre", "|", ["genre", "index"], ["index"])
    genre_names = genre_names.sort_values("index")["genre"].tolist()
    item_columns = ["item_id", "title", "release", "video_release", "url"] + genre_names
    items = read_delimited(path / "u.item", "|", item_columns, ["item_id"] + genre_names,
                           optional=("title", "release", "video_release", "url"))
    flags = items[genre_names].to_numpy(dtype=bool)
    items["genres"] = ["|".join(g for g, on in zip(genre_names, row, strict=True) if on)
                       for row in flags]
    release_year = pd.to_numeric(items["release"].str[-4:], errors="coerce")
    items["year"] = release_year.fillna(0).astype(np.int64)
    frame = ratings.merge(users, on="user_id", how="left", validate="many_to_one")
    frame = frame.merge(items[["item_id", "year", "genres"]], on="item_id", how="left",
                        validate="many_to_one")
    for column, file, key in (("gender", "u.user", "user_id"), ("genres", "u.item", "item_id")):
        lost = np.flatnonzero(frame[column].isna().to_numpy())
        if len(lost):
            raise DataError(f"{path / file}: has no entry for {key} "
                             f"{frame[key].iloc[lost[0]]} used by u.data")
    frame = frame.sort_values(["user_id", "item_id"], kind="stable").reset_index(drop=True)
    bad = np.flatnonzero(~frame["rating"].between(1, 5).to_numpy())
    if len(bad):
        raise DataError(f"{path / 'u.data'}: rating must be 1..5, got "
                         f"{frame['rating'].iloc[bad[0]]} for user {frame['user_id'].iloc[bad[0]]}")
    frame["label"] = (frame["rating"] > 3).astype(np.int64)
    frame["random_split"] = splits.random_split(len(frame))
    frame["time_split"] = splits.time_split(
        frame["timestamp"].to_numpy(), frame["user_id"].to_numpy(), frame["item_id"].to_numpy())
    return frame


class Movielens100k(builder.MovieLensBuilder):
    """MovieLens 100K ratings as CTR examples (label = rating > 3)."""

    name = "movielens_100k"
    VERSION = tfds.core.Version("1.1.0")
    RELEASE_NOTES = {"1.0.0": "8 CTR fields; random and time splits.",
                     "1.1.0": "history: the last 50 clicks before each rating."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = INSTRUCTIONS
    URL = URL
    FOLDERS = FOLDERS
    FEATURES = FEATURES
    ITEM = ITEM
    HOMEPAGE = "https://grouplens.org/datasets/movielens/100k/"

    def _missing_files(self, path: Path) -> str | None:
        return _missing_files(path)

    def _read(self, path: Path) -> pd.DataFrame:
        return read_movielens_100k(path)
