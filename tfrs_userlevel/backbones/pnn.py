"""Product-based neural networks, IPNN and OPNN (Qu et al., "Product-based Neural
Networks for User Response Prediction", ICDM 2016)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tfrs_userlevel.backbones.base import Backbone, flatten_fields
from tfrs_userlevel.backbones.mlp import DeepNetwork, deep_options
from tfrs_userlevel.backend import keras, tf

PRODUCTS = ("inner", "outer")


def pairwise_inner(embeddings: tf.Tensor) -> tf.Tensor:
    """<e_i, e_j> for every pair i < j. [B, F, d] -> [B, F(F−1)/2]."""
    fields = embeddings.shape[1]
    gram = tf.reshape(tf.matmul(embeddings, embeddings, transpose_b=True), [-1, fields * fields])
    rows, cols = np.triu_indices(fields, k=1)
    return tf.gather(gram, rows * fields + cols, axis=1)


def superposed_outer(embeddings: tf.Tensor) -> tf.Tensor:
    """Upper triangle of f_Σ f_Σᵀ with f_Σ = Σ_i e_i. [B, F, d] -> [B, d(d+1)/2]."""
    total = tf.reduce_sum(embeddings, axis=1)
    dim = total.shape[1]
    outer = tf.reshape(total[:, :, None] * total[:, None, :], [-1, dim * dim])
    rows, cols = np.triu_indices(dim)
    return tf.gather(outer, rows * dim + cols, axis=1)


@keras.utils.register_keras_serializable(package="tfrs_userlevel")
class PNNBackbone(Backbone):
    """h = DNN([z, p]) with z = flatten(E) and p the product signals.

    The paper's product layer `l_1 = relu(l_z + l_p + b_1)` is linear in z and
    in p, i.e. exactly the first dense layer over the concatenation [z, p];
    the DNN's first layer plays that role.

    - IPNN (`product="inner"`): p = <e_i, e_j> for all field pairs.
    - OPNN (`product="outer"`): the paper's superposition form
      p = f_Σ f_Σᵀ (f_Σ = Σ_i e_i), which it introduces to make the outer
      product affordable (d² instead of F²·d² signals); p is symmetric, so
      only its upper triangle is used.

    Args:
      product: "inner" (IPNN) or "outer" (OPNN).
      hidden_units, activation, dropout, batch_norm: of the DNN.
      output_bias: Initial head bias.

    Call / Returns: see `Backbone`; h = DNN output [B, hidden_units[-1]].
    """

    def __init__(self, product: str = "inner", hidden_units: Sequence[int] = (64, 32, 16),
                 activation: str = "relu", dropout: float = 0.2, batch_norm: bool = False,
                 **kwargs):
        super().__init__(**kwargs)
        if product not in PRODUCTS:
            raise ValueError(f"PNNBackbone: product must be one of {PRODUCTS}, got {product!r}")
        self.product = product
        self.deep = DeepNetwork(hidden_units, activation, dropout, batch_norm, name="deep")

    requires = frozenset({"gates"})

    def hidden_state(self, embeddings, training=False, gates=None):
        products = (pairwise_inner(embeddings) if self.product == "inner"
                    else superposed_outer(embeddings))
        return self.deep(tf.concat([flatten_fields(embeddings), products], axis=1),
                         training=training, gates=gates)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "product": self.product, **deep_options(self.deep)}
