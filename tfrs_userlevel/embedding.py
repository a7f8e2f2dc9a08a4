"""One embedding table for all fields, indexed by `FeatureLookup`'s fused ids."""

from __future__ import annotations

from typing import Any

from tfrs_userlevel.backend import keras, tf
from tfrs_userlevel.features import FeatureSpec, attribute_key


@keras.utils.register_keras_serializable(package="tfrs_userlevel")
class FieldEmbedding(keras.layers.Layer):
    """Embeds every field with one gather from a fused table.

    Args:
      spec: The `FeatureSpec` (or its config) the ids were looked up with.
      vocabulary_size: Rows of the table (`FeatureLookup.total_size`).
      embedding_dim: d.
      initializer_stddev: Std of the normal initializer (small values, as in
        FuxiCTR, keep the initial logits near the base rate).
      l2: L2 penalty `l2 * sum(table**2)` on the whole table, added once per
        step (Keras' `embeddings_regularizer` convention, as in DeepCTR); 0
        disables it.

    Call:
      inputs: `FeatureLookup` output: "ids" int32 [B, F_single] and, per
        multi-valued field, int32 [B, L] padded with -1.

    Returns:
      E: float32 [B, F, d] in spec order; a multi-valued field is the mean of
      its non-padding embeddings (zeros when it has none); a behavior position
      with attributes counts as its item's embedding plus theirs.

    `sequence(inputs, name)` gives a behavior field unpooled, for sequence
    models (DIN, DIEN).
    """

    def __init__(self, spec, vocabulary_size: int, embedding_dim: int = 16,
                 initializer_stddev: float = 1e-4, l2: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.spec = spec if isinstance(spec, FeatureSpec) else FeatureSpec.from_config(spec)
        self.vocabulary_size = int(vocabulary_size)
        self.embedding_dim = int(embedding_dim)
        self.initializer_stddev = float(initializer_stddev)
        self.l2 = float(l2)
        self._multi = [f.name for f in self.spec.fields if f.multivalued]

    def build(self, input_shape):
        self.table = self.add_weight(
            name="table", shape=(self.vocabulary_size, self.embedding_dim),
            initializer=keras.initializers.RandomNormal(stddev=self.initializer_stddev),
            regularizer=keras.regularizers.L2(self.l2) if self.l2 else None)
        super().build(input_shape)

    def _positions(self, inputs, name: str) -> list[tf.Tensor]:
        """[B, L, d] per part of a multi-valued field: the values, then each attribute."""
        field = self.spec[name]
        keys = [name] + [attribute_key(name, a) for a in field.attributes]
        return [tf.nn.embedding_lookup(self.table, tf.maximum(inputs[k], 0)) for k in keys]

    def _pooled(self, inputs, name: str) -> tf.Tensor:
        ids = inputs[name]
        mask = tf.cast(ids >= 0, tf.float32)[..., None]
        vectors = tf.add_n(self._positions(inputs, name)) * mask
        count = tf.maximum(tf.reduce_sum(mask, axis=1), 1.0)
        return tf.reduce_sum(vectors, axis=1) / count

    def sequence(self, inputs: dict[str, tf.Tensor], name: str) -> tuple[tf.Tensor, tf.Tensor]:
        """A behavior field unpooled.

        Returns:
          (float32 [B, L, d·(1 + A)]: per position the item embedding
          concatenated with its A attributes' (zeros at padding),
          bool [B, L]: True at real positions).
        """
        mask = inputs[name] >= 0
        parts = tf.concat(self._positions(inputs, name), axis=-1)
        return parts * tf.cast(mask, tf.float32)[..., None], mask

    def call(self, inputs: dict[str, tf.Tensor]) -> tf.Tensor:
        # embedding_lookup: also for a table sharded over parameter servers.
        single = (tf.nn.embedding_lookup(self.table, inputs["ids"]) if "ids" in inputs
                  else None)
        if not self._multi:
            embeddings = single
        else:
            columns, k = [], 0
            for field in self.spec.fields:
                if field.multivalued:
                    columns.append(self._pooled(inputs, field.name))
                else:
                    columns.append(single[:, k])
                    k += 1
            embeddings = tf.stack(columns, axis=1)
        return embeddings

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "spec": self.spec.get_config(),
                "vocabulary_size": self.vocabulary_size, "embedding_dim": self.embedding_dim,
                "initializer_stddev": self.initializer_stddev, "l2": self.l2}
