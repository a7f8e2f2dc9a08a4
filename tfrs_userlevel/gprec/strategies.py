"""How r_g and r_p meet the backbone (docs/gprec.md, paper eq. 14–18).

Each strategy maps the backbone's hidden state h [B, H], r_g [B, D_g],
optionally r_p [B, D_p] (None in ablation GPRec-2) and the item embeddings
e_i [B, D_i] to the final logit [B, 1]. r_g and r_p may come factored
(`tfrs_userlevel.gprec.factored`): each strategy reads them only through the
first layer of a `DenseStack`, which accepts its input as a list of parts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tfrs_userlevel.backend import keras, tf
from tfrs_userlevel.dense_stack import DenseStack

STRATEGIES = ("input", "dp", "ensemble")
ENSEMBLE_AVERAGES = ("probability", "logit")
ENSEMBLE_WEIGHTS = ("equal", "learned")
ENSEMBLE_HEADS = ("backbone", "group", "individual")  # the averaged predictions, in order


@keras.utils.register_keras_serializable(package="tfrs_userlevel")
class InputStrategy(keras.layers.Layer):
    """Eq. 14: ŷ = σ(MLP_pred([h, r_g, r_p])).

    Args:
      hidden_units: Hidden widths of MLP_pred (default 64-32-16).
      dropout: Dropout after each hidden layer.
      output_bias: Initial bias of the output logit.

    Call:
      hidden [B, H], group [B, D_g], individual [B, D_p] or None, item [B, D_i]
      (unused here), group_logit [B, 1] (unused here), backbone_logit (unused).

    Returns:
      logit: float32 [B, 1].
    """

    def __init__(self, hidden_units: Sequence[int] = (64, 32, 16), dropout: float = 0.2,
                 output_bias: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.hidden_units = tuple(int(u) for u in hidden_units)
        self.dropout = float(dropout)
        self.output_bias = float(output_bias)
        self.mlp = DenseStack(self.hidden_units, 1, dropout=self.dropout,
                              output_bias=self.output_bias, name="mlp_pred")

    def call(self, hidden, group, individual=None, item=None, group_logit=None,
             backbone_logit=None, training: bool = False) -> tf.Tensor:
        parts = [hidden, group] + ([individual] if individual is not None else [])
        return self.mlp(parts, training=training)  # read as their concatenation

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "hidden_units": list(self.hidden_units),
                "dropout": self.dropout, "output_bias": self.output_bias}


@keras.utils.register_keras_serializable(package="tfrs_userlevel")
class DynamicParameterStrategy(keras.layers.Layer):
    """Eq. 15–16: a generator turns [r_g, r_p] into per-example MLP parameters.

    Chosen form (APG's low-rank decomposition, affordable on CPU): hidden
    layer l of the prediction MLP over h computes
    `act(((x·U_l) ⊙ (1 + s_l(z)))·V_l + b_l)` with static U_l ∈ R^{in×k},
    V_l ∈ R^{k×out}, i.e. the per-example weight W_l(z) = U_l·diag(1 + s_l(z))·V_l
    with the diagonal generated from z = [r_g, r_p] by the generator MLP
    (`generator_units`, linear output, one k-vector per layer). The "1 +"
    makes every example start from the same static low-rank layer. The
    output layer (to one logit) is static.

    Args:
      hidden_units: Widths of the prediction MLP (64-32-16).
      rank: k.
      generator_units: Hidden widths of the generator MLP.
      dropout: Dropout after each prediction layer.
      output_bias: Initial bias of the output logit.

    Call / Returns: as `InputStrategy`.
    """

    def __init__(self, hidden_units: Sequence[int] = (64, 32, 16), rank: int = 16,
                 generator_units: Sequence[int] = (64,), dropout: float = 0.2,
                 output_bias: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        if rank < 1:
            raise ValueError(f"DynamicParameterStrategy: rank must be >= 1, got {rank}")
        self.hidden_units = tuple(int(u) for u in hidden_units)
        self.rank = int(rank)
        self.generator_units = tuple(int(u) for u in generator_units)
        self.dropout = float(dropout)
        self.output_bias = float(output_bias)
        self.generator = DenseStack(self.generator_units, self.rank * len(self.hidden_units),
                                    name="generator")
        self._dropout = keras.layers.Dropout(self.dropout) if self.dropout else None
        self.output_layer = keras.layers.Dense(
            1, bias_initializer=keras.initializers.Constant(self.output_bias), name="output")

    def build(self, input_shape):
        fan_in = int(input_shape[-1])
        self.factors = []
        for i, width in enumerate(self.hidden_units):
            u = self.add_weight(name=f"u_{i}", shape=(fan_in, self.rank),
                                initializer="glorot_uniform")
            v = self.add_weight(name=f"v_{i}", shape=(self.rank, width),
                                initializer="glorot_uniform")
            b = self.add_weight(name=f"b_{i}", shape=(width,), initializer="zeros")
            self.factors.append((u, v, b))
            fan_in = width
        super().build(input_shape)

    def call(self, hidden, group, individual=None, item=None, group_logit=None,
             backbone_logit=None, training: bool = False) -> tf.Tensor:
        condition = [group] if individual is None else [group, individual]
        scales = 1.0 + self.generator(condition, training=training)
        scales = tf.split(scales, len(self.hidden_units), axis=-1)
        x = hidden
        for (u, v, b), scale in zip(self.factors, scales, strict=True):
            x = tf.nn.relu(tf.matmul(tf.matmul(x, u) * scale, v) + b)
            if self._dropout is not None:
                x = self._dropout(x, training=training)
        return self.output_layer(x)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "hidden_units": list(self.hidden_units),
                "rank": self.rank, "generator_units": list(self.generator_units),
                "dropout": self.dropout, "output_bias": self.output_bias}


@keras.utils.register_keras_serializable(package="tfrs_userlevel")
class EnsembleStrategy(keras.layers.Layer):
    """Eq. 17–18: average three predictions, from h, [r_g, e_i] and [r_p, e_i].

    The prediction from h is the backbone's own head; the one from
    [r_g, e_i] is the group head MLP_g of eq. 7 (the same map, so it is not
    duplicated); the one from [r_p, e_i] is this layer's MLP. Probabilities
    are averaged by default (the paper's "averaging"); `average="logit"`
    averages logits instead. Without r_p (GPRec-2) two predictions are
    averaged.

    `weights="learned"` (not in the paper) makes the average a weighted one,
    with weights softmax(v) over the n predictions and v [n] trained with the
    rest; v starts at 0, i.e. at the paper's plain average. A head weaker than
    the backbone then no longer keeps a fixed third of the output.

    `backbone_gradient=False` (not in the paper) reads the backbone's logit
    through `tf.stop_gradient`: the average then trains only the other heads
    (and the weights), and the backbone learns from its own BCE term alone,
    as it would without GPRec.

    Args:
      hidden_units: Hidden widths of the individual head.
      dropout: Dropout after each hidden layer.
      average: "probability" or "logit".
      weights: "equal" (the paper) or "learned".
      backbone_gradient: Whether the average trains the backbone (the paper).
      output_bias: Initial bias of the individual head's logit.

    Call: as `InputStrategy`; needs `group_logit` and `backbone_logit`;
      `return_heads=True` also returns the averaged logits.

    Returns:
      logit [B, 1] of the averaged probability (or the averaged logit); with
      `return_heads`, (logit, {name: [B, 1]}): the logits it averaged, named by
      `ENSEMBLE_HEADS` (the backbone's, the group head's and, with r_p, the
      individual head's), in the order of `mixing`.
    """

    def __init__(self, hidden_units: Sequence[int] = (64, 32, 16), dropout: float = 0.2,
                 average: str = "probability", weights: str = "equal",
                 backbone_gradient: bool = True, output_bias: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        if average not in ENSEMBLE_AVERAGES:
            raise ValueError(f"EnsembleStrategy: average must be one of {ENSEMBLE_AVERAGES}, "
                             f"got {average!r}")
        if weights not in ENSEMBLE_WEIGHTS:
            raise ValueError(f"EnsembleStrategy: weights must be one of {ENSEMBLE_WEIGHTS}, "
                             f"got {weights!r}")
        self.hidden_units = tuple(int(u) for u in hidden_units)
        self.dropout = float(dropout)
        self.average = average
        self.weights_kind = weights  # `weights` is a Keras Layer property
        self.backbone_gradient = bool(backbone_gradient)
        self.output_bias = float(output_bias)
        self.individual_head = DenseStack(self.hidden_units, 1, dropout=self.dropout,
                                          output_bias=self.output_bias, name="individual_head")
        self.mixing = None

    def build(self, input_shape):
        if self.weights_kind == "learned":  # the backbone's, the group head's, MLP_p's
            self.mixing = self.add_weight(name="mixing", shape=(3,), initializer="zeros")
        super().build(input_shape)

    def call(self, hidden, group, individual=None, item=None, group_logit=None,
             backbone_logit=None, training: bool = False, return_heads: bool = False):
        if group_logit is None or backbone_logit is None:
            raise ValueError("EnsembleStrategy needs the group head's and the backbone's logits")
        if not self.backbone_gradient:
            backbone_logit = tf.stop_gradient(backbone_logit)
        heads = [backbone_logit, group_logit]
        if individual is not None:
            heads.append(self.individual_head([individual, item], training=training))
        logits = tf.concat(heads, axis=-1)  # [B, n]
        log_w = self.log_weights(len(heads))  # [n]
        if self.average == "logit":
            logit = tf.reduce_sum(logits * tf.exp(log_w), axis=-1, keepdims=True)
        else:
            # logit(Σ w·σ(z)) in log space, stable for large |z|: log σ(z) = −softplus(−z)
            # and log(1 − σ(z)) = −softplus(z); the weights sum to 1, so
            # 1 − Σ w·σ(z) = Σ w·σ(−z).
            log_p = tf.reduce_logsumexp(log_w - tf.nn.softplus(-logits), axis=-1,
                                        keepdims=True)
            log_q = tf.reduce_logsumexp(log_w - tf.nn.softplus(logits), axis=-1,
                                        keepdims=True)
            logit = log_p - log_q
        if return_heads:
            return logit, dict(zip(ENSEMBLE_HEADS[:len(heads)], heads, strict=True))
        return logit

    def log_weights(self, n: int) -> tf.Tensor:
        """log w [n] of the average over the first n of `ENSEMBLE_HEADS`: log softmax(v[:n])
        ("learned"; GPRec-2, without r_p, reads two entries of v [3]) or log(1/n)."""
        if self.weights_kind == "learned":
            return tf.nn.log_softmax(self.mixing[:n])
        return tf.fill([n], -tf.math.log(float(n)))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "hidden_units": list(self.hidden_units),
                "dropout": self.dropout, "average": self.average,
                "weights": self.weights_kind, "backbone_gradient": self.backbone_gradient,
                "output_bias": self.output_bias}


def get(strategy: str, **kwargs) -> keras.layers.Layer:
    """Builds the strategy layer named `strategy` ("input", "dp" or "ensemble")."""
    classes = {"input": InputStrategy, "dp": DynamicParameterStrategy,
               "ensemble": EnsembleStrategy}
    if strategy not in classes:
        raise ValueError(
            f"unknown GPRec strategy {strategy!r}; valid choices are {list(STRATEGIES)}")
    return classes[strategy](**kwargs)
