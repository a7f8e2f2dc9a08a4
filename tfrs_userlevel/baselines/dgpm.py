"""DGPM: dynamic group parameter modeling.

Ma et al., "Dynamic Group Parameter Modeling for Click-Through-Rate
Prediction", CIKM 2023, as the GPRec paper summarises it (§II, §IV): G
learnable group embeddings; a user is assigned to groups by the similarity of
its representation to each group embedding; every group owns prediction
parameters that are fed to the prediction MLP; the group memory is a memory
network.

Our reading, since the DGPM text is not available here:

* memory: G slots, each a key (the group embedding, [d_g]) and a value (the
  group's prediction parameters); the user reads it with the content-based
  addressing of the Neural Turing Machine that DGPM cites —
  a = softmax(β·cos(u, key_g)) with a learned key strength β > 0 — and keys and
  values are trained end to end through that read;
* u = Dense(d_g)(flatten_fields(user-field embeddings));
* the group parameters of MLP layer l are either (`group_parameters`)
  - "scale_shift": a per-unit scale and shift (s_l, t_l) ∈ R^{2·n_l} per group:
    H_l = act((W_l·H_{l−1} + b_l) ⊙ (1 + a·S_l) + a·T_l); or
  - "kernel": a whole weight matrix and bias per group, added to the shared ones:
    H_l = act(H_{l−1}·(W_l + Σ_g a_g·ΔW_{l,g}) + b_l + Σ_g a_g·Δb_{l,g}), the
    literal "prediction parameters of each group fed to the prediction MLP";
    computed as Σ_g a_g·(H_{l−1}·ΔW_{l,g}), never as a per-user matrix
    (G times the layer's multiply-adds).
  Either starts at zero, so training starts from the plain MLP.
"""

from __future__ import annotations

from typing import Any

from tfrs_userlevel.backbones.base import flatten_fields
from tfrs_userlevel.backend import keras, tf
from tfrs_userlevel.baselines.base import UserModelingBackbone
from tfrs_userlevel.model_inputs import embeddings_shape

GROUP_PARAMETERS = ("scale_shift", "kernel")


@keras.utils.register_keras_serializable(package="tfrs_userlevel")
class GroupMemory(keras.layers.Layer):
    """Key-value memory read by cosine-similarity softmax addressing.

    Args:
      groups: G slots.
      key_dim: d_g, the size of a group embedding.
      value_dim: Size of a slot's value (the group's prediction parameters).
      initial_strength: Starting key strength β.

    Call:
      u: float32 [B, key_dim] user representation.

    Returns:
      {"assignment": float32 [B, G] (rows sum to 1), "value": float32
      [B, value_dim] = assignment · values}.
    """

    def __init__(self, groups: int = 20, key_dim: int = 16, value_dim: int = 1,
                 initial_strength: float = 5.0, **kwargs):
        super().__init__(**kwargs)
        self.groups = int(groups)
        self.key_dim = int(key_dim)
        self.value_dim = int(value_dim)
        self.initial_strength = float(initial_strength)

    def build(self, input_shape):
        self.keys = self.add_weight(name="keys", shape=(self.groups, self.key_dim),
                                    initializer="glorot_normal")
        self.values = self.add_weight(name="values", shape=(self.groups, self.value_dim),
                                      initializer="zeros")
        # β = softplus(raw) > 0.
        raw = float(tf.math.log(tf.math.expm1(self.initial_strength)))
        self.raw_strength = self.add_weight(name="raw_strength", shape=(),
                                            initializer=keras.initializers.Constant(raw))
        super().build(input_shape)

    def call(self, u):
        similarity = tf.linalg.l2_normalize(u, axis=-1, epsilon=1e-12) @ tf.transpose(
            tf.linalg.l2_normalize(self.keys, axis=-1, epsilon=1e-12))       # [B, G]
        assignment = tf.nn.softmax(tf.nn.softplus(self.raw_strength) * similarity, axis=-1)
        return {"assignment": assignment, "value": assignment @ self.values}

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "groups": self.groups, "key_dim": self.key_dim,
                "value_dim": self.value_dim, "initial_strength": self.initial_strength}


@keras.utils.register_keras_serializable(package="tfrs_userlevel")
class DGPMBaseline(UserModelingBackbone):
    """An MLP whose layers are modulated by the user's groups' parameters (module docstring).

    Args:
      groups: G.
      group_dim: d_g.
      initial_strength: Starting key strength β of the memory read (1: the best
        validation AUC of β ∈ {1, 5, 20} and G ∈ {20, 60} on ML-1M).
      group_parameters: "scale_shift" (per-unit scale and shift per group) or
        "kernel" (a weight matrix and bias per group and layer); module docstring.
      hidden_units, activation, dropout, output_bias: see `UserModelingBackbone`.

    Returns h = the last hidden layer [B, hidden_units[-1]]; logit = Dense(h).
    """

    def __init__(self, groups: int = 20, group_dim: int = 16, initial_strength: float = 1.0,
                 group_parameters: str = "scale_shift", **kwargs):
        super().__init__(**kwargs)
        if int(groups) < 1 or int(group_dim) < 1:
            raise ValueError("DGPMBaseline: groups and group_dim must be >= 1")
        if group_parameters not in GROUP_PARAMETERS:
            raise ValueError(f"DGPMBaseline: group_parameters must be one of "
                             f"{GROUP_PARAMETERS}, got {group_parameters!r}")
        self.groups = int(groups)
        self.group_dim = int(group_dim)
        self.initial_strength = float(initial_strength)
        self.group_parameters = group_parameters
        self.user_projection = keras.layers.Dense(self.group_dim, name="user_projection")
        # The memory's values: the scales and shifts, or the kernel form's biases.
        per_unit = 2 if group_parameters == "scale_shift" else 1
        self.memory = GroupMemory(self.groups, self.group_dim,
                                  per_unit * sum(self.hidden_units),
                                  self.initial_strength, name="memory")
        self.dense = [keras.layers.Dense(u, name=f"dense_{i}")
                      for i, u in enumerate(self.hidden_units)]
        self.head = keras.layers.Dense(
            1, bias_initializer=keras.initializers.Constant(self.output_bias), name="head")

    def assignment(self, context) -> tf.Tensor:
        """float32 [B, G]: the user's group assignment."""
        return self.memory(self.user_projection(flatten_fields(context["user"])))["assignment"]

    def build(self, input_shape):
        if self.group_parameters == "kernel":
            # ΔW_{l,g}: [G, n_{l-1}, n_l], zeros (the plain MLP at the start).
            shape = embeddings_shape(input_shape)
            width = int(shape[-2]) * int(shape[-1])
            self.group_kernels = []
            for i, units in enumerate(self.hidden_units):
                self.group_kernels.append(self.add_weight(
                    name=f"group_kernel_{i}", shape=(self.groups, width, units),
                    initializer="zeros"))
                width = units
        super().build(input_shape)

    def forward(self, embeddings, context, training):
        memory = self.memory(self.user_projection(flatten_fields(context["user"])))
        h = flatten_fields(embeddings)
        if self.group_parameters == "kernel":
            assignment = memory["assignment"]                                  # [B, G]
            shifts = tf.split(memory["value"], self.hidden_units, axis=1)
            for dense, kernel, shift in zip(self.dense, self.group_kernels, shifts,
                                            strict=True):
                # Σ_g a_g·(h·ΔW_g): h times every group's kernel at once, [B, G, units].
                groups, width, units = kernel.shape
                per_group = tf.reshape(
                    h @ tf.reshape(tf.transpose(kernel, [1, 0, 2]), [width, groups * units]),
                    [-1, groups, units])
                delta = tf.einsum("bg,bgu->bu", assignment, per_group)
                h = self.act(dense(h) + delta + shift, training)
            return {"hidden": h, "logit": self.head(h)}
        scales, shifts = tf.split(memory["value"], 2, axis=1)
        scales = tf.split(scales, self.hidden_units, axis=1)
        shifts = tf.split(shifts, self.hidden_units, axis=1)
        for dense, scale, shift in zip(self.dense, scales, shifts, strict=True):
            h = self.act(dense(h) * (1.0 + scale) + shift, training)
        return {"hidden": h, "logit": self.head(h)}

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "groups": self.groups, "group_dim": self.group_dim,
                "initial_strength": self.initial_strength,
                "group_parameters": self.group_parameters}
