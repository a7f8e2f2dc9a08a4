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


class CrossDeepBackbone(Backbone):
    """Shared body of the DCN family: a cross network and a DNN over x0 = flatten(E).

    Args:
      cross: The cross network layer ([B, D] -> [B, D]).
      structure: "parallel" (h = [cross(x0), DNN(x0)]) or "stacked" (h = DNN(cross(x0))).
      hidden_units, activation, dropout, batch_norm: of the DNN.
    """

    def __init__(self, cross: keras.layers.Layer, structure: str = "parallel",
                 hidden_units: Sequence[int] = (64, 32, 16), activation: str = "relu",
                 dropout: float = 0.2, batch_norm: bool = False, **kwargs):
        super().__init__(**kwargs)
        if structure not in STRUCTURES:
            raise ValueError(f"{type(self).__name__}: structure must be one of {STRUCTURES}, "
                             f"got {structure!r}")
        self.structure = structure
        self.cross = cross
        self.deep = DeepNetwork(hidden_units, activation, dropout, batch_norm, name="deep")

    def hidden_state(self, embeddings, training=False):
        x0 = flatten_fields(embeddings)
        if self.structure == "stacked":
            return self.deep(self.cross(x0), training=training)
        return tf.concat([self.cross(x0), self.deep(x0, training=training)], axis=1)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "cross_layers": self.cross.depth,
                "structure": self.structure, **deep_options(self.deep)}


@keras.utils.register_keras_serializable(package="tfrs_userlevel")
class DCNBackbone(CrossDeepBackbone):
    """h = [CrossNetwork(x0), DNN(x0)] with x0 = flatten(E); logit = w·h + b.

    The paper's combination layer is this concatenation followed by the
    logistic output (the head). `structure="stacked"` (DNN over the cross
    output) is not in the DCN paper; it is offered as in DCN-V2.

    Args:
      cross_layers: L.
      structure: "parallel" (the paper) or "stacked".
      hidden_units, activation, dropout, batch_norm: of the deep part.
      output_bias: Initial head bias.

    Call / Returns: see `Backbone`; h is [B, F·d + hidden_units[-1]] (parallel).
    """

    def __init__(self, cross_layers: int = 3, **kwargs):
        super().__init__(CrossNetwork(cross_layers, name="cross"), **kwargs)
