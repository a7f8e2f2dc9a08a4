"""MMoE: multi-gate mixture-of-experts, one task per user division.

Ma et al., "Modeling Task Relationships in Multi-task Learning with
Multi-gate Mixture-of-Experts", KDD 2018. As the GPRec paper uses it
(§IV-A): users are divided by a predefined attribute (gender on ML-1M) and
each division is a task with its own gate and tower; an example is scored by
its own division's tower.
"""

from __future__ import annotations

from typing import Any

from tfrs_userlevel.backbones.base import flatten_fields
from tfrs_userlevel.backbones.mlp import DeepNetwork
from tfrs_userlevel.backend import keras, tf
from tfrs_userlevel.baselines.base import DomainBaseline


def split_units(hidden_units, expert_units, tower_units):
    """Default split of the MLP widths: all but the last for the experts, the last for
    the towers (64-32-16 -> experts 64-32, towers 16)."""
    if expert_units is None:
        expert_units = hidden_units[:-1] or hidden_units
    if tower_units is None:
        tower_units = hidden_units[-1:] if len(hidden_units) > 1 else ()
    return tuple(int(u) for u in expert_units), tuple(int(u) for u in tower_units)


class TaskTowers(keras.layers.Layer):
    """V towers (Dense stacks) and V logits, read out with per-example mixture weights.

    Call:
      inputs: float32 [B, V, D], task v's input in row v.
      weights: float32 [B, V] (one-hot for a known domain).

    Returns:
      {"hidden": float32 [B, H], "logit": float32 [B, 1]}: Σ_v w_v·tower_v,
      Σ_v w_v·logit_v.
    """

    def __init__(self, num_tasks: int, tower_units=(16,), activation: str = "relu",
                 dropout: float = 0.2, output_bias: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.num_tasks = int(num_tasks)
        self.tower_units = tuple(int(u) for u in tower_units)
        self.activation = activation
        self.dropout = float(dropout)
        self.output_bias = float(output_bias)
        self.towers = ([DeepNetwork(self.tower_units, activation, dropout, name=f"tower_{v}")
                        for v in range(self.num_tasks)] if self.tower_units else [])
        self.heads = [keras.layers.Dense(1, bias_initializer=keras.initializers.Constant(
            self.output_bias), name=f"head_{v}") for v in range(self.num_tasks)]

    def call(self, inputs, weights, training=False):
        hidden, logits = [], []
        for v in range(self.num_tasks):
            h = inputs[:, v]
            if self.towers:
                h = self.towers[v](h, training=training)
            hidden.append(h)
            logits.append(self.heads[v](h))
        hidden = tf.stack(hidden, axis=1)              # [B, V, H]
        logits = tf.concat(logits, axis=1)             # [B, V]
        return {"hidden": tf.einsum("bv,bvh->bh", weights, hidden),
                "logit": tf.reduce_sum(weights * logits, axis=1, keepdims=True)}

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "num_tasks": self.num_tasks,
                "tower_units": list(self.tower_units), "activation": self.activation,
                "dropout": self.dropout, "output_bias": self.output_bias}


@keras.utils.register_keras_serializable(package="tfrs_userlevel")
class MMoEBaseline(DomainBaseline):
    """x = flatten_fields(E); e_k = expert_k(x); f_v = Σ_k softmax(W_v x)_k e_k; tower_v(f_v).

    Args:
      num_experts: K shared experts.
      expert_units: Widths of each expert MLP (default: hidden_units[:-1]).
      tower_units: Widths of each task tower (default: hidden_units[-1:]).
      domain_field, num_domains: see `DomainBaseline`; one task per domain.
      hidden_units, activation, dropout, output_bias: see `UserModelingBackbone`.

    Returns h = the example's own tower output [B, tower_units[-1]] and its
    logit (an unknown domain: the mean over the towers).
    """

    def __init__(self, num_experts: int = 4, expert_units=None, tower_units=None, **kwargs):
        super().__init__(**kwargs)
        if int(num_experts) < 1:
            raise ValueError(f"MMoEBaseline: num_experts must be >= 1, got {num_experts}")
        self.num_experts = int(num_experts)
        self.expert_units, self.tower_units = split_units(self.hidden_units, expert_units,
                                                          tower_units)
        self.experts = [DeepNetwork(self.expert_units, self.activation, self.dropout,
                                    name=f"expert_{k}") for k in range(self.num_experts)]
        # One Dense computes the V gates' logits at once: [B, V·K].
        self.gates = keras.layers.Dense(self.num_domains * self.num_experts, name="gates")
        self.task_towers = TaskTowers(self.num_domains, self.tower_units, self.activation,
                                      self.dropout, self.output_bias, name="towers")

    @property
    def output_dim(self) -> int:
        return (self.tower_units or self.expert_units)[-1]

    def forward(self, embeddings, context, training):
        x = flatten_fields(embeddings)
        experts = tf.stack([e(x, training=training) for e in self.experts], axis=1)  # [B,K,D]
        gates = tf.nn.softmax(tf.reshape(self.gates(x), [-1, self.num_domains,
                                                         self.num_experts]), axis=-1)
        mixed = tf.einsum("bvk,bkd->bvd", gates, experts)                          # [B,V,D]
        return self.task_towers(mixed, self.weights_of(context), training=training)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "num_experts": self.num_experts,
                "expert_units": list(self.expert_units), "tower_units": list(self.tower_units)}
