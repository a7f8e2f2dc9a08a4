"""DESTINE (Xu et al., "Disentangled Self-Attentive Neural Networks for Click-Through
Rate Prediction", CIKM 2021)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tfrs_userlevel.backbones.base import Backbone, flatten_fields
from tfrs_userlevel.backbones.mlp import DeepNetwork, deep_options
from tfrs_userlevel.backend import keras, tf


@keras.utils.register_keras_serializable(package="tfrs_userlevel")
class DisentangledSelfAttention(keras.layers.Layer):
    """One disentangled self-attention layer over the fields.

    Per head, with q_i, k_j, v_j the projections of fields i, j and μ_q, μ_k
    the means of q and k over the fields:

      a_ij = softmax_j((q_i − μ_q)ᵀ(k_j − μ_k) / √d_h) + softmax_j(u_hᵀ x_j)
      out_i = relu(Σ_j a_ij v_j ‖_heads + W_r x_i)

    The first term is the whitened pairwise interaction, the second the
    unary term (how much field j matters to every field), as the paper
    disentangles them; W_r is the residual projection.

    Reading chosen for the heads: the attention size is split across heads
    (d_h = attention_dim / heads, heads concatenated), as in the Transformer,
    so the cost does not grow with the number of heads. The unary projection
    u_h reads the layer input x_j (one scalar per head and field).

    Args:
      attention_dim: Total width of q, k, v (and of the output).
      heads: Number of heads; must divide attention_dim.
      residual: Add the projected input W_r x_i.
      layer_norm: Layer-normalize the output.

    Call:
      x: float32 [B, F, D_in].

    Returns:
      float32 [B, F, attention_dim].
    """

    def __init__(self, attention_dim: int = 32, heads: int = 2, residual: bool = True,
                 layer_norm: bool = False, **kwargs):
        super().__init__(**kwargs)
        if attention_dim % heads:
            raise ValueError(f"DisentangledSelfAttention: heads ({heads}) must divide "
                             f"attention_dim ({attention_dim})")
        self.attention_dim, self.heads = int(attention_dim), int(heads)
        self.residual, self.layer_norm = bool(residual), bool(layer_norm)
        self.qkv = keras.layers.Dense(3 * self.attention_dim, use_bias=False, name="qkv")
        self.unary = keras.layers.Dense(self.heads, use_bias=False, name="unary")
        self.project_residual = (keras.layers.Dense(self.attention_dim, use_bias=False,
                                                    name="residual") if residual else None)
        self.norm = keras.layers.LayerNormalization(name="norm") if layer_norm else None

    def _split_heads(self, x: tf.Tensor) -> tf.Tensor:
        fields = x.shape[1]
        x = tf.reshape(x, [-1, fields, self.heads, self.attention_dim // self.heads])
        return tf.transpose(x, [0, 2, 1, 3])  # [B, heads, F, d_h]

    def call(self, x: tf.Tensor) -> tf.Tensor:
        fields = x.shape[1]
        query, key, value = (self._split_heads(t) for t in tf.split(self.qkv(x), 3, axis=-1))
        query = query - tf.reduce_mean(query, axis=2, keepdims=True)
        key = key - tf.reduce_mean(key, axis=2, keepdims=True)
        scale = float(self.attention_dim // self.heads) ** -0.5
        pairwise = tf.nn.softmax(tf.matmul(query, key, transpose_b=True) * scale, axis=-1)
        unary = tf.nn.softmax(tf.transpose(self.unary(x), [0, 2, 1]), axis=-1)  # [B, heads, F]
        weights = pairwise + unary[:, :, None, :]
        out = tf.matmul(weights, value)  # [B, heads, F, d_h]
        out = tf.reshape(tf.transpose(out, [0, 2, 1, 3]), [-1, fields, self.attention_dim])
        if self.project_residual is not None:
            out = out + self.project_residual(x)
        out = tf.nn.relu(out)
        return self.norm(out) if self.norm is not None else out

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "attention_dim": self.attention_dim,
                "heads": self.heads, "residual": self.residual, "layer_norm": self.layer_norm}


@keras.utils.register_keras_serializable(package="tfrs_userlevel")
class DESTINEBackbone(Backbone):
    """Stacked disentangled self-attention beside a DNN.

    h = [flatten(attention^L(E)), DNN(flatten(E))]; logit = w·h + b (the paper's
    output layer over the attended fields, plus the parallel DNN that its
    experiments add).

    Args:
      attention_layers: L.
      attention_dim, heads, residual, layer_norm: of every attention layer.
      hidden_units, activation, dropout, batch_norm: of the DNN.
      output_bias: Initial head bias.

    Call / Returns: see `Backbone`; h is [B, F·attention_dim + hidden_units[-1]].
    """

    def __init__(self, attention_layers: int = 2, attention_dim: int = 32, heads: int = 2,
                 residual: bool = True, layer_norm: bool = False,
                 hidden_units: Sequence[int] = (64, 32, 16), activation: str = "relu",
                 dropout: float = 0.2, batch_norm: bool = False, **kwargs):
        super().__init__(**kwargs)
        if attention_layers < 1:
            raise ValueError(f"DESTINEBackbone: attention_layers must be >= 1, "
                             f"got {attention_layers}")
        self.attention = [DisentangledSelfAttention(attention_dim, heads, residual, layer_norm,
                                                    name=f"attention_{i}")
                          for i in range(int(attention_layers))]
        self.deep = DeepNetwork(hidden_units, activation, dropout, batch_norm, name="deep")

    def hidden_state(self, embeddings, training=False):
        attended = embeddings
        for layer in self.attention:
            attended = layer(attended)
        return tf.concat([flatten_fields(attended),
                          self.deep(flatten_fields(embeddings), training=training)], axis=1)

    def get_config(self) -> dict[str, Any]:
        first = self.attention[0]
        return {**super().get_config(), "attention_layers": len(self.attention),
                "attention_dim": first.attention_dim, "heads": first.heads,
                "residual": first.residual, "layer_norm": first.layer_norm,
                **deep_options(self.deep)}
