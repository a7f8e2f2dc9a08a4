"""The SYNTHETIC planted worlds: deterministic for a seed, and the clicks follow the
declared logit."""

import numpy as np
import pytest

from tfrs_userlevel.datasets.planted import AttributeWeightingWorld
from tfrs_userlevel.features import FeatureSpec
from tfrs_userlevel.monitoring import exact_auc_logloss


def test_the_world_and_its_rows_are_deterministic_for_a_seed():
    a, b = AttributeWeightingWorld(seed=3), AttributeWeightingWorld(seed=3)
    rows_a, rows_b = a.columns(500, part=1), b.columns(500, part=1)
    assert rows_a.keys() == rows_b.keys()
    for key in rows_a:
        np.testing.assert_array_equal(rows_a[key], rows_b[key])
    other = AttributeWeightingWorld(seed=4).columns(500, part=1)
    assert not np.array_equal(other["label"], rows_a["label"])
    # The splits are independent streams of the same world.
    splits = a.splits(1000)
    assert [len(splits[s]["label"]) for s in ("train", "validation", "test")] == [800, 100, 100]
    assert not np.array_equal(splits["validation"]["user_id"], splits["test"]["user_id"])


def test_the_logit_is_a_user_specific_weighting_of_item_attribute_scores():
    world = AttributeWeightingWorld(users=50, items=40, attributes=3, values=5, seed=1)
    user, item = np.array([0, 7, 49]), np.array([3, 3, 39])
    expected = []
    for u, i in zip(user, item, strict=True):
        scores = [world.value_score[a, world.item_values[i, a]] for a in range(3)]
        expected.append(world.scale * sum(w * s for w, s in zip(world.weights[u], scores,
                                                                 strict=True))
                        / np.sqrt(3) + world.item_bias[i])
    np.testing.assert_allclose(world.logit(user, item), expected, rtol=1e-12)
    # Multiplicative in the user's weights: doubling them doubles the item-attribute part.
    base = world.logit(user, item) - world.item_bias[item]
    world.weights = world.weights * 2
    np.testing.assert_allclose(world.logit(user, item) - world.item_bias[item], 2 * base)


def test_clicks_follow_the_planted_probability_and_the_fields_match_the_spec():
    world = AttributeWeightingWorld(seed=0)
    rows = world.columns(60_000)
    probability = rows["planted_probability"]
    assert abs(rows["label"].mean() - probability.mean()) < 0.01
    auc, _ = exact_auc_logloss(rows["label"], probability)
    assert auc > 0.8  # the planted structure is strong enough to learn
    spec = FeatureSpec.from_config(world.feature_spec)
    assert set(spec.names) <= set(rows)
    assert [f.role for f in spec.fields].count("item") == 1 + world.attributes
    # Each user keeps one segment, and the segment carries part of the user's weights.
    users, first = np.unique(rows["user_id"], return_index=True)
    segment_of = dict(zip(users, rows["segment"][first], strict=True))
    assert all(segment_of[u] == s for u, s in zip(rows["user_id"][:500], rows["segment"][:500],
                                                  strict=True))
    by_segment = [world.weights[world.segment == s].mean(axis=0) for s in range(4)]
    assert np.std(by_segment, axis=0).mean() > 0.3


@pytest.mark.parametrize("bad", [{"attributes": 0}])
def test_a_world_needs_an_attribute(bad):
    with pytest.raises(ValueError, match="attributes must be >= 1"):
        AttributeWeightingWorld(**bad)


def test_the_positive_world_keeps_the_world_and_flips_no_sign_but_the_weights():
    signed, positive = (AttributeWeightingWorld(seed=2),
                        AttributeWeightingWorld(seed=2, signed=False))
    np.testing.assert_array_equal(positive.weights, np.abs(signed.weights))
    np.testing.assert_array_equal(positive.value_score, signed.value_score)
    np.testing.assert_array_equal(positive.item_values, signed.item_values)
    assert (signed.weights < 0).mean() > 0.2 and (positive.weights >= 0).all()


def test_rows_can_be_drawn_for_chosen_users_only():
    world = AttributeWeightingWorld(users=50, items=40, seed=2)
    chosen = np.array([3, 9, 27])
    rows = world.columns(600, part=0, users=chosen)
    assert set(np.unique(rows["user_id"]) - 1) <= set(chosen.tolist())
    # rows_for gives one row per entry, in order, deterministic for the stream.
    user = np.repeat(chosen, 4)
    a, b = world.rows_for(user, part=5), world.rows_for(user, part=5)
    np.testing.assert_array_equal(a["user_id"], user + 1)
    np.testing.assert_array_equal(a["label"], b["label"])
    np.testing.assert_array_equal(a["segment"], world.segment[user] + 1)
    np.testing.assert_allclose(a["planted_probability"],
                               1 / (1 + np.exp(-world.logit(user, a["item_id"] - 1))))
