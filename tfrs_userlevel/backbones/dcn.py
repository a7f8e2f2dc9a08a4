"""DCN, the deep & cross network (Wang et al., "Deep & Cross Network for Ad Click
Predictions", ADKDD 2017)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tfrs_userlevel.backbones.base import Backbone, flatten_fields
from tfrs_userlevel.backbones.mlp import DeepNetwork, deep_options
from tfrs_userlevel.backend import keras, tf

STRUCTURES = ("parallel", "stacked")


@keras.utils.register_keras_serializable(package="tfrs_userlevel")
class CrossNetwork(keras.layers.Layer):
    """DCN's cross layers: x_{l+1} = x_0 · (x_lᵀ w_l) + b_l + x_l.

    Each layer has a weight vector w_l and bias b_l of size D (rank-one
    crossing, the v1 form).

    Args:
      layers: Number of cross layers L.

    Call:
      x0: float32 [B, D].

    Returns:
      x_L: float32 [B, D].
    """

    def __init__(self, layers: int = 3, **kwargs):
        super().__init__(**kwargs)
        if layers < 1:
            raise ValueError(f"CrossNetwork: layers must be >= 1, got {layers}")
        self.depth = int(layers)

    def build(self, input_shape):
        dim = int(input_shape[-1])
        self.weights_ = [self.add_weight(name=f"w_{i}", shape=(dim, 1),
                                         initializer="glorot_uniform")
                         for i in range(self.depth)]
        self.biases = [self.add_weight(name=f"b_{i}", shape=(dim,), initializer="zeros")
                       for i in range(self.depth)]
        super().build(input_shape)

    def call(self, x0: tf.Tensor) -> tf.Tensor:
        x = x0
        for w, b in zip(self.weights_, self.biases, strict=True):
            x = x0 * tf.matmul(x, w) + b + x
        return x

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "layers": self.depth}


def cross_and_deep(structure: str, cross, deep, x0: tf.Tensor, training: bool) -> tf.Tensor:
    """The two ways the DCN family joins its cross and deep parts.

    "parallel": h = [cross(x0), DNN(x0)]; "stacked": h = DNN(cross(x0)).
    """
    if structure == "stacked":
        return deep(cross(x0), training=training)
    return tf.concat([cross(x0), deep(x0, training=training)], axis=1)


def check_structure(owner: str, structure: str) -> str:
    if structure not in STRUCTURES:
        raise ValueError(f"{owner}: structure must be one of {STRUCTURES}, got {structure!r}")
    return structure


@keras.utils.register_keras_serializable(package="tfrs_userlevel")
class DCNBackbone(Backbone):
    """h = [CrossNetwork(x0), DNN(x0)] with x0 = flatten(E); logit = w·h + b.

    The paper's combination layer is this concatenation followed by the
    logistic output (the head).

    Args:
      cross_layers: L.
      hidden_units, activation, dropout, batch_norm: of the deep part.
      output_bias: Initial head bias.

    Call / Returns: see `Backbone`; h is [B, F·d + hidden_units[-1]].
    """

    def __init__(self, cross_layers: int = 3, hidden_units: Sequence[int] = (64, 32, 16),
                 activation: str = "relu", dropout: float = 0.2, batch_norm: bool = False,
                 **kwargs):
        super().__init__(**kwargs)
        self.cross = CrossNetwork(cross_layers, name="cross")
        self.deep = DeepNetwork(hidden_units, activation, dropout, batch_norm, name="deep")

    def hidden_state(self, embeddings, training=False):
        return cross_and_deep("parallel", self.cross, self.deep, flatten_fields(embeddings),
                              training)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "cross_layers": self.cross.depth,
                **deep_options(self.deep)}
