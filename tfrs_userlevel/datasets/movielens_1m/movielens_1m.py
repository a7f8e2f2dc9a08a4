"""MovieLens 1M for CTR prediction: 8 fields, label rating > 3.

One row per rating, sorted by (user_id, movie_id):
  user_id (int64, personal), gender (string), age (int64), occupation
  (int64), zip (string, first 5 characters); movie_id (int64), year (int64,
  parsed from the title), genres (string, the pipe-joined genre list);
  label (int64, rating > 3), rating, timestamp (int64, -1 where unknown).

Configs: `random` (the canonical 80/10/10 split with seed 2024) and `time`
(the global 80/10/10 time split). Raw files: the official `ratings.dat`,
`users.dat`, `movies.dat`, or in place of `ratings.dat` the reassembly
`ratings.csv.gz` (user_id,movie_id,rating,timestamp,split) whose `split`
column gives the time split for rows without a timestamp.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import tensorflow_datasets as tfds

from tfrs_userlevel.datasets import builder, sources, splits
from tfrs_userlevel.datasets.readers import read_delimited
from tfrs_userlevel.tables.errors import DataError

URL = "https://files.grouplens.org/datasets/movielens/ml-1m.zip"
FOLDERS = ("movielens-1m", "ml-1m")
_TIME_SPLIT_NAMES = {"train": "train", "val": "validation", "test": "test"}
_YEAR = re.compile(r"\((\d{4})\)\s*$")

INSTRUCTIONS = (
    "Provide the MovieLens 1M files in one of these ways:\n"
    f"  * download {URL}, unzip it and pass --data-dir to the folder that holds ml-1m/\n"
    f"    (or set ${sources.ENV_VAR});\n"
    "  * put ratings.dat, users.dat and movies.dat under "
    "~/tensorflow_datasets/downloads/manual/ml-1m/;\n"
    "  * or let TFDS download the zip (needs internet access)."
)


def _missing_files(path: Path) -> str | None:
    needed = ["users.dat", "movies.dat"]
    missing = [name for name in needed if not (path / name).is_file()]
    if not (path / "ratings.dat").is_file() and not (path / "ratings.csv.gz").is_file():
        missing.append("ratings.dat or ratings.csv.gz")
    return f"missing {', '.join(missing)}" if missing else None


def _read_ratings(path: Path) -> pd.DataFrame:
    if (path / "ratings.dat").is_file():
        frame = read_delimited(path / "ratings.dat", "::",
                               ["user_id", "movie_id", "rating", "timestamp"],
                               ["user_id", "movie_id", "rating", "timestamp"])
        frame["time_split"] = None
        return frame
    file = path / "ratings.csv.gz"
    try:
        frame = pd.read_csv(file, dtype={"timestamp": "Int64"})
    except (OSError, EOFError, pd.errors.ParserError) as error:
        raise DataError(f"{file}: cannot be read as CSV: {error}") from error
    expected = ["user_id", "movie_id", "rating", "timestamp", "split"]
    if list(frame.columns) != expected:
        raise DataError(f"{file}: expected columns {expected}, found {list(frame.columns)}")
    frame["timestamp"] = frame["timestamp"].fillna(-1).astype(np.int64)
    unknown = ~frame["split"].isin(list(_TIME_SPLIT_NAMES))
    if unknown.any():
        row = int(np.flatnonzero(unknown.to_numpy())[0])
        raise DataError(f"{file}, row {row + 2}: split must be train/val/test, "
                         f"got {frame['split'].iloc[row]!r}")
    frame["time_split"] = frame.pop("split").map(_TIME_SPLIT_NAMES)
    return frame


def read_movielens_1m(path: str | os.PathLike) -> pd.DataFrame:
    """Reads and joins the raw files into one frame sorted by (user_id, movie_id).

    Adds the columns `random_split` and `time_split` (values train /
    validation / test).
    """
    path = Path(path)
    ratings = _read_ratings(path)
    users = read_delimited(path / "users.dat", "::",
                           ["user_id", "gender", "age", "occupation", "zip"],
                           ["user_id", "age", "occupation"])
    movies = read_delimited(path / "movies.dat", "::", ["movie_id", "title", "genres"],
                            ["movie_id"])
    years = movies["title"].str.extract(_YEAR, expand=False)
    if years.isna().any():
        row = int(np.flatnonzero(years.isna().to_numpy())[0])
        raise DataError(f"{path / 'movies.dat'}, line {row + 1}: no (year) at the end of "
                         f"the title {movies['title'].iloc[row]!r}")
    movies["year"] = years.astype(np.int64)
    users["zip"] = users["zip"].str[:5]
    frame = ratings.merge(users, on="user_id", how="left", validate="many_to_one")
    frame = frame.merge(movies[["movie_id", "year", "genres"]], on="movie_id", how="left",
                        validate="many_to_one")
    for column, file in (("gender", "users.dat"), ("genres", "movies.dat")):
        lost = frame[column].isna().to_numpy()
        if lost.any():
            row = int(np.flatnonzero(lost)[0])
            key = "user_id" if file == "users.dat" else "movie_id"
            raise DataError(f"{path / file}: has no entry for {key} "
                             f"{frame[key].iloc[row]} used by the ratings")
    frame = frame.sort_values(["user_id", "movie_id"], kind="stable").reset_index(drop=True)
    if frame.duplicated(["user_id", "movie_id"]).any():
        raise DataError(f"{path}: duplicate (user_id, movie_id) ratings")
    bad = ~frame["rating"].between(1, 5)
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(f"{path}: rating must be 1..5, got {frame['rating'].iloc[row]} for "
                         f"user {frame['user_id'].iloc[row]}, movie {frame['movie_id'].iloc[row]}")
    frame["label"] = (frame["rating"] > 3).astype(np.int64)
    frame["random_split"] = splits.random_split(len(frame))
    if frame["time_split"].isna().any():
        frame["time_split"] = splits.time_split(frame["timestamp"].to_numpy(),
                                                frame["user_id"].to_numpy(),
                                                frame["movie_id"].to_numpy())
    return frame


FEATURES = {
    "user_id": np.int64, "gender": str, "age": np.int64, "occupation": np.int64, "zip": str,
    "movie_id": np.int64, "year": np.int64, "genres": str,
    "label": np.int64, "rating": np.int64, "timestamp": np.int64,
}

# The 8 model fields of the reference setting (docs/reproducing.md), as
# `tfrs_userlevel.features.FeatureSpec` config.
ITEM = "movie_id"  # the item id field; click histories list its values

FEATURE_SPEC = [
    {"name": "movie_id", "dtype": "int64", "role": "item"},
    {"name": "genres", "dtype": "string", "role": "item"},
    {"name": "year", "dtype": "int64", "role": "item"},
    {"name": "user_id", "dtype": "int64", "role": "user_personal"},
    {"name": "occupation", "dtype": "int64", "role": "user_other"},
    {"name": "age", "dtype": "int64", "role": "user_other"},
    {"name": "gender", "dtype": "string", "role": "user_other"},
    {"name": "zip", "dtype": "string", "role": "user_other"},
]


class Movielens1m(builder.MovieLensBuilder):
    """MovieLens 1M ratings as CTR examples (label = rating > 3)."""

    name = "movielens_1m"
    VERSION = tfds.core.Version("1.1.0")
    RELEASE_NOTES = {"1.0.0": "8 CTR fields; canonical random and time splits.",
                     "1.1.0": "history: the last 50 clicks before each rating."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = INSTRUCTIONS
    URL = URL
    FOLDERS = FOLDERS
    FEATURES = FEATURES
    ITEM = ITEM
    HOMEPAGE = "https://grouplens.org/datasets/movielens/1m/"

    def _missing_files(self, path: Path) -> str | None:
        return _missing_files(path)

    def _read(self, path: Path) -> pd.DataFrame:
        return read_movielens_1m(path)
