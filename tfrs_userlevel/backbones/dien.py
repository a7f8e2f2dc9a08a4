"""DIEN (Zhou et al., "Deep Interest Evolution Network for Click-Through Rate
Prediction", AAAI 2019)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from tfrs_userlevel.backbones.base import Backbone, flatten_fields
from tfrs_userlevel.backbones.mlp import DeepNetwork, deep_options
from tfrs_userlevel.backend import keras, tf
from tfrs_userlevel.features import Field, attribute_key


class NegativeItemSampler:
    """The negatives of DIEN's auxiliary loss: for each history position, a known item
    (with its attributes) drawn by hashing the listed item's fused id and the position,
    the same whatever batch the row is in (so the loss splits exactly over replicas).

    Args:
      field: The behavior field (the history of an item field, with its attributes).
      vocabularies: The model's vocabularies (item -> attribute maps included).
      offsets: Fused id of each owning field's OOV row (`FeatureLookup.offsets`).

    Call:
      ids: int [B, L] fused ids of the history's items; table: the embedding
      table [V, d]. Returns float32 [B, L, d·(1 + A)].
    """

    def __init__(self, field: Field, vocabularies: Mapping[str, list],
                 offsets: Mapping[str, int]):
        # int32 [V_item, 1 + A]: per known item (vocabulary order), the fused ids of the
        # item and of its attributes (their OOV row where the map has none).
        owner = field.shared_vocabulary_with
        items = vocabularies[owner]
        columns = [np.arange(1, len(items) + 1) + offsets[owner]]
        for attribute in field.attributes:
            values = {v: i + 1 for i, v in enumerate(vocabularies[attribute])}
            mapped = dict((k, values.get(v, 0)) for k, v in
                          vocabularies[attribute_key(field.name, attribute)])
            columns.append(np.array([mapped.get(i, 0) for i in items]) + offsets[attribute])
        self.item_rows = tf.constant(np.stack(columns, axis=1).astype(np.int32))

    def __call__(self, ids: tf.Tensor, table: tf.Tensor) -> tf.Tensor:
        count = tf.shape(self.item_rows)[0]
        position = tf.range(tf.shape(ids)[1])[None, :]
        key = tf.math.floormod(tf.maximum(ids, 0) * 7919 + position * 104729 + 12345, count)
        rows = tf.gather(self.item_rows, key)                            # [B, L, 1 + A]
        vectors = tf.nn.embedding_lookup(table, rows)                    # [B, L, 1 + A, d]
        shape = tf.shape(vectors)
        return tf.reshape(vectors, [shape[0], shape[1], -1])


@keras.utils.register_keras_serializable(package="tfrs_userlevel")
class AUGRUCell(keras.layers.Layer):
    """GRU with attentional update gate (DIEN eq. 15-16): u'_t = a_t·u_t,
    h_t = (1 − u'_t) ⊙ h_{t−1} + u'_t ⊙ h̃_t.

    Call:
      inputs: float32 [B, D + 1], the step's input with its attention score
        a_t as the last column.
      states: [h_{t−1} float32 [B, units]].

    Returns:
      (h_t, [h_t]).
    """

    def __init__(self, units: int, **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)
        self.state_size = self.units
        self.output_size = self.units

    def build(self, input_shape):
        width = int(input_shape[-1]) - 1
        self.kernel = self.add_weight(name="kernel", shape=(width, 3 * self.units),
                                      initializer="glorot_uniform")
        self.recurrent_kernel = self.add_weight(
            name="recurrent_kernel", shape=(self.units, 3 * self.units),
            initializer="orthogonal")
        self.bias = self.add_weight(name="bias", shape=(3 * self.units,), initializer="zeros")
        super().build(input_shape)

    def call(self, inputs, states):
        h = states[0]
        x, attention = inputs[:, :-1], inputs[:, -1:]
        xz, xr, xh = tf.split(tf.matmul(x, self.kernel) + self.bias, 3, axis=1)
        hz, hr, hh = tf.split(tf.matmul(h, self.recurrent_kernel), 3, axis=1)
        update = attention * tf.sigmoid(xz + hz)
        reset = tf.sigmoid(xr + hr)
        candidate = tf.tanh(xh + reset * hh)
        h = (1.0 - update) * h + update * candidate
        return h, [h]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "units": self.units}


@keras.utils.register_keras_serializable(package="tfrs_userlevel")
class DIENBackbone(Backbone):
    """h = DNN([flatten(E), h'_T]): interest extractor GRU over the click
    history, attention of each extracted interest on the target item, and the
    interest-evolving AUGRU whose last state h'_T joins the field embeddings.

    - Interest extractor: a GRU, states h_t [B, L, D].
    - Auxiliary loss (eq. 8): h_t should score the next clicked item e_{t+1}
      above a non-clicked one. ML has no logged non-clicks per step, so the
      negative is a known item drawn by hashing the clicked one and its
      position (`behavior["negatives"]`, given by `RankingModel`): the same
      whichever batch or replica the row is in. `aux_weight` = α (0 drops it).
    - Attention (eq. 14): a_t = softmax_t(h_t W q) over the real positions.
    - Interest evolution: AUGRU (`AUGRUCell`) over (h_t, a_t).

    Args:
      aux_weight: α, weight of the auxiliary loss.
      hidden_units, activation, dropout, batch_norm: of the prediction MLP.
      output_bias: Initial head bias.
      add_losses: Also `add_loss` α·L_aux (`tfrs_userlevel.loss_terms`), for a
        model whose training step adds `model.losses`; `RankingModel`
        refuses True.

    Call / Returns: see `Backbone` (needs `behavior`); h [B, hidden_units[-1]];
    "losses" {"dien_auxiliary_loss": α·L_aux}.
    """

    loss_names = ("dien_auxiliary_loss",)

    def __init__(self, aux_weight: float = 1.0, hidden_units: Sequence[int] = (64, 32, 16),
                 activation: str = "relu", dropout: float = 0.2, batch_norm: bool = False,
                 add_losses: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.add_losses = bool(add_losses)
        if aux_weight < 0:
            raise ValueError(f"DIENBackbone: aux_weight must be >= 0, got {aux_weight}")
        self.aux_weight = float(aux_weight)
        self.deep = DeepNetwork(hidden_units, activation, dropout, batch_norm, name="deep")
        self.extractor = None
        self.evolution = None

    @property
    def requires(self) -> frozenset[str]:
        """The history, gates for its MLP, and negatives for the auxiliary loss (when it
        has a weight)."""
        return frozenset({"behavior", "gates", *(("negatives",) if self.aux_weight else ())})

    def _layers_for(self, width: int) -> None:
        if self.extractor is None:
            self.extractor = keras.layers.GRU(width, return_sequences=True, name="extractor")
            self.evolution = keras.layers.RNN(AUGRUCell(width), name="evolution")
            self.attention_kernel = self.add_weight(
                name="attention_kernel", shape=(width, width), initializer="glorot_uniform")

    def _auxiliary_loss(self, states, sequence, negatives, mask):
        """α · mean over rows of the row's mean over its steps t (t and t+1 real) of
        −log σ(h_t·e_{t+1}) − log(1 − σ(h_t·e⁻_{t+1})); rows without such a step add 0.
        A per-row mean, so it averages exactly over any split of the batch."""
        valid = tf.cast(tf.logical_and(mask[:, :-1], mask[:, 1:]), tf.float32)
        h = states[:, :-1]
        positive = tf.reduce_sum(h * sequence[:, 1:], axis=-1)
        negative = tf.reduce_sum(h * negatives[:, 1:], axis=-1)
        per_step = (tf.nn.sigmoid_cross_entropy_with_logits(tf.ones_like(positive), positive)
                    + tf.nn.sigmoid_cross_entropy_with_logits(tf.zeros_like(negative), negative))
        per_row = (tf.reduce_sum(per_step * valid, axis=1)
                   / tf.maximum(tf.reduce_sum(valid, axis=1), 1.0))
        return self.aux_weight * tf.reduce_mean(per_row)

    def hidden_state(self, embeddings, training=False, gates=None, behavior=None):
        sequence, mask, query = behavior["sequence"], behavior["mask"], behavior["query"]
        self._layers_for(int(sequence.shape[-1]))
        states = self.extractor(sequence, mask=mask)                       # [B, L, D]
        scores = tf.einsum("bld,de,be->bl", states, self.attention_kernel, query)
        scores = tf.where(mask, scores, tf.fill(tf.shape(scores), -1e9))
        attention = tf.nn.softmax(scores, axis=1) * tf.cast(mask, tf.float32)
        evolved = self.evolution(tf.concat([states, attention[..., None]], axis=-1), mask=mask)
        hidden = self.deep(tf.concat([flatten_fields(embeddings), evolved], axis=1),
                           training=training, gates=gates)
        losses = {"dien_auxiliary_loss": (
            self._auxiliary_loss(states, sequence, behavior["negatives"], mask)
            if self.aux_weight and "negatives" in behavior else tf.constant(0.0))}
        return {"hidden": hidden, "losses": losses}

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), **deep_options(self.deep), "aux_weight": self.aux_weight,
                "add_losses": self.add_losses}
