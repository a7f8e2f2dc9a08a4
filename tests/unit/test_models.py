"""The ranking model: it learns, it round-trips, and the auxiliary-loss hook works."""


import numpy as np
import pytest

from tfrs_userlevel import tf


@pytest.mark.parametrize("num_fields, groups", [
    (8, {"item": [0, 1, 2], "user": [3, 4, 5, 6, 7], "personal": [3]}),  # ML-1M's layout
    (7, {"item": [0, 4], "user": [1, 2, 5], "personal": [6]}),          # interleaved roles
    (5, {"item": [4, 0], "user": [1, 2, 3]}),                            # out of order
])
def test_field_groups_equal_a_gather_in_values_and_gradients(num_fields, groups):
    from tfrs_userlevel.field_views import FieldViews

    views = FieldViews(num_fields, groups)
    embeddings = tf.random.stateless_normal([4, num_fields, 3], seed=[1, 2])
    weights = {k: tf.random.stateless_normal([4, len(p), 3], seed=[3, i])
               for i, (k, p) in enumerate(groups.items())}

    def loss(select):
        return sum(tf.reduce_sum(select(k, p) * weights[k]) for k, p in groups.items())

    with tf.GradientTape(persistent=True) as tape:
        tape.watch(embeddings)
        out = views(embeddings)
        split_loss = loss(lambda k, p: out[k])
        gather_loss = loss(lambda k, p: tf.gather(embeddings, p, axis=1))
    for k, p in groups.items():
        np.testing.assert_array_equal(out[k].numpy(), tf.gather(embeddings, p, axis=1).numpy())
    np.testing.assert_allclose(tape.gradient(split_loss, embeddings).numpy(),
                               tf.convert_to_tensor(tape.gradient(gather_loss, embeddings)).numpy(),
                               atol=1e-6)
