"""GPRec's layers one by one: shapes, mask math, gradient routing, loss signs, configs."""


import numpy as np
import pytest

from tests.helpers import np_bce, randomize_weights, relu
from tfrs_userlevel import keras, tf
from tfrs_userlevel.gprec import (
    ABLATIONS,
    DualGroupEmbedding,
    DynamicParameterStrategy,
    EnsembleStrategy,
    GPRec,
    GroupClassifier,
    GumbelMask,
    IndividualPreference,
    InputStrategy,
    OrthogonalLoss,
    SingleGroupEmbedding,
    strategies,
)
from tfrs_userlevel.gprec.factored import materialize

B, D = 64, 16


def _normal(shape, seed):
    """A seeded N(0, 1) float32 tensor."""
    return tf.constant(np.random.default_rng(seed).normal(size=shape), tf.float32)


def _inputs(batch=B, labels=True, seed=0):
    rng = np.random.default_rng(seed)
    values = {
        "user": rng.normal(size=(batch, 5, D)), "personal": rng.normal(size=(batch, 1, D)),
        "item": rng.normal(size=(batch, 3, D)), "hidden": rng.normal(size=(batch, 16)),
        "logit": rng.normal(size=(batch, 1)),
    }
    values = {k: tf.constant(v, tf.float32) for k, v in values.items()}
    if labels:
        values["labels"] = tf.constant(rng.integers(0, 2, (batch, 1)), tf.float32)
    return values


def test_group_classifier_scores_every_group_with_its_own_mlp():
    layer = GroupClassifier(groups=7, hidden_units=(4,))
    user = _inputs()["user"]
    scores = layer(user)
    assert scores.shape == (B, 7, 2)
    np.testing.assert_allclose(layer.difference(user).numpy(),
                               (scores[..., 0] - scores[..., 1]).numpy(), atol=1e-5)
    before = scores.numpy()

    def moved():
        return (np.abs(layer(user).numpy() - before).max(axis=(0, 2)) > 1e-6).tolist()

    # Group 3's hidden units (a large first-layer bias wakes every one) feed group 3's
    # scores only...
    first_bias = layer.biases[0]
    assert first_bias.shape == (7, 4)
    delta = np.zeros(first_bias.shape, np.float32)
    delta[3] = 5.0
    first_bias.assign_add(delta)
    assert moved() == [g == 3 for g in range(7)]
    first_bias.assign_sub(delta)
    # ...and group 5's output weights only group 5's.
    last = layer.kernels[1]
    assert last.shape == (7, 4, 2)
    delta = np.zeros(last.shape, np.float32)
    delta[5] = 1.0
    last.assign_add(delta)
    assert moved() == [g == 5 for g in range(7)]
    # Deeper per-group MLPs and a linear classifier keep the shapes.
    assert GroupClassifier(5, (4, 3))(user).shape == (B, 5, 2)
    linear = GroupClassifier(5, ())
    np.testing.assert_allclose(linear.difference(user).numpy(),
                               (linear(user)[..., 0] - linear(user)[..., 1]).numpy(), atol=1e-5)


def test_shared_hidden_classifier_shares_features_and_keeps_one_output_per_group():
    layer = GroupClassifier(groups=7, hidden_units=(6,), shared_hidden=True)
    user = _inputs()["user"]
    scores = layer(user)
    assert scores.shape == (B, 7, 2)
    assert [tuple(k.shape) for k in layer.kernels] == [(80, 6), (6, 14)]
    np.testing.assert_allclose(layer.difference(user).numpy(),
                               (scores[..., 0] - scores[..., 1]).numpy(), atol=1e-5)
    # The same as computing it by hand: one ReLU layer, then group g's own linear output.
    flat = tf.reshape(user, [B, -1]).numpy()
    hidden = np.maximum(flat @ layer.kernels[0].numpy() + layer.biases[0].numpy(), 0.0)
    expected = (hidden @ layer.kernels[1].numpy()).reshape(B, 7, 2) + layer.biases[1].numpy()
    np.testing.assert_allclose(scores.numpy(), expected, atol=1e-5)
    # Group 2's output weights move group 2's scores only; a shared unit moves every group.
    before = scores.numpy()

    def moved():
        return (np.abs(layer(user).numpy() - before).max(axis=(0, 2)) > 1e-6).tolist()

    delta = np.zeros((6, 7, 2), np.float32)
    delta[:, 2] = 1.0
    layer.kernels[1].assign_add(delta.reshape(6, 14))
    assert moved() == [g == 2 for g in range(7)]
    layer.kernels[1].assign_sub(delta.reshape(6, 14))
    layer.biases[0].assign_add(np.full(6, 5.0, np.float32))
    assert all(moved())
    config = layer.get_config()
    assert config["shared_hidden"] is True
    assert GroupClassifier.from_config(config).shared_hidden


def test_gumbel_masks_are_a_two_class_distribution_with_noise_only_in_training():
    layer = GumbelMask(temperature=0.5)
    scores = tf.random.stateless_normal([B, 10, 2], seed=[1, 2])
    masks = layer(scores, training=True).numpy()
    assert masks.shape == (B, 10, 2)
    np.testing.assert_allclose(masks.sum(-1), 1.0, atol=1e-6)
    # Inference: the tempered softmax of the scores, with no noise.
    np.testing.assert_allclose(layer(scores).numpy(),
                               tf.nn.softmax(tf.nn.log_softmax(scores) / 0.5).numpy(), atol=1e-6)
    assert not np.allclose(layer(scores, training=True).numpy(), masks)


def test_gumbel_max_property_picks_inside_with_softmax_probability():
    # With Gumbel noise, argmax_k(log_softmax(S)_k + ε_k) is "in g" with probability
    # softmax(S)_0: scores (log 3, 0) must give "in" 75 % of the time, at any τ.
    scores = tf.tile(tf.constant([[[np.log(3.0), 0.0]]], tf.float32), [20_000, 1, 1])
    for temperature in (0.1, 1.0):
        masks = GumbelMask(temperature)(scores, training=True).numpy()[:, 0, 0]
        assert (masks > 0.5).mean() == pytest.approx(0.75, abs=0.015)
    # Small τ pushes the masks to 0/1; large τ leaves them soft.
    sharp = GumbelMask(0.1)(scores, training=True).numpy()[:, 0, 0]
    soft = GumbelMask(5.0)(scores, training=True).numpy()[:, 0, 0]
    assert np.mean((sharp < 0.05) | (sharp > 0.95)) > 0.8
    assert np.mean((soft < 0.05) | (soft > 0.95)) < 0.1


def test_dual_group_embedding_selects_positive_or_negative_and_contrast_swaps():
    layer = DualGroupEmbedding(groups=3, embedding_dim=4, reduce="concat")
    inside = np.array([[1.0, 0.0, 1.0]], np.float32)
    masks = tf.constant(np.stack([inside, 1 - inside], -1))
    r_g = layer(masks).numpy().reshape(3, 4)
    pos, neg = layer.positive.numpy(), layer.negative.numpy()
    np.testing.assert_allclose(r_g, np.stack([pos[0], neg[1], pos[2]]), atol=1e-6)
    contrast = layer(masks, contrast=True).numpy().reshape(3, 4)
    np.testing.assert_allclose(contrast, np.stack([neg[0], pos[1], neg[2]]), atol=1e-6)
    # Soft masks mix the two tables; "sum" adds the G blocks of "concat".
    soft = tf.constant([[[0.25, 0.75], [0.5, 0.5], [0.9, 0.1]]], tf.float32)
    summed = DualGroupEmbedding(3, 4, reduce="sum")
    summed(soft)
    summed.set_weights(layer.get_weights())
    blocks = layer(soft).numpy().reshape(3, 4)
    np.testing.assert_allclose(blocks[0], 0.25 * pos[0] + 0.75 * neg[0], atol=1e-6)
    np.testing.assert_allclose(summed(soft).numpy()[0], blocks.sum(0), atol=1e-6)
    assert layer.output_dim == 12 and summed.output_dim == 4
    # "mean" is the sum over the G = 3 groups divided by 3.
    averaged = DualGroupEmbedding(3, 4, reduce="mean")
    averaged(soft)
    averaged.set_weights(layer.get_weights())
    np.testing.assert_allclose(averaged(soft).numpy()[0], blocks.mean(0), atol=1e-6)
    assert averaged.output_dim == 4


@pytest.mark.parametrize("reduce", ["concat", "sum", "mean"])
def test_group_and_contrast_pair_equals_two_separate_lookups(reduce):
    """with_contrast(m) shares one product for "sum"/"mean"; its values and gradients must
    be those of from_inside(m) and from_inside(1 − m)."""
    layer = DualGroupEmbedding(groups=5, embedding_dim=4, reduce=reduce)
    inside = tf.Variable(tf.random.stateless_uniform([8, 5], seed=[3, 4]))
    layer.from_inside(inside)
    weights = [inside] + layer.trainable_variables
    upstream = tf.random.stateless_normal([2, 8, layer.output_dim], seed=[5, 6])

    def run(paired):
        with tf.GradientTape() as tape:
            pair = (layer.with_contrast(inside) if paired
                    else (layer.from_inside(inside), layer.from_inside(1.0 - inside)))
            loss = tf.reduce_sum(pair[0] * upstream[0]) + tf.reduce_sum(pair[1] * upstream[1])
        return [p.numpy() for p in pair], [g.numpy() for g in tape.gradient(loss, weights)]

    (values, grads), (expected_values, expected_grads) = run(True), run(False)
    for got, want in zip(values + grads, expected_values + expected_grads, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    # The contrast is the group representation with the masks swapped (not a copy of it).
    assert not np.allclose(values[0], values[1])


def test_single_group_embedding_is_a_softmax_weighted_sum():
    layer = SingleGroupEmbedding(groups=4, embedding_dim=3)
    scores = tf.constant([[[0.0], [1.0], [2.0], [-1.0]]], tf.float32)
    out = layer(scores).numpy()
    weights = tf.nn.softmax(tf.reshape(scores, [1, 4])).numpy()
    np.testing.assert_allclose(out, weights @ layer.table.numpy(), atol=1e-6)


def test_orthogonal_loss_is_the_mean_absolute_cosine():
    loss = OrthogonalLoss()
    a = tf.constant([[1.0, 0.0], [1.0, 1.0], [2.0, 0.0]])
    b = tf.constant([[0.0, 3.0], [-2.0, -2.0], [1.0, 1.0]])
    expected = np.mean([0.0, 1.0, np.sqrt(0.5)])
    assert float(loss(a, b)) == pytest.approx(expected, rel=1e-5)
    assert float(loss(tf.zeros([2, 2]), b[:2])) == 0.0  # ε keeps zero vectors finite


def _randomize(layer, seed):
    randomize_weights(layer, seed, scale=0.5)


def test_individual_preference_is_eq_12_by_hand():
    """r_p = W2·ReLU(W1·flatten(E_p) + b1) + b2 (a linear output: any sign)."""
    personal = _inputs()["personal"]
    layer = IndividualPreference(output_dim=6, hidden_units=(8,))
    layer(personal)
    _randomize(layer, 1)
    k1, b1, k2, b2 = layer.get_weights()
    flat = personal.numpy().reshape(B, -1)
    expected = relu(flat @ k1 + b1) @ k2 + b2
    np.testing.assert_allclose(layer(personal).numpy(), expected, rtol=1e-5, atol=1e-5)
    factored = layer.factored(personal)
    np.testing.assert_allclose(materialize(factored).numpy(), expected, rtol=1e-5,
                               atol=1e-5)


def test_input_strategy_is_eq_14_by_hand_and_reads_each_part():
    """ŷ = MLP_pred([h, r_g, r_p]) with MLP_pred's own weights; without r_p, [h, r_g]."""
    rng = np.random.default_rng(2)
    hidden, group, individual = (tf.constant(rng.normal(size=(B, n)), tf.float32)
                                 for n in (16, 12, 12))
    strategy = InputStrategy(hidden_units=(8, 4), dropout=0.0)
    strategy(hidden, group, individual)
    _randomize(strategy, 3)
    k1, b1, k2, b2, k3, b3 = strategy.get_weights()

    def by_hand(parts):
        x = np.concatenate([p.numpy() for p in parts], axis=1)
        return relu(relu(x @ k1 + b1) @ k2 + b2) @ k3 + b3

    out = strategy(hidden, group, individual).numpy()
    np.testing.assert_allclose(out, by_hand([hidden, group, individual]), rtol=1e-5,
                               atol=1e-5)
    # Each of h, r_g and r_p moves the prediction.
    for i in range(3):
        parts = [hidden, group, individual]
        parts[i] = parts[i] + 1.0
        assert np.abs(strategy(*parts).numpy() - out).max() > 1e-3, i
    two = InputStrategy(hidden_units=(8,), dropout=0.0)
    two(hidden, group)
    _randomize(two, 4)
    k1, b1, k2, b2 = two.get_weights()
    x = np.concatenate([hidden.numpy(), group.numpy()], axis=1)
    np.testing.assert_allclose(two(hidden, group).numpy(), relu(x @ k1 + b1) @ k2 + b2,
                               rtol=1e-5, atol=1e-5)


def test_dynamic_parameter_strategy_is_the_low_rank_form_by_hand():
    """Layer l: ReLU(((x·U_l) ⊙ (1 + s_l(z)))·V_l + b_l), s = the generator's linear
    output on z = [r_g, r_p], split into one k-vector per layer; a static output layer."""
    rng = np.random.default_rng(5)
    hidden, group, individual = (tf.constant(rng.normal(size=(B, n)), tf.float32)
                                 for n in (16, 12, 12))
    strategy = DynamicParameterStrategy(hidden_units=(8, 4), rank=3, generator_units=(5,),
                                        dropout=0.0)
    strategy(hidden, group, individual)
    _randomize(strategy, 6)
    generator = strategy.generator.get_weights()    # g1, c1, g2, c2
    factors = [[w.numpy() for w in f] for f in strategy.factors]
    output = strategy.output_layer.get_weights()
    z = np.concatenate([group.numpy(), individual.numpy()], axis=1)
    s = relu(z @ generator[0] + generator[1]) @ generator[2] + generator[3]   # [B, 2k]
    x = hidden.numpy()
    for layer, (u, v, b) in enumerate(factors):
        scale = 1.0 + s[:, 3 * layer:3 * (layer + 1)]
        x = relu(((x @ u) * scale) @ v + b)
    expected = x @ output[0] + output[1]
    np.testing.assert_allclose(strategy(hidden, group, individual).numpy(), expected,
                               rtol=1e-5, atol=1e-5)
    # The per-example weight U·diag(1 + s)·V, applied as one matrix, is the same map.
    first = np.einsum("ik,bk,ko->bio", factors[0][0], 1.0 + s[:, :3], factors[0][1])
    direct = relu(np.einsum("bi,bio->bo", hidden.numpy(), first) + factors[0][2])
    staged = relu(((hidden.numpy() @ factors[0][0]) * (1.0 + s[:, :3])) @ factors[0][1]
                   + factors[0][2])
    np.testing.assert_allclose(direct, staged, rtol=1e-5, atol=1e-5)
    # r_p is read: another r_p, another prediction.
    moved = strategy(hidden, group, individual + 1.0).numpy()
    assert np.abs(moved - expected).max() > 1e-3


def test_ensemble_averages_probabilities_of_its_three_heads():
    x = _inputs()
    item = tf.reshape(x["item"], [B, -1])
    individual = _normal([B, 12], 10)
    group_logit = _normal([B, 1], 11) * 3
    ensemble = EnsembleStrategy(dropout=0.0)
    out = ensemble(x["hidden"], None, individual, item=item, group_logit=group_logit,
                   backbone_logit=x["logit"])
    third = ensemble.individual_head(tf.concat([individual, item], -1))
    probs = tf.sigmoid(tf.concat([x["logit"], group_logit, third], -1)).numpy().mean(-1)
    np.testing.assert_allclose(tf.sigmoid(out).numpy()[:, 0], probs, atol=1e-5)
    by_logit = EnsembleStrategy(dropout=0.0, average="logit")
    by_logit(x["hidden"], None, individual, item=item, group_logit=group_logit,
             backbone_logit=x["logit"])
    by_logit.set_weights(ensemble.get_weights())
    mean = tf.concat([x["logit"], group_logit, third], -1).numpy().mean(-1)
    np.testing.assert_allclose(
        by_logit(x["hidden"], None, individual, item=item, group_logit=group_logit,
                 backbone_logit=x["logit"]).numpy()[:, 0], mean, atol=1e-5)
    with pytest.raises(ValueError, match="logits"):
        ensemble(x["hidden"], None, individual, item=item)


def test_gprec_returns_the_ensembles_heads_and_they_recombine_into_its_logit():
    """output["heads"]: the backbone's, MLP_g's and MLP_p's logits, which the learned
    weights average (in probability) into the output logit; GPRec-2 has two heads."""
    x = _inputs()
    for overrides, names in (({}, ["backbone", "group", "individual"]),
                             ({"individual": False}, ["backbone", "group"])):
        layer = GPRec(groups=4, reduce="sum", strategy="ensemble", ensemble_weights="learned",
                      **overrides)
        layer(x)
        layer.combiner.mixing.assign([0.5, -1.0, 0.3])
        out = layer(x)
        assert list(out["heads"]) == names
        np.testing.assert_allclose(out["heads"]["backbone"], x["logit"], atol=1e-6)
        assert all(h.shape == (B, 1) for h in out["heads"].values())
        weights = tf.nn.softmax(layer.combiner.mixing[:len(names)]).numpy()
        probs = tf.sigmoid(tf.concat(list(out["heads"].values()), -1)).numpy() @ weights
        np.testing.assert_allclose(tf.sigmoid(out["logit"]).numpy()[:, 0], probs, atol=1e-5)
        # The group head's logit is MLP_g([r_g, e_i]) of eq. 7.
        item = tf.reshape(x["item"], [B, -1])
        np.testing.assert_allclose(out["heads"]["group"],
                                   layer.group_head([out["group"], item]), atol=1e-5)
    assert GPRec(groups=4, reduce="sum", strategy="input")(x)["heads"] == {}


def test_learned_ensemble_weights_start_at_the_average_and_move_to_the_better_head():
    x = _inputs()
    item = tf.reshape(x["item"], [B, -1])
    individual = _normal([B, 12], 10)
    group_logit = _normal([B, 1], 11) * 3
    args = (x["hidden"], None, individual)
    kwargs = {"item": item, "group_logit": group_logit, "backbone_logit": x["logit"]}
    equal = EnsembleStrategy(dropout=0.0)
    expected = equal(*args, **kwargs)
    for average in ("probability", "logit"):
        learned = EnsembleStrategy(dropout=0.0, average=average, weights="learned")
        learned(*args, **kwargs)
        assert [v.name.split("/")[-1] for v in learned.trainable_variables].count(
            "mixing:0") == 1
        learned.individual_head.set_weights(equal.individual_head.get_weights())
        if average == "probability":  # v = 0: the paper's plain average
            np.testing.assert_allclose(learned(*args, **kwargs), expected, atol=1e-5)
        learned.mixing.assign([40.0, 0.0, 0.0])  # all weight on the backbone's head
        np.testing.assert_allclose(learned(*args, **kwargs), x["logit"], atol=1e-4)
    # GPRec-2 (no r_p): two predictions, weighted by the first two entries of v.
    two = EnsembleStrategy(dropout=0.0, weights="learned")
    out = two(x["hidden"], None, None, item=item, group_logit=group_logit,
              backbone_logit=x["logit"])
    probs = tf.sigmoid(tf.concat([x["logit"], group_logit], -1)).numpy().mean(-1)
    np.testing.assert_allclose(tf.sigmoid(out).numpy()[:, 0], probs, atol=1e-5)

    # Trained on labels that the backbone's logit predicts and the group head's does not,
    # the weights move to the backbone.
    labels = tf.cast(x["logit"] > 0, tf.float32)
    learned = EnsembleStrategy(dropout=0.0, weights="learned")
    learned(*args, **kwargs)
    optimizer = keras.optimizers.Adam(0.1)
    for _ in range(30):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(
                labels=labels, logits=learned(*args, **kwargs) * 5.0))
        optimizer.apply_gradients([(tape.gradient(loss, learned.mixing), learned.mixing)])
    weights = tf.nn.softmax(learned.mixing).numpy()
    assert weights[0] > 0.6 and weights[0] == weights.max(), weights
    with pytest.raises(ValueError, match="weights"):
        EnsembleStrategy(weights="mean")
    with pytest.raises(ValueError, match="ensemble strategy"):
        GPRec(strategy="input", ensemble_weights="learned")


def test_ensemble_without_backbone_gradient_leaves_the_backbone_to_its_own_loss():
    x = _inputs()
    logit = tf.Variable(x["logit"])  # stands for the backbone: its only trainable output
    grads = {}
    for backbone_gradient in (True, False):
        layer = GPRec(groups=4, reduce="sum", strategy="ensemble",
                      ensemble_weights="learned", ensemble_backbone_gradient=backbone_gradient)
        with tf.GradientTape(persistent=True) as tape:
            out = layer({**x, "logit": logit}, training=True)
            main = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(
                labels=x["labels"], logits=out["logit"]))
        grads[backbone_gradient] = (tape.gradient(main, logit),
                                    tape.gradient(out["losses"]["gprec_backbone_loss"], logit),
                                    tape.gradient(main, layer.combiner.mixing))
    trained, detached = grads[True], grads[False]
    assert np.any(trained[0].numpy())
    assert detached[0] is None or not np.any(tf.convert_to_tensor(detached[0]).numpy())
    # The backbone's own BCE and the mixing weights still learn.
    assert np.any(detached[1].numpy()) and np.any(detached[2].numpy())
    # The forward pass is the same.
    layer = GPRec(groups=4, reduce="sum", strategy="ensemble", ensemble_backbone_gradient=False)
    reference = GPRec(groups=4, reduce="sum", strategy="ensemble")
    layer(x)
    reference(x)
    reference.set_weights(layer.get_weights())
    np.testing.assert_allclose(layer(x)["logit"], reference(x)["logit"], atol=1e-6)
    with pytest.raises(ValueError, match="backbone_weight > 0"):
        GPRec(strategy="ensemble", ensemble_backbone_gradient=False, backbone_weight=0)
    with pytest.raises(ValueError, match="needs the ensemble strategy"):
        GPRec(strategy="dp", ensemble_backbone_gradient=False)


@pytest.mark.parametrize("reduce", ["concat", "sum"])
def test_contrastive_pass_holds_the_group_head_fixed(reduce):
    layer = GPRec(groups=6, reduce=reduce, temperature=0.5, group_weight=0.0,
                  orthogonal_weight=0.0, backbone_weight=0.0, contrast_weight=1.0)
    x = _inputs()
    layer(x)
    with tf.GradientTape(persistent=True) as tape:
        out = layer(x, training=True)
        contrast = out["losses"]["gprec_contrastive_loss"]
    head = layer.group_head.trainable_variables
    assert all(g is None for g in tape.gradient(contrast, head))
    tables = tape.gradient(contrast, layer.group_table.trainable_variables)
    classifier = tape.gradient(contrast, layer.classifier.trainable_variables)
    assert all(g is not None and float(tf.reduce_max(tf.abs(g))) > 0
               for g in tables + classifier)
    # The paper's sign: the term is −β·BCE(ȳ, y) ≤ 0; the flipped option is +β·BCE(ȳ, 1 − y).
    assert float(contrast) < 0
    flipped = GPRec(groups=6, reduce=reduce, contrast="flipped", group_weight=0.0)
    assert float(flipped(x, training=True)["losses"]["gprec_contrastive_loss"]) > 0


def _np_stack(weights, x):
    """A DenseStack forward pass in numpy: ReLU hidden layers, a linear output."""
    for i in range(0, len(weights) - 2, 2):
        x = relu(x @ weights[i] + weights[i + 1])
    return x @ weights[-2] + weights[-1]


def test_every_loss_term_is_weighted_and_named_and_computed_as_by_hand():
    """Eq. 7, 9–13 in numpy from the layer's weights and masks: r_g, r̄_g (the swapped
    masks), MLP_g on [r_g, e_i], r_p, and each weighted term."""
    x = _inputs()
    layer = GPRec(groups=5, group_weight=2.0, contrast_weight=0.5, orthogonal_weight=3.0,
                  backbone_weight=0.25, dropout=0.0)
    layer(x)
    _randomize(layer, 8)
    out = layer(x)
    assert set(out["losses"]) == set(layer.loss_names) == {
        "gprec_backbone_loss", "gprec_group_loss", "gprec_contrastive_loss",
        "gprec_orthogonal_loss"}
    masks = out["masks"].numpy().astype(np.float64)                  # [B, G, 2]
    positive = layer.group_table.positive.numpy()                     # [G, d]
    negative = layer.group_table.negative.numpy()
    r_g = (masks[:, :, :1] * positive + masks[:, :, 1:] * negative).reshape(B, -1)
    r_bar = (masks[:, :, 1:] * positive + masks[:, :, :1] * negative).reshape(B, -1)
    np.testing.assert_allclose(out["group"].numpy(), r_g, rtol=1e-5, atol=1e-5)
    item = x["item"].numpy().reshape(B, -1)
    head = layer.group_head.get_weights()
    labels = x["labels"].numpy()
    r_p = _np_stack(layer.individual_preference.get_weights(),
                    x["personal"].numpy().reshape(B, -1))
    np.testing.assert_allclose(out["individual"].numpy(), r_p, rtol=1e-5, atol=1e-5)
    cosine = np.abs((r_g * r_p).sum(1)) / (np.linalg.norm(r_g, axis=1)
                                            * np.linalg.norm(r_p, axis=1) + 1e-8)
    expected = {
        "gprec_backbone_loss": 0.25 * np_bce(labels, x["logit"].numpy()),
        "gprec_group_loss": 2.0 * np_bce(labels, _np_stack(head, np.hstack([r_g, item]))),
        "gprec_contrastive_loss": -0.5 * np_bce(labels,
                                                 _np_stack(head, np.hstack([r_bar, item]))),
        "gprec_orthogonal_loss": 3.0 * float(cosine.mean()),
    }
    for name, value in expected.items():
        assert float(out["losses"][name]) == pytest.approx(value, rel=1e-4), name
    assert float(out["loss"]) == pytest.approx(sum(expected.values()), rel=1e-4)
    assert out["logit"].shape == (B, 1) and out["masks"].shape == (B, 5, 2)
    # Without labels (serving) no loss is computed.
    assert layer({k: v for k, v in x.items() if k != "labels"})["losses"] == {}


@pytest.mark.parametrize("name", sorted(ABLATIONS))
def test_ablations_remove_what_the_paper_says(name):
    layer = GPRec(groups=5, **ABLATIONS[name])
    out = layer(_inputs(), training=True)
    names = set(out["losses"])
    expected = {
        "gprec-1": {"gprec_backbone_loss", "gprec_group_loss", "gprec_orthogonal_loss"},
        "gprec-2": {"gprec_backbone_loss", "gprec_group_loss", "gprec_contrastive_loss"},
        "gprec-3": {"gprec_backbone_loss", "gprec_contrastive_loss", "gprec_orthogonal_loss"},
        "gprec-4": {"gprec_backbone_loss", "gprec_group_loss", "gprec_orthogonal_loss"},
        "gprec-5": {"gprec_backbone_loss", "gprec_group_loss", "gprec_contrastive_loss"},
    }[name]
    assert names == expected
    if name == "gprec-1":
        assert isinstance(layer.group_table, SingleGroupEmbedding)
        assert out["group"].shape == (B, 16) and out["individual"].shape == (B, 16)
        np.testing.assert_allclose(out["masks"].numpy().sum(axis=1), 1.0, atol=1e-5)
    if name == "gprec-2":
        assert out["individual"] is None


@pytest.mark.parametrize("strategy,trained", [("input", False), ("dp", False),
                                              ("ensemble", True)])
def test_without_the_group_loss_only_the_ensemble_trains_the_group_head(strategy, trained):
    """GPRec-3: MLP_g gets a gradient only where a prediction reads it (the ensemble);
    with input and dp, L_c reads r̄_g through MLP_g's fixed initial weights."""
    layer = GPRec(groups=4, strategy=strategy, **ABLATIONS["gprec-3"])
    with tf.GradientTape() as tape:
        out = layer(_inputs(), training=True)
        loss = tf.reduce_mean(out["logit"]) + out["loss"]
    head = layer.group_head.trainable_weights
    gradients = tape.gradient(loss, head + layer.classifier.trainable_weights)
    moved = [g is not None and float(tf.norm(tf.convert_to_tensor(g))) > 0
             for g in gradients]
    head_moved = moved[:len(head)]
    assert all(head_moved) if trained else not any(head_moved)
    assert all(moved[len(head):])  # L_c still trains the classifier


@pytest.mark.parametrize("strategy", ["input", "dp", "ensemble"])
def test_gprec_gradients_reach_every_part(strategy):
    layer = GPRec(groups=4, strategy=strategy, reduce="sum")
    x = _inputs()
    variables = [v for v in x.values()]
    with tf.GradientTape() as tape:
        tape.watch(variables)
        out = layer(x, training=True)
        loss = tf.reduce_mean(out["logit"]) + tf.add_n(list(out["losses"].values()))
    grads = tape.gradient(loss, layer.trainable_variables)
    missing = [v.name for v, g in zip(layer.trainable_variables, grads, strict=True)
               if g is None or not np.any(g.numpy())]
    assert not missing


def test_configs_round_trip():
    layers = [GroupClassifier(5, (3,)), GumbelMask(0.3), DualGroupEmbedding(5, 4, "sum"),
              SingleGroupEmbedding(5, 4), IndividualPreference(8), OrthogonalLoss(),
              InputStrategy(), DynamicParameterStrategy(rank=3),
              EnsembleStrategy(average="logit"),
              GPRec(groups=7, temperature=0.3, strategy="dp", reduce="sum", contrast="flipped")]
    for layer in layers:
        clone = keras.layers.deserialize(keras.layers.serialize(layer))
        assert type(clone) is type(layer) and clone.get_config() == layer.get_config()


def test_bad_arguments_are_refused_with_the_reason():
    with pytest.raises(ValueError, match="temperature"):
        GumbelMask(0.0)
    with pytest.raises(ValueError, match="strategy"):
        GPRec(strategy="stacked")
    with pytest.raises(ValueError, match="reduce"):
        GPRec(reduce="max")
    with pytest.raises(ValueError, match="loss weights"):
        GPRec(contrast_weight=-1.0)
    layer = GPRec(groups=3)
    with pytest.raises(ValueError, match="logit"):
        layer({k: v for k, v in _inputs().items() if k != "logit"})


@pytest.mark.parametrize("strategy", ["input", "dp"])
def test_residual_option_starts_as_the_backbone_and_learns_a_correction(strategy):
    layer = GPRec(groups=4, strategy=strategy, reduce="sum", residual=True)
    x = _inputs()
    out = layer(x, training=False)
    np.testing.assert_array_equal(out["logit"].numpy(), x["logit"].numpy())
    with tf.GradientTape() as tape:
        main = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(
            labels=x["labels"], logits=layer(x, training=True)["logit"]))
    assert float(tape.gradient(main, layer.residual_scale)) != 0.0
    with pytest.raises(ValueError, match="residual"):
        GPRec(strategy="ensemble", residual=True)


def test_stop_embedding_gradient_leaves_the_embeddings_to_the_backbone():
    x = _inputs()
    watched = [x["user"], x["personal"], x["item"], x["hidden"]]
    for stop in (False, True):
        layer = GPRec(groups=4, reduce="sum", stop_embedding_gradient=stop)
        with tf.GradientTape() as tape:
            tape.watch(watched)
            out = layer(x, training=True)
            loss = tf.reduce_mean(out["logit"]) + tf.add_n(list(out["losses"].values()))
        grads = tape.gradient(loss, watched)
        assert all(g is None for g in grads[:3]) == stop
        assert grads[3] is not None and np.any(grads[3].numpy())


@pytest.mark.parametrize("strategy,options", [
    ("input", {}), ("input", {"prediction_units": ()}), ("dp", {}), ("ensemble", {}),
    ("input", {"individual": False}), ("ensemble", {"stop_embedding_gradient": True})])
def test_factored_representations_equal_the_built_ones(strategy, options):
    """r_g and r_p kept factored (gprec/factored.py) give the built tensors' logit, every
    loss term and every gradient, to inputs and weights alike."""
    x = _inputs()
    layer = GPRec(groups=6, strategy=strategy, dropout=0.0, orthogonal_weight=1.0,
                  contrast_weight=0.5, **options)
    layer(x)
    # Moved tables and a non-zero head bias, so no term is zero by symmetry.
    for variable in layer.trainable_variables:
        variable.assign(variable + tf.random.stateless_normal(variable.shape, [1, 2], 0, 0.1))
    inputs = [x["user"], x["personal"], x["item"], x["hidden"]]

    def run(factored):
        layer._factored = factored
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            out = layer(x)  # training=False: no noise, so both paths see the same masks
            total = tf.reduce_sum(out["logit"]) + tf.add_n(list(out["losses"].values()))
        grads = tape.gradient(total, layer.trainable_variables + inputs)
        return out, grads

    (fast, fast_grads), (built, built_grads) = run(True), run(False)
    np.testing.assert_allclose(fast["logit"], built["logit"], rtol=1e-4, atol=1e-5)
    assert set(fast["losses"]) == set(built["losses"])
    for name in built["losses"]:
        assert float(fast["losses"][name]) == pytest.approx(float(built["losses"][name]),
                                                            rel=1e-4, abs=1e-6), name
    np.testing.assert_allclose(fast["group"], built["group"], atol=1e-6)
    names = [v.name for v in layer.trainable_variables] + ["user", "personal", "item", "hidden"]
    for name, a, b in zip(names, fast_grads, built_grads, strict=True):
        assert (a is None) == (b is None), name
        if a is not None:
            a, b = tf.convert_to_tensor(a).numpy(), tf.convert_to_tensor(b).numpy()
            assert np.any(b), name
            np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5 * np.abs(b).max(),
                                       err_msg=name)


def test_factored_squared_norm_error_is_bounded_by_the_tables_scale():
    """The expanded-square norm of r_g against float64: relative error < 1e-5 at the
    table scales of training, and in the cancelling case (P⁺ ≈ −P⁻, m = ½) an absolute
    error under 1e-6 of Σ(‖P⁻‖² + ‖P⁺‖²) (OrthogonalLoss clamps the result at 0)."""
    from tfrs_userlevel.gprec.factored import MaskedGroups
    rng = np.random.default_rng(11)
    for scale in (0.01, 0.16, 1.0):
        inside = rng.uniform(size=(256, 8))
        negative, positive = (rng.normal(scale=scale, size=(8, 16)) for _ in range(2))
        truth = ((negative + inside[..., None] * (positive - negative)) ** 2).sum((1, 2))
        found = MaskedGroups(*(tf.constant(v, tf.float32) for v in (inside, negative,
                                                                    positive))).squared_norm()
        assert np.max(np.abs(found.numpy() - truth) / truth) < 1e-5, scale
    negative = rng.normal(size=(8, 16))
    positive = -negative * (1 + 1e-3 * rng.normal(size=(8, 16)))
    inside = np.full((256, 8), 0.5) + rng.uniform(-1e-3, 1e-3, size=(256, 8))
    truth = ((negative + inside[..., None] * (positive - negative)) ** 2).sum((1, 2))
    found = MaskedGroups(*(tf.constant(v, tf.float32) for v in (inside, negative,
                                                                positive))).squared_norm()
    scale = (negative ** 2).sum() + (positive ** 2).sum()
    assert np.max(np.abs(found.numpy() - truth)) < 1e-6 * scale


def _factored_pair(seed, batch, groups, dim, hidden_width):
    """A random MaskedGroups (r_g of `groups` groups of width `dim`) and AffineOutput (r_p
    from a `hidden_width` hidden layer), with their parts."""
    from tfrs_userlevel.gprec.factored import AffineOutput, MaskedGroups
    rng = np.random.default_rng(seed)
    inside = tf.constant(rng.uniform(size=(batch, groups)), tf.float32)
    negative, positive = (tf.constant(rng.normal(size=(groups, dim)), tf.float32)
                          for _ in range(2))
    hidden = tf.constant(rng.normal(size=(batch, hidden_width)), tf.float32)
    kernel = tf.constant(rng.normal(size=(hidden_width, groups * dim)), tf.float32)
    bias = tf.constant(rng.normal(size=(groups * dim,)), tf.float32)
    parts = dict(inside=inside, negative=negative, positive=positive, hidden=hidden,
                 kernel=kernel, bias=bias, rng=rng)
    return MaskedGroups(inside, negative, positive), AffineOutput(hidden, kernel, bias), parts


def test_factored_orthogonal_loss_is_the_cosine_of_the_built_vectors():
    groups, individual, parts = _factored_pair(3, batch=9, groups=4, dim=3, hidden_width=5)
    inside, negative, positive, hidden, kernel, bias, rng = parts.values()
    r_g = negative.numpy() + inside.numpy()[..., None] * (positive - negative).numpy()
    r_g = r_g.reshape(9, 12)
    r_p = hidden.numpy() @ kernel.numpy() + bias.numpy()
    np.testing.assert_allclose(groups.materialize(), r_g, atol=1e-6)
    np.testing.assert_allclose(groups.squared_norm(), (r_g ** 2).sum(-1), rtol=1e-5)
    np.testing.assert_allclose(individual.squared_norm(), (r_p ** 2).sum(-1), rtol=1e-4)
    cosine = np.abs((r_g * r_p).sum(-1)) / (np.linalg.norm(r_g, axis=-1)
                                            * np.linalg.norm(r_p, axis=-1))
    assert float(OrthogonalLoss()(groups, individual)) == pytest.approx(cosine.mean(), rel=1e-5)
    # A linear map of the factored form is the map of the built tensor.
    weights = rng.normal(size=(12, 7)).astype(np.float32)
    np.testing.assert_allclose(groups.matmul(weights), r_g @ weights, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(individual.matmul(weights), r_p @ weights, rtol=1e-4, atol=1e-4)


def test_embeddings_base_reads_the_flattened_embeddings_instead_of_the_hidden_state():
    x = _inputs()
    x["embeddings"] = tf.concat([x["item"], x["user"], x["personal"]], axis=1)  # [B, 9, D]
    layer = GPRec(groups=4, reduce="sum", base="embeddings", prediction_units=(8,),
                  stop_embedding_gradient=True, backbone_weight=0.0)
    with tf.GradientTape() as tape:
        tape.watch([x["embeddings"], x["hidden"]])
        out = layer(x, training=False)
        loss = tf.reduce_mean(out["logit"])
    grad_e, grad_h = tape.gradient(loss, [x["embeddings"], x["hidden"]])
    # MLP_pred's first layer reads [E (9·D), r_g (D), r_p (D)]: E trains through it, even
    # with the user / personal / item views stopped, and h is not read at all.
    assert layer.combiner.mlp._dense_params[0][0].shape == (11 * D, 8)
    assert grad_h is None and np.any(grad_e.numpy())
    moved = {**x, "hidden": x["hidden"] + 1.0}
    np.testing.assert_array_equal(layer(moved)["logit"].numpy(), out["logit"].numpy())
    assert GPRec.from_config(layer.get_config()).base == "embeddings"
    with pytest.raises(ValueError, match="base must be one of"):
        GPRec(base="backbone")


@pytest.mark.parametrize("group_embedding", ["dual", "single"])
def test_group_init_stddev_sets_the_scale_of_the_group_tables(group_embedding):
    ablation = {} if group_embedding == "dual" else {"group_embedding": "single"}
    default = GPRec(groups=60, reduce="sum", **ablation)
    small = GPRec(groups=60, reduce="sum", group_init_stddev=0.01, **ablation)
    x = _inputs()
    default(x), small(x)
    tables = {name: np.concatenate([t.ravel() for t in layer.group_embeddings().values()])
              for name, layer in (("default", default), ("small", small))}
    # Glorot uniform over [60, 16]: std sqrt(2 / 76) ≈ 0.16; the option: a normal of 0.01.
    assert 0.14 < tables["default"].std() < 0.18
    assert 0.008 < tables["small"].std() < 0.012 and abs(tables["small"].mean()) < 0.002
    # r_g is a sum over the 60 groups, so its scale follows the tables'.
    ratio = (np.abs(small(x)["group"].numpy()).mean()
             / np.abs(default(x)["group"].numpy()).mean())
    assert 0.02 < ratio < 0.15
    clone = GPRec.from_config(small.get_config())
    assert clone.group_init_stddev == 0.01 and GPRec().group_init_stddev is None
    with pytest.raises(ValueError, match="group_init_stddev"):
        GPRec(group_init_stddev=0.0)


@pytest.mark.parametrize("reduce,strategy", [("sum", "input"), ("concat", "input"),
                                             ("concat", "dp"), ("sum", "ensemble"),
                                             ("concat", "ensemble")])
def test_noise_free_prediction_reads_the_inference_masks_in_training(reduce, strategy):
    x = _inputs()
    noisy = GPRec(groups=8, reduce=reduce, strategy=strategy, dropout=0.0)
    clean = GPRec(groups=8, reduce=reduce, strategy=strategy, dropout=0.0,
                  noisy_prediction=False)
    noisy(x), clean(x)
    clean.set_weights(noisy.get_weights())
    inference = clean(x, training=False)["logit"].numpy()
    first, second = clean(x, training=True), clean(x, training=True)
    # The prediction path sees no Gumbel noise: training logits are the inference logits,
    # while the sampled masks (and the r_g they make for the auxiliary terms) still vary.
    np.testing.assert_allclose(first["logit"].numpy(), inference, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(second["logit"].numpy(), inference, rtol=1e-5, atol=1e-6)
    assert np.abs(first["masks"].numpy() - second["masks"].numpy()).max() > 0.01
    assert np.abs(noisy(x, training=True)["logit"].numpy() - inference).max() > 1e-4
    # The classifier still trains, through both the clean path and the auxiliary terms.
    with tf.GradientTape() as tape:
        out = clean(x, training=True)
        loss = tf.reduce_mean(out["logit"]) + tf.add_n(list(out["losses"].values()))
    grads = tape.gradient(loss, clean.classifier.trainable_weights)
    assert all(g is not None and float(tf.norm(g)) > 0 for g in grads)
    assert GPRec.from_config(clean.get_config()).noisy_prediction is False


@pytest.mark.parametrize("build, message", [
    (lambda: GroupClassifier(groups=0), r"GroupClassifier: groups must be >= 1, got 0"),
    (lambda: GroupClassifier(outputs=0), r"GroupClassifier: outputs must be >= 1, got 0"),
    (lambda: GroupClassifier(4, outputs=3).difference(tf.zeros([2, 3, 4])),
     r"GroupClassifier\.difference needs outputs=2"),
    (lambda: GumbelMask(0.0), r"GumbelMask: temperature must be > 0, got 0\.0"),
    (lambda: DualGroupEmbedding(reduce="max"),
     r"DualGroupEmbedding: reduce must be one of \('concat', 'sum', 'mean'\), got 'max'"),
    (lambda: DualGroupEmbedding(4, 2, reduce="sum").factored(tf.zeros([2, 4])),
     r"DualGroupEmbedding\.factored needs reduce='concat'"),
    (lambda: DynamicParameterStrategy(rank=0),
     r"DynamicParameterStrategy: rank must be >= 1, got 0"),
    (lambda: EnsembleStrategy(average="max"),
     r"EnsembleStrategy: average must be one of \('probability', 'logit'\), got 'max'"),
    (lambda: EnsembleStrategy(weights="random"),
     r"EnsembleStrategy: weights must be one of \('equal', 'learned'\), got 'random'"),
    (lambda: EnsembleStrategy((4,))(tf.zeros([2, 4]), tf.zeros([2, 3])),
     r"EnsembleStrategy needs the group head's and the backbone's logits"),
    (lambda: EnsembleStrategy((4,))(tf.zeros([2, 4]), tf.zeros([2, 3]),
                                    group_logit=tf.zeros([2, 1])),
     r"EnsembleStrategy needs the group head's and the backbone's logits"),
    (lambda: EnsembleStrategy((4,))(tf.zeros([2, 4]), tf.zeros([2, 3]),
                                    backbone_logit=tf.zeros([2, 1])),
     r"EnsembleStrategy needs the group head's and the backbone's logits"),
    (lambda: strategies.get("stacked"),
     r"unknown GPRec strategy 'stacked'; valid choices are \['input', 'dp', 'ensemble'\]"),
])
def test_each_refusal_names_the_layer_and_the_reason(build, message):
    # The whole message, on a line of its own (Keras prefixes errors raised in `call`).
    with pytest.raises(ValueError, match=rf"(?m)^{message}$"):
        build()


def test_defaults_are_the_documented_ones():
    """The defaults docs/gprec.md states (the paper's, where it gives one)."""
    assert GroupClassifier().groups == 60 and GroupClassifier().hidden_units == (16,)
    assert GroupClassifier().outputs == 2
    assert GumbelMask().temperature == 0.5
    dual = DualGroupEmbedding()
    assert (dual.groups, dual.embedding_dim, dual.reduce) == (60, 16, "concat")
    single = SingleGroupEmbedding()
    assert (single.groups, single.embedding_dim) == (60, 16)
    assert IndividualPreference(8).hidden_units == (64,)
    assert OrthogonalLoss().epsilon == 1e-8
    for layer in (InputStrategy(), DynamicParameterStrategy(), EnsembleStrategy()):
        assert layer.hidden_units == (64, 32, 16), type(layer).__name__
        assert layer.get_config()["dropout"] == 0.2, type(layer).__name__
        assert layer.get_config()["output_bias"] == 0.0, type(layer).__name__
    # Layers without weights are built when created (saving warns about unbuilt layers).
    assert GumbelMask().built is True and OrthogonalLoss().built is True
    assert DynamicParameterStrategy().rank == 16
    ensemble = EnsembleStrategy()
    assert (ensemble.average, ensemble.weights_kind, ensemble.backbone_gradient) == (
        "probability", "equal", True)


@pytest.mark.parametrize("cls", [GroupClassifier, GumbelMask, DualGroupEmbedding,
                                 SingleGroupEmbedding, IndividualPreference, OrthogonalLoss,
                                 InputStrategy, DynamicParameterStrategy, EnsembleStrategy,
                                 GPRec])
def test_layers_are_registered_under_the_package_name(cls):
    assert keras.utils.get_registered_name(cls) == f"tfrs_userlevel>{cls.__name__}"


@pytest.mark.parametrize("which", ["groups", "individual"])
def test_orthogonal_loss_takes_one_factored_and_one_built_representation(which):
    groups, individual, _ = _factored_pair(5, batch=6, groups=3, dim=2, hidden_width=4)
    r_g, r_p = groups.materialize().numpy(), individual.materialize().numpy()
    cosine = np.abs((r_g * r_p).sum(-1)) / (np.linalg.norm(r_g, axis=-1)
                                            * np.linalg.norm(r_p, axis=-1))
    pair = (groups, tf.constant(r_p)) if which == "groups" else (tf.constant(r_g), individual)
    assert float(OrthogonalLoss()(*pair)) == pytest.approx(cosine.mean(), rel=1e-5)


def _weight_names(layer):
    return [w.name.split("/")[-1].split(":")[0] for w in layer.weights]


def test_weights_keep_their_checkpoint_names():
    """Checkpoints and TensorBoard histograms find the weights by these names."""
    classifier = GroupClassifier(4, (3,))
    classifier(tf.zeros([2, 5]))
    assert _weight_names(classifier) == ["kernel_0", "bias_0", "kernel_1", "bias_1"]
    dual = DualGroupEmbedding(4, 2)
    dual(tf.zeros([2, 4, 2]))
    assert _weight_names(dual) == ["positive", "negative"]
    single = SingleGroupEmbedding(4, 2)
    single(tf.zeros([2, 4]))
    assert _weight_names(single) == ["table"]
    dp = DynamicParameterStrategy((4, 2), rank=2)
    dp.build(tf.TensorShape([None, 6]))
    assert _weight_names(dp)[:6] == ["u_0", "v_0", "b_0", "u_1", "v_1", "b_1"]
    ensemble = EnsembleStrategy((4,), weights="learned")
    ensemble.build(tf.TensorShape([None, 6]))
    assert _weight_names(ensemble) == ["mixing"]


@pytest.mark.parametrize("hidden, shared", [((4,), False), ((4, 3), False), ((6,), True),
                                            ((6, 4), True), ((), False)])
def test_score_difference_equals_the_two_scores_with_nonzero_biases(hidden, shared):
    layer = GroupClassifier(groups=5, hidden_units=hidden, shared_hidden=shared)
    user = _inputs()["user"]
    layer(user)
    randomize_weights(layer, seed=11, scale=0.5)  # biases non-zero, unlike at the start
    scores = layer(user).numpy()
    np.testing.assert_allclose(layer.difference(user).numpy(),
                               scores[..., 0] - scores[..., 1], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("fan_in, hidden", [(9, (4,)), (3, (40,))])
def test_classifier_weights_start_glorot_uniform_per_group(fan_in, hidden):
    layer = GroupClassifier(groups=6, hidden_units=hidden)
    layer(tf.zeros([2, fan_in]))
    widths = (fan_in, *hidden, 2)
    layers = zip(widths[:-1], widths[1:], strict=True)
    for kernel, (n_in, n_out) in zip(layer.kernels, layers, strict=True):
        limit = np.sqrt(6.0 / (n_in + n_out))  # one group's layer, not the stacked kernel
        values = kernel.numpy()
        assert np.abs(values).max() <= limit
        assert np.abs(values).max() > 0.8 * limit  # the whole range is used
    assert all(np.all(b.numpy() == 0) for b in layer.biases)


def test_factored_norms_of_vectors_shorter_than_one():
    # Squared norms below 1 (small tables and weights) must not be clamped upward.
    groups, individual, parts = _factored_pair(7, batch=8, groups=3, dim=2, hidden_width=4)
    from tfrs_userlevel.gprec.factored import AffineOutput, MaskedGroups
    small_groups = MaskedGroups(parts["inside"], 0.05 * parts["negative"],
                                0.05 * parts["positive"])
    small_individual = AffineOutput(parts["hidden"], 0.02 * parts["kernel"],
                                    0.02 * parts["bias"])
    r_g, r_p = small_groups.materialize().numpy(), small_individual.materialize().numpy()
    assert (r_g ** 2).sum(-1).max() < 1 and (r_p ** 2).sum(-1).max() < 1
    cosine = np.abs((r_g * r_p).sum(-1)) / (np.linalg.norm(r_g, axis=-1)
                                            * np.linalg.norm(r_p, axis=-1))
    loss = float(OrthogonalLoss(epsilon=1e-12)(small_groups, small_individual))
    assert loss == pytest.approx(cosine.mean(), rel=1e-3)


def test_dynamic_parameter_sublayers_keep_their_checkpoint_names():
    dp = DynamicParameterStrategy((4,), rank=2)
    dp(tf.zeros([2, 6]), tf.zeros([2, 5]), tf.zeros([2, 5]), tf.zeros([2, 1, 3]))
    scopes = {w.name.split("/")[1] for w in dp.weights if w.name.count("/") >= 2}
    assert {"generator", "output"} <= scopes, sorted(w.name for w in dp.weights)


def test_a_single_group_is_a_valid_classifier():
    assert GroupClassifier(groups=1, hidden_units=(2,))(tf.zeros([2, 3])).shape == (2, 1, 2)
