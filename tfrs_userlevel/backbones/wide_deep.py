"""Wide & Deep (Cheng et al., "Wide & Deep Learning for Recommender Systems", DLRS 2016)."""

from __future__ import annotations

from tfrs_userlevel.backbones.mlp import MLPBackbone
from tfrs_userlevel.backend import keras, tf


@keras.utils.register_keras_serializable(package="tfrs_userlevel")
class WideDeepBackbone(MLPBackbone):
    """logit = Σ_f w_{x_f} (wide, one weight per id) + w·DNN(flatten(E)) + b.

    Reading chosen: the wide part is the linear model over every field's
    one-hot id (the paper's "raw input features"); the paper's hand-crafted
    cross-product transformations are dataset-specific and left out, as in
    the common CTR libraries. The wide and deep parts train jointly with one
    optimizer (the paper used FTRL for the wide part).

    Args:
      hidden_units, activation, dropout, batch_norm: of the deep part.
      output_bias: Initial head bias.

    Call / Returns: see `Backbone`; h = DNN output [B, hidden_units[-1]].
    """

    requires = frozenset({"first_order", "gates"})

    def extra_logit(self, embeddings, hidden, first_order, training=False):
        return tf.reduce_sum(first_order, axis=[1, 2])[:, None]
