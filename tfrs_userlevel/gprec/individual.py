"""GPRec individual level (docs/gprec.md, paper eq. 12–13)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tfrs_userlevel.backend import keras, tf
from tfrs_userlevel.dense_stack import DenseStack
from tfrs_userlevel.gprec.factored import (
    AffineOutput,
    MaskedGroups,
    group_dot_affine,
    materialize,
)


@keras.utils.register_keras_serializable(package="tfrs_userlevel")
class IndividualPreference(keras.layers.Layer):
    """Eq. 12: r_p = MLP_p(flatten(E_p)) from the personal (ID-like) user fields.

    Args:
      output_dim: Size of r_p; GPRec sets it to r_g's size so that the
        orthogonal loss (eq. 13) compares vectors of one space.
      hidden_units: Hidden widths of MLP_p; its output layer is linear so that
        r_p, like r_g, can take any sign.
      dropout: Dropout after each hidden layer.

    Call:
      personal_embeddings: float32 [B, F_p, d].

    Returns:
      r_p: float32 [B, output_dim].
    """

    def __init__(self, output_dim: int, hidden_units: Sequence[int] = (64,),
                 activation: str = "relu", dropout: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.output_dim = int(output_dim)
        self.hidden_units = tuple(int(u) for u in hidden_units)
        self.activation = activation
        self.dropout = float(dropout)
        self.mlp = DenseStack(self.hidden_units, output_units=self.output_dim,
                              activation=activation, dropout=self.dropout, name="mlp_p")

    def call(self, personal_embeddings: tf.Tensor, training: bool = False) -> tf.Tensor:
        width = personal_embeddings.shape[1] * personal_embeddings.shape[2]
        flat = tf.reshape(personal_embeddings, [-1, width])
        return self.mlp(flat, training=training)

    def factored(self, personal_embeddings: tf.Tensor, training: bool = False) -> AffineOutput:
        """r_p as `AffineOutput` (MLP_p's last hidden layer and its linear output layer),
        the same value as `call` without the [B, output_dim] product (needs a hidden
        layer)."""
        if not self.built:
            self._maybe_build(personal_embeddings)
        width = personal_embeddings.shape[1] * personal_embeddings.shape[2]
        flat = tf.reshape(personal_embeddings, [-1, width])
        return AffineOutput(*self.mlp.affine_output(flat, training=training))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "output_dim": self.output_dim,
                "hidden_units": list(self.hidden_units), "activation": self.activation,
                "dropout": self.dropout}


@keras.utils.register_keras_serializable(package="tfrs_userlevel")
class OrthogonalLoss(keras.layers.Layer):
    """Eq. 13: L_o = mean_batch |⟨r_g, r_p⟩| / (‖r_g‖·‖r_p‖ + ε).

    The absolute cosine similarity of the group and individual
    representations; minimising it pushes r_p towards what r_g does not
    already say.

    Call:
      group_representation r_g: float32 [B, D] (or `MaskedGroups`).
      individual_representation r_p: float32 [B, D] (or `AffineOutput`).
      Given both factored (`tfrs_userlevel.gprec.factored`), the dot product
      and the norms come from their factors, without the [B, D] tensors.

    Returns:
      scalar float32 in [0, 1].
    """

    def __init__(self, epsilon: float = 1e-8, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = float(epsilon)
        self.built = True  # no weights (and not called at inference, so never built there)

    def call(self, group_representation, individual_representation) -> tf.Tensor:
        if (isinstance(group_representation, MaskedGroups)
                and isinstance(individual_representation, AffineOutput)):
            dot = group_dot_affine(group_representation, individual_representation)
            # ‖r_g‖·‖r_p‖ from the squared norms (clipped: rounding can leave them a hair
            # below 0 where the vector is ~0).
            norms = tf.sqrt(tf.maximum(group_representation.squared_norm(), 0.0)
                            * tf.maximum(individual_representation.squared_norm(), 0.0))
            return tf.reduce_mean(tf.abs(dot) / (norms + self.epsilon))
        group_representation = materialize(group_representation)
        individual_representation = materialize(individual_representation)
        dot = tf.reduce_sum(group_representation * individual_representation, axis=-1)
        norms = (tf.norm(group_representation, axis=-1)
                 * tf.norm(individual_representation, axis=-1))
        return tf.reduce_mean(tf.abs(dot) / (norms + self.epsilon))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "epsilon": self.epsilon}
