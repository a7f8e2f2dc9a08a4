"""The MLP backbone (DNN), and the dense block every deep component reuses."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tfrs_userlevel.backbones.base import Backbone, flatten_fields
from tfrs_userlevel.backend import keras, tf


@keras.utils.register_keras_serializable(package="tfrs_userlevel")
class DeepNetwork(keras.layers.Layer):
    """Dense → [batch norm] → activation → [dropout], per hidden width.

    Args:
      hidden_units: Widths of the dense layers (default 64-32-16).
      activation: Activation of every layer.
      dropout: Dropout rate after every layer (training only).
      batch_norm: Batch normalization before each activation.

    Call:
      x: float32 [B, D].
      gates: Optional per-layer gates (UDG, eq. 7): a list of float32
        [B, width_l], one per dense layer, that multiply that layer's input
        (width_0 = D, then hidden_units[:-1]), with None for a layer left
        ungated; or a callable that takes the list of widths and returns that
        list (so a gating layer can size its outputs from the actual input
        width).

    Returns:
      float32 [B, hidden_units[-1]].
    """

    def __init__(self, hidden_units: Sequence[int] = (64, 32, 16), activation: str = "relu",
                 dropout: float = 0.2, batch_norm: bool = False, **kwargs):
        super().__init__(**kwargs)
        if not hidden_units:
            raise ValueError("DeepNetwork: hidden_units must name at least one layer")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"DeepNetwork: dropout must lie in [0, 1), got {dropout}")
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

    def input_widths(self, input_width: int) -> list[int]:
        """The input width of each dense layer, for an input of `input_width`."""
        return [int(input_width), *self.hidden_units[:-1]]

    def call(self, x: tf.Tensor, training: bool = False, gates=None) -> tf.Tensor:
        if callable(gates):
            gates = gates(self.input_widths(x.shape[-1]))
        if gates is not None and len(gates) != len(self.hidden_units):
            raise ValueError(f"DeepNetwork: got {len(gates)} gates for "
                             f"{len(self.hidden_units)} layers")
        dense = 0
        for layer in self._layers:
            if gates is not None and isinstance(layer, keras.layers.Dense):
                if gates[dense] is not None:
                    x = x * gates[dense]
                dense += 1
            x = layer(x, training=training)
        return x

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "hidden_units": list(self.hidden_units),
                "activation": self.activation, "dropout": self.dropout,
                "batch_norm": self.batch_norm}


@keras.utils.register_keras_serializable(package="tfrs_userlevel")
class MLPBackbone(Backbone):
    """h = DNN(flatten(E)); logit = w·h + b.

    Args:
      hidden_units, activation, dropout, batch_norm: of the `DeepNetwork`.
      output_bias: Initial head bias.

    Call / Returns: see `Backbone`; h is float32 [B, hidden_units[-1]].
    """

    def __init__(self, hidden_units: Sequence[int] = (64, 32, 16), activation: str = "relu",
                 dropout: float = 0.2, batch_norm: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.deep = DeepNetwork(hidden_units, activation, dropout, batch_norm, name="deep")

    requires = frozenset({"gates"})

    def hidden_state(self, embeddings, training=False, gates=None):
        return self.deep(flatten_fields(embeddings), training=training, gates=gates)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), **deep_options(self.deep)}


def deep_options(deep: DeepNetwork) -> dict[str, Any]:
    """The constructor options of a backbone's `DeepNetwork`, for its get_config."""
    config = deep.get_config()
    return {k: config[k] for k in ("hidden_units", "activation", "dropout", "batch_norm")}
