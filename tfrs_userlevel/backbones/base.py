"""The backbone contract: field embeddings in, hidden state h and the backbone's own logit out.

Every backbone maps E [B, F, d] to `{"hidden": h [B, H], "logit": [B, 1]}`:
h is what user-level modules (GPRec's strategies, UDG) build on, and
"logit" is the backbone's own prediction, `head(h)` plus whatever the
architecture adds outside its hidden state (a wide part, FM's pairwise term,
FinalMLP's bilinear fusion). Its input is the ranking model's one input
structure (`tfrs_userlevel.model_inputs`), and its `requires` set names what it
reads beyond the embeddings: "first_order" (one weight per id: W&D, DeepFM),
"behavior" (the click history unpooled: DIN, DIEN), "gates" (an MLP
prediction network that takes UDG's per-layer gates).
"""

from __future__ import annotations

from typing import Any

from tfrs_userlevel.backend import keras, tf
from tfrs_userlevel.loss_terms import LossTerms
from tfrs_userlevel.model_inputs import as_inputs, check_inputs


def flatten_fields(embeddings: tf.Tensor) -> tf.Tensor:
    """[B, F, d] -> [B, F·d] (static F and d)."""
    return tf.reshape(embeddings, [-1, embeddings.shape[1] * embeddings.shape[2]])


class Backbone(LossTerms, keras.layers.Layer):
    """Base class: subclasses implement `hidden_state` and may add `extra_logit`.

    Args:
      output_bias: Initial bias of the head (the ranking model passes logit(p̄)).

    Call:
      inputs: The model's input mapping (`tfrs_userlevel.model_inputs`) with at
        least the entries `requires` lists, or E float32 [B, F, d] alone.
      training: Dropout on/off.
      gates: UDG gates for the MLP's layers (see `DeepNetwork`), or None.

    Returns:
      {"hidden": float32 [B, H], "logit": float32 [B, 1]} and, for backbones
      with auxiliary losses (`loss_names`), "losses": {name: scalar} and
      "loss" their sum, each term also logged by name
      (`tfrs_userlevel.loss_terms`).
    """

    requires: frozenset[str] = frozenset()
    loss_names: tuple[str, ...] = ()

    def __init__(self, output_bias: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.output_bias = float(output_bias)
        self.head = keras.layers.Dense(
            1, bias_initializer=keras.initializers.Constant(self.output_bias), name="head")

    def hidden_state(self, embeddings: tf.Tensor, training: bool = False) -> tf.Tensor:
        raise NotImplementedError

    def extra_logit(self, embeddings: tf.Tensor, hidden: tf.Tensor,
                    first_order: tf.Tensor | None, training: bool = False) -> tf.Tensor | None:
        """Logit terms outside `head(h)`, [B, 1]; None when there are none."""
        return None

    def call(self, inputs, training: bool = False, gates=None) -> dict[str, tf.Tensor]:
        inputs = as_inputs(inputs)
        check_inputs(self, inputs, gates)
        embeddings = inputs["embeddings"]
        options = {}
        if gates is not None:
            options["gates"] = gates
        if "behavior" in self.requires:
            options["behavior"] = inputs["behavior"]
        hidden = self.hidden_state(embeddings, training=training, **options)
        losses = {}
        if isinstance(hidden, dict):  # a backbone with auxiliary losses
            hidden, losses = hidden["hidden"], hidden["losses"]
        logit = self.head(hidden)
        extra = self.extra_logit(embeddings, hidden, inputs.get("first_order"),
                                 training=training)
        if extra is not None:
            logit = logit + extra
        output = {"hidden": hidden, "logit": logit}
        if self.loss_names:
            output["losses"] = losses
            output["loss"] = self.report_losses(losses)
        return output

    @property
    def output_dim(self) -> int:
        """H, the width of the hidden state (known after the first call)."""
        return int(self.head.kernel.shape[0])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "output_bias": self.output_bias}
