"""DCN-V2 (Wang et al., "DCN V2: Improved Deep & Cross Network and Practical Lessons for
Web-scale Learning to Rank Systems", WWW 2021), on `tfrs.layers.dcn.Cross`."""

from __future__ import annotations

from typing import Any

import tensorflow_recommenders as tfrs

from tfrs_userlevel.backbones.dcn import CrossDeepBackbone
from tfrs_userlevel.backend import keras, tf


@keras.utils.register_keras_serializable(package="tfrs_userlevel")
class MatrixCrossNetwork(keras.layers.Layer):
    """DCN-V2's cross layers: x_{l+1} = x_0 ⊙ (W_l x_l + b_l) + x_l, one `tfrs` `Cross` each.

    Args:
      layers: Number of cross layers.
      projection_dim: None for full-rank W_l [D, D]; r for the low-rank
        W_l = U_l V_lᵀ of the paper's §3.3.

    Call:
      x0: float32 [B, D].

    Returns:
      float32 [B, D].
    """

    def __init__(self, layers: int = 3, projection_dim: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if layers < 1:
            raise ValueError(f"MatrixCrossNetwork: layers must be >= 1, got {layers}")
        self.depth = int(layers)
        self.projection_dim = None if projection_dim is None else int(projection_dim)
        self.crosses = [tfrs.layers.dcn.Cross(projection_dim=self.projection_dim,
                                              kernel_initializer="glorot_uniform",
                                              name=f"cross_{i}")
                        for i in range(self.depth)]

    def call(self, x0: tf.Tensor) -> tf.Tensor:
        x = x0
        for cross in self.crosses:
            x = cross(x0, x)
        return x

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "layers": self.depth,
                "projection_dim": self.projection_dim}


@keras.utils.register_keras_serializable(package="tfrs_userlevel")
class DCNv2Backbone(CrossDeepBackbone):
    """DCN-V2: matrix cross network and a DNN, "parallel" or "stacked" (paper Fig. 1).

    Args:
      cross_layers: Number of cross layers.
      projection_dim: Low-rank size of each cross kernel (None: full rank).
      structure: "parallel" (h = [cross(x0), DNN(x0)]) or "stacked"
        (h = DNN(cross(x0))).
      hidden_units, activation, dropout, batch_norm: of the deep part.
      output_bias: Initial head bias.

    Call / Returns: see `Backbone`.
    """

    def __init__(self, cross_layers: int = 3, projection_dim: int | None = None, **kwargs):
        super().__init__(MatrixCrossNetwork(cross_layers, projection_dim, name="cross"),
                         **kwargs)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "projection_dim": self.cross.projection_dim}
