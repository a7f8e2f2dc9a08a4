"""DIN (Zhou et al., "Deep Interest Network for Click-Through Rate Prediction", KDD 2018)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tfrs_userlevel.backbones.base import Backbone, flatten_fields
from tfrs_userlevel.backbones.mlp import DeepNetwork, deep_options
from tfrs_userlevel.backend import keras, tf


@keras.utils.register_keras_serializable(package="tfrs_userlevel")
class TargetAttention(keras.layers.Layer):
    """DIN's local activation unit: a weight per history item for the target item.

    w_j = MLP([k_j, q, k_j − q, k_j ⊙ q]) (one output), interest = Σ_j w_j·k_j
    over the real positions. As in the paper the weights are not normalised
    by a softmax (`softmax=True` normalises them, as DIEN does).

    Args:
      hidden_units: The activation unit's hidden widths (the paper's figure:
        one layer of 36).
      activation: Its activation (the paper uses PReLU/Dice; sigmoid here).
      softmax: Normalise the weights over the real positions.

    Call:
      sequence: float32 [B, L, D]; mask: bool [B, L]; query: float32 [B, D].

    Returns:
      (interest float32 [B, D], weights float32 [B, L]; 0 at padding).
    """

    def __init__(self, hidden_units: Sequence[int] = (36,), activation: str = "sigmoid",
                 softmax: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.hidden_units = tuple(int(u) for u in hidden_units)
        self.activation = activation
        self.softmax = bool(softmax)
        self.unit = keras.Sequential(
            [keras.layers.Dense(u, activation=activation) for u in self.hidden_units]
            + [keras.layers.Dense(1)], name="activation_unit")

    def call(self, sequence: tf.Tensor, mask: tf.Tensor, query: tf.Tensor):
        length = tf.shape(sequence)[1]
        q = tf.tile(query[:, None, :], [1, length, 1])
        scores = tf.squeeze(self.unit(tf.concat([sequence, q, sequence - q, sequence * q],
                                                axis=-1)), axis=-1)       # [B, L]
        if self.softmax:
            scores = tf.where(mask, scores, tf.fill(tf.shape(scores), -1e9))
            weights = tf.nn.softmax(scores, axis=1) * tf.cast(mask, tf.float32)
        else:
            weights = scores * tf.cast(mask, tf.float32)
        return tf.reduce_sum(weights[..., None] * sequence, axis=1), weights

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "hidden_units": list(self.hidden_units),
                "activation": self.activation, "softmax": self.softmax}


@keras.utils.register_keras_serializable(package="tfrs_userlevel")
class DINBackbone(Backbone):
    """h = DNN([flatten(E), Σ_j w_j(q)·k_j]): the field embeddings (the pooled
    history among them) plus the target-attended interest over the click history.

    History positions and the target item are embedded alike: the item id's
    embedding concatenated with its attributes' (genres).

    Args:
      attention_units, attention_activation, softmax: of `TargetAttention`.
      hidden_units, activation, dropout, batch_norm: of the prediction MLP.
      output_bias: Initial head bias.

    Call / Returns: see `Backbone` (needs `behavior`); h [B, hidden_units[-1]].
    """

    requires = frozenset({"behavior", "gates"})

    def __init__(self, attention_units: Sequence[int] = (36,),
                 attention_activation: str = "sigmoid", softmax: bool = False,
                 hidden_units: Sequence[int] = (64, 32, 16), activation: str = "relu",
                 dropout: float = 0.2, batch_norm: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.attention = TargetAttention(attention_units, attention_activation, softmax,
                                         name="attention")
        self.deep = DeepNetwork(hidden_units, activation, dropout, batch_norm, name="deep")

    def hidden_state(self, embeddings, training=False, gates=None, behavior=None):
        interest, _ = self.attention(behavior["sequence"], behavior["mask"], behavior["query"])
        return self.deep(tf.concat([flatten_fields(embeddings), interest], axis=1),
                         training=training, gates=gates)

    def get_config(self) -> dict[str, Any]:
        attention = self.attention.get_config()
        return {**super().get_config(), **deep_options(self.deep),
                "attention_units": attention["hidden_units"],
                "attention_activation": attention["activation"],
                "softmax": attention["softmax"]}
