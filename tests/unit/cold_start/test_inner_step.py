"""Algorithm 1's inner step, and the matched warm-up that applies the same code: a user is
read as new (base user-id row at OOV), and its UDG embedding takes one plain gradient step
of size α on its mean row loss. Trained on a small SYNTHETIC planted world."""

import numpy as np
import pytest

from tfrs_userlevel import data as data_lib
from tfrs_userlevel.backend import tf
from tfrs_userlevel.cold_start import inner_step as inner_step_module
from tfrs_userlevel.cold_start import meta_training, warm_up
from tfrs_userlevel.cold_start.meta_training import MetaEmbeddingTrainer
from tfrs_userlevel.cold_start.warm_up import InnerStepWarmUp
from tfrs_userlevel.datasets.planted import AttributeWeightingWorld
from tfrs_userlevel.training import TrainConfig, load_trained, run

NEW = np.array([5, 11, 17, 23])  # 0-based users kept out of training


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A small MLP+UDG model with the meta generator, and the new users' rows."""
    world = AttributeWeightingWorld(users=40, items=30, segments=3, individual=0.3,
                                    signed=False, seed=5)
    active = np.setdiff1d(np.arange(world.users), NEW)
    splits = {"train": world.columns(12000, 0, active), "validation": world.columns(800, 1, active)}
    splits["test"] = splits["validation"]
    model_dir = tmp_path_factory.mktemp("inner_step")
    run(TrainConfig(dataset="planted_cold_start", user_level="udg", meta=True, meta_steps=0,
                    embedding_dim=4, hidden_units=(16, 8), udg_units=(8,), epochs=6,
                    batch_size=256, seed=3),
        splits, world.feature_spec, model_dir, verbose=0)
    rows = world.rows_for(np.repeat(NEW, 6), part=5)
    return model_dir, splits, rows


def _ids(model, rows):
    return data_lib.lookup_columns(model.lookup, rows)


def _new_users(trained, seed):
    """(model, new users' ids, random initial embeddings [U, 4], the new rows' ids)."""
    model_dir, _, rows = trained
    model = load_trained(model_dir)
    initial = np.random.default_rng(seed).normal(0, 0.3, (len(NEW), 4)).astype(np.float32)
    return model, NEW + 1, initial, _ids(model, rows)


def test_the_warm_up_and_algorithm_1_run_the_same_inner_step():
    assert meta_training.inner_step is inner_step_module.inner_step
    assert warm_up.inner_step is inner_step_module.inner_step
    assert meta_training.as_new_users is warm_up.as_new_users


def test_one_warm_up_step_is_each_users_own_gradient_step_at_alpha(trained):
    model_dir, _, rows = trained
    model, users, initial, ids = _new_users(trained, 0)
    # Only the first three users have rows in this batch; the fourth must not move.
    keep = rows["user_id"] != users[-1]
    batch = {k: v[keep] for k, v in ids.items()}
    warm = InnerStepWarmUp(model, users, initial, alpha=0.5)
    warm.fit(batch, rows["label"][keep], rows["user_id"][keep])
    for slot, user in enumerate(users[:-1]):
        mine = rows["user_id"][keep] == user
        own = inner_step_module.as_new_users(
            model, {k: tf.constant(v[mine]) for k, v in batch.items()}, False)
        embedding = tf.Variable(initial[slot][None, :])
        with tf.GradientTape() as tape:
            logits = model.score(own, udg_embedding=tf.repeat(embedding, int(mine.sum()), 0))
            loss = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(
                rows["label"][keep][mine, None].astype(np.float32), logits["logit"]))
        expected = initial[slot] - 0.5 * tape.gradient(loss, embedding).numpy()[0]
        np.testing.assert_allclose(warm.embeddings.numpy()[slot], expected, rtol=1e-4,
                                   atol=1e-6)
        assert not np.allclose(expected, initial[slot])
    np.testing.assert_array_equal(warm.embeddings.numpy()[-1], initial[-1])
    # The model itself is untouched: the embeddings live outside it.
    np.testing.assert_array_equal(model.gating.user_table.embeddings.numpy(),
                                  load_trained(model_dir).gating.user_table.embeddings.numpy())


def test_successive_warm_up_steps_each_start_from_the_last_ones_embeddings(trained):
    # Phases a, b, c: each step starts where the previous one ended, whether a batch has
    # a new number of rows (the traced step is relaxed) or the same number (it is reused).
    rows = trained[2]
    model, users, initial, ids = _new_users(trained, 2)
    pick = np.random.default_rng(0)
    warm = InnerStepWarmUp(model, users, initial, alpha=0.5)
    expected = tf.constant(initial)
    for size in (8, 12, 20, 20):
        part = np.sort(pick.choice(len(rows["label"]), size, replace=False))
        labels = rows["label"][part].astype(np.float32)[:, None]
        batch = {k: tf.constant(v[part]) for k, v in ids.items()}
        slots = np.searchsorted(users, rows["user_id"][part]).astype(np.int32)
        expected, _ = inner_step_module.inner_step(
            model, inner_step_module.as_new_users(model, batch, False), tf.constant(labels),
            expected, tf.constant(slots), 0.5)
        warm.fit({k: v[part] for k, v in ids.items()}, rows["label"][part],
                 rows["user_id"][part])
        np.testing.assert_allclose(warm.embeddings.numpy(), expected.numpy(), rtol=1e-4,
                                   atol=1e-6)


def test_the_warm_up_scores_users_as_new_with_their_own_embeddings(trained):
    rows = trained[2]
    model, users, initial, ids = _new_users(trained, 1)
    warm = InnerStepWarmUp(model, users, initial, alpha=0.1)
    as_new = inner_step_module.as_new_users(model, {k: tf.constant(v) for k, v in ids.items()},
                                            False)
    assert np.all(as_new["ids"].numpy()[:, model.user_column] == model.user_offset)
    slots = np.searchsorted(users, rows["user_id"])
    expected = model.score(as_new, udg_embedding=tf.constant(initial[slots]))["logit"]
    np.testing.assert_allclose(warm.logits(ids, rows["user_id"]), expected.numpy()[:, 0],
                               rtol=1e-5, atol=1e-6)
    metrics = warm.evaluate(ids, rows["label"], rows["user_id"])
    assert set(metrics) == {"auc", "logloss", "gauc", "mean_probability", "click_rate"}
    assert metrics["click_rate"] == pytest.approx(rows["label"].mean())


def test_the_meta_step_moves_only_the_generator_through_the_shared_step(trained):
    model_dir, splits, _ = trained
    model = load_trained(model_dir)
    before = [w.numpy().copy() for w in model.gating.generator.weights]
    table = model.gating.user_table.embeddings.numpy().copy()
    ids = _ids(model, splits["train"])
    losses = MetaEmbeddingTrainer(model, alpha=1.0, users_per_step=8, rows_per_user=4,
                                  seed=0).fit(ids, splits["train"]["label"],
                                              np.arange(len(splits["train"]["label"])), 3)
    assert len(losses) == 3 and all(np.isfinite(h["meta_loss"]) for h in losses)
    assert any(not np.array_equal(a, w.numpy())
               for a, w in zip(before, model.gating.generator.weights, strict=True))
    np.testing.assert_array_equal(model.gating.user_table.embeddings.numpy(), table)


@pytest.mark.parametrize("users, initial, message", [
    ([3, 2], np.zeros((2, 4)), r"InnerStepWarmUp: users must be sorted and distinct"),
    ([2, 3], np.zeros((3, 4)), r"InnerStepWarmUp: initial embeddings of shape \(3, 4\) for 2 "
                               r"users of a 4-wide UDG table"),
])
def test_the_warm_up_refuses_what_it_cannot_warm(trained, users, initial, message):
    model = load_trained(trained[0])
    with pytest.raises(ValueError, match=rf"^{message}$"):
        InnerStepWarmUp(model, np.array(users), initial, alpha=0.1)
    warm = InnerStepWarmUp(model, np.array([2, 3]), np.zeros((2, 4)), alpha=0.1)
    with pytest.raises(ValueError, match=r"^InnerStepWarmUp: rows of users outside the "
                                         r"warmed-up users, e.g. 7$"):
        warm.slots(np.array([2, 7]))


def test_generated_embeddings_take_the_scale_of_the_trained_table(trained):
    """Algorithm 1 moves the generator's output from its initial scale (rows near zero)
    to the scale of the trained UDG rows the base model reads, not past it."""
    model_dir, splits, rows = trained
    model = load_trained(model_dir)
    ids = _ids(model, splits["train"])
    active = np.unique(ids["ids"][:, model.user_column] - model.user_offset)
    trained_norm = np.linalg.norm(model.gating.user_table.embeddings.numpy()[active],
                                  axis=1).mean()
    profile = _ids(model, rows)["ids"][:, model.profile_columns]

    def generated_norm():
        return np.linalg.norm(model.gating.generator(profile).numpy(), axis=1).mean()

    before = generated_norm()
    # The library's defaults: α 0.1, β 1e-3, 300 steps (train.py --meta).
    MetaEmbeddingTrainer(model, alpha=0.1, beta=1e-3, users_per_step=16, rows_per_user=8,
                         seed=0).fit(ids, splits["train"]["label"],
                                     np.arange(len(splits["train"]["label"])), 300)
    after = generated_norm()
    print(f"trained {trained_norm:.3f}, generated before {before:.3f}, after {after:.3f}")
    assert before < 0.25 * trained_norm
    assert 0.25 * trained_norm < after < 4 * trained_norm
