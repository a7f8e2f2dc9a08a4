"""Feature spec validation, vocabularies and the fused lookup (OOV, multi-valued)."""


import numpy as np
import pytest

from tfrs_userlevel import FeatureLookup, FeatureSpec, FeatureSpecError, Field, tf

SPEC = [
    {"name": "movie_id", "dtype": "int64", "role": "item"},
    {"name": "genres", "dtype": "string", "role": "item", "multivalued": True, "max_length": 3},
    {"name": "user_id", "dtype": "int64", "role": "user_personal"},
    {"name": "gender", "dtype": "string", "role": "user_other"},
]


TRAIN = {
    "movie_id": np.array([10, 20, 20, 30]),
    "genres": np.array(["Action|Comedy", "Drama", "Drama", "Action"]),
    "user_id": np.array([1, 1, 2, 2]),
    "gender": np.array(["F", "F", "M", "M"]),
}


def test_unknown_key_is_an_error_naming_the_field():
    message = r"field 'movie_id': unknown key\(s\) \['vocab_size'\]"
    with pytest.raises(FeatureSpecError, match=message):
        FeatureSpec.from_config([{"name": "movie_id", "dtype": "int64", "role": "item",
                                  "vocab_size": 10}])


@pytest.mark.parametrize("entry, message", [
    ({"name": "x", "dtype": "float", "role": "item"}, "field 'x': dtype must be one of"),
    ({"name": "x", "dtype": "int64", "role": "person"}, "field 'x': role must be one of"),
    ({"name": "x", "dtype": "int64", "role": "behavior"}, "field 'x': a behavior field must"),
    ({"name": "x", "dtype": "int64"}, r"field 'x': missing required key\(s\) \['role'\]"),
    ({"name": "x y", "dtype": "int64", "role": "item"}, "must be a Python identifier"),
])
def test_invalid_fields(entry, message):
    with pytest.raises(FeatureSpecError, match=message):
        FeatureSpec.from_config([entry])


def test_inconsistent_specs():
    item = Field("movie_id", "int64", "item")
    with pytest.raises(FeatureSpecError, match=r"\['movie_id'\] are declared more than once"):
        FeatureSpec([item, item])
    with pytest.raises(FeatureSpecError, match="field 'history': shared_vocabulary_with names"):
        FeatureSpec([item, Field("history", "int64", "behavior", multivalued=True,
                                 shared_vocabulary_with="item_id")])
    with pytest.raises(FeatureSpecError, match="field 'history': dtype 'string' differs"):
        FeatureSpec([item, Field("history", "string", "behavior", multivalued=True,
                                 shared_vocabulary_with="movie_id")])
    with pytest.raises(FeatureSpecError, match="at least one field with role 'item'"):
        FeatureSpec([Field("user_id", "int64", "user_personal")])


def test_vocabularies_come_from_training_values_and_respect_min_count():
    spec = FeatureSpec.from_config(SPEC)
    vocab = spec.build_vocabularies(TRAIN)
    assert vocab["movie_id"] == [10, 20, 30]
    assert vocab["genres"] == ["Action", "Comedy", "Drama"]
    rare = FeatureSpec.from_config([{**SPEC[0], "min_count": 2}])
    assert rare.build_vocabularies(TRAIN)["movie_id"] == [20]
    assert spec.positions("user_personal", "user_other") == [2, 3]


def test_lookup_fused_ids_and_oov():
    spec = FeatureSpec.from_config(SPEC)
    lookup = FeatureLookup(spec.get_config(), spec.build_vocabularies(TRAIN))
    # Layout: movie_id [0..3], genres [4..7], user_id [8..10], gender [11..13]; row 0 of each = OOV.
    assert lookup.offsets == {"movie_id": 0, "genres": 4, "user_id": 8, "gender": 11}
    assert lookup.total_size == 14
    out = lookup({
        "movie_id": tf.constant([20, 999], tf.int64),
        "genres": tf.constant(["Comedy|Action|Horror|Drama", ""]),
        "user_id": tf.constant([2, -5], tf.int64),
        "gender": tf.constant(["M", "unknown"]),
    })
    np.testing.assert_array_equal(out["ids"].numpy(), [[2, 10, 13], [0, 8, 11]])
    # Multi-valued: the last max_length values, unseen -> OOV row 4, padding -1.
    np.testing.assert_array_equal(out["genres"].numpy(), [[5, 4, 7], [-1, -1, -1]])


def test_lookup_rejects_wrong_types_and_missing_features():
    spec = FeatureSpec.from_config(SPEC[:1])
    lookup = FeatureLookup(spec.get_config(), spec.build_vocabularies(TRAIN))
    with pytest.raises(TypeError, match="feature 'movie_id' must be int64, got string"):
        lookup({"movie_id": tf.constant(["10"])})
    with pytest.raises(KeyError, match="input feature 'movie_id' is missing"):
        lookup({"user_id": tf.constant([1], tf.int64)})
    np.testing.assert_array_equal(lookup({"movie_id": tf.constant([10], tf.int32)})["ids"], [[1]])


def test_lookup_config_round_trip():
    spec = FeatureSpec.from_config(SPEC)
    lookup = FeatureLookup(spec.get_config(), spec.build_vocabularies(TRAIN))
    clone = FeatureLookup.from_config(lookup.get_config())
    raw = {k: tf.constant(v) for k, v in TRAIN.items()}
    for key, value in lookup(raw).items():
        np.testing.assert_array_equal(value, clone(raw)[key])
