"""GDCN, the gated deep cross network (Wang et al., "Towards Deeper, Lighter and
Interpretable Cross Network for CTR Prediction", CIKM 2023)."""

from __future__ import annotations

from typing import Any

from tfrs_userlevel.backbones.dcn import CrossDeepBackbone
from tfrs_userlevel.backend import keras, tf


@keras.utils.register_keras_serializable(package="tfrs_userlevel")
class GatedCrossNetwork(keras.layers.Layer):
    """Gated cross layers: c_{l+1} = c_0 ⊙ (W_c c_l + b_c) ⊙ σ(W_g c_l) + c_l.

    The information gate σ(W_g c_l) weighs each crossed feature per example
    (paper eq. 2); it is what lets the network go deep without the
    higher-order crosses drowning the signal.

    Args:
      layers: Number of gated cross layers.

    Call:
      x0: float32 [B, D].

    Returns:
      float32 [B, D].
    """

    def __init__(self, layers: int = 3, **kwargs):
        super().__init__(**kwargs)
        if layers < 1:
            raise ValueError(f"GatedCrossNetwork: layers must be >= 1, got {layers}")
        self.depth = int(layers)

    def build(self, input_shape):
        dim = int(input_shape[-1])
        self.params = []
        for i in range(self.depth):
            self.params.append((
                self.add_weight(name=f"cross_kernel_{i}", shape=(dim, dim),
                                initializer="glorot_uniform"),
                self.add_weight(name=f"cross_bias_{i}", shape=(dim,), initializer="zeros"),
                self.add_weight(name=f"gate_kernel_{i}", shape=(dim, dim),
                                initializer="glorot_uniform"),
            ))
        super().build(input_shape)

    def call(self, x0: tf.Tensor) -> tf.Tensor:
        x = x0
        for cross_kernel, cross_bias, gate_kernel in self.params:
            # One matmul for both projections of c_l.
            both = tf.matmul(x, tf.concat([cross_kernel, gate_kernel], axis=1))
            crossed, gate = tf.split(both, 2, axis=1)
            x = x0 * (crossed + cross_bias) * tf.sigmoid(gate) + x
        return x

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "layers": self.depth}


@keras.utils.register_keras_serializable(package="tfrs_userlevel")
class GDCNBackbone(CrossDeepBackbone):
    """GDCN-P ("parallel", default) or GDCN-S ("stacked") over x0 = flatten(E).

    Reading chosen: the paper's field-level dimension optimisation (FDO,
    shrinking each field's embedding size) is an embedding-size choice made
    outside the network; with the uniform d = 16 of the defaults it is not applied.

    Args:
      cross_layers: Number of gated cross layers.
      structure: "parallel" (h = [GCN(x0), DNN(x0)]) or "stacked" (h = DNN(GCN(x0))).
      hidden_units, activation, dropout, batch_norm: of the deep part.
      output_bias: Initial head bias.

    Call / Returns: see `Backbone`.
    """

    def __init__(self, cross_layers: int = 3, **kwargs):
        super().__init__(GatedCrossNetwork(cross_layers, name="cross"), **kwargs)
