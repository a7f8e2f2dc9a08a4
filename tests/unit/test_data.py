"""The tf.data pipelines: full coverage, reshuffling, determinism, row order."""


import numpy as np
import pytest

from tfrs_userlevel import data


def _rows(dataset):
    return [np.concatenate([x["ids"][:, 0].numpy() for x, _ in dataset])]


def test_training_epochs_cover_every_row_once_and_reshuffle():
    n = 10_001
    ids = {"ids": np.arange(n, dtype=np.int32)[:, None]}
    labels = np.arange(n) % 2
    dataset = data.training_dataset(ids, labels, batch_size=1000, seed=3)
    assert int(dataset.cardinality()) == 11
    first, second = _rows(dataset)[0], _rows(dataset)[0]
    np.testing.assert_array_equal(np.sort(first), np.arange(n))
    np.testing.assert_array_equal(np.sort(second), np.arange(n))
    assert (first != second).mean() > 0.9
    again = _rows(data.training_dataset(ids, labels, batch_size=1000, seed=3))[0]
    np.testing.assert_array_equal(first, again)
    other_seed = _rows(data.training_dataset(ids, labels, batch_size=1000, seed=4))[0]
    assert (first != other_seed).mean() > 0.9
    for x, y in dataset.take(1):
        np.testing.assert_array_equal(y.numpy()[:, 0], x["ids"].numpy()[:, 0] % 2)


def test_evaluation_keeps_row_order_and_the_last_partial_batch():
    n = 2_500
    ids = {"ids": np.arange(n, dtype=np.int32)[:, None]}
    dataset = data.evaluation_dataset(ids, np.zeros(n), batch_size=1000)
    np.testing.assert_array_equal(_rows(dataset)[0], np.arange(n))
    np.testing.assert_array_equal(_rows(dataset)[0], np.arange(n))  # a second pass


def test_bad_labels_name_the_row():
    with pytest.raises(ValueError, match="row 2 holds 2"):
        data.training_dataset({"ids": np.zeros((3, 1), np.int32)}, np.array([0, 1, 2]), 2, 0)
    with pytest.raises(ValueError, match="row 1 holds nan"):
        data.evaluation_dataset({"ids": np.zeros((2, 1), np.int32)}, np.array([0.0, np.nan]), 2)
