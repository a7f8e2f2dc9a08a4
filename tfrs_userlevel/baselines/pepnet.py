"""PEPNet: parameter and embedding personalised network.

Chang et al., "PEPNet: Parameter and Embedding Personalized Network for
Infusing with Personalized Prior Information", KDD 2023.

* Gate Neural Unit: δ = γ·sigmoid(W_2·relu(W_1·x + b_1) + b_2), γ = 2, so a
  gate scales its target by a factor in (0, 2) and starts near 1.
* EPNet (embedding personalisation): δ_e = GateNU(prior ⊕ ∅(E)) gives one
  scale per field; O_ep = δ_e ⊗ E. ∅ is the stop-gradient the paper puts on
  the general embeddings inside the gate input.
* PPNet (parameter personalisation): for every layer l of the prediction
  MLP, δ_l = GateNU(prior ⊕ ∅(O_ep)) scales the layer's input element-wise:
  H_{l+1} = act((δ_l ⊗ H_l)·W_l + b_l).

The personalised prior: the paper uses user/item/author ids; here it is the
user's personal (ID-like) fields by default ("personal"), or all user fields
("user"). `epnet=False` gives PPNet alone (the model one established
library ships as PPNet).
"""

from __future__ import annotations

from typing import Any

from tfrs_userlevel.backbones.base import flatten_fields
from tfrs_userlevel.backend import keras, tf
from tfrs_userlevel.baselines.base import UserModelingBackbone
from tfrs_userlevel.model_inputs import embeddings_shape

PRIORS = ("personal", "user")


@keras.utils.register_keras_serializable(package="tfrs_userlevel")
class GateNU(keras.layers.Layer):
    """Gate Neural Unit: γ·sigmoid(Dense(units)(relu(Dense(hidden_units)(x)))).

    Args:
      units: Width of the gate.
      hidden_units: Width of the inner layer.
      scale: γ (2 in the paper).

    Call:
      x: float32 [B, C].

    Returns:
      float32 [B, units] in (0, γ).
    """

    def __init__(self, units: int, hidden_units: int = 64, scale: float = 2.0, **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)
        self.hidden_units = int(hidden_units)
        self.scale = float(scale)
        self.inner = keras.layers.Dense(self.hidden_units, activation="relu", name="inner")
        self.outer = keras.layers.Dense(self.units, name="outer")

    def call(self, x):
        return self.scale * tf.sigmoid(self.outer(self.inner(x)))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "units": self.units,
                "hidden_units": self.hidden_units, "scale": self.scale}


@keras.utils.register_keras_serializable(package="tfrs_userlevel")
class PEPNetBaseline(UserModelingBackbone):
    """EPNet on the field embeddings, then an MLP whose layer inputs PPNet gates.

    Args:
      epnet: Personalise the embeddings (False: PPNet alone).
      prior: "personal" or "user" (module docstring).
      gate_units: Inner width of every Gate NU.
      hidden_units, activation, dropout, output_bias: see `UserModelingBackbone`.

    Returns h = the last hidden layer [B, hidden_units[-1]]; logit = Dense(h).
    """

    def __init__(self, epnet: bool = True, prior: str = "personal", gate_units: int = 64,
                 **kwargs):
        super().__init__(**kwargs)
        if prior not in PRIORS:
            raise ValueError(f"PEPNetBaseline: prior must be one of {list(PRIORS)}, got "
                             f"{prior!r}")
        self.epnet = bool(epnet)
        self.prior = prior
        self.gate_units = int(gate_units)
        self.dense = [keras.layers.Dense(u, name=f"dense_{i}")
                      for i, u in enumerate(self.hidden_units)]
        self.head = keras.layers.Dense(
            1, bias_initializer=keras.initializers.Constant(self.output_bias), name="head")
        self.embedding_gate = None
        self.layer_gates = []

    def build(self, input_shape):
        shape = embeddings_shape(input_shape)
        fields, dim = int(shape[1]), int(shape[2])
        if self.epnet:
            self.embedding_gate = GateNU(fields, self.gate_units, name="epnet")
        widths = (fields * dim,) + self.hidden_units[:-1]
        self.layer_gates = [GateNU(w, self.gate_units, name=f"ppnet_{i}")
                            for i, w in enumerate(widths)]
        super().build(input_shape)

    def forward(self, embeddings, context, training):
        prior = flatten_fields(context["personal" if self.prior == "personal" else "user"])
        if self.epnet:
            gate = self.embedding_gate(
                tf.concat([prior, tf.stop_gradient(flatten_fields(embeddings))], axis=1))
            embeddings = embeddings * gate[:, :, None]
        h = flatten_fields(embeddings)
        gate_input = tf.concat([prior, tf.stop_gradient(h)], axis=1)
        for dense, gate in zip(self.dense, self.layer_gates, strict=True):
            h = self.act(dense(gate(gate_input) * h), training)
        return {"hidden": h, "logit": self.head(h)}

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "epnet": self.epnet, "prior": self.prior,
                "gate_units": self.gate_units}
