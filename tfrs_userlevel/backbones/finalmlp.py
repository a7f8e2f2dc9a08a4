"""FinalMLP (Mao et al., "FinalMLP: An Enhanced Two-Stream MLP Model for CTR
Prediction", AAAI 2023)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tfrs_userlevel.backbones.base import Backbone, flatten_fields
from tfrs_userlevel.backbones.mlp import DeepNetwork
from tfrs_userlevel.backend import keras, tf


@keras.utils.register_keras_serializable(package="tfrs_userlevel")
class FeatureSelection(keras.layers.Layer):
    """Stream-specific feature gating: x_k = 2·σ(MLP_k(c_k)) ⊙ flatten(E), k = 1, 2.

    c_k is the flattened embeddings of the stream's context fields, or, when
    a stream names none, a learnable vector of size d (zeros at the start,
    so every gate starts at 1 and the two streams see the same input).

    Args:
      context_fields: Two lists of field positions (possibly empty).
      hidden_units: Hidden widths of each gate MLP (the paper's fs_hidden_units).

    Call:
      embeddings: float32 [B, F, d].

    Returns:
      (x_1, x_2): float32 [B, F·d] each.
    """

    def __init__(self, context_fields: Sequence[Sequence[int]] = ((), ()),
                 hidden_units: Sequence[int] = (64,), **kwargs):
        super().__init__(**kwargs)
        if len(context_fields) != 2:
            raise ValueError("FeatureSelection: context_fields needs one list per stream (2)")
        self.context_fields = [[int(i) for i in fields] for fields in context_fields]
        self.hidden_units = tuple(int(u) for u in hidden_units)

    def build(self, input_shape):
        fields, dim = int(input_shape[1]), int(input_shape[2])
        for positions in self.context_fields:
            bad = [i for i in positions if not 0 <= i < fields]
            if bad:
                raise ValueError(f"FeatureSelection: context field positions {bad} are outside "
                                 f"the {fields} fields")
        self.default_contexts = [
            self.add_weight(name=f"context_{k}", shape=(1, dim), initializer="zeros")
            if not positions else None
            for k, positions in enumerate(self.context_fields)]
        # One flat list (Keras' .keras format does not restore layers in nested lists).
        self.gate_layers = []
        for k in range(2):
            self.gate_layers += [keras.layers.Dense(u, activation="relu",
                                                    name=f"gate_{k}_hidden_{i}")
                                 for i, u in enumerate(self.hidden_units)]
            self.gate_layers.append(keras.layers.Dense(fields * dim, name=f"gate_{k}_output"))
        super().build(input_shape)

    def call(self, embeddings: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        flat = flatten_fields(embeddings)
        outputs = []
        per_gate = len(self.hidden_units) + 1
        gates = [self.gate_layers[:per_gate], self.gate_layers[per_gate:]]
        for positions, default, layers in zip(self.context_fields, self.default_contexts,
                                              gates, strict=True):
            if positions:
                context = flatten_fields(tf.gather(embeddings, positions, axis=1))
            else:
                context = tf.tile(default, [tf.shape(flat)[0], 1])
            for layer in layers:
                context = layer(context)
            outputs.append(2.0 * tf.sigmoid(context) * flat)
        return outputs[0], outputs[1]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "context_fields": self.context_fields,
                "hidden_units": list(self.hidden_units)}


@keras.utils.register_keras_serializable(package="tfrs_userlevel")
class FinalMLPBackbone(Backbone):
    """Two MLP streams over feature-selected inputs, joined by multi-head bilinear fusion.

    o_k = MLP_k(x_k); logit = b + w_1ᵀo_1 + w_2ᵀo_2 + Σ_j o_{1,j}ᵀ W_j o_{2,j}, where
    o_{k,j} is head j's slice of o_k (paper eq. 8). h = [o_1, o_2]; the linear
    terms and b are the head w·h + b, the bilinear sum is the extra logit.

    Args:
      stream1_units, stream2_units: Widths of the two stream MLPs.
      heads: Number of fusion heads; must divide both streams' output widths.
      selection_units: Hidden widths of the feature-selection gates.
      context_fields: Field positions conditioning each stream's gate (see
        `FeatureSelection`); by default both use a learnable vector.
      activation, dropout, batch_norm: of both streams.
      hidden_units: Accepted as the default width of both streams, so that
        the CLI's --hidden-units applies here too.
      output_bias: Initial head bias.

    Call / Returns: see `Backbone`; h is [B, stream1_units[-1] + stream2_units[-1]].
    """

    def __init__(self, hidden_units: Sequence[int] = (64, 32, 16),
                 stream1_units: Sequence[int] | None = None,
                 stream2_units: Sequence[int] | None = None, heads: int = 1,
                 selection_units: Sequence[int] = (64,),
                 context_fields: Sequence[Sequence[int]] = ((), ()), activation: str = "relu",
                 dropout: float = 0.2, batch_norm: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.hidden_units = tuple(int(u) for u in hidden_units)
        stream1_units = tuple(int(u) for u in (stream1_units or self.hidden_units))
        stream2_units = tuple(int(u) for u in (stream2_units or self.hidden_units))
        for units in (stream1_units, stream2_units):
            if not units or units[-1] % heads:
                raise ValueError(f"FinalMLPBackbone: heads ({heads}) must divide each stream's "
                                 f"output width, got streams {stream1_units} and {stream2_units}")
        self.heads = int(heads)
        self.activation, self.dropout, self.batch_norm = activation, float(dropout), batch_norm
        self.selection = FeatureSelection(context_fields, selection_units, name="selection")
        self.stream1 = DeepNetwork(stream1_units, activation, dropout, batch_norm, name="stream1")
        self.stream2 = DeepNetwork(stream2_units, activation, dropout, batch_norm, name="stream2")

    def build(self, input_shape):
        size1 = self.stream1.output_dim // self.heads
        size2 = self.stream2.output_dim // self.heads
        self.bilinear = self.add_weight(name="bilinear", shape=(self.heads, size1, size2),
                                        initializer="glorot_uniform")
        super().build(input_shape)

    def hidden_state(self, embeddings, training=False):
        x1, x2 = self.selection(embeddings)
        return tf.concat([self.stream1(x1, training=training),
                          self.stream2(x2, training=training)], axis=1)

    def extra_logit(self, embeddings, hidden, first_order, training=False):
        o1, o2 = tf.split(hidden, [self.stream1.output_dim, self.stream2.output_dim], axis=1)
        o1 = tf.reshape(o1, [-1, self.heads, self.stream1.output_dim // self.heads])
        o2 = tf.reshape(o2, [-1, self.heads, self.stream2.output_dim // self.heads])
        return tf.einsum("bhi,hij,bhj->b", o1, self.bilinear, o2)[:, None]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "hidden_units": list(self.hidden_units),
                "stream1_units": list(self.stream1.hidden_units),
                "stream2_units": list(self.stream2.hidden_units), "heads": self.heads,
                "selection_units": list(self.selection.hidden_units),
                "context_fields": self.selection.context_fields,
                "activation": self.activation, "dropout": self.dropout,
                "batch_norm": self.batch_norm}
