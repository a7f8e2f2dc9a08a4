"""The MLP backbone (DNN): flattened field embeddings through dense layers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tfrs_userlevel.backend import keras, tf


@keras.utils.register_keras_serializable(package="tfrs_userlevel")
class MLPBackbone(keras.layers.Layer):
    """Dense layers over flatten(E), returning the hidden state h.

    Args:
      hidden_units: Widths of the dense layers (default 64-32-16, SPEC).
      activation: Activation of every hidden layer.
      dropout: Dropout rate after every hidden layer (training only).
      batch_norm: Batch normalization before each activation.

    Call:
      embeddings: float32 [B, F, d].

    Returns:
      h: float32 [B, hidden_units[-1]].
    """

    def __init__(self, hidden_units: Sequence[int] = (64, 32, 16), activation: str = "relu",
                 dropout: float = 0.2, batch_norm: bool = False, **kwargs):
        super().__init__(**kwargs)
        if not hidden_units:
            raise ValueError("MLPBackbone: hidden_units must name at least one layer")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"MLPBackbone: dropout must lie in [0, 1), got {dropout}")
        self.hidden_units = tuple(int(u) for u in hidden_units)
        self.activation = activation
        self.dropout = float(dropout)
        self.batch_norm = bool(batch_norm)
        self._layers = []
        for units in self.hidden_units:
            self._layers.append(keras.layers.Dense(units, use_bias=not self.batch_norm))
            if self.batch_norm:
                self._layers.append(keras.layers.BatchNormalization())
            self._layers.append(keras.layers.Activation(activation))
            if self.dropout:
                self._layers.append(keras.layers.Dropout(self.dropout))

    @property
    def output_dim(self) -> int:
        return self.hidden_units[-1]

    def call(self, embeddings: tf.Tensor, training: bool = False) -> tf.Tensor:
        hidden = tf.reshape(embeddings, [-1, embeddings.shape[1] * embeddings.shape[2]])
        for layer in self._layers:
            hidden = layer(hidden, training=training)
        return hidden

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "hidden_units": list(self.hidden_units),
                "activation": self.activation, "dropout": self.dropout,
                "batch_norm": self.batch_norm}
