"""DeepFM (Guo et al., "DeepFM: A Factorization-Machine based Neural Network for CTR
Prediction", IJCAI 2017)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tfrs_userlevel.backbones.base import Backbone, flatten_fields
from tfrs_userlevel.backbones.mlp import DeepNetwork, deep_options
from tfrs_userlevel.backend import keras, tf


def fm_pairwise(embeddings: tf.Tensor) -> tf.Tensor:
    """Σ_{i<j} <e_i, e_j> in O(F·d): ½·Σ_k[(Σ_i e_ik)² − Σ_i e_ik²]. [B, F, d] -> [B, 1]."""
    square_of_sum = tf.square(tf.reduce_sum(embeddings, axis=1))
    sum_of_square = tf.reduce_sum(tf.square(embeddings), axis=1)
    return 0.5 * tf.reduce_sum(square_of_sum - sum_of_square, axis=1, keepdims=True)


@keras.utils.register_keras_serializable(package="tfrs_userlevel")
class DeepFMBackbone(Backbone):
    """logit = Σ_f w_{x_f} + Σ_{i<j} <e_i, e_j> + w·DNN(flatten(E)) + b.

    The FM part (first order plus pairwise inner products) and the deep part
    share the field embeddings E, as in the paper.

    Args:
      hidden_units, activation, dropout, batch_norm: of the deep part.
      output_bias: Initial head bias.

    Call / Returns: see `Backbone`; h = DNN output [B, hidden_units[-1]].
    """

    uses_first_order = True

    def __init__(self, hidden_units: Sequence[int] = (64, 32, 16), activation: str = "relu",
                 dropout: float = 0.2, batch_norm: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.deep = DeepNetwork(hidden_units, activation, dropout, batch_norm, name="deep")

    def hidden_state(self, embeddings, training=False):
        return self.deep(flatten_fields(embeddings), training=training)

    def extra_logit(self, embeddings, hidden, first_order, training=False):
        return tf.reduce_sum(first_order, axis=[1, 2])[:, None] + fm_pairwise(embeddings)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), **deep_options(self.deep)}
