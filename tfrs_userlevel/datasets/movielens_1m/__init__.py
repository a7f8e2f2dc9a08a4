"""MovieLens 1M as a TensorFlow Datasets builder (`movielens_1m`)."""

from tfrs_userlevel.datasets.movielens_1m.movielens_1m import Movielens1m, read_movielens_1m

__all__ = ["Movielens1m", "read_movielens_1m"]
