"""`FeatureLookup`: raw feature values -> ids of one fused embedding table.

Each field owning a vocabulary gets a block of rows (its OOV row first, then
its values in vocabulary order, or its hash buckets); fields sharing a
vocabulary read the owner's block. The layer runs in the model's serving
signature and, once per dataset, on the host (`data.lookup_columns`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tfrs_userlevel.backend import keras, tf
from tfrs_userlevel.features import (
    BEHAVIOR_PADDING,
    FeatureSpec,
    FeatureSpecError,
    Field,
    attribute_key,
    field_rows,
)


class _HashedValues:
    """The lookup of a `hash_buckets` field: fingerprint hash of the value's string form,
    into the rows after the field's OOV row (`lookup` has a hash table's interface)."""

    def __init__(self, field: Field, offset: int):
        self.buckets = int(field.hash_buckets)
        self.offset = int(offset)
        self.is_string = field.dtype == "string"

    def lookup(self, values: tf.Tensor) -> tf.Tensor:
        text = values if self.is_string else tf.strings.as_string(values)
        return tf.strings.to_hash_bucket_fast(text, self.buckets) + (self.offset + 1)


@keras.utils.register_keras_serializable(package="tfrs_userlevel")
class FeatureLookup(keras.layers.Layer):
    """Maps raw feature values to ids of one fused embedding table.

    Call:
      inputs: dict name -> raw tensor. Single-valued fields: [B] (or [B, 1])
        string/int64. Multi-valued string fields: [B] separator-joined
        strings. Behavior fields: [B, L] int64 padded with -1 (or ragged).

    Returns:
      dict with "ids": int32 [B, F_single] fused ids of the single-valued
      fields in spec order, and, for each multi-valued field, its name ->
      int32 [B, max_length] fused ids padded with -1; for each attribute of
      a behavior field, "<field>:<attribute>" -> int32 [B, max_length], the
      fused ids of the listed items' attribute values (same padding).

    Unseen values map to the field's OOV row; they never raise.
    """

    def __init__(self, spec: list[dict[str, Any]], vocabularies: dict[str, list[Any]], **kwargs):
        super().__init__(**kwargs)
        self.spec = spec if isinstance(spec, FeatureSpec) else FeatureSpec.from_config(spec)
        missing = [
            f.name for f in self.spec.fields
            if f.shared_vocabulary_with is None and f.hash_buckets is None
            and f.name not in vocabularies
        ]
        if missing:
            raise FeatureSpecError(f"no vocabulary for field(s) {missing}")
        self.vocabularies = {k: list(v) for k, v in vocabularies.items()}
        self.offsets: dict[str, int] = {}
        self.sizes: dict[str, int] = {}
        offset = 0
        for field in self.spec.fields:
            if field.shared_vocabulary_with is not None:
                continue
            size = field_rows(field, self.vocabularies) + 1  # + OOV row
            self.offsets[field.name] = offset
            self.sizes[field.name] = size
            offset += size
        self.total_size = offset  # = fused_vocabulary_size(spec, vocabularies)
        self._tables = {}
        for owner in self.offsets:
            field = self.spec[owner]
            if field.hash_buckets is not None:
                self._tables[owner] = _HashedValues(field, self.offsets[owner])
                continue
            keys = self.vocabularies[owner]
            key_dtype = tf.string if field.dtype == "string" else tf.int64
            values = tf.range(1, len(keys) + 1, dtype=tf.int64) + self.offsets[owner]
            initializer = tf.lookup.KeyValueTensorInitializer(
                tf.constant(keys, dtype=key_dtype), values)
            self._tables[owner] = tf.lookup.StaticHashTable(
                initializer, default_value=tf.constant(self.offsets[owner], tf.int64),
                name=f"{owner}_vocabulary")
        self._attribute_tables = {}
        for field in self.spec.fields:
            for attribute in field.attributes:
                key = attribute_key(field.name, attribute)
                if key not in self.vocabularies:
                    raise FeatureSpecError(f"no item -> attribute map {key!r} in the vocabularies")
                pairs = self.vocabularies[key]
                item_field = self.spec[field.shared_vocabulary_with]
                item_dtype = tf.string if item_field.dtype == "string" else tf.int64
                items = [p[0] for p in pairs]
                values = self._tables[attribute].lookup(tf.constant(
                    [p[1] for p in pairs],
                    dtype=tf.string if self.spec[attribute].dtype == "string" else tf.int64))
                initializer = tf.lookup.KeyValueTensorInitializer(
                    tf.constant(items, dtype=item_dtype), values)
                self._attribute_tables[key] = tf.lookup.StaticHashTable(
                    initializer, default_value=tf.constant(self.offsets[attribute], tf.int64),
                    name=f"{field.name}_{attribute}_map")

    @property
    def single_fields(self) -> list[str]:
        return [f.name for f in self.spec.fields if not f.multivalued]

    @property
    def multi_fields(self) -> list[str]:
        return [f.name for f in self.spec.fields if f.multivalued]

    def _owner(self, field: Field) -> str:
        return field.shared_vocabulary_with or field.name

    def vocabulary_size(self, name: str) -> int:
        """Values of field `name` with a row of their own (its vocabulary or hash
        buckets), without the OOV row."""
        return self.sizes[self._owner(self.spec[name])] - 1

    def oov_id(self, name: str) -> int:
        """Fused id of field `name`'s OOV row (its vocabulary owner's first row)."""
        return self.offsets[self._owner(self.spec[name])]

    def _raw(self, inputs, field: Field) -> tf.Tensor:
        if field.name not in inputs:
            raise KeyError(
                f"FeatureLookup: input feature {field.name!r} is missing; "
                f"expected {list(self.spec.names)}, got {sorted(inputs)}")
        value = inputs[field.name]
        expected = tf.string if field.dtype == "string" else tf.int64
        if isinstance(value, tf.RaggedTensor):
            return value
        value = tf.convert_to_tensor(value)
        if value.dtype != expected:
            if field.dtype == "int64" and value.dtype.is_integer:
                value = tf.cast(value, tf.int64)
            else:
                raise TypeError(
                    f"FeatureLookup: feature {field.name!r} must be {expected.name}, "
                    f"got {value.dtype.name}")
        return value

    def call(self, inputs: Mapping[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        single = []
        outputs = {}
        for field in self.spec.fields:
            table = self._tables[self._owner(field)]
            raw = self._raw(inputs, field)
            if not field.multivalued:
                if raw.shape.rank == 2:
                    raw = tf.squeeze(raw, axis=1)
                single.append(table.lookup(raw))
                continue
            if field.dtype == "string":
                if raw.shape.rank == 2:
                    raw = tf.squeeze(raw, axis=1)
                parts = tf.strings.split(raw, sep=field.separator)
                parts = tf.ragged.boolean_mask(parts, tf.strings.length(parts) > 0)
            elif isinstance(raw, tf.RaggedTensor):
                parts = raw
            else:
                parts = tf.ragged.boolean_mask(raw, raw != BEHAVIOR_PADDING)
            # Keep the most recent values (the end of the list) up to max_length.
            parts = parts[:, -field.max_length:]
            ids = tf.ragged.map_flat_values(table.lookup, parts)
            outputs[field.name] = tf.cast(
                ids.to_tensor(default_value=-1, shape=[None, field.max_length]), tf.int32)
            for attribute in field.attributes:
                key = attribute_key(field.name, attribute)
                values = tf.ragged.map_flat_values(self._attribute_tables[key].lookup, parts)
                outputs[key] = tf.cast(
                    values.to_tensor(default_value=-1, shape=[None, field.max_length]), tf.int32)
        if single:
            outputs["ids"] = tf.cast(tf.stack(single, axis=1), tf.int32)
        return outputs

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update({"spec": self.spec.get_config(), "vocabularies": self.vocabularies})
        return config
