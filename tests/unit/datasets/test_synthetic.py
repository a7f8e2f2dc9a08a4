"""Synthetic data with planted groups: streams of any size, and GPRec finds the groups."""


from collections import Counter

import numpy as np

from tfrs_userlevel import data, streaming, tf
from tfrs_userlevel.datasets.synthetic import FEATURE_SPEC, SyntheticClicks
from tfrs_userlevel.features import FeatureSpec
from tfrs_userlevel.training import TrainConfig, load_trained, run


def _mutual_information(a: np.ndarray, b: np.ndarray) -> float:
    """Normalised mutual information (arithmetic mean of the entropies) of two labelings."""
    joint = np.zeros((a.max() + 1, b.max() + 1))
    np.add.at(joint, (a, b), 1.0)
    joint /= joint.sum()
    pa, pb = joint.sum(1), joint.sum(0)
    nz = joint > 0
    mi = float((joint[nz] * np.log(joint[nz] / np.outer(pa, pb)[nz])).sum())
    entropy = [-float((p[p > 0] * np.log(p[p > 0])).sum()) for p in (pa, pb)]
    return mi / max(np.mean(entropy), 1e-12)


def test_chunks_are_seeded_and_labels_follow_the_planted_tastes():
    world = SyntheticClicks(users=500, items=300, groups=4, seed=3)
    twin = SyntheticClicks(users=500, items=300, groups=4, seed=3)
    a, b = world.columns(5000), twin.columns(5000)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    assert 0.3 < a["label"].mean() < 0.7
    # Users of one group agree on items more than users of different groups.
    taste = world.taste
    same = world.group[:, None] == world.group[None, :]
    similarity = taste @ taste.T
    assert similarity[same].mean() > similarity[~same].mean() + 0.5


def test_streamed_shards_hold_exactly_the_generated_rows(tmp_path):
    world = SyntheticClicks(users=300, items=200, groups=3, seed=1)
    manifest = streaming.write_tfrecords(world.chunks(3000, chunk_rows=1000), FEATURE_SPEC,
                                         tmp_path, rows_per_shard=1000, block_rows=128)
    assert manifest["rows"] == 3000 and len(manifest["shards"]) == 3
    parts = list(world.chunks(3000, chunk_rows=1000))  # the same draws as written
    columns = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    spec = FeatureSpec.from_config(FEATURE_SPEC)
    from tfrs_userlevel.lookup import FeatureLookup
    lookup = FeatureLookup(spec.get_config(), manifest["vocabularies"])
    batches = list(streaming.streaming_dataset(tmp_path, lookup, 512, seed=0))
    streamed = Counter(_rows(batches))
    expected = data.lookup_columns(lookup, columns)
    assert sum(streamed.values()) == 3000
    # The same multiset of (ids, label) rows, in a shuffled order.
    assert streamed == Counter(_rows([(expected, columns["label"][:, None])]))
    assert streaming.batches_per_pass(manifest, 512) == len(batches)


def _rows(batches):
    """Each row of (looked-up ids, labels) batches as one hashable tuple: every key's
    values, then the label."""
    for ids, labels in batches:
        ids = {k: np.asarray(v) for k, v in ids.items()}
        labels = np.asarray(labels).reshape(-1)
        for i in range(len(labels)):
            yield tuple(tuple(np.ravel(ids[k][i])) for k in sorted(ids)) + (float(labels[i]),)


def test_gprec_recovers_planted_groups_better_than_chance(tmp_path):
    world = SyntheticClicks(users=400, items=400, groups=4, individual=0.3, scale=2.5, seed=7)
    splits = world.splits(120_000)
    config = TrainConfig(dataset="synthetic", user_level="gprec", groups=4, epochs=6,
                         batch_size=1024, seed=0)
    run(config, splits, FEATURE_SPEC, tmp_path, verbose=0)
    model = load_trained(tmp_path)
    users = np.arange(world.users)
    probe = {k: v[:world.users] for k, v in world.columns(world.users, part=3).items()}
    probe["user_id"] = users + 1
    for field in ("age", "gender", "occupation"):
        probe[field] = getattr(world, field)[users]
    ids = model.lookup({k: tf.constant(v) for k, v in probe.items()
                        if k in model.feature_spec.names})
    masks = model.score(ids)["user_level"]["masks"][..., 0].numpy()        # [users, G]
    found = masks.argmax(axis=1)
    score = _mutual_information(found, world.group)
    rng = np.random.default_rng(0)
    chance = max(_mutual_information(found, rng.permutation(world.group)) for _ in range(20))
    assert score > 2 * chance and score > 0.05, (score, chance)
