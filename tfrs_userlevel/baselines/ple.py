"""PLE: progressive layered extraction, one task per user division.

Tang et al., "Progressive Layered Extraction (PLE): A Novel Multi-Task
Learning (MTL) Model for Personalized Recommendations", RecSys 2020. Each
extraction level has task-specific experts per task and shared experts; task
v's gate mixes its own and the shared experts, and (except at the last level)
a shared gate mixes all experts for the next level's shared input. Tasks are
the divisions of a predefined user attribute, as the GPRec paper uses it.
"""

from __future__ import annotations

from typing import Any

from tfrs_userlevel.backbones.base import flatten_fields
from tfrs_userlevel.backbones.mlp import DeepNetwork
from tfrs_userlevel.backend import keras, tf
from tfrs_userlevel.baselines.base import DomainBaseline
from tfrs_userlevel.baselines.mmoe import TaskTowers, split_units


@keras.utils.register_keras_serializable(package="tfrs_userlevel")
class PLEBaseline(DomainBaseline):
    """Customized gate control stacked over len(expert_units) extraction levels.

    Args:
      expert_units: Width of the experts at each level; level l's experts are
        one Dense(expert_units[l]) layer (default: hidden_units[:-1], i.e. two
        levels 64 and 32 for the default MLP).
      tower_units: Widths of each task tower (default: hidden_units[-1:]).
      specific_experts: Experts per task per level.
      shared_experts: Shared experts per level.
      domain_field, num_domains: see `DomainBaseline`.
      hidden_units, activation, dropout, output_bias: see `UserModelingBackbone`.

    Returns h = the example's own tower output and its logit.
    """

    def __init__(self, expert_units=None, tower_units=None, specific_experts: int = 1,
                 shared_experts: int = 2, **kwargs):
        super().__init__(**kwargs)
        if int(specific_experts) < 1 or int(shared_experts) < 0:
            raise ValueError("PLEBaseline: needs specific_experts >= 1 and shared_experts >= 0")
        self.expert_units, self.tower_units = split_units(self.hidden_units, expert_units,
                                                          tower_units)
        self.specific_experts = int(specific_experts)
        self.shared_experts = int(shared_experts)
        V, S, H = self.num_domains, self.specific_experts, self.shared_experts
        self.levels = len(self.expert_units)
        # Flat lists (level-major), so that Keras tracks and restores every layer.
        self.experts, self.gates = [], []
        for level, units in enumerate(self.expert_units):
            for k in range(V * S + H):
                self.experts.append(DeepNetwork((units,), self.activation, self.dropout,
                                                name=f"expert_{level}_{k}"))
            for v in range(V):
                self.gates.append(keras.layers.Dense(S + H, name=f"gate_{level}_{v}"))
            if level < self.levels - 1 and H:
                self.gates.append(keras.layers.Dense(V * S + H, name=f"shared_gate_{level}"))
        self.task_towers = TaskTowers(V, self.tower_units, self.activation, self.dropout,
                                      self.output_bias, name="towers")

    @property
    def output_dim(self) -> int:
        return (self.tower_units or self.expert_units)[-1]

    def forward(self, embeddings, context, training):
        V, S, H = self.num_domains, self.specific_experts, self.shared_experts
        x = flatten_fields(embeddings)
        task_inputs, shared_input = [x] * V, x
        e, g = 0, 0
        for level in range(self.levels):
            specific = []
            for v in range(V):
                specific.append([self.experts[e + v * S + s](task_inputs[v], training=training)
                                 for s in range(S)])
            shared = [self.experts[e + V * S + s](shared_input, training=training)
                      for s in range(H)]
            e += V * S + H
            outputs = []
            for v in range(V):
                candidates = tf.stack(specific[v] + shared, axis=1)            # [B, S+H, D]
                gate = tf.nn.softmax(self.gates[g](task_inputs[v]), axis=-1)   # [B, S+H]
                outputs.append(tf.einsum("bk,bkd->bd", gate, candidates))
                g += 1
            if level < self.levels - 1 and H:
                everything = tf.stack([o for group in specific for o in group] + shared, axis=1)
                gate = tf.nn.softmax(self.gates[g](shared_input), axis=-1)
                shared_input = tf.einsum("bk,bkd->bd", gate, everything)
                g += 1
            task_inputs = outputs
        return self.task_towers(tf.stack(task_inputs, axis=1), self.weights_of(context),
                                training=training)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "expert_units": list(self.expert_units),
                "tower_units": list(self.tower_units),
                "specific_experts": self.specific_experts,
                "shared_experts": self.shared_experts}
