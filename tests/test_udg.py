"""UDG gates, DIN/DIEN over click histories, and the meta-embedding generator."""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers import check_model, randomize_weights, relu, sigmoid
from tfrs_userlevel import RankingModel, data, datasets, keras, tf
from tfrs_userlevel.backbones import AUGRUCell, DeepNetwork, TargetAttention
from tfrs_userlevel.cold_start import warm_up
from tfrs_userlevel.cold_start.meta_training import (
    MetaEmbeddingTrainer,
    split_halves,
    unshared_as_oov,
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


def test_gates_multiply_each_dense_layers_input_as_computed_by_hand():
    """eq. 7: h(l) = ReLU(W(l)(g(l-1) ⊙ h(l-1)) + b(l)), in numpy from the layer's own
    weights, with non-zero biases and a different random gate at every layer."""
    rng = np.random.default_rng(0)
    deep = DeepNetwork((8, 4, 3), dropout=0.0)
    x = rng.normal(size=(5, 6)).astype(np.float32)
    deep(tf.constant(x))
    randomize_weights(deep, 0)
    weights = [w.astype(np.float64) for w in deep.get_weights()]  # kernel, bias per layer
    widths = deep.input_widths(6)
    assert widths == [6, 8, 4]
    gates = [rng.uniform(0.1, 2.0, size=(5, w)).astype(np.float32) for w in widths]

    def by_hand(gates):
        h = x.astype(np.float64)
        for layer in range(3):
            if gates[layer] is not None:
                h = h * gates[layer]
            h = relu(h @ weights[2 * layer] + weights[2 * layer + 1])
        return h

    expected = by_hand(gates)
    np.testing.assert_allclose(deep(x, gates=gates).numpy(), expected, rtol=1e-5, atol=1e-5)
    # Every layer's gate matters here: leaving out the later ones changes the output.
    assert np.abs(by_hand([gates[0], None, None]) - expected).max() > 1e-3
    # None leaves exactly that layer's input as it is.
    partial = [gates[0], None, gates[2]]
    np.testing.assert_allclose(deep(x, gates=partial).numpy(), by_hand(partial),
                               rtol=1e-5, atol=1e-5)
    # The gates may come from a callable that is given the input widths.
    np.testing.assert_allclose(deep(x, gates=lambda w: [tf.constant(g) for g in gates])
                               .numpy(), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("meta", [False, True])
def test_udg_gates_are_computed_as_eq_6_by_hand(meta):
    """g(l) = gate_scale · σ(GN(l)([e_item, e_behv, e_UDG])) in numpy from the layer's
    weights; with the meta generator, OOV users (index 0) take tanh(Σ W[profile] + b)."""
    rng = np.random.default_rng(1)
    batch, users, vocabulary = 6, 4, 9
    gating = UserDependentGating(num_users=users, udg_dim=3, hidden_units=(5,),
                                 gate_scale=1.5, meta=meta, vocabulary_size=vocabulary)
    inputs = {"item": tf.constant(rng.normal(size=(batch, 2, 3)), tf.float32),
              "behavior": tf.constant(rng.normal(size=(batch, 3)), tf.float32),
              "user_index": tf.constant([0, 1, 2, 3, 4, 0], tf.int32),
              "profile": tf.constant(rng.integers(0, vocabulary, (batch, 2)), tf.int32)}
    widths = [7, 4]
    gating(inputs, widths=widths)
    randomize_weights(gating, 1)
    table = gating.user_table.embeddings.numpy().astype(np.float64)
    user = table[inputs["user_index"].numpy()]
    if meta:
        generator = gating.generator
        generated = np.tanh(generator.table.numpy()[inputs["profile"].numpy()].sum(1)
                            + generator.bias.numpy())
        oov = inputs["user_index"].numpy() == 0
        user[oov] = generated[oov]
    x = np.concatenate([inputs["item"].numpy().reshape(batch, 6), inputs["behavior"].numpy(),
                        user], axis=1)
    gates = gating(inputs, widths=widths)
    assert [g.shape for g in gates] == [(batch, 7), (batch, 4)]
    for network, gate in zip(gating.networks, gates, strict=True):
        (k1, b1), (k2, b2) = [(d.kernel.numpy(), d.bias.numpy()) for d in network.layers]
        expected = 1.5 * sigmoid(relu(x @ k1 + b1) @ k2 + b2)
        np.testing.assert_allclose(gate.numpy(), expected, rtol=1e-5, atol=1e-6)


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


def test_din_attention_ignores_padding_and_augru_holds_state_without_attention():
    attention = TargetAttention((8,))
    rng = np.random.default_rng(7)
    sequence = tf.constant(rng.normal(size=(3, 5, 4)), tf.float32)
    mask = tf.constant([[True, True, False, False, False]] * 3)
    query = tf.constant(rng.normal(size=(3, 4)), tf.float32)
    interest, weights = attention(sequence, mask, query)
    assert np.all(weights.numpy()[:, 2:] == 0)
    changed = tf.concat([sequence[:, :2], 100.0 * tf.ones([3, 3, 4])], axis=1)
    np.testing.assert_allclose(attention(changed, mask, query)[0].numpy(), interest.numpy(),
                               atol=1e-5)
    cell = AUGRUCell(4)
    h = tf.constant(rng.normal(size=(3, 4)), tf.float32)
    x = tf.constant(rng.normal(size=(3, 6)), tf.float32)
    held, _ = cell(tf.concat([x, tf.zeros([3, 1])], axis=1), [h])
    np.testing.assert_allclose(held.numpy(), h.numpy(), atol=1e-6)  # a_t = 0: no update
    moved, _ = cell(tf.concat([x, tf.ones([3, 1])], axis=1), [h])
    assert np.abs(moved.numpy() - h.numpy()).max() > 1e-3


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


def test_unshared_profile_values_become_oov():
    # Columns: user, zip, gender. Zip 11 is held by users 1 and 2 (shared), zip 12 only by
    # user 3 (on two rows); gender 5 by everyone.
    single = np.array([[1, 11, 5], [2, 11, 5], [3, 12, 5], [3, 12, 5]])
    out = unshared_as_oov(single, single[:, 0], columns=[1, 2], oov=[10, 4])
    np.testing.assert_array_equal(out, [[1, 11, 5], [2, 11, 5], [3, 10, 5], [3, 10, 5]])
    assert single[2, 1] == 12  # the input is not changed


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


def test_split_halves_and_new_user_batches():
    users = np.array([1, 1, 1, 2, 2, 2, 2])
    time = np.array([3, 1, 2, 5, 6, 7, 8])
    np.testing.assert_array_equal(split_halves(users, time),
                                  [True, False, False, False, False, True, True])
    user = np.repeat([7, 8], 8)
    stamp = np.tile(np.arange(8)[::-1], 2)
    batches = warm_up.new_user_batches(user, stamp, np.arange(16), [7], k=2)
    assert list(batches[:8]) == ["held_out", "held_out", "c", "c", "b", "b", "a", "a"]
    assert all(b == "" for b in batches[8:])
    after_a = warm_up.phase_cutoffs(user, stamp, batches, "a")
    held = batches == "held_out"
    assert np.all(after_a[held] == 2)  # clicks before the first batch-b row only
    assert np.all(warm_up.phase_cutoffs(user, stamp, batches, None) == -1)
    with pytest.raises(ValueError, match="more than 9 rows"):
        warm_up.new_user_batches(user, stamp, np.arange(16), [7], k=3)


def test_udg_layer_config_round_trip():
    layer = UserDependentGating(10, udg_dim=4, hidden_units=(8, 4), gate_scale=2.0, meta=True,
                                vocabulary_size=50)
    clone = UserDependentGating.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    with pytest.raises(ValueError, match="vocabulary_size"):
        UserDependentGating(10, meta=True)


def test_udg_l2_penalises_the_user_table_in_the_models_loss():
    layer = UserDependentGating(6, udg_dim=4, hidden_units=(8,), l2=0.5)
    inputs = {"item": tf.ones([3, 2, 4]), "user_index": tf.constant([1, 2, 0])}
    layer(inputs, widths=[5])
    table = layer.user_table.embeddings
    assert len(layer.losses) == 1
    np.testing.assert_allclose(float(layer.losses[0]),
                               0.5 * float(tf.reduce_sum(tf.square(table))), rtol=1e-5)
    with tf.GradientTape() as tape:
        penalty = tf.add_n(layer.losses)
    # The penalty's gradient is l2·2·E on every row, users in the batch or not.
    np.testing.assert_allclose(tape.gradient(penalty, table), 1.0 * table.numpy(), rtol=1e-5)
    plain = UserDependentGating(6, udg_dim=4, hidden_units=(8,))
    plain(inputs, widths=[5])
    assert plain.losses == []
    with pytest.raises(ValueError, match="l2"):
        UserDependentGating(6, l2=-1.0)
    with pytest.raises(ConfigError, match="udg_l2"):
        TrainConfig(udg_l2=1e-3)  # needs user_level udg


@pytest.mark.parametrize("stop", [False, True])
def test_stop_item_gradient_keeps_the_gates_loss_off_the_item_embeddings(stop):
    layer = UserDependentGating(6, udg_dim=4, hidden_units=(8,), stop_item_gradient=stop)
    item = tf.random.stateless_normal([3, 2, 4], seed=[1, 2])
    behavior = tf.random.stateless_normal([3, 4], seed=[3, 4])
    inputs = {"item": item, "behavior": behavior, "user_index": tf.constant([1, 2, 0])}
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([item, behavior])
        gates = layer(inputs, widths=[5, 3])
        loss = tf.add_n([tf.reduce_sum(tf.square(g)) for g in gates])
    for given in (item, behavior):
        norm = float(tf.norm(tape.gradient(loss, given,
                                           unconnected_gradients=tf.UnconnectedGradients.ZERO)))
        assert (norm == 0.0) if stop else (norm > 0.0)
    # The UDG table and every gating network train either way.
    for weight in [layer.user_table.embeddings] + [n.trainable_weights[0] for n in layer.networks]:
        assert float(tf.norm(tape.gradient(loss, weight))) > 0.0
    assert UserDependentGating.from_config(layer.get_config()).stop_item_gradient is stop
    with pytest.raises(ConfigError, match="udg_stop_item_gradient"):
        TrainConfig(udg_stop_item_gradient=True)  # needs user_level udg


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


def _gating_inputs(users=(1, 2, 3)):
    return {"user_index": tf.constant(users),
            "item": tf.random.stateless_normal([len(users), 2, 4], seed=(0, 1))}


@pytest.mark.parametrize("build, message", [
    (lambda: UserDependentGating(10, meta=True),
     r"UserDependentGating: meta=True needs the vocabulary_size of the profile ids"),
    (lambda: UserDependentGating(10, gate_scale=0),
     r"UserDependentGating: gate_scale must be > 0, got 0"),
    (lambda: UserDependentGating(10, l2=-1.0), r"UserDependentGating: l2 must be >= 0, got -1\.0"),
    (lambda: UserDependentGating(10, gated_layers=[]),
     r"UserDependentGating: gated_layers must name at least one layer index >= 0, got \[\]"),
    (lambda: UserDependentGating(10, gated_layers=[-1]),
     r"UserDependentGating: gated_layers must name at least one layer index >= 0, got \[-1\]"),
    (lambda: UserDependentGating(10, hidden_units=(4,), gated_layers=[0, 5])(
        _gating_inputs(), widths=[8, 4]),
     r"UserDependentGating: gated_layers \[0, 5\] name a layer the MLP lacks: it has 2 dense "
     r"layers \(indices 0 to 1\)"),
    (lambda: UserDependentGating.from_preset("fast", num_users=10),
     r"UserDependentGating: unknown preset 'fast'; valid presets are \['paper', 'recommended'\]"),
])
def test_each_udg_refusal_names_the_layer_and_the_reason(build, message):
    with pytest.raises(ValueError, match=rf"(?m)^{message}$"):
        build()


def test_gating_built_for_one_mlp_refuses_another():
    gating = UserDependentGating(10, hidden_units=(4,))
    gating(_gating_inputs(), widths=[8, 4])
    with pytest.raises(ValueError, match=r"(?m)^UserDependentGating: built for 2 layers, "
                                         r"called for 3$"):
        gating(_gating_inputs(), widths=[8, 4, 2])


def test_udg_presets_and_defaults_are_the_documented_ones():
    paper = UserDependentGating.from_preset("paper", num_users=10)
    default = UserDependentGating(10)
    assert paper.get_config() | {"name": ""} == default.get_config() | {"name": ""}
    assert (default.udg_dim, default.hidden_units, default.gate_scale, default.l2) == (
        16, (64, 32), 1.0, 0.0)
    assert (default.meta, default.stop_item_gradient, default.gated_layers) == (
        False, False, None)
    recommended = UserDependentGating.from_preset("recommended", num_users=10, udg_dim=4)
    assert (recommended.l2, recommended.gate_scale, recommended.udg_dim) == (3e-4, 2.0, 4)
    # The recommended gates start near 1: 2 · sigmoid(≈0).
    gates = UserDependentGating.from_preset("recommended", num_users=10, hidden_units=(4,))(
        _gating_inputs(), widths=[8])
    assert 0.5 < float(tf.reduce_mean(gates[0])) < 1.5


def test_udg_layers_are_registered_under_the_package_name():
    from tfrs_userlevel.udg import MetaEmbeddingGenerator

    for cls in (UserDependentGating, MetaEmbeddingGenerator):
        assert keras.utils.get_registered_name(cls) == f"tfrs_userlevel>{cls.__name__}"


def test_meta_generator_weights_keep_their_checkpoint_names():
    from tfrs_userlevel.udg import MetaEmbeddingGenerator

    generator = MetaEmbeddingGenerator(vocabulary_size=12, output_dim=4)
    out = generator(tf.constant([[1, 5], [2, 7]]))
    assert [w.name.split("/")[-1].split(":")[0] for w in generator.weights] == ["table", "bias"]
    assert out.shape == (2, 4) and generator.get_config()["vocabulary_size"] == 12


def test_udg_user_table_starts_small_and_meta_accepts_any_vocabulary():
    gating = UserDependentGating(500, udg_dim=8, hidden_units=(4,))
    gating(_gating_inputs(), widths=[8])
    table = gating.user_table.embeddings.numpy()
    assert table.shape == (501, 8)
    assert 0.008 < table.std() < 0.012  # N(0, 0.01²), as the paper's embeddings
    assert UserDependentGating(10, meta=True, vocabulary_size=1).generator is not None


def test_meta_generator_sits_under_its_checkpoint_name():
    gating = UserDependentGating(10, udg_dim=4, hidden_units=(4,), meta=True, vocabulary_size=9)
    gating({**_gating_inputs(), "profile": tf.constant([[1, 2], [3, 4], [5, 6]])}, widths=[8])
    assert {w.name.split("/")[1] for w in gating.generator.weights} == {"meta_generator"}
