"""User-modeling baselines: each block's math against a direct computation, the user and
domain context the ranking model passes, and every baseline through the shared
fit/save/reload check."""



import numpy as np
import pytest

from tfrs_userlevel import baselines, tf
from tfrs_userlevel.baselines import (
    AdaptiveDense,
    GateNU,
    GroupMemory,
    PartitionedNormalization,
    StarDense,
    domain_weights,
)

RNG = np.random.default_rng(0)




def _normal(*shape):
    return tf.constant(RNG.normal(size=shape), tf.float32)


def _context(batch=6, domain=None):
    context = {"user": _normal(batch, 3, 4), "personal": _normal(batch, 1, 4)}
    if domain is not None:
        context["domain"] = tf.constant(domain, tf.int32)
    return context


def test_domain_weights_are_one_hot_for_known_values_and_uniform_for_oov():
    w = domain_weights(tf.constant([1, 2, 0, 3]), 2).numpy()
    np.testing.assert_allclose(w, [[1, 0], [0, 1], [0.5, 0.5], [0.5, 0.5]])


@pytest.mark.parametrize("name", ["mmoe", "ple"])
def test_task_baselines_score_each_example_with_its_own_tower(name):
    """The logit of a known domain is that domain's tower; an unknown one gets their mean."""
    layer = baselines.get(name, num_domains=2, dropout=0.0)
    embeddings = _normal(6, 5, 4)
    by_domain = [layer({"embeddings": embeddings, **_context(domain=[d] * 6)})["logit"].numpy()
                 for d in (1, 2)]
    assert not np.allclose(by_domain[0], by_domain[1])
    mixed = layer({"embeddings": embeddings, **_context(domain=[1, 2, 0, 1, 2, 0])})
    mixed = mixed["logit"].numpy()
    np.testing.assert_allclose(mixed[[0, 3]], by_domain[0][[0, 3]], atol=1e-6)
    np.testing.assert_allclose(mixed[[1, 4]], by_domain[1][[1, 4]], atol=1e-6)
    np.testing.assert_allclose(mixed[[2, 5]], (by_domain[0] + by_domain[1])[[2, 5]] / 2,
                               atol=1e-6)
    # Domain 1's gradient never reaches domain 2's tower.
    with tf.GradientTape() as tape:
        logit = layer({"embeddings": embeddings, **_context(domain=[1] * 6)})["logit"]
    tower_2 = layer.task_towers.heads[1].trainable_variables
    assert all(g is None or not np.any(g.numpy()) for g in tape.gradient(logit, tower_2))


def test_partitioned_normalization_uses_each_domains_own_statistics():
    pn = PartitionedNormalization(2, momentum=0.5, epsilon=1e-6)
    x = tf.concat([_normal(50, 3) * 3.0 + 5.0, _normal(50, 3) * 0.5 - 2.0], axis=0)
    weights = domain_weights(tf.constant([1] * 50 + [2] * 50), 2)
    y = pn(x, weights, training=True).numpy()
    for rows in (slice(0, 50), slice(50, 100)):
        np.testing.assert_allclose(y[rows].mean(0), 0, atol=1e-4)
        np.testing.assert_allclose(y[rows].std(0), 1, atol=1e-3)
    x_np = x.numpy()
    np.testing.assert_allclose(pn.moving_mean.numpy()[0], 0.5 * x_np[:50].mean(0), rtol=1e-5)
    # A batch with domain 1 only leaves domain 2's moving statistics alone.
    before = pn.moving_mean.numpy()[1].copy()
    pn(x[:50], weights[:50], training=True)
    np.testing.assert_array_equal(pn.moving_mean.numpy()[1], before)
    # Inference reads the moving statistics.
    mean, var = pn.moving_mean.numpy(), pn.moving_variance.numpy()
    expected = (x_np[:50] - mean[0]) / np.sqrt(var[0] + 1e-6)
    np.testing.assert_allclose(pn(x[:50], weights[:50]).numpy(), expected, rtol=1e-4, atol=1e-4)


def test_star_layer_is_shared_weight_times_domain_weight():
    layer = StarDense(3, num_domains=2)
    x = _normal(4, 5)
    weights = domain_weights(tf.constant([1, 2, 1, 2]), 2)
    start = layer(x, weights).numpy()
    np.testing.assert_allclose(start, x.numpy() @ layer.kernel.numpy(), atol=1e-5)  # W_p = 1
    layer.domain_kernel.assign(_normal(2, 5, 3))
    layer.domain_bias.assign(_normal(2, 3))
    out = layer(x, weights).numpy()
    W, Wp, bp = layer.kernel.numpy(), layer.domain_kernel.numpy(), layer.domain_bias.numpy()
    for b, p in enumerate([0, 1, 0, 1]):
        np.testing.assert_allclose(out[b], x.numpy()[b] @ (W * Wp[p]) + bp[p], atol=1e-5)


@pytest.mark.parametrize("overparam_dim", [0, 24])
def test_adaptive_dense_is_x_times_u_s_of_z_times_v(overparam_dim):
    layer = AdaptiveDense(5, rank=4, overparam_dim=overparam_dim, generator_units=(6,))
    x, z = _normal(3, 7), _normal(3, 2)
    y = layer(x, z).numpy()
    U, V, S = layer.u.numpy(), layer.v.numpy(), layer.generate(z).numpy()
    assert U.shape == (7, 4) and V.shape == (4, 5) and S.shape == (3, 4, 4)
    for b in range(3):
        np.testing.assert_allclose(y[b], x.numpy()[b] @ U @ S[b] @ V + layer.bias.numpy(),
                                   rtol=1e-4, atol=1e-5)
    # S starts near the identity and differs between conditions.
    np.testing.assert_allclose(S.mean(0), np.eye(4), atol=0.1)
    assert not np.allclose(S[0], S[1])


def test_apg_generated_weights_follow_the_condition():
    """user: other users, other weights; self (default): only the embeddings matter."""
    layer = baselines.get("apg", dropout=0.0, condition="user")
    embeddings = _normal(2, 5, 4)
    a = layer({"embeddings": embeddings, **_context(2)})["logit"].numpy()
    b = layer({"embeddings": embeddings, **_context(2)})["logit"].numpy()   # other users
    assert not np.allclose(a, b)
    self_wise = baselines.get("apg", dropout=0.0)
    assert self_wise.condition == "self"
    def self_logit(e):
        return self_wise({"embeddings": e, **_context(2)})["logit"].numpy()

    np.testing.assert_array_equal(self_logit(embeddings), self_logit(embeddings))
    assert not np.allclose(self_logit(_normal(2, 5, 4)), self_logit(embeddings))


def test_gate_nu_lies_in_zero_two_and_pepnet_gates_follow_the_personal_prior():
    gate = GateNU(8, hidden_units=4)
    values = gate(_normal(100, 3) * 3).numpy()
    assert values.min() > 0 and values.max() < 2 and values.max() - values.min() > 1
    layer = baselines.get("pepnet", dropout=0.0)
    embeddings = _normal(2, 5, 4)
    context = _context(2)
    base = layer({"embeddings": embeddings, **context})["logit"].numpy()
    other = dict(context, personal=_normal(2, 1, 4))
    assert not np.allclose(layer({"embeddings": embeddings, **other})["logit"].numpy(), base)
    # The gates read the embeddings under stop-gradient: the embeddings' gradient equals
    # the gradient of the same forward pass with every gate's output held as a constant.
    with tf.GradientTape() as tape:
        tape.watch(embeddings)
        out = layer({"embeddings": embeddings, **context})["logit"]
    grad = tape.gradient(out, embeddings).numpy()
    prior = tf.reshape(context["personal"], [2, -1])
    flat = tf.reshape(embeddings, [2, -1])
    field_gate = tf.constant(layer.embedding_gate(tf.concat([prior, flat], axis=1)))
    gated = tf.reshape(embeddings * field_gate[:, :, None], [2, -1])
    layer_gates = [tf.constant(g(tf.concat([prior, gated], axis=1)))
                   for g in layer.layer_gates]
    with tf.GradientTape() as tape:
        tape.watch(embeddings)
        h = tf.reshape(embeddings * field_gate[:, :, None], [2, -1])
        for dense, gate in zip(layer.dense, layer_gates, strict=True):
            h = layer.act(dense(gate * h), False)
        frozen_out = layer.head(h)
    np.testing.assert_allclose(frozen_out.numpy(), out.numpy(), rtol=1e-5, atol=1e-6)
    frozen = tape.gradient(frozen_out, embeddings).numpy()
    np.testing.assert_allclose(grad, frozen, rtol=1e-4, atol=1e-6)
    assert np.abs(frozen).max() > 1e-4
    ppnet = baselines.get("pepnet", epnet=False)
    ppnet({"embeddings": embeddings, **context})
    assert ppnet.embedding_gate is None and len(ppnet.layer_gates) == 3


def test_group_memory_reads_a_softmax_over_cosine_similarities():
    memory = GroupMemory(groups=5, key_dim=4, value_dim=3, initial_strength=2.0)
    u = _normal(6, 4)
    out = memory(u)
    memory.values.assign(_normal(5, 3))
    out = memory(u)
    keys = memory.keys.numpy()
    cos = (u.numpy() / np.linalg.norm(u.numpy(), axis=1, keepdims=True)) @ (
        keys / np.linalg.norm(keys, axis=1, keepdims=True)).T
    expected = np.exp(2.0 * cos) / np.exp(2.0 * cos).sum(1, keepdims=True)
    np.testing.assert_allclose(out["assignment"].numpy(), expected, rtol=1e-4)
    np.testing.assert_allclose(memory(u)["value"].numpy(), expected @ memory.values.numpy(),
                               rtol=1e-4, atol=1e-6)
    # Scaling u does not change the assignment (cosine addressing).
    np.testing.assert_allclose(memory(3.0 * u)["assignment"].numpy(), expected, rtol=1e-4)


def test_dgpm_starts_as_the_plain_mlp_and_its_groups_then_matter():
    layer = baselines.get("dgpm", dropout=0.0, groups=4)
    embeddings = _normal(3, 5, 4)
    a = layer({"embeddings": embeddings, **_context(3)})["logit"].numpy()
    b = layer({"embeddings": embeddings, **_context(3)})["logit"].numpy()
    np.testing.assert_allclose(a, b, atol=1e-6)  # zero group parameters: users do not matter
    layer.memory.values.assign(_normal(4, layer.memory.value_dim))
    assert not np.allclose(layer({"embeddings": embeddings, **_context(3)})["logit"].numpy(), a)
    assignment = layer.assignment(_context(3)).numpy()
    np.testing.assert_allclose(assignment.sum(1), 1, rtol=1e-5)


def test_dgpm_group_kernels_mix_each_groups_weights_by_the_assignment():
    """Kernel form: layer l computes h·(W + Σ_g a_g ΔW_g) + b + a·Δb, from the plain MLP."""
    layer = baselines.get("dgpm", dropout=0.0, groups=3, hidden_units=(5,),
                          group_parameters="kernel")
    embeddings, context = _normal(4, 2, 3), _context(4)
    plain = layer({"embeddings": embeddings, **context})["hidden"].numpy()
    x = embeddings.numpy().reshape(4, 6)
    dense = layer.dense[0]
    np.testing.assert_allclose(
        plain, np.maximum(x @ dense.kernel.numpy() + dense.bias.numpy(), 0), rtol=1e-5,
        atol=1e-6)
    layer.group_kernels[0].assign(_normal(3, 6, 5))
    layer.memory.values.assign(_normal(3, 5))
    a = layer.assignment(context).numpy()
    kernels = layer.group_kernels[0].numpy()
    per_user = dense.kernel.numpy()[None] + np.einsum("bg,gio->bio", a, kernels)
    expected = np.maximum(np.einsum("bi,bio->bo", x, per_user) + dense.bias.numpy()
                          + a @ layer.memory.values.numpy(), 0)
    np.testing.assert_allclose(layer({"embeddings": embeddings, **context})["hidden"].numpy(),
                               expected, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="group_parameters must be one of"):
        baselines.get("dgpm", group_parameters="matrix")
