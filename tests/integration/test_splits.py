"""The canonical splits: sizes, the shared random_split column, determinism, time order."""


import numpy as np
import pandas as pd

from tfrs_userlevel import datasets
from tfrs_userlevel.datasets.movielens_1m import read_movielens_1m
from tfrs_userlevel.datasets.movielens_100k import read_movielens_100k


def test_ml1m_random_split_reproduces_the_canonical_column(data_dir):
    frame = read_movielens_1m(data_dir / "movielens-1m")
    reference = pd.read_csv(data_dir / "movielens-1m" / "ctr.csv.gz",
                            usecols=["user_id", "movie_id", "label", "genres", "random_split"])
    assert len(frame) == len(reference) == 1_000_209
    np.testing.assert_array_equal(frame["user_id"], reference["user_id"])
    np.testing.assert_array_equal(frame["movie_id"], reference["movie_id"])
    np.testing.assert_array_equal(frame["label"], reference["label"])
    np.testing.assert_array_equal(frame["genres"], reference["genres"])
    ours = frame["random_split"].replace({"validation": "val"}).to_numpy()
    np.testing.assert_array_equal(ours, reference["random_split"].to_numpy())


def test_ml1m_split_sizes_fields_and_label_rate(ml1m):
    assert {k: len(v["label"]) for k, v in ml1m.items()} == {
        "train": 800_167, "validation": 100_021, "test": 100_021}
    every = {k: np.concatenate([ml1m[s][k] for s in ml1m]) for k in ml1m["train"]}
    counts = {k: len(np.unique(every[k])) for k in
              ("movie_id", "genres", "year", "user_id", "occupation", "age", "gender", "zip")}
    assert counts == {"movie_id": 3706, "genres": 301, "year": 81, "user_id": 6040,
                      "occupation": 21, "age": 7, "gender": 2, "zip": 3402}
    assert abs(every["label"].mean() - 0.57516) < 1e-5


def test_ml1m_time_split_matches_the_shared_global_time_split(data_dir):
    frame = read_movielens_1m(data_dir / "movielens-1m")
    counts = frame["time_split"].value_counts().to_dict()
    assert counts == {"train": 800_167, "validation": 100_021, "test": 100_021}
    known = frame[frame["timestamp"] >= 0]
    last_train = known.loc[known["time_split"] == "train", "timestamp"].max()
    assert known.loc[known["time_split"] == "test", "timestamp"].min() >= last_train


def test_ml100k_splits(data_dir, ml100k):
    assert {k: len(v["label"]) for k, v in ml100k.items()} == {
        "train": 80_000, "validation": 10_000, "test": 10_000}
    frame = read_movielens_100k(data_dir / "movielens-100k")
    by_split = frame.groupby("time_split")["timestamp"]
    assert by_split.max()["train"] <= by_split.min()["validation"]
    assert by_split.max()["validation"] <= by_split.min()["test"]
    time_splits = datasets.load_splits("movielens_100k", "time", data_dir)
    assert len(time_splits["train"]["label"]) == 80_000
