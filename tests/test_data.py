"""The tf.data pipelines: full coverage, reshuffling, determinism, row order."""

import numpy as np
import pytest

from tfrs_userlevel import data, tf


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


def test_host_lookup_gives_the_layers_ids(ml100k):
    """lookup_columns' host path (factorized, one lookup per distinct value) against the
    FeatureLookup layer itself, on real rows and on lists with edge cases."""
    from tfrs_userlevel import datasets
    from tfrs_userlevel.features import FeatureLookup, FeatureSpec, Field

    spec = FeatureSpec.from_config(datasets.feature_spec("movielens_100k"))
    half = {k: v[: len(v) // 2] for k, v in ml100k["train"].items()}
    lookup = FeatureLookup(spec.get_config(), spec.build_vocabularies(half))
    host = data.lookup_columns(lookup, ml100k["train"])  # the second half has unseen values
    layer = lookup({k: tf.constant(ml100k["train"][k]) for k in spec.names})
    np.testing.assert_array_equal(host["ids"], layer["ids"].numpy())
    assert (host["ids"] == np.array([lookup.offsets[n] for n in spec.names])).any()  # OOV

    spec = FeatureSpec([Field("tags", "string", "item", multivalued=True, separator="|",
                              max_length=3),
                        Field("uid", "int64", "user_personal"),
                        Field("city", "string", "user_other")])
    columns = {"tags": np.array(["a|b|c|d", "", "|a||", "zz|a", "b", "a|b|c|d"], object),
               "uid": np.array([5, 7, 9, 5, -3, 5]),
               "city": np.array(["x", "y", "x", "", "q", "x"], object)}
    lookup = FeatureLookup(spec.get_config(), {"tags": ["a", "b", "c"], "uid": [5, 9],
                                               "city": ["x", "y"]})
    host = data.lookup_columns(lookup, columns)
    layer = lookup({k: tf.constant(v) for k, v in columns.items()})
    for key in layer:
        np.testing.assert_array_equal(host[key], layer[key].numpy(), err_msg=key)
    # The most recent values are kept: "a|b|c|d" -> b, c, d (d unseen: the OOV row 0).
    np.testing.assert_array_equal(host["tags"][0], [2, 3, 0])


def test_vocabularies_match_a_sort_of_every_value(ml1m):
    """build_vocabularies (hash counts) against np.unique over the raw values."""
    from tfrs_userlevel import datasets
    from tfrs_userlevel.features import FeatureSpec, Field

    spec = FeatureSpec.from_config(datasets.feature_spec("movielens_1m"))
    vocabularies = spec.build_vocabularies(ml1m["train"])
    for field in spec.fields:
        expected = np.unique(ml1m["train"][field.name]).tolist()
        assert vocabularies[field.name] == expected, field.name
    genres = ml1m["train"]["genres"]
    spec = FeatureSpec([Field("genres", "string", "item", multivalued=True, separator="|",
                              min_count=5000)])
    parts, counts = np.unique([p for g in genres for p in g.split("|") if p],
                              return_counts=True)
    assert spec.build_vocabularies({"genres": genres})["genres"] == parts[
        counts >= 5000].tolist()
