"""APG: adaptive parameter generation for the prediction MLP.

Yan et al., "APG: Adaptive Parameter Generation Network for Click-Through
Rate Prediction", NeurIPS 2022. Every layer of the prediction MLP gets
per-example weights generated from a condition vector z:

* low-rank form with shared parameters: W(z) = U · S(z) · V, U [D_in, k] and
  V [k, D_out] shared by all examples, only S(z) [k, k] generated;
* over-parameterisation (optional): U = U_1·U_2 and V = V_1·V_2 with an inner
  width P > k during training (the products collapse back to U and V);
* decomposed feed-forward: y = ((x·U)·S(z))·V, never forming W(z).

The condition z: "self" = all field embeddings, the user's and the item's
(the APG paper's self-wise mode, the default: the best validation AUC on
ML-1M of user / mix / self, rank 16 / 32 and P = 0 / 64; see
results/baselines/ml1m_baselines.md), "user" = the user-field embeddings only
(user-wise parameters), "mix" = both concatenated. S(z) comes from a small MLP whose
output bias starts at the identity, so that training starts from the static
low-rank network U·V (with a zero start every layer would output only its
bias); this initialisation is our choice, the paper does not state one.
"""

from __future__ import annotations

from typing import Any

from tfrs_userlevel.backbones.base import flatten_fields
from tfrs_userlevel.backend import keras, tf
from tfrs_userlevel.baselines.base import UserModelingBackbone

CONDITIONS = ("user", "self", "mix")


@keras.utils.register_keras_serializable(package="tfrs_userlevel")
class AdaptiveDense(keras.layers.Layer):
    """y = ((x·U)·S(z))·V + b, S(z) = reshape(MLP(z)) [k, k] per example.

    Args:
      units: D_out.
      rank: k.
      overparam_dim: P; 0 disables over-parameterisation (U, V are then
        plain matrices), otherwise U = U_1 [D_in, P]·U_2 [P, k] and
        V = V_1 [k, P]·V_2 [P, D_out].
      generator_units: Hidden widths of the MLP generating S(z).

    Call:
      x: float32 [B, D_in].
      z: float32 [B, C] condition.

    Returns:
      float32 [B, units] (no activation).
    """

    def __init__(self, units: int, rank: int = 16, overparam_dim: int = 0,
                 generator_units=(16,), **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)
        self.rank = int(rank)
        self.overparam_dim = int(overparam_dim)
        self.generator_units = tuple(int(u) for u in generator_units)
        if self.rank < 1 or self.overparam_dim < 0:
            raise ValueError("AdaptiveDense: needs rank >= 1 and overparam_dim >= 0")
        if self.overparam_dim and self.overparam_dim < self.rank:
            raise ValueError(f"AdaptiveDense: overparam_dim ({self.overparam_dim}) must be 0 "
                             f"or at least rank ({self.rank})")
        self.generator = [keras.layers.Dense(u, activation="relu", name=f"generator_{i}")
                          for i, u in enumerate(self.generator_units)]
        identity = tf.reshape(tf.eye(self.rank), [-1]).numpy().tolist()
        self.generator_output = keras.layers.Dense(
            self.rank * self.rank, kernel_initializer=keras.initializers.RandomNormal(
                stddev=0.01), bias_initializer=keras.initializers.Constant(identity),
            name="generator_output")

    def build(self, input_shape):
        dim, k, P = int(input_shape[-1]), self.rank, self.overparam_dim
        if P:
            self.u_factors = [self.add_weight(name="u_1", shape=(dim, P),
                                              initializer="glorot_uniform"),
                              self.add_weight(name="u_2", shape=(P, k),
                                              initializer="glorot_uniform")]
            self.v_factors = [self.add_weight(name="v_1", shape=(k, P),
                                              initializer="glorot_uniform"),
                              self.add_weight(name="v_2", shape=(P, self.units),
                                              initializer="glorot_uniform")]
        else:
            self.u_factors = [self.add_weight(name="u", shape=(dim, k),
                                              initializer="glorot_uniform")]
            self.v_factors = [self.add_weight(name="v", shape=(k, self.units),
                                              initializer="glorot_uniform")]
        self.bias = self.add_weight(name="bias", shape=(self.units,), initializer="zeros")
        super().build(input_shape)

    @property
    def u(self) -> tf.Tensor:
        """U [D_in, k] (the product of the factors when over-parameterised)."""
        return self.u_factors[0] if len(self.u_factors) == 1 else (
            self.u_factors[0] @ self.u_factors[1])

    @property
    def v(self) -> tf.Tensor:
        return self.v_factors[0] if len(self.v_factors) == 1 else (
            self.v_factors[0] @ self.v_factors[1])

    def generate(self, z: tf.Tensor) -> tf.Tensor:
        """S(z): float32 [B, k, k]."""
        for layer in self.generator:
            z = layer(z)
        return tf.reshape(self.generator_output(z), [-1, self.rank, self.rank])

    def call(self, x, z):
        low = x @ self.u                                           # [B, k]
        low = tf.einsum("bi,bij->bj", low, self.generate(z))      # [B, k]
        return low @ self.v + self.bias

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "units": self.units, "rank": self.rank,
                "overparam_dim": self.overparam_dim,
                "generator_units": list(self.generator_units)}


@keras.utils.register_keras_serializable(package="tfrs_userlevel")
class APGBaseline(UserModelingBackbone):
    """An MLP (hidden_units) whose every layer is an `AdaptiveDense` conditioned on z.

    Args:
      rank: k of every generated layer.
      overparam_dim: P (0: plain low rank).
      generator_units: Hidden widths of each layer's S(z) generator.
      condition: "user", "self" or "mix" (module docstring).
      hidden_units, activation, dropout, output_bias: see `UserModelingBackbone`.

    Returns h = the last hidden layer [B, hidden_units[-1]]; logit = a static
    Dense head over h.
    """

    def __init__(self, rank: int = 16, overparam_dim: int = 0, generator_units=(16,),
                 condition: str = "self", **kwargs):
        super().__init__(**kwargs)
        if condition not in CONDITIONS:
            raise ValueError(f"APGBaseline: condition must be one of {list(CONDITIONS)}, got "
                             f"{condition!r}")
        self.rank = int(rank)
        self.overparam_dim = int(overparam_dim)
        self.generator_units = tuple(int(u) for u in generator_units)
        self.condition = condition
        self.adaptive = [AdaptiveDense(u, self.rank, self.overparam_dim,
                                       self.generator_units, name=f"adaptive_{i}")
                         for i, u in enumerate(self.hidden_units)]
        self.head = keras.layers.Dense(
            1, bias_initializer=keras.initializers.Constant(self.output_bias), name="head")

    def forward(self, embeddings, context, training):
        x = flatten_fields(embeddings)
        if self.condition == "self":
            z = x
        elif self.condition == "user":
            z = flatten_fields(context["user"])
        else:
            z = tf.concat([flatten_fields(context["user"]), x], axis=1)
        h = x
        for layer in self.adaptive:
            h = self.act(layer(h, z), training)
        return {"hidden": h, "logit": self.head(h)}

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "rank": self.rank, "overparam_dim": self.overparam_dim,
                "generator_units": list(self.generator_units), "condition": self.condition}
