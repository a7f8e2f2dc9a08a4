"""The contract of the user-modeling baselines: a backbone that also sees the user.

A baseline is a complete prediction network ("an MLP plus user modeling",
GPRec paper §IV-A) with the backbone contract of `backbones.base`: the model's
input mapping (`tfrs_userlevel.model_inputs`) -> {"hidden": h [B, H], "logit":
[B, 1]}. It requires, beside the embeddings:

* "user": float32 [B, F_user, d], the user-field embeddings (personal and
  other user fields, spec order);
* "personal": float32 [B, F_personal, d], the ID-like user fields;
* "domain": int32 [B], the value index of the baseline's `domain_field`
  (0 = out of vocabulary, 1..num_domains = the known values), only for the
  baselines that divide users by a predefined attribute (MMoE, PLE, STAR).

Unknown domain values: a user whose attribute is out of vocabulary (at
serving time, say) is treated as an equal mixture of the known domains —
every domain-specific output or parameter is averaged with weights
1/num_domains — never as an untrained domain of its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tfrs_userlevel.backend import keras, tf
from tfrs_userlevel.features import FeatureSpec
from tfrs_userlevel.model_inputs import as_inputs, check_inputs


def domain_weights(domain: tf.Tensor, num_domains: int) -> tf.Tensor:
    """int [B] domain indices (0 = OOV, 1..V) -> float32 [B, V] mixture weights.

    A known domain v gets the one-hot row e_v; an unknown one 1/V everywhere.
    """
    domain = tf.cast(tf.reshape(domain, [-1]), tf.int32)
    known = (domain >= 1) & (domain <= num_domains)
    one_hot = tf.one_hot(domain - 1, num_domains, dtype=tf.float32)
    uniform = tf.fill(tf.shape(one_hot), 1.0 / num_domains)
    return tf.where(known[:, None], one_hot, uniform)


def domain_vocabulary(spec: FeatureSpec, vocabularies: Mapping[str, list], field: str) -> list:
    """The known values of `field`, the user field a domain baseline divides users by;
    refuses a field that is not a single-valued user field of `spec`."""
    if field not in spec.names:
        raise ValueError(f"RankingModel: domain field {field!r} is not a feature; the "
                         f"features are {list(spec.names)}")
    found = spec[field]
    if found.multivalued or found.role not in ("user_personal", "user_other"):
        raise ValueError(f"RankingModel: domain field {field!r} must be a single-valued "
                         f"user field, it is a {found.role} field"
                         + (" with several values" if found.multivalued else ""))
    return vocabularies[found.shared_vocabulary_with or field]


class UserModelingBackbone(keras.layers.Layer):
    """Base class of the baselines (see the module docstring).

    Args:
      hidden_units: Widths of the prediction MLP (default 64-32-16); each
        baseline says how it distributes them (experts, towers, ...).
      activation: Hidden activation.
      dropout: Dropout after every hidden layer (training only).
      batch_norm: Accepted for the shared training options; baselines that
        cannot use it reject True.
      output_bias: Initial bias of the output logit (the ranking model passes
        logit(p̄)).

    Call:
      inputs: The model's input mapping with "embeddings" and the entries
        `requires` lists (see the module docstring).
      training: Dropout on/off (and partitioned statistics for STAR).

    Returns:
      {"hidden": float32 [B, H], "logit": float32 [B, 1]}.
    """

    requires = frozenset({"user", "personal"})
    loss_names: tuple[str, ...] = ()
    domain_field: str | None = None

    def __init__(self, hidden_units=(64, 32, 16), activation: str = "relu",
                 dropout: float = 0.2, batch_norm: bool = False, output_bias: float = 0.0,
                 **kwargs):
        super().__init__(**kwargs)
        if not hidden_units:
            raise ValueError(f"{type(self).__name__}: hidden_units must name at least one layer")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"{type(self).__name__}: dropout must lie in [0, 1), got {dropout}")
        if batch_norm:
            raise ValueError(f"{type(self).__name__}: batch_norm is not supported (the "
                             "baselines follow their papers' networks, which have none)")
        self.hidden_units = tuple(int(u) for u in hidden_units)
        self.activation = activation
        self.dropout = float(dropout)
        self.batch_norm = False
        self.output_bias = float(output_bias)
        self._dropout_layer = keras.layers.Dropout(self.dropout) if self.dropout else None
        if self._dropout_layer is not None:  # weightless; unused by some baselines
            self._dropout_layer.built = True
        self._activation_fn = keras.activations.get(activation)

    def act(self, x: tf.Tensor, training: bool) -> tf.Tensor:
        """activation, then dropout (training only)."""
        x = self._activation_fn(x)
        if self._dropout_layer is not None:
            x = self._dropout_layer(x, training=training)
        return x

    def forward(self, embeddings: tf.Tensor, context: dict[str, tf.Tensor],
                training: bool) -> dict[str, tf.Tensor]:
        """E [B, F, d] and the input mapping (`context`: "user", "personal", "domain")
        -> {"hidden", "logit"}; what each baseline implements."""
        raise NotImplementedError

    def call(self, inputs, training: bool = False, gates=None) -> dict[str, tf.Tensor]:
        inputs = as_inputs(inputs)
        check_inputs(self, inputs, gates)
        return self.forward(inputs["embeddings"], inputs, training)

    @property
    def output_dim(self) -> int:
        """H, the width of the hidden state."""
        return self.hidden_units[-1]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "hidden_units": list(self.hidden_units),
                "activation": self.activation, "dropout": self.dropout,
                "batch_norm": self.batch_norm, "output_bias": self.output_bias}


class DomainBaseline(UserModelingBackbone):
    """A baseline that divides users by a predefined attribute (MMoE, PLE, STAR).

    Args:
      domain_field: The user field whose values are the divisions ("tasks" or
        "domains"); gender on ML-1M, as in the GPRec paper.
      num_domains: Number of known values of that field (the ranking model
        fills it in from the vocabulary).
    """

    requires = frozenset({"user", "personal", "domain"})

    def __init__(self, domain_field: str = "gender", num_domains: int = 2, **kwargs):
        super().__init__(**kwargs)
        if int(num_domains) < 1:
            raise ValueError(f"{type(self).__name__}: num_domains must be >= 1, got "
                             f"{num_domains}")
        self.domain_field = str(domain_field)
        self.num_domains = int(num_domains)

    def weights_of(self, context) -> tf.Tensor:
        """float32 [B, V] domain mixture weights (see `domain_weights`)."""
        return domain_weights(context["domain"], self.num_domains)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "domain_field": self.domain_field,
                "num_domains": self.num_domains}
