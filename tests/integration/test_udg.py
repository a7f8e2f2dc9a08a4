"""UDG gates, DIN/DIEN over click histories, and the meta-embedding generator."""


from __future__ import annotations

import numpy as np
import pytest

from tests.helpers import check_model, randomize_weights
from tfrs_userlevel import RankingModel, data, datasets, keras, tf
from tfrs_userlevel.cold_start import warm_up
from tfrs_userlevel.cold_start.meta_training import (
    MetaEmbeddingTrainer,
)
from tfrs_userlevel.features import FeatureSpec
from tfrs_userlevel.training import ConfigError, TrainConfig, build_model
from tfrs_userlevel.udg import UserDependentGating

HISTORY = 10


@pytest.fixture(scope="module")
def ml100k_time(data_dir):
    return datasets.load_splits("movielens_100k", "time", data_dir, history_length=HISTORY)


def _model(splits, backbone="ipnn", user_level="udg", **options) -> RankingModel:
    config = TrainConfig(dataset="movielens_100k", split="time", backbone=backbone,
                         user_level=user_level, history_length=HISTORY, **options)
    spec = FeatureSpec.from_config(datasets.feature_spec("movielens_100k", HISTORY))
    train = splits["train"]
    keras.utils.set_random_seed(0)
    model = build_model(config, spec, spec.build_vocabularies(train),
                        float(np.mean(train["label"])))
    model(model.example_features())
    return model


def _raw(model, columns, rows):
    return {k: tf.constant(v[rows]) for k, v in columns.items() if k in model.feature_spec.names}


@pytest.mark.parametrize("backbone, user_level", [("ipnn", "udg"), ("din", "none"),
                                                  ("dien", "udg"), ("din", "gprec"),
                                                  ("mlp", "gprec+udg")])
def test_fit_save_reload(ml100k_time, tmp_path, backbone, user_level):
    model = _model(ml100k_time, backbone, user_level)
    check_model(model, ml100k_time, tmp_path, steps=15)


def test_gates_lie_in_zero_one_and_change_with_the_user(ml100k_time, tmp_path):
    model = _model(ml100k_time, "ipnn")
    check_model(model, ml100k_time, tmp_path, steps=15)
    train = ml100k_time["train"]
    users = train["user_id"]
    # The same item, context and history for two different users: only the user differs.
    row = 0
    other = int(np.flatnonzero(users != users[row])[0])
    raw = _raw(model, train, [row, row])
    raw["user_id"] = tf.constant([users[row], users[other]])
    gates = model.score(model.lookup(raw))["gates"]
    widths = model.backbone.deep.input_widths(gates[0].shape[1])
    assert [g.shape[1] for g in gates] == widths
    for gate in gates:
        values = gate.numpy()
        assert np.all((values > 0) & (values < 1))
        assert np.abs(values[0] - values[1]).max() > 1e-6


def test_udg_trains_its_gates_and_user_table(ml100k_time):
    model = _model(ml100k_time, "ipnn")
    ids = data.lookup_columns(model.lookup, {k: v[:512] for k, v in
                                             ml100k_time["train"].items()})
    labels = tf.constant(ml100k_time["train"]["label"][:512, None].astype(np.float32))
    batch = {k: tf.constant(v) for k, v in ids.items()}
    with tf.GradientTape() as tape:
        loss = model.compute_loss((batch, labels), training=True)
    gating = model.gating.trainable_weights
    gradients = tape.gradient(loss, gating)
    assert all(g is not None for g in gradients)
    table = tf.convert_to_tensor(gradients[[w.name for w in gating].index(
        model.gating.user_table.embeddings.name)])
    touched = np.flatnonzero(np.abs(table.numpy()).sum(1))
    assert set(touched) == set(model.user_index(batch).numpy().tolist())


def test_the_generator_is_not_trained_with_the_base_model(ml100k_time):
    model = _model(ml100k_time, "ipnn", meta=True)
    generator = {id(w) for w in model.gating.generator.weights}
    assert generator and not generator & {id(w) for w in model.trainable_variables}


def test_udg_rejects_backbones_without_an_mlp_head_and_histories_on_random(ml100k_time):
    with pytest.raises(ValueError, match="takes no UDG gates"):
        _model(ml100k_time, "dcn")
    with pytest.raises(ConfigError, match="need split time"):
        TrainConfig(dataset="movielens_100k", split="random", history_length=5)
    with pytest.raises(ConfigError, match="reads the click history"):
        TrainConfig(dataset="movielens_100k", split="time", backbone="din")


def test_meta_step_changes_only_the_generator(ml100k_time):
    model = _model(ml100k_time, "ipnn", meta=True)
    train = {k: v[:4000] for k, v in ml100k_time["train"].items()}
    ids = data.lookup_columns(model.lookup, train)
    before = {w.name: w.numpy().copy() for w in model.weights}
    generator = {w.name for w in model.gating.generator.weights}
    history = MetaEmbeddingTrainer(model, users_per_step=16, rows_per_user=4).fit(
        ids, train["label"], train["timestamp"], steps=3)
    assert all(np.isfinite(h["meta_loss"]) for h in history)
    for weight in model.weights:
        moved = not np.array_equal(before[weight.name], weight.numpy())
        assert moved == (weight.name in generator), weight.name


def _meta_case(ml100k_time):
    """An untrained UDG(meta) model and the ids of 2 users with 2 rows each: the earlier
    row is each user's D^A, the later one its D^B (so every draw of the trainer is known)."""
    model = _model(ml100k_time, "ipnn", meta=True)
    # Weights at a trained model's scale (fresh embeddings are ~1e-4, under which the
    # gates, and so the UDG embedding, barely move a logit).
    randomize_weights(model, 9, scale=0.3)
    train = ml100k_time["train"]
    users = np.unique(train["user_id"])[:2]
    rows = np.concatenate([np.flatnonzero(train["user_id"] == u)[:2] for u in users])
    columns = {k: v[rows] for k, v in train.items()}
    assert len(set(columns["timestamp"][:2])) == 2 and len(set(columns["timestamp"][2:])) == 2
    ids = data.lookup_columns(model.lookup, columns)
    return model, columns, ids


def _expected_meta_step(model, columns, ids, alpha, gamma, second_order=True):
    """Algorithm 1's step written out: (L_meta, L_A, L_B, gradient of L_meta for each
    generator weight), from the model's score and the generator's weights."""
    lookup, spec = model.lookup, model.feature_spec
    user_column = lookup.single_fields.index("user_id")
    profile = [lookup.single_fields.index(f.name) for f in spec.fields
               if f.role == "user_other"]
    t = columns["timestamp"]  # rows: user 0's two, then user 1's two
    a = np.array([i if t[i] < t[i + 1] else i + 1 for i in (0, 2)])  # the earlier: D^A
    b = np.array([i + 1 if t[i] < t[i + 1] else i for i in (0, 2)])

    def as_new(rows, empty_history):
        out = {k: tf.constant(np.repeat(v[rows], 2, axis=0)) for k, v in ids.items()}
        single = out["ids"].numpy()
        single[:, user_column] = lookup.oov_id("user_id")  # a user outside the vocabulary
        out["ids"] = tf.constant(single)
        if empty_history:
            for key in out:
                if key.startswith("history_item_id"):
                    out[key] = -tf.ones_like(out[key])
        return out

    labels = columns["label"].astype(np.float32)
    labels_a = tf.constant(np.repeat(labels[a], 2)[:, None])
    labels_b = tf.constant(np.repeat(labels[b], 2)[:, None])
    ids_a, ids_b = as_new(a, True), as_new(b, False)
    slots = tf.constant([0, 0, 1, 1])
    generator = model.gating.generator
    profile_ids = tf.constant(ids["ids"][a][:, profile])

    def rows_loss(batch, labels, embedding):
        logits = model.score(batch, training=False, udg_embedding=embedding)["logit"]
        return tf.nn.sigmoid_cross_entropy_with_logits(labels, logits)[:, 0]

    with tf.GradientTape() as outer:
        generated = tf.tanh(tf.reduce_sum(tf.gather(generator.table, profile_ids), axis=1)
                            + generator.bias)
        with tf.GradientTape() as inner:
            inner.watch(generated)
            rows_a = rows_loss(ids_a, labels_a, tf.gather(generated, slots))
            inner_loss = tf.reduce_sum(rows_a) / 2.0  # summed over each user's k = 2 rows
        step = tf.convert_to_tensor(inner.gradient(inner_loss, generated))
        if not second_order:
            step = tf.stop_gradient(step)
        rows_b = rows_loss(ids_b, labels_b, tf.gather(generated - alpha * step, slots))
        loss_a, loss_b = tf.reduce_mean(rows_a), tf.reduce_mean(rows_b)
        loss = gamma * loss_a + (1 - gamma) * loss_b
    gradients = outer.gradient(loss, [generator.table, generator.bias])
    return (float(loss), float(loss_a), float(loss_b),
            [tf.convert_to_tensor(g).numpy() for g in gradients])


def test_meta_step_is_algorithm_1_with_its_second_order_path(ml100k_time):
    """One trainer step equals Algorithm 1 written out (U = 2 users, k = 2 rows): the
    losses, and, with plain SGD of rate 1, an update of exactly −∇L_meta through the inner
    step. The first-order variant (the inner gradient held fixed) and another γ differ."""
    model, columns, ids = _meta_case(ml100k_time)
    generator = model.gating.generator
    randomize_weights(generator, 4, scale=0.5)
    alpha, gamma = 2.0, 0.3
    loss, loss_a, loss_b, gradients = _expected_meta_step(model, columns, ids, alpha, gamma)
    first_order = _expected_meta_step(model, columns, ids, alpha, gamma, second_order=False)
    other_gamma = _expected_meta_step(model, columns, ids, alpha, 0.9)
    assert max(np.abs(f - g).max() for f, g in zip(first_order[3], gradients,
                                                   strict=True)) > 1e-6
    assert abs(other_gamma[0] - loss) > 1e-4

    before = [w.numpy().copy() for w in generator.weights]
    trainer = MetaEmbeddingTrainer(model, alpha=alpha, gamma=gamma, users_per_step=2,
                                   rows_per_user=2, seed=0)
    trainer.optimizer = keras.optimizers.SGD(1.0)
    history = trainer.fit(ids, columns["label"], columns["timestamp"], steps=1)
    step = history[0]
    assert step["meta_loss"] == pytest.approx(loss, rel=1e-5)
    assert (step["loss_a"], step["loss_b"]) == pytest.approx((loss_a, loss_b), rel=1e-5)
    for weight, start, gradient in zip(generator.weights, before, gradients, strict=True):
        np.testing.assert_allclose(start - weight.numpy(), gradient, rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("as_oov", [True, False])
def test_meta_training_reads_unshared_zips_as_a_new_user_would(ml100k_time, as_oov):
    """With unshared profile values as OOV, the generator never learns a row for a zip
    code that one user alone holds (a new user's zip is unseen) and does learn the zip
    OOV row that new users read; trained on the ids as they are, it is the opposite."""
    model = _model(ml100k_time, "ipnn", meta=True)
    train = {k: v[:4000] for k, v in ml100k_time["train"].items()}
    ids = data.lookup_columns(model.lookup, train)
    zip_column = model.lookup.single_fields.index("zip")
    users = ids["ids"][:, model.user_column]
    pairs = np.unique(np.stack([ids["ids"][:, zip_column], users], axis=1), axis=0)
    values, holders = np.unique(pairs[:, 0], return_counts=True)
    unshared, oov = values[holders == 1], model.lookup.offsets["zip"]
    table = model.gating.generator.table
    before = table.numpy().copy()
    MetaEmbeddingTrainer(model, users_per_step=64, rows_per_user=4,
                         unshared_profile_as_oov=as_oov).fit(
        ids, train["label"], train["timestamp"], steps=3)
    moved = np.abs(table.numpy() - before).max(axis=1) > 0
    assert len(unshared) > 10
    assert moved[unshared].any() != as_oov
    assert moved[oov] == as_oov


def test_unseen_users_get_the_generated_embedding(ml100k_time):
    model = _model(ml100k_time, "ipnn", meta=True)
    raw = _raw(model, ml100k_time["test"], [0, 1])
    raw["user_id"] = tf.constant([10**9, 10**9 + 1], tf.int64)  # outside the vocabulary
    ids = model.lookup(raw)
    assert np.all(model.user_index(ids).numpy() == 0)
    gating = model.gating
    inputs = {"user_index": model.user_index(ids),
              "profile": tf.gather(ids["ids"], model.profile_columns, axis=1)}
    np.testing.assert_allclose(gating.user_embedding(inputs).numpy(),
                               gating.generator(inputs["profile"]).numpy())
    assert not np.allclose(gating.user_embedding(inputs).numpy(),
                           gating.user_table.embeddings.numpy()[0])


def test_reference_inits_are_the_active_users_mean_rows(ml100k_time):
    model = _model(ml100k_time, "ipnn")
    table = model.gating.user_table.embeddings
    width = table.shape[1]
    rows = np.arange(4 * width, dtype=np.float32).reshape(4, width)
    warm_up.set_user_rows(model, np.array([1, 2, 3, 4]), rows)
    active = np.array([1, 2, 3])
    overall = warm_up.mean_user_rows(model, active, [()] * 3, [()] * 2)
    np.testing.assert_allclose(overall, np.repeat(rows[:3].mean(0)[None], 2, 0))
    # Keyed: users 1 and 3 share "F", user 2 alone is "M"; a key no active user has gets
    # the overall mean.
    keyed = warm_up.mean_user_rows(model, active, ["F", "M", "F"], ["M", "F", "X"])
    np.testing.assert_allclose(keyed, np.stack([rows[1], (rows[0] + rows[2]) / 2,
                                                rows[:3].mean(0)]))
    warm_up.set_user_rows(model, np.array([5, 6]), keyed[:2])
    np.testing.assert_allclose(table.numpy()[[5, 6]], keyed[:2])
    np.testing.assert_allclose(table.numpy()[4], rows[3])  # other rows untouched
    with pytest.raises(ValueError, match="shape"):
        warm_up.set_user_rows(model, np.array([5]), keyed)


def test_gated_layers_gate_only_the_named_layers(ml100k_time, tmp_path):
    layer = UserDependentGating(6, udg_dim=4, hidden_units=(8,), gated_layers=[1])
    inputs = {"item": tf.random.stateless_normal([3, 2, 4], seed=[5, 6]),
              "user_index": tf.constant([1, 2, 0])}
    with tf.GradientTape() as tape:
        gates = layer(inputs, widths=[5, 3, 2])
        loss = tf.add_n([tf.reduce_sum(tf.square(g)) for g in gates if g is not None])
    # One gating network (layer 1's); layers 0 and 2 get None and stay ungated.
    assert len(layer.networks) == 1 and gates[0] is None and gates[2] is None
    assert gates[1].shape.as_list() == [3, 3]
    assert np.all((gates[1].numpy() > 0) & (gates[1].numpy() < 1))
    assert np.abs(gates[1].numpy()[0] - gates[1].numpy()[1]).max() > 1e-6
    assert all(float(tf.norm(g)) > 0 for g in tape.gradient(loss, layer.trainable_weights))
    assert UserDependentGating.from_config(layer.get_config()).gated_layers == (1,)
    with pytest.raises(ValueError, match="lacks: it has 2 dense layers"):
        UserDependentGating(6, gated_layers=[2])(inputs, widths=[5, 3])
    with pytest.raises(ValueError, match="gated_layers"):
        UserDependentGating(6, gated_layers=[])
    with pytest.raises(ConfigError, match="udg_layers must name"):
        TrainConfig(user_level="udg", udg_layers=(3,))  # hidden_units 64-32-16: 0 to 2
    with pytest.raises(ConfigError, match="udg_layers"):
        TrainConfig(udg_layers=(0,))  # needs user_level udg
    # In a model: DeepFM with only its first layer gated fits, saves and reloads.
    model = _model(ml100k_time, "deepfm", udg_layers=(0,))
    check_model(model, ml100k_time, tmp_path, steps=10)
    gates = model.score(model.lookup(_raw(model, ml100k_time["train"], [0, 1])))["gates"]
    assert len(model.gating.networks) == 1
    assert np.all((gates[0].numpy() > 0) & (gates[0].numpy() < 1))
    assert gates[1] is None and gates[2] is None


def test_warm_up_moves_only_the_new_users_rows_of_both_tables(ml100k_time):
    model = _model(ml100k_time, "ipnn")
    train = ml100k_time["train"]
    new_users = np.unique(train["user_id"])[:3]
    rows = np.concatenate([np.flatnonzero(train["user_id"] == u)[:32] for u in new_users])
    ids = data.lookup_columns(model.lookup, {k: v[rows] for k, v in train.items()})
    index = np.unique(model.user_index({k: tf.constant(v) for k, v in ids.items()}).numpy())
    assert len(index) == 3 and index.min() > 0
    before = {w.name: w.numpy().copy() for w in model.weights}
    loss = warm_up.WarmUp(model, index, learning_rate=0.05, batch_size=32).fit(
        ids, train["label"][rows])
    assert np.isfinite(loss)
    base_rows = model.user_offset + index
    for weight in model.weights:
        moved = np.abs(weight.numpy() - before[weight.name])
        moved = moved.reshape(len(moved), -1).max(axis=1) if moved.ndim else moved
        if weight is model.embedding.table:
            assert set(np.flatnonzero(moved)) == set(base_rows), weight.name
        elif weight is model.gating.user_table.embeddings:
            assert set(np.flatnonzero(moved)) == set(index), weight.name
        else:
            assert not np.any(moved), weight.name


@pytest.mark.parametrize("meta", [True, False])
def test_initialise_new_users_writes_only_their_rows(ml100k_time, meta):
    model = _model(ml100k_time, "ipnn", meta=meta)
    table = model.gating.user_table.embeddings
    before = table.numpy().copy()
    index = np.array([3, 7, 11])
    profile = np.array([[2, 40, 60], [5, 41, 61], [2, 40, 61]], np.int32)
    warm_up.initialise_new_users(model, index, profile, meta=meta, seed=5)
    after = table.numpy()
    others = np.setdiff1d(np.arange(len(after)), index)
    np.testing.assert_array_equal(after[others], before[others])
    if meta:
        generator = model.gating.generator
        expected = np.tanh(generator.table.numpy()[profile].sum(1) + generator.bias.numpy())
        np.testing.assert_allclose(after[index], expected, rtol=1e-5, atol=1e-7)
    else:  # N(0, 0.01²) from the seed: the same draw again, and the table's own scale
        expected = np.random.default_rng(5).normal(0.0, 0.01, (3, table.shape[1]))
        np.testing.assert_allclose(after[index], expected, rtol=1e-5, atol=1e-8)
