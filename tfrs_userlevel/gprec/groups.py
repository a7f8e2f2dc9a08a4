"""GPRec group division and group embeddings (docs/gprec.md, paper eq. 2–6).

* `GroupClassifier` (eq. 2): per-group non-linear classifier S = f_c(flatten(E_u)).
* `GumbelMask` (eq. 3–4): Gumbel-softmax masks over {in g, not in g}.
* `DualGroupEmbedding` (eq. 5–6): positive/negative tables and the masked
  group representation r_g (and its contrast r̄_g with the masks swapped).
* `SingleGroupEmbedding`: one embedding per group, softmax weights over the
  G groups (the DGPM-like form of ablation GPRec-1).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tfrs_userlevel.backend import keras, tf
from tfrs_userlevel.gprec.factored import MaskedGroups

REDUCTIONS = ("concat", "sum", "mean")
_HALF_STEP = 2.0 ** -24  # half the spacing of tf.random.uniform's float32 grid


@keras.utils.register_keras_serializable(package="tfrs_userlevel")
class GroupClassifier(keras.layers.Layer):
    """Eq. 2: one small MLP per group over the flattened user-field embeddings.

    All G MLPs run batched (no Python loop over groups): the first layer is
    one [D, G·H] matmul (every group reads the same user vector), later layers
    are per-group einsums over [G, H, H'] kernels; GPRec itself only needs the
    score difference (`difference`), a per-group dot product.

    `shared_hidden=True` (not the paper's form) makes the hidden layers one MLP
    shared by all groups, each group keeping its own linear output on the
    shared features: S_g = w_gᵀ·MLP(flatten(E_u)) + c_g. Every group is still
    a non-linear classifier of E_u, at the cost of one MLP instead of G: with
    D = 80 inputs, G = 60 and 16 shared units the step reads 2.2k weights per
    example instead of the 19k of 60 per-group 4-unit MLPs (GPRec's largest
    matmul). On ML-1M it lost 0.0015 validation AUC against the per-group
    form with the ensemble strategy (results/gprec/ml1m_gprec_fast_ensemble.md),
    and 0.0002 with the input strategy and a linear layer
    (results/gprec/ml1m_gprec_shared_classifier.md), where it is train.py's default.

    Args:
      groups: G.
      hidden_units: Hidden widths of each group's MLP (default one layer of 16),
        or of the shared MLP.
      outputs: Scores per group: 2 ("in g", "not in g") for GPRec, 1 for the
        softmax-over-groups ablation.
      activation: Hidden activation.
      shared_hidden: One hidden MLP for all groups (see above).

    Call:
      user_embeddings: float32 [B, F_u, d] (or already flat [B, D]).

    Returns:
      scores S: float32 [B, G, outputs].
    """

    def __init__(self, groups: int = 60, hidden_units: Sequence[int] = (16,), outputs: int = 2,
                 activation: str = "relu", shared_hidden: bool = False, **kwargs):
        super().__init__(**kwargs)
        if groups < 1:
            raise ValueError(f"GroupClassifier: groups must be >= 1, got {groups}")
        if outputs < 1:
            raise ValueError(f"GroupClassifier: outputs must be >= 1, got {outputs}")
        self.groups = int(groups)
        self.hidden_units = tuple(int(u) for u in hidden_units)
        self.outputs = int(outputs)
        self.activation = activation
        self.shared_hidden = bool(shared_hidden)
        self._activation = keras.activations.get(activation)

    def build(self, input_shape):
        flat = 1
        for dim in input_shape[1:]:
            flat *= int(dim)
        widths = (flat,) + self.hidden_units + (self.outputs,)
        self.kernels, self.biases = [], []
        last = len(widths) - 2
        for i, (fan_in, fan_out) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
            limit = (6.0 / (fan_in + fan_out)) ** 0.5  # Glorot-uniform of one group's layer
            if self.shared_hidden:
                # Hidden layers [in, out] shared by all groups; the output layer [H, G·outputs].
                shape = (fan_in, self.groups * fan_out) if i == last else (fan_in, fan_out)
                bias_shape = (self.groups, fan_out) if i == last else (fan_out,)
            else:
                # The first layer reads the same user vector in every group: one [D, G·H]
                # kernel. Later layers are per group: [G, in, out].
                shape = ((fan_in, self.groups * fan_out) if i == 0
                         else (self.groups, fan_in, fan_out))
                bias_shape = (self.groups, fan_out)
            self.kernels.append(self.add_weight(
                name=f"kernel_{i}", shape=shape,
                initializer=keras.initializers.RandomUniform(-limit, limit)))
            self.biases.append(self.add_weight(
                name=f"bias_{i}", shape=bias_shape, initializer="zeros"))
        super().build(input_shape)

    def _hidden(self, user_embeddings: tf.Tensor) -> tf.Tensor:
        """The last hidden layer of every group's MLP, [B, G, H] (or flat E_u [B, D] with no
        hidden layer; [B, H] with `shared_hidden`)."""
        x = tf.reshape(user_embeddings, [-1, self.kernels[0].shape[0]])
        if len(self.kernels) == 1:  # no hidden layer: a linear classifier per group
            return x
        if self.shared_hidden:
            for kernel, bias in zip(self.kernels[:-1], self.biases[:-1], strict=True):
                x = self._activation(tf.matmul(x, kernel) + bias)
            return x
        x = tf.matmul(x, self.kernels[0]) + tf.reshape(self.biases[0], [-1])
        x = self._activation(tf.reshape(x, [-1, self.groups, self.hidden_units[0]]))
        for kernel, bias in zip(self.kernels[1:-1], self.biases[1:-1], strict=True):
            x = self._activation(tf.einsum("bgh,gho->bgo", x, kernel) + bias)
        return x

    def call(self, user_embeddings: tf.Tensor) -> tf.Tensor:
        x = self._hidden(user_embeddings)
        if len(self.kernels) == 1 or self.shared_hidden:
            x = tf.matmul(x, self.kernels[-1]) + tf.reshape(self.biases[-1], [-1])
            return tf.reshape(x, [-1, self.groups, self.outputs])
        return tf.einsum("bgh,gho->bgo", x, self.kernels[-1]) + self.biases[-1]

    def difference(self, user_embeddings: tf.Tensor) -> tf.Tensor:
        """S_{g,1} − S_{g,2} [B, G] (needs outputs=2), without the [B, G, 2] tensor.

        The last layer is linear, so the difference of its two outputs is one
        linear map whose weights are the difference of the two columns: the
        same parameters and gradients as `call` followed by a subtraction, and
        a per-group dot product [B, G, H]·[G, H] instead of a batched matmul.
        """
        if self.outputs != 2:
            raise ValueError("GroupClassifier.difference needs outputs=2")
        if not self.built:
            self._maybe_build(user_embeddings)
        kernel, bias = self.kernels[-1], self.biases[-1]
        bias = bias[:, 0] - bias[:, 1]
        if len(self.kernels) == 1 or self.shared_hidden:
            kernel = tf.reshape(kernel, [-1, self.groups, 2])
            return tf.matmul(self._hidden(user_embeddings), kernel[..., 0] - kernel[..., 1]) + bias
        weights = kernel[..., 0] - kernel[..., 1]  # [G, H]
        return tf.reduce_sum(self._hidden(user_embeddings) * weights, axis=-1) + bias

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "groups": self.groups,
                "hidden_units": list(self.hidden_units), "outputs": self.outputs,
                "activation": self.activation, "shared_hidden": self.shared_hidden}


@keras.utils.register_keras_serializable(package="tfrs_userlevel")
class GumbelMask(keras.__internal__.layers.BaseRandomLayer):
    """Eq. 3–4: binary-like group masks by the Gumbel-softmax trick.

    m_{g,k} = softmax_k((log_softmax(S_g)_k + ε_{g,k}) / τ), ε = −log(−log U),
    U ~ Uniform(0, 1). The Gumbel noise is drawn only when `training=True`;
    at inference the masks are the deterministic tempered softmax. Each group
    is decided independently, so a user can be "in" many groups at once.

    Computed in the equivalent two-class form: a softmax over two entries is
    the sigmoid of their difference, log_softmax leaves S_{g,1} − S_{g,2}
    unchanged, and the difference of two independent Gumbel draws is a
    standard logistic draw log U − log(1 − U). So
    m_{g,1} = σ((S_{g,1} − S_{g,2} + log U − log(1 − U)) / τ), m_{g,2} = 1 − m_{g,1}:
    the same distribution with one noise draw per group and no [B, G, 2]
    softmax (several times faster on CPU).

    Args:
      temperature: τ > 0; smaller τ pushes the masks towards 0/1.

    Call:
      scores: float32 [B, G, 2] from `GroupClassifier`.

    Returns:
      masks: float32 [B, G, 2], each row in [0, 1] and summing to 1
      (index 0 = "in g", index 1 = "not in g").
    """

    def __init__(self, temperature: float = 0.5, **kwargs):
        super().__init__(**kwargs)
        if not temperature > 0:
            raise ValueError(f"GumbelMask: temperature must be > 0, got {temperature}")
        self.temperature = float(temperature)
        self.built = True  # no weights; GPRec calls `inside`, which Keras does not build

    def call(self, scores: tf.Tensor, training: bool = False) -> tf.Tensor:
        inside = self.inside(scores[..., 0] - scores[..., 1], training=training)
        return tf.stack([inside, 1.0 - inside], axis=-1)

    def inside(self, difference: tf.Tensor, training: bool = False) -> tf.Tensor:
        """m_{g,1} [B, G] from the score difference S_{g,1} − S_{g,2} [B, G]."""
        if training:
            # U on the float grid k·2⁻²³ shifted by half a step, so U and 1 − U are both
            # >= 2⁻²⁴ (no log 0), and log U − log(1 − U) with one logarithm: this [B, G]
            # noise is the largest cost of GPRec's training step at the defaults.
            # Drawn by Keras's random generator: the plain stateful op by default, a
            # tf.random.Generator whose state a resumed run restores when the layer
            # was built with Keras's TF random generator enabled (--deterministic).
            uniform = self._random_generator.random_uniform(tf.shape(difference)) + _HALF_STEP
            difference = difference + tf.math.log(uniform / (1.0 - uniform))
        return tf.sigmoid(difference / self.temperature)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "temperature": self.temperature}


@keras.utils.register_keras_serializable(package="tfrs_userlevel")
class DualGroupEmbedding(keras.layers.Layer):
    """Eq. 5–6 (and the inverted masks of eq. 9): dual group embeddings.

    Two tables P⁺, P⁻ ∈ R^{G×d}. Group g contributes
    m_{g,1}·P⁺_g + m_{g,2}·P⁻_g; the G contributions are concatenated
    (`reduce="concat"`, r_g ∈ R^{G·d}, the paper's form) or summed
    (`reduce="sum"`, r_g ∈ R^d, the paper's alternative for large G), or
    averaged (`reduce="mean"`, the sum / G; not in the paper: it keeps r_g on
    the scale of one table row whatever G is).
    With m_{g,2} = 1 − m_{g,1} this is P⁻_g + m_{g,1}·(P⁺_g − P⁻_g), and the
    sum is one [B, G]·[G, d] matmul.

    Args:
      groups: G.
      embedding_dim: d.
      reduce: "concat", "sum" or "mean".
      initializer: Initializer of both tables.

    Call:
      masks: float32 [B, G, 2] from `GumbelMask` (rows summing to 1).
      contrast: If True, swap the two masks (r̄_g of eq. 9).

    Returns:
      r_g: float32 [B, G·d] ("concat") or [B, d] ("sum", "mean").
    """

    def __init__(self, groups: int = 60, embedding_dim: int = 16, reduce: str = "concat",
                 initializer: Any = "glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        if reduce not in REDUCTIONS:
            raise ValueError(f"DualGroupEmbedding: reduce must be one of {REDUCTIONS}, "
                             f"got {reduce!r}")
        self.groups = int(groups)
        self.embedding_dim = int(embedding_dim)
        self.reduce = reduce
        self.initializer = keras.initializers.get(initializer)

    def build(self, input_shape):
        # A fresh initializer per table (a seeded one gets seed + 1 for P⁻): one instance
        # returns the same values on every call, which would start P⁺ = P⁻ and give the
        # masks no gradient at all.
        def fresh(offset):
            config = dict(self.initializer.get_config())
            if config.get("seed") is not None:
                config["seed"] += offset
            return self.initializer.__class__.from_config(config)

        self.positive = self.add_weight(name="positive", shape=(self.groups, self.embedding_dim),
                                        initializer=fresh(0))
        self.negative = self.add_weight(name="negative", shape=(self.groups, self.embedding_dim),
                                        initializer=fresh(1))
        super().build(input_shape)

    @property
    def output_dim(self) -> int:
        return self.groups * self.embedding_dim if self.reduce == "concat" else self.embedding_dim

    def call(self, masks: tf.Tensor, contrast: bool = False) -> tf.Tensor:
        return self.from_inside(masks[..., 1] if contrast else masks[..., 0])

    def from_inside(self, inside: tf.Tensor) -> tf.Tensor:
        """r_g from the "in g" masks m_{g,1} [B, G] alone (m_{g,2} = 1 − m_{g,1});
        `from_inside(1 − m)` is the contrast r̄_g."""
        if not self.built:
            self._maybe_build(tf.stack([inside, inside], axis=-1))
        if self.reduce in ("sum", "mean"):
            total = (tf.reduce_sum(self.negative, axis=0)
                     + tf.matmul(inside, self.positive - self.negative))
            return total / self.groups if self.reduce == "mean" else total
        return self.factored(inside).materialize()  # [B, G·d]

    def with_contrast(self, inside: tf.Tensor, factored: bool = False):
        """(r_g, r̄_g): `from_inside(m)` and `from_inside(1 − m)` (or their `factored`
        forms with factored=True).

        For "sum" and "mean" both share one product: with S⁻ = Σ_g P⁻_g and
        S⁺ = Σ_g P⁺_g, r_g = S⁻ + m·Δ and r̄_g = S⁺ − m·Δ, Δ = P⁺ − P⁻. The
        values and gradients are those of the two separate calls, with one
        [B, G]·[G, d] matmul (and one in the backward pass) instead of two.
        """
        if factored or self.reduce == "concat":
            pair = self.factored(inside), self.factored(1.0 - inside)
            return pair if factored else tuple(part.materialize() for part in pair)
        if not self.built:
            self._maybe_build(tf.stack([inside, inside], axis=-1))
        shared = tf.matmul(inside, self.positive - self.negative)             # [B, d]
        group = tf.reduce_sum(self.negative, axis=0) + shared
        contrast = tf.reduce_sum(self.positive, axis=0) - shared
        if self.reduce == "mean":
            return group / self.groups, contrast / self.groups
        return group, contrast

    def factored(self, inside: tf.Tensor) -> MaskedGroups:
        """r_g ("concat") as `MaskedGroups`, for consumers that only apply linear maps
        to it (`tfrs_userlevel.gprec.factored`)."""
        if self.reduce != "concat":
            raise ValueError("DualGroupEmbedding.factored needs reduce='concat'")
        if not self.built:
            self._maybe_build(tf.stack([inside, inside], axis=-1))
        return MaskedGroups(inside, self.negative, self.positive)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "groups": self.groups,
                "embedding_dim": self.embedding_dim, "reduce": self.reduce,
                "initializer": keras.initializers.serialize(self.initializer)}


@keras.utils.register_keras_serializable(package="tfrs_userlevel")
class SingleGroupEmbedding(keras.layers.Layer):
    """Ablation GPRec-1: one embedding per group, softmax over the G groups.

    r_g = Σ_g softmax_g(S)_g · P_g, the DGPM-like weighted sum that GPRec's
    dual embeddings replace. There is no "other side" of a group, so this
    form has no contrastive representation.

    Call:
      scores: float32 [B, G, 1] (or [B, G]) from `GroupClassifier(outputs=1)`.

    Returns:
      r_g: float32 [B, d].
    """

    def __init__(self, groups: int = 60, embedding_dim: int = 16,
                 initializer: Any = "glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.groups = int(groups)
        self.embedding_dim = int(embedding_dim)
        self.initializer = keras.initializers.get(initializer)

    def build(self, input_shape):
        self.table = self.add_weight(name="table", shape=(self.groups, self.embedding_dim),
                                     initializer=self.initializer)
        super().build(input_shape)

    @property
    def output_dim(self) -> int:
        return self.embedding_dim

    def call(self, scores: tf.Tensor) -> tf.Tensor:
        weights = tf.nn.softmax(tf.reshape(scores, [-1, self.groups]), axis=-1)
        return tf.matmul(weights, self.table)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "groups": self.groups,
                "embedding_dim": self.embedding_dim,
                "initializer": keras.initializers.serialize(self.initializer)}
