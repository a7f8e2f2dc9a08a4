"""STAR: star topology adaptive recommender, one domain per user division.

Sheng et al., "One Model to Serve All: Star Topology Adaptive Recommender for
Multi-Domain CTR Prediction", CIKM 2021. Three parts, as in the paper:

* partitioned normalization (PN) of the concatenated embeddings: per-domain
  batch statistics in training, per-domain moving statistics at inference,
  scale γ·γ_p and shift β + β_p (shared and domain parameters);
* the star topology FCN: every layer's weight is W ⊙ W_p and bias b + b_p
  (shared centre, domain-specific leaves; W_p starts at ones and b_p at
  zeros, so training starts from the shared network);
* the auxiliary network: two layers over the domain indicator's embedding
  and the input, its logit added to the FCN's.

The domain is the predefined user attribute (gender on ML-1M), as the GPRec
paper uses STAR. The output layer is a star layer too, and the auxiliary
network reads the domain embedding concatenated with the flattened field
embeddings (the paper: "the domain indicator and other features depicting
the domain").
"""

from __future__ import annotations

from typing import Any

from tfrs_userlevel.backbones.base import flatten_fields
from tfrs_userlevel.backend import keras, tf
from tfrs_userlevel.baselines.base import DomainBaseline, domain_weights


@keras.utils.register_keras_serializable(package="tfrs_userlevel")
class PartitionedNormalization(keras.layers.Layer):
    """PN (STAR eq. 3-4): z' = (γ·γ_p)·(z − μ_p)/sqrt(σ²_p + ε) + (β + β_p).

    Args:
      num_domains: V.
      momentum: Of the per-domain moving mean and variance.
      epsilon: Added to the variance.

    Call:
      x: float32 [B, D].
      weights: float32 [B, V] domain mixture weights (`domain_weights`).
      training: Batch statistics of each domain's own rows (and update that
        domain's moving statistics); otherwise the moving statistics. A domain
        without rows in the batch uses its moving statistics and keeps them.

    Returns:
      float32 [B, D].
    """

    def __init__(self, num_domains: int, momentum: float = 0.99, epsilon: float = 1e-3,
                 **kwargs):
        super().__init__(**kwargs)
        self.num_domains = int(num_domains)
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)

    def build(self, input_shape):
        dim, V = int(input_shape[-1]), self.num_domains
        self.gamma = self.add_weight(name="gamma", shape=(dim,), initializer="ones")
        self.beta = self.add_weight(name="beta", shape=(dim,), initializer="zeros")
        self.domain_gamma = self.add_weight(name="domain_gamma", shape=(V, dim),
                                            initializer="ones")
        self.domain_beta = self.add_weight(name="domain_beta", shape=(V, dim),
                                           initializer="zeros")
        self.moving_mean = self.add_weight(name="moving_mean", shape=(V, dim),
                                           initializer="zeros", trainable=False)
        self.moving_variance = self.add_weight(name="moving_variance", shape=(V, dim),
                                               initializer="ones", trainable=False)
        super().build(input_shape)

    def call(self, x, weights, training=False):
        if training:
            counts = tf.reduce_sum(weights, axis=0)[:, None]                     # [V, 1]
            present = counts > 0.5
            safe = tf.maximum(counts, 1.0)
            mean = tf.matmul(weights, x, transpose_a=True) / safe                 # [V, D]
            variance = tf.matmul(weights, tf.square(x), transpose_a=True) / safe \
                - tf.square(mean)
            variance = tf.maximum(variance, 0.0)
            mean = tf.where(present, mean, self.moving_mean)
            variance = tf.where(present, variance, self.moving_variance)
            m = self.momentum
            self.moving_mean.assign(tf.where(
                present, m * self.moving_mean + (1 - m) * tf.stop_gradient(mean),
                self.moving_mean))
            self.moving_variance.assign(tf.where(
                present, m * self.moving_variance + (1 - m) * tf.stop_gradient(variance),
                self.moving_variance))
        else:
            mean, variance = self.moving_mean, self.moving_variance
        # Per example: mix each domain's statistics and parameters by its weights.
        normalized = (x - weights @ mean) * tf.math.rsqrt(weights @ variance + self.epsilon)
        scale = self.gamma * (weights @ self.domain_gamma)
        shift = self.beta + weights @ self.domain_beta
        return normalized * scale + shift

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "num_domains": self.num_domains,
                "momentum": self.momentum, "epsilon": self.epsilon}


@keras.utils.register_keras_serializable(package="tfrs_userlevel")
class StarDense(keras.layers.Layer):
    """One star-topology layer (STAR eq. 1-2): y = x·(W ⊙ W_p) + b + b_p.

    Call:
      x: float32 [B, D_in].
      weights: float32 [B, V] domain mixture weights; a mixture applies the
        mixed domain weights (exact, as the layer is linear in W_p).

    Returns:
      float32 [B, units] (no activation).
    """

    def __init__(self, units: int, num_domains: int, bias: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)
        self.num_domains = int(num_domains)
        self.bias = float(bias)

    def build(self, input_shape):
        dim, V = int(input_shape[-1]), self.num_domains
        self.kernel = self.add_weight(name="kernel", shape=(dim, self.units),
                                      initializer="glorot_uniform")
        self.shared_bias = self.add_weight(name="bias", shape=(self.units,),
                                           initializer=keras.initializers.Constant(self.bias))
        self.domain_kernel = self.add_weight(name="domain_kernel", shape=(V, dim, self.units),
                                             initializer="ones")
        self.domain_bias = self.add_weight(name="domain_bias", shape=(V, self.units),
                                           initializer="zeros")
        super().build(input_shape)

    def call(self, x, weights):
        per_domain = tf.einsum("bi,vio->bvo", x, self.kernel[None] * self.domain_kernel)
        return (tf.einsum("bv,bvo->bo", weights, per_domain) + self.shared_bias
                + weights @ self.domain_bias)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "units": self.units, "num_domains": self.num_domains,
                "bias": self.bias}


@keras.utils.register_keras_serializable(package="tfrs_userlevel")
class STARBaseline(DomainBaseline):
    """PN(flatten_fields(E)) -> star FCN (hidden_units) -> star output layer, + auxiliary logit.

    Args:
      auxiliary_units: Hidden widths of the auxiliary network (the paper's
        two fully connected layers = one hidden layer and its output).
      domain_embedding_dim: Size of the domain indicator's embedding fed to the
        auxiliary network.
      partitioned_norm: Apply PN (True) or feed the embeddings as they are.
      domain_field, num_domains: see `DomainBaseline`.
      hidden_units, activation, dropout, output_bias: see `UserModelingBackbone`.

    Returns h = the last hidden layer of the star FCN [B, hidden_units[-1]].
    """

    def __init__(self, auxiliary_units=(16,), domain_embedding_dim: int = 16,
                 partitioned_norm: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.auxiliary_units = tuple(int(u) for u in auxiliary_units)
        self.domain_embedding_dim = int(domain_embedding_dim)
        self.partitioned_norm = bool(partitioned_norm)
        V = self.num_domains
        self.norm = PartitionedNormalization(V, name="pn") if self.partitioned_norm else None
        self.star_layers = [StarDense(u, V, name=f"star_{i}")
                            for i, u in enumerate(self.hidden_units)]
        self.star_output = StarDense(1, V, bias=self.output_bias, name="star_output")
        self.domain_embedding = keras.layers.Dense(self.domain_embedding_dim, use_bias=False,
                                                   name="domain_embedding")
        self.auxiliary = [keras.layers.Dense(u, name=f"auxiliary_{i}")
                          for i, u in enumerate(self.auxiliary_units)]
        self.auxiliary_output = keras.layers.Dense(1, name="auxiliary_output")

    def forward(self, embeddings, context, training):
        weights = domain_weights(context["domain"], self.num_domains)
        x = flatten_fields(embeddings)
        h = self.norm(x, weights, training=training) if self.norm is not None else x
        for layer in self.star_layers:
            h = self.act(layer(h, weights), training)
        logit = self.star_output(h, weights)
        # The domain indicator's embedding: a one-hot row (a mixture for an unknown value)
        # times a learned [V, d] table.
        a = tf.concat([self.domain_embedding(weights), x], axis=1)
        for layer in self.auxiliary:
            a = self.act(layer(a), training)
        return {"hidden": h, "logit": logit + self.auxiliary_output(a)}

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "auxiliary_units": list(self.auxiliary_units),
                "domain_embedding_dim": self.domain_embedding_dim,
                "partitioned_norm": self.partitioned_norm}
