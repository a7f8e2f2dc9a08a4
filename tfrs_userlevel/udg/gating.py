"""User-dependent gating (UDG paper eq. 6-9) and the meta-embedding generator (docs/udg.md)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tfrs_userlevel.backend import keras, tf


@keras.utils.register_keras_serializable(package="tfrs_userlevel")
class MetaEmbeddingGenerator(keras.layers.Layer):
    """f_meta(x_prof) = tanh(W·x_prof + b) (UDG eq. 10's generator, Pan et al. 2019).

    x_prof is the one-hot encoding of the user's profile fields (every user
    field but the ID), so W·x_prof is a sum of one row of W per field: W is
    stored as a table over the fused id space.

    Args:
      vocabulary_size: Rows of the fused id space.
      output_dim: Width of the generated UDG user embedding.

    Call:
      profile_ids: int32 [B, P] fused ids of the profile fields.

    Returns:
      float32 [B, output_dim] in (-1, 1).
    """

    def __init__(self, vocabulary_size: int, output_dim: int, **kwargs):
        super().__init__(**kwargs)
        self.vocabulary_size = int(vocabulary_size)
        self.output_dim = int(output_dim)

    def build(self, input_shape):
        self.table = self.add_weight(
            name="table", shape=(self.vocabulary_size, self.output_dim),
            initializer=keras.initializers.RandomNormal(stddev=0.01))
        self.bias = self.add_weight(name="bias", shape=(self.output_dim,), initializer="zeros")
        super().build(input_shape)

    def call(self, profile_ids: tf.Tensor) -> tf.Tensor:
        rows = tf.nn.embedding_lookup(self.table, profile_ids)         # [B, P, output_dim]
        return tf.tanh(tf.reduce_sum(rows, axis=1) + self.bias)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "vocabulary_size": self.vocabulary_size,
                "output_dim": self.output_dim}


# Named forms of UserDependentGating (`UserDependentGating.from_preset`). "paper": the
# constructor's defaults. "recommended": an L2 penalty of 3e-4 on the UDG user table (the
# main table's) and gates that start at 1 instead of 0.5 (gate_scale 2); it had the higher
# validation AUC for seven of eight base models and datasets (results/udg/udg_*_l2.md).
# The gates' output activations: "sigmoid" (the paper) keeps a gate's sign, "tanh" lets it
# flip a hidden unit's sign.
GATE_ACTIVATIONS = ("sigmoid", "tanh")

PRESETS: dict[str, dict[str, Any]] = {
    "paper": {},
    "recommended": {"l2": 3e-4, "gate_scale": 2.0},
}


@keras.utils.register_keras_serializable(package="tfrs_userlevel")
class UserDependentGating(keras.layers.Layer):
    """Per-layer gates g^(l) = sigmoid(GN^(l)([e_item, e_behv, e^UDG])) for an MLP (eq. 6).

    The gates multiply the input of each dense layer of the backbone's
    prediction MLP (eq. 7: h^(l) = ReLU(W^(l)(g^(l-1) ⊙ h^(l-1)) + b^(l))), so
    every (user, item, click) gets its own effective weights (eq. 8-9).

    - `E^UDG`: a user table of its own (keyed by the user id, row 0 = users
      outside the vocabulary), shared by every gating network.
    - GN^(l): `len(hidden_units) + 1` dense layers (the paper: three), the
      last of width = that MLP layer's input width, sigmoid output times
      `gate_scale` (1 in the paper).
    - e_behv: the click-history embedding pooled by its mean (eq. 1's
      multi-hot product would give the sum), zeros without a history.
    - Gated: the input of every dense layer (h^(0) = the embeddings, then each
      hidden output but the last); the last hidden output, the head's input,
      is not gated (eq. 7 as written).
    - Meta-embedding (`meta=True`): a `MetaEmbeddingGenerator` from the user's
      profile gives the UDG embedding of a user outside the vocabulary (the
      OOV row otherwise). The generator is trained separately
      (`tfrs_userlevel.cold_start.meta_training`), with the base model frozen; it is not
      trainable during base training.

    Args:
      num_users: Users in the vocabulary (the table has num_users + 1 rows).
      udg_dim: Width of e^UDG.
      hidden_units: Hidden widths of each gating network.
      activation: Hidden activation.
      gate_scale: Multiplier of the gate activation's output.
      gate_activation: Not in the paper when "tanh": "sigmoid" (the paper)
        gives gates in (0, gate_scale), which rescale a hidden unit but
        cannot flip its sign; "tanh" gives signed gates in
        (-gate_scale, gate_scale).
      l2: L2 penalty `l2 * sum(E_UDG**2)` on the user table (Keras'
        `embeddings_regularizer`, the convention of the main table's
        `embedding_l2`); 0 (the paper says nothing) leaves it unregularised.
      meta: Add the meta-embedding generator.
      stop_item_gradient: Not in the paper: the gating networks read the item
        (and history) embeddings through `tf.stop_gradient`, so the gates'
        loss does not train the embeddings the backbone shares; the UDG table
        and the gating networks still train.
      vocabulary_size: Fused id space of the profile ids (needed with meta).
      gated_layers: Not in the paper: the indices of the MLP's dense layers
        that get a gate (0 = the layer reading the embeddings); the others get
        no gating network and None (`DeepNetwork` leaves their input as it
        is). None (the paper): all.

    Call:
      inputs: {"item": float32 [B, F_item, d], "behavior": float32 [B, d]
        (pooled history; may be absent), "user_index": int32 [B] (0 = OOV),
        "profile": int32 [B, P] fused profile ids (with meta)}.
      widths: The input width of each MLP layer (`DeepNetwork.input_widths`).

    Returns:
      A list of float32 [B, widths[l]] gates in (0, gate_scale) (tanh:
      (-gate_scale, gate_scale)), None for a layer outside `gated_layers`.
    """

    def __init__(self, num_users: int, udg_dim: int = 16,
                 hidden_units: Sequence[int] = (64, 32), activation: str = "relu",
                 gate_scale: float = 1.0, meta: bool = False, vocabulary_size: int = 0,
                 l2: float = 0.0, stop_item_gradient: bool = False,
                 gated_layers: Sequence[int] | None = None,
                 gate_activation: str = "sigmoid", **kwargs):
        super().__init__(**kwargs)
        if meta and vocabulary_size < 1:
            raise ValueError("UserDependentGating: meta=True needs the vocabulary_size of the "
                             "profile ids")
        if gate_scale <= 0:
            raise ValueError(f"UserDependentGating: gate_scale must be > 0, got {gate_scale}")
        self.num_users = int(num_users)
        self.udg_dim = int(udg_dim)
        self.hidden_units = tuple(int(u) for u in hidden_units)
        self.activation = activation
        self.gate_scale = float(gate_scale)
        if gate_activation not in GATE_ACTIVATIONS:
            raise ValueError(f"UserDependentGating: gate_activation must be one of "
                             f"{list(GATE_ACTIVATIONS)}, got {gate_activation!r}")
        self.gate_activation = gate_activation
        if l2 < 0:
            raise ValueError(f"UserDependentGating: l2 must be >= 0, got {l2}")
        self.l2 = float(l2)
        self.meta = bool(meta)
        self.stop_item_gradient = bool(stop_item_gradient)
        self.gated_layers = (None if gated_layers is None
                             else tuple(sorted({int(i) for i in gated_layers})))
        if self.gated_layers is not None and (not self.gated_layers
                                              or self.gated_layers[0] < 0):
            raise ValueError("UserDependentGating: gated_layers must name at least one layer "
                             f"index >= 0, got {gated_layers}")
        self.vocabulary_size = int(vocabulary_size)
        self.user_table = keras.layers.Embedding(
            self.num_users + 1, self.udg_dim, name="udg_user",
            embeddings_initializer=keras.initializers.RandomNormal(stddev=0.01),
            embeddings_regularizer=keras.regularizers.L2(self.l2) if self.l2 else None)
        self.generator = (MetaEmbeddingGenerator(self.vocabulary_size, self.udg_dim,
                                                 name="meta_generator", trainable=False)
                          if self.meta else None)
        self.networks: list[keras.Sequential] | None = None

    def _gated(self, layers: int) -> tuple[int, ...]:
        """The indices of the gated layers of a `layers`-layer MLP."""
        if self.gated_layers is None:
            return tuple(range(layers))
        if self.gated_layers[-1] >= layers:
            raise ValueError(f"UserDependentGating: gated_layers {list(self.gated_layers)} "
                             f"name a layer the MLP lacks: it has {layers} dense layers "
                             f"(indices 0 to {layers - 1})")
        return self.gated_layers

    def _build_networks(self, widths: Sequence[int]) -> None:
        self._layers_built = len(widths)
        self.networks = [
            keras.Sequential(
                [keras.layers.Dense(u, activation=self.activation) for u in self.hidden_units]
                + [keras.layers.Dense(int(widths[i]), activation=self.gate_activation)],
                name=f"gate_{i}")
            for i in self._gated(len(widths))]

    def user_embedding(self, inputs: Mapping[str, tf.Tensor]) -> tf.Tensor:
        """e^UDG [B, udg_dim]: the user's row, or the generated one for OOV users (meta)."""
        if inputs.get("user_embedding") is not None:
            return inputs["user_embedding"]
        index = tf.cast(inputs["user_index"], tf.int32)
        embedding = self.user_table(index)
        if self.generator is not None:
            generated = self.generator(inputs["profile"])
            embedding = tf.where((index == 0)[:, None], generated, embedding)
        return embedding

    def call(self, inputs: Mapping[str, tf.Tensor], widths: Sequence[int]) -> list[tf.Tensor]:
        widths = [int(w) for w in widths]
        if self.networks is None:
            self._build_networks(widths)
        elif self._layers_built != len(widths):
            raise ValueError(f"UserDependentGating: built for {self._layers_built} layers, "
                             f"called for {len(widths)}")
        item = inputs["item"]
        parts = [tf.reshape(item, [-1, item.shape[1] * item.shape[2]])]
        if inputs.get("behavior") is not None:
            parts.append(inputs["behavior"])
        if self.stop_item_gradient:
            parts = [tf.stop_gradient(x) for x in parts]
        parts.append(self.user_embedding(inputs))
        x = tf.concat(parts, axis=1)
        gated = dict(zip(self._gated(len(widths)), self.networks, strict=True))
        gates = [gated[i](x) if i in gated else None for i in range(len(widths))]
        if self.gate_scale != 1.0:
            gates = [None if g is None else self.gate_scale * g for g in gates]
        return gates

    @classmethod
    def from_preset(cls, preset: str, **overrides) -> UserDependentGating:
        """A gating layer in a named form (`PRESETS`), with `overrides` on top.

        Example:
          gating = UserDependentGating.from_preset("recommended", num_users=6040)
        """
        if preset not in PRESETS:
            raise ValueError(f"UserDependentGating: unknown preset {preset!r}; valid presets "
                             f"are {sorted(PRESETS)}")
        return cls(**{**PRESETS[preset], **overrides})

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "num_users": self.num_users, "udg_dim": self.udg_dim,
                "hidden_units": list(self.hidden_units), "activation": self.activation,
                "gate_scale": self.gate_scale, "l2": self.l2, "meta": self.meta,
                "stop_item_gradient": self.stop_item_gradient,
                "gated_layers": None if self.gated_layers is None else list(self.gated_layers),
                "vocabulary_size": self.vocabulary_size,
                "gate_activation": self.gate_activation}
