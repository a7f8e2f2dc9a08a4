"""The tf.data pipelines: full coverage, reshuffling, determinism, row order."""


import numpy as np

from tfrs_userlevel import data, tf


def test_host_lookup_gives_the_layers_ids(ml100k):
    """lookup_columns' host path (factorized, one lookup per distinct value) against the
    FeatureLookup layer itself, on real rows and on lists with edge cases."""
    from tfrs_userlevel import datasets
    from tfrs_userlevel.features import FeatureSpec, Field
    from tfrs_userlevel.lookup import FeatureLookup

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
