"""UDG gates, DIN/DIEN over click histories, and the meta-embedding generator."""


from __future__ import annotations

import numpy as np
import pytest

from tests.helpers import randomize_weights, relu, sigmoid
from tfrs_userlevel import keras, tf
from tfrs_userlevel.backbones import AUGRUCell, DeepNetwork, TargetAttention
from tfrs_userlevel.cold_start import warm_up
from tfrs_userlevel.cold_start.meta_training import (
    split_halves,
    unshared_as_oov,
)
from tfrs_userlevel.training import ConfigError, TrainConfig
from tfrs_userlevel.udg import UserDependentGating


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


@pytest.mark.parametrize("meta, activation", [(False, "sigmoid"), (True, "sigmoid"),
                                              (False, "tanh")])
def test_udg_gates_are_computed_as_eq_6_by_hand(meta, activation):
    """g(l) = gate_scale · σ(GN(l)([e_item, e_behv, e_UDG])) in numpy from the layer's
    weights (tanh in place of σ for signed gates); with the meta generator, OOV users
    (index 0) take tanh(Σ W[profile] + b)."""
    rng = np.random.default_rng(1)
    batch, users, vocabulary = 6, 4, 9
    gating = UserDependentGating(num_users=users, udg_dim=3, hidden_units=(5,),
                                 gate_scale=1.5, meta=meta, vocabulary_size=vocabulary,
                                 gate_activation=activation)
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
        squash = sigmoid if activation == "sigmoid" else np.tanh
        expected = 1.5 * squash(relu(x @ k1 + b1) @ k2 + b2)
        # float32 against float64: tanh passes the pre-activation's rounding on with slope
        # up to gate_scale, so the tolerance is 1e-5, far below a wrong formula's error.
        np.testing.assert_allclose(gate.numpy(), expected, rtol=1e-5, atol=1e-5)
    # Only signed gates can flip a hidden unit's sign.
    assert (min(float(tf.reduce_min(g)) for g in gates) < 0) == (activation == "tanh")


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


def test_unshared_profile_values_become_oov():
    # Columns: user, zip, gender. Zip 11 is held by users 1 and 2 (shared), zip 12 only by
    # user 3 (on two rows); gender 5 by everyone.
    single = np.array([[1, 11, 5], [2, 11, 5], [3, 12, 5], [3, 12, 5]])
    out = unshared_as_oov(single, single[:, 0], columns=[1, 2], oov=[10, 4])
    np.testing.assert_array_equal(out, [[1, 11, 5], [2, 11, 5], [3, 10, 5], [3, 10, 5]])
    assert single[2, 1] == 12  # the input is not changed


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


def _gating_inputs(users=(1, 2, 3)):
    return {"user_index": tf.constant(users),
            "item": tf.random.stateless_normal([len(users), 2, 4], seed=(0, 1))}


@pytest.mark.parametrize("build, message", [
    (lambda: UserDependentGating(10, meta=True),
     r"UserDependentGating: meta=True needs the vocabulary_size of the profile ids"),
    (lambda: UserDependentGating(10, gate_scale=0),
     r"UserDependentGating: gate_scale must be > 0, got 0"),
    (lambda: UserDependentGating(10, gate_activation="relu"),
     r"UserDependentGating: gate_activation must be one of \['sigmoid', 'tanh'\], got 'relu'"),
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
    assert (default.meta, default.stop_item_gradient, default.gated_layers,
            default.gate_activation) == (False, False, None, "sigmoid")
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
