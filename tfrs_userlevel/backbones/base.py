"""The backbone contract: field embeddings in, hidden state h and the backbone's own logit out.

Every backbone maps E [B, F, d] to `{"hidden": h [B, H], "logit": [B, 1]}`:
h is what user-level modules (GPRec's strategies, UDG) build on, and
"logit" is the backbone's own prediction, `head(h)` plus whatever the
architecture adds outside its hidden state (a wide part, FM's pairwise term,
FinalMLP's bilinear fusion). A backbone that needs first-order (one weight
per id) terms sets `uses_first_order = True`; the ranking model then embeds
every id in a 1-dimensional table and passes it as `first_order` [B, F, 1].

A backbone whose prediction network is an MLP (`DeepNetwork`) sets
`supports_gates = True` and accepts UDG's per-layer `gates`. A backbone that
reads the click history unpooled (DIN, DIEN) sets `uses_behavior = True` and
receives `behavior` (see `Backbone.call`).
"""

from __future__ import annotations

from typing import Any

from tfrs_userlevel.backend import keras, tf
from tfrs_userlevel.loss_terms import LossTerms


def flatten_fields(embeddings: tf.Tensor) -> tf.Tensor:
    """[B, F, d] -> [B, F·d] (static F and d)."""
    return tf.reshape(embeddings, [-1, embeddings.shape[1] * embeddings.shape[2]])


class Backbone(LossTerms, keras.layers.Layer):
    """Base class: subclasses implement `hidden_state` and may add `extra_logit`.

    Args:
      output_bias: Initial bias of the head (the ranking model passes logit(p̄)).

    Call:
      embeddings: float32 [B, F, d].
      first_order: float32 [B, F, 1] per-id weights, or None (only read when
        `uses_first_order`).
      training: Dropout on/off.
      gates: UDG gates for the MLP's layers (see `DeepNetwork`), or None.
      behavior: For `uses_behavior` backbones: {"sequence": float32
        [B, L, D_b] the history, "mask": bool [B, L], "query": float32
        [B, D_b] the target item in the same layout, and for backbones with an
        auxiliary loss "negatives" float32 [B, L, D_b], items drawn as negatives}.

    Returns:
      {"hidden": float32 [B, H], "logit": float32 [B, 1]} and, for backbones
      with auxiliary losses (`loss_names`), "losses": {name: scalar} and
      "loss" their sum, each term also logged by name
      (`tfrs_userlevel.loss_terms`).
    """

    uses_first_order = False
    supports_gates = False
    uses_behavior = False
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

    def call(self, embeddings: tf.Tensor, first_order: tf.Tensor | None = None,
             training: bool = False, gates=None, behavior=None) -> dict[str, tf.Tensor]:
        name = type(self).__name__
        if self.uses_first_order and first_order is None:
            raise ValueError(f"{name}: needs first_order [B, F, 1] weights "
                             "(RankingModel provides them when uses_first_order is True)")
        options = {}
        if gates is not None:
            if not self.supports_gates:
                raise ValueError(f"{name}: its prediction network is not a plain MLP, so it "
                                 "takes no UDG gates")
            options["gates"] = gates
        if self.uses_behavior:
            if behavior is None:
                raise ValueError(f"{name}: needs the click history (a behavior field in the "
                                 "feature spec, e.g. train.py --history-length 20)")
            options["behavior"] = behavior
        hidden = self.hidden_state(embeddings, training=training, **options)
        losses = {}
        if isinstance(hidden, dict):  # a backbone with auxiliary losses
            hidden, losses = hidden["hidden"], hidden["losses"]
        logit = self.head(hidden)
        extra = self.extra_logit(embeddings, hidden, first_order, training=training)
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
