"""MovieLens 100K as a TensorFlow Datasets builder (`movielens_100k`)."""

from tfrs_userlevel.datasets.movielens_100k.movielens_100k import Movielens100k, read_movielens_100k

__all__ = ["Movielens100k", "read_movielens_100k"]
