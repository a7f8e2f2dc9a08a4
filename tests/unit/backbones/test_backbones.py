"""Backbone zoo: each block's math against a direct computation, and every backbone (with
and without GPRec) through the shared fit/save/reload check."""


import itertools

import numpy as np
import pytest

from tfrs_userlevel import backbones, keras, tf
from tfrs_userlevel.backbones.deepfm import fm_pairwise
from tfrs_userlevel.backbones.pnn import pairwise_inner, superposed_outer
from tfrs_userlevel.training import ConfigError, TrainConfig

RNG = np.random.default_rng(0)


def _embeddings(batch=4, fields=5, dim=3):
    return tf.constant(RNG.normal(size=(batch, fields, dim)), tf.float32)


def test_fm_pairwise_is_the_sum_of_inner_products_over_pairs():
    e = _embeddings()
    brute = sum(np.sum(e[:, i] * e[:, j], axis=1)
                for i, j in itertools.combinations(range(5), 2))
    np.testing.assert_allclose(fm_pairwise(e).numpy()[:, 0], brute, rtol=1e-5)


def test_pnn_products():
    e = _embeddings()
    inner = pairwise_inner(e).numpy()
    assert inner.shape == (4, 10)
    np.testing.assert_allclose(inner[:, 0], np.sum(e[:, 0] * e[:, 1], axis=1), rtol=1e-5)
    np.testing.assert_allclose(inner[:, -1], np.sum(e[:, 3] * e[:, 4], axis=1), rtol=1e-5)
    outer = superposed_outer(e).numpy()
    total = e.numpy().sum(axis=1)
    assert outer.shape == (4, 6)  # d(d+1)/2, d = 3
    np.testing.assert_allclose(outer[:, 1], total[:, 0] * total[:, 1], rtol=1e-5)


def test_cross_network_v1_formula():
    x0 = tf.constant(RNG.normal(size=(4, 6)), tf.float32)
    cross = backbones.CrossNetwork(layers=2)
    out = cross(x0).numpy()
    x = x0.numpy()
    for w, b in zip(cross.weights_, cross.biases, strict=True):
        x = x0.numpy() * (x @ w.numpy()) + b.numpy() + x
    np.testing.assert_allclose(out, x, rtol=1e-5, atol=1e-6)


def test_gated_cross_network_formula_and_gate():
    x0 = tf.constant(RNG.normal(size=(4, 6)), tf.float32)
    cross = backbones.GatedCrossNetwork(layers=2)
    out = cross(x0).numpy()
    x = x0.numpy()
    for wc, bc, wg in cross.params:
        gate = 1 / (1 + np.exp(-(x @ wg.numpy())))
        x = x0.numpy() * (x @ wc.numpy() + bc.numpy()) * gate + x
    np.testing.assert_allclose(out, x, rtol=1e-4, atol=1e-5)
    # A gate held at 0 switches the crossing off: the layer becomes the identity.
    for _, _, wg in cross.params:
        wg.assign(tf.fill(wg.shape, -1e4) * tf.sign(tf.ones_like(wg)))
    np.testing.assert_allclose(cross(tf.abs(x0)).numpy(), tf.abs(x0).numpy(), atol=1e-6)


def test_matrix_cross_network_uses_the_dcnv2_formula():
    x0 = tf.constant(RNG.normal(size=(4, 6)), tf.float32)
    cross = backbones.MatrixCrossNetwork(layers=1)
    out = cross(x0).numpy()
    dense = cross.crosses[0]._dense
    expected = x0.numpy() * (x0.numpy() @ dense.kernel.numpy() + dense.bias.numpy()) + x0.numpy()
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)


def test_finalmlp_selection_starts_open_and_fusion_is_bilinear():
    e = _embeddings(fields=4, dim=4)
    backbone = backbones.FinalMLPBackbone(hidden_units=(8, 4), heads=2, dropout=0.0)
    out = backbone(e)
    x1, x2 = backbone.selection(e)
    flat = tf.reshape(e, [4, -1]).numpy()
    # Zero learnable contexts: every gate is 2·σ(0) = 1, both streams see flatten(E).
    np.testing.assert_allclose(x1.numpy(), flat, rtol=1e-6)
    np.testing.assert_allclose(x2.numpy(), flat, rtol=1e-6)
    o1, o2 = out["hidden"][:, :4].numpy(), out["hidden"][:, 4:].numpy()
    w = backbone.bilinear.numpy()
    bilinear = sum(np.einsum("bi,ij,bj->b", o1[:, 2 * h:2 * h + 2], w[h], o2[:, 2 * h:2 * h + 2])
                   for h in range(2))
    linear = backbone.head(out["hidden"]).numpy()[:, 0]
    np.testing.assert_allclose(out["logit"].numpy()[:, 0], linear + bilinear, rtol=1e-5,
                               atol=1e-6)


def test_finalmlp_field_context_conditions_the_gate():
    e = _embeddings(fields=4, dim=4)
    backbone = backbones.FinalMLPBackbone(hidden_units=(8,), context_fields=[[0], [2, 3]])
    x1, _ = backbone.selection(e)
    changed = tf.concat([e[:, :1] + 1.0, e[:, 1:]], axis=1)
    x1_changed, x2_changed = backbone.selection(changed)
    # Gate 1 reads field 0; gate 2 does not, so x2 only changes in field 0's slots.
    assert not np.allclose(x1.numpy()[:, 4:], x1_changed.numpy()[:, 4:])
    _, x2 = backbone.selection(e)
    np.testing.assert_allclose(x2.numpy()[:, 4:], x2_changed.numpy()[:, 4:], rtol=1e-6)


def test_disentangled_attention_weights_and_field_equivariance():
    x = _embeddings(fields=5, dim=8)
    layer = backbones.DisentangledSelfAttention(attention_dim=8, heads=2, residual=True)
    out = layer(x).numpy()
    assert out.shape == (4, 5, 8)
    permutation = [3, 0, 4, 1, 2]
    permuted = layer(tf.gather(x, permutation, axis=1)).numpy()
    # No positional terms: permuting the fields permutes the output the same way.
    np.testing.assert_allclose(permuted, out[:, permutation], rtol=1e-4, atol=1e-5)
    # Whitening: the pairwise term sees the projections minus their mean over fields, so
    # adding one vector to every field's input shifts q and k alike and leaves it unchanged;
    # with the unary and residual parts off, the output moves only through v.
    bare = backbones.DisentangledSelfAttention(attention_dim=8, heads=2, residual=False)
    bare(x)
    bare.unary.kernel.assign(tf.zeros_like(bare.unary.kernel))
    shift = tf.constant(RNG.normal(size=(1, 1, 8)), tf.float32)
    wv = bare.qkv.kernel.numpy()[:, 16:]
    before, after = bare(x).numpy(), bare(x + shift).numpy()
    # relu(Σ_j a_ij v_j) with rows of a summing to 2 (softmax + uniform unary softmax).
    v_shift = 2.0 * (shift.numpy()[0, 0] @ wv)
    positive = (before > 1e-3) & (after > 1e-3)
    np.testing.assert_allclose((after - before)[positive],
                               np.broadcast_to(v_shift, after.shape)[positive], atol=1e-4)


@pytest.mark.parametrize("name", sorted(backbones.BACKBONES))
def test_backbone_contract_and_config_round_trip(name):
    e, first_order = _embeddings(fields=8, dim=16), _embeddings(fields=8, dim=1)
    backbone = backbones.get(name, output_bias=-0.3)
    inputs = {"embeddings": e, "first_order": first_order}
    if "behavior" in backbone.requires:  # DIN, DIEN: a click history of 5 positions, 2 padded
        sequence = tf.random.normal([4, 5, 32], seed=1)
        mask = tf.constant([[True] * 3 + [False] * 2] * 4)
        inputs["behavior"] = {"sequence": sequence, "mask": mask,
                              "query": tf.random.normal([4, 32], seed=2),
                              "negatives": tf.random.normal([4, 5, 32], seed=3)}
    out = backbone(inputs, training=False)
    assert out["logit"].shape == (4, 1) and out["hidden"].shape[0] == 4
    assert backbone.output_dim == out["hidden"].shape[1]
    clone = keras.layers.deserialize(keras.layers.serialize(backbone))
    clone(inputs)
    assert clone.get_config() == backbone.get_config()
    assert float(backbone.head.bias.numpy()[0]) == pytest.approx(-0.3)
    with tf.GradientTape() as tape:
        tape.watch([e, first_order])
        out = backbone(inputs, training=True)
    grads = tape.gradient(out["logit"], [e, first_order])
    assert np.abs(grads[0].numpy()).sum() > 0
    # Only the wide / FM backbones read the first-order weights.
    assert (grads[1] is not None) == ("first_order" in backbone.requires)


def test_first_order_backbones_refuse_to_run_without_the_weights():
    with pytest.raises(ValueError, match="first_order"):
        backbones.get("deepfm")(_embeddings(fields=8, dim=16))


def test_unknown_backbone_and_options_are_refused_with_the_valid_ones():
    with pytest.raises(ValueError, match="valid choices.*deepfm"):
        backbones.get("xdeepfm")
    with pytest.raises(ValueError, match="cross_layer.*cross_layers"):
        backbones.get("dcn", cross_layer=2)
    with pytest.raises(ConfigError, match="valid.*structure"):
        TrainConfig(backbone="gdcn", backbone_options={"depth": 3})
    assert TrainConfig(backbone="gdcn", backbone_options={"cross_layers": 2}).backbone_options
