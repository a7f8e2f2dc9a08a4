"""DeepFM (Guo et al., "DeepFM: A Factorization-Machine based Neural Network for CTR
Prediction", IJCAI 2017)."""

from __future__ import annotations

from tfrs_userlevel.backbones.wide_deep import WideDeepBackbone
from tfrs_userlevel.backend import keras, tf


def fm_pairwise(embeddings: tf.Tensor) -> tf.Tensor:
    """Σ_{i<j} <e_i, e_j> in O(F·d): ½·Σ_k[(Σ_i e_ik)² − Σ_i e_ik²]. [B, F, d] -> [B, 1]."""
    square_of_sum = tf.square(tf.reduce_sum(embeddings, axis=1))
    sum_of_square = tf.reduce_sum(tf.square(embeddings), axis=1)
    return 0.5 * tf.reduce_sum(square_of_sum - sum_of_square, axis=1, keepdims=True)


@keras.utils.register_keras_serializable(package="tfrs_userlevel")
class DeepFMBackbone(WideDeepBackbone):
    """logit = Σ_f w_{x_f} + Σ_{i<j} <e_i, e_j> + w·DNN(flatten(E)) + b.

    The FM part (first order plus pairwise inner products) and the deep part
    share the field embeddings E, as in the paper.

    Args:
      hidden_units, activation, dropout, batch_norm: of the deep part.
      output_bias: Initial head bias.

    Call / Returns: see `Backbone`; h = DNN output [B, hidden_units[-1]].
    """

    def extra_logit(self, embeddings, hidden, first_order, training=False):
        wide = super().extra_logit(embeddings, hidden, first_order, training=training)
        return wide + fm_pairwise(embeddings)
