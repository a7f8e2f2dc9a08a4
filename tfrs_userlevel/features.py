"""Declarative feature specification: fields, roles, vocabularies.

A `FeatureSpec` lists the model's input fields: name, dtype, role and how the
raw value becomes ids. `FeatureSpec.build_vocabularies` learns each field's
vocabulary from the training split, and `lookup.FeatureLookup` maps raw values (the
dataset's strings and ints) to ids in ONE fused id space: field k owns the
rows `[offset_k, offset_k + size_k)` of a single embedding table, row
`offset_k` being its OOV bucket. The lookup is a Keras layer, so a saved model
takes raw features; during training the lookup runs once over the data and
the training step sees only ints.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

ROLES = ("item", "user_personal", "user_other", "context", "behavior")
DTYPES = ("string", "int64")
USER_ROLES = ("user_personal", "user_other")
# The value that pads integer behavior lists; it is never a vocabulary entry.
BEHAVIOR_PADDING = -1


class FeatureSpecError(ValueError):
    """An inconsistent or unknown entry in a feature specification."""


@dataclasses.dataclass(frozen=True)
class Field:
    """One input field.

    Args:
      name: Feature name, as the dataset and the serving signature spell it.
      dtype: "string" or "int64": the raw type the dataset delivers.
      role: One of `ROLES`. `user_personal` marks ID-like user fields (GPRec's
        E_p), `user_other` the other user attributes, `behavior` a list of
        past item ids.
      multivalued: The raw value is a list: a `separator`-joined string (e.g.
        genres "Action|Comedy") or, for `behavior`, a padded id list. Its
        embeddings are mean-pooled over the non-padding values.
      separator: Separator of a multi-valued string field.
      max_length: Values kept per example for a multi-valued field.
      min_count: Values seen fewer times in training go to the OOV bucket.
      shared_vocabulary_with: Reuse another field's vocabulary and embedding
        rows (e.g. a behavior list of item ids shares the item id's).
      attributes: For a behavior list of item ids: single-valued item fields
        (e.g. "genres") whose value each listed item carries. The item ->
        value map is learned from the training rows; a history then needs
        only item ids, and each position is embedded as the item's embedding
        plus its attributes' (items never seen in training get the
        attribute's OOV row).
      hash_buckets: Map values to this many rows by a fingerprint hash
        instead of a vocabulary (no vocabulary is learned or stored; two
        values may share a row). None: a vocabulary.
    """

    name: str
    dtype: str
    role: str
    multivalued: bool = False
    separator: str = "|"
    max_length: int = 8
    min_count: int = 1
    shared_vocabulary_with: str | None = None
    attributes: tuple[str, ...] = ()
    hash_buckets: int | None = None

    def __post_init__(self) -> None:
        where = f"field {self.name!r}"
        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise FeatureSpecError(
                f"{where}: the name must be a Python identifier, got {self.name!r}")
        if self.dtype not in DTYPES:
            raise FeatureSpecError(f"{where}: dtype must be one of {DTYPES}, got {self.dtype!r}")
        if self.role not in ROLES:
            raise FeatureSpecError(f"{where}: role must be one of {ROLES}, got {self.role!r}")
        if self.role == "behavior" and not self.multivalued:
            raise FeatureSpecError(f"{where}: a behavior field must be multivalued=True")
        if self.max_length < 1:
            raise FeatureSpecError(f"{where}: max_length must be >= 1, got {self.max_length}")
        if self.min_count < 1:
            raise FeatureSpecError(f"{where}: min_count must be >= 1, got {self.min_count}")
        object.__setattr__(self, "attributes", tuple(self.attributes))
        if self.attributes and (self.role != "behavior" or self.shared_vocabulary_with is None):
            raise FeatureSpecError(
                f"{where}: attributes need a behavior field that shares an item field's "
                "vocabulary (shared_vocabulary_with)")
        if self.hash_buckets is not None:
            if self.hash_buckets < 1:
                raise FeatureSpecError(
                    f"{where}: hash_buckets must be >= 1, got {self.hash_buckets}")
            if self.role == "behavior" or self.shared_vocabulary_with or self.attributes:
                raise FeatureSpecError(
                    f"{where}: hash_buckets applies to a field with its own values, not to a "
                    "behavior list or a field that shares a vocabulary")
        if self.multivalued and self.dtype == "string" and not self.separator:
            raise FeatureSpecError(f"{where}: a multi-valued string field needs a separator")

    @classmethod
    def from_dict(cls, entry: Mapping[str, Any]) -> Field:
        """Builds a field from a config mapping; unknown keys are errors."""
        known = {f.name for f in dataclasses.fields(cls)}
        name = entry.get("name", "<unnamed>")
        unknown = sorted(set(entry) - known)
        if unknown:
            raise FeatureSpecError(
                f"field {name!r}: unknown key(s) {unknown}; valid keys are {sorted(known)}")
        missing = sorted({"name", "dtype", "role"} - set(entry))
        if missing:
            raise FeatureSpecError(f"field {name!r}: missing required key(s) {missing}")
        return cls(**entry)


class FeatureSpec:
    """An ordered, validated list of `Field`s.

    Example:
      spec = FeatureSpec([
          Field("movie_id", "int64", "item"),
          Field("user_id", "int64", "user_personal"),
          Field("gender", "string", "user_other"),
      ])
    """

    def __init__(self, fields: Sequence[Field]):
        self.fields = tuple(fields)
        if not self.fields:
            raise FeatureSpecError("a feature spec needs at least one field")
        names = [f.name for f in self.fields]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise FeatureSpecError(f"field(s) {duplicates} are declared more than once")
        by_name = {f.name: f for f in self.fields}
        for field in self.fields:
            target_name = field.shared_vocabulary_with
            if target_name is None:
                continue
            target = by_name.get(target_name)
            if target is None:
                raise FeatureSpecError(
                    f"field {field.name!r}: shared_vocabulary_with names unknown field "
                    f"{target_name!r}")
            if target.hash_buckets is not None:
                raise FeatureSpecError(
                    f"field {field.name!r}: shares the vocabulary of {target_name!r}, which "
                    "hashes its values (hash_buckets) and has none")
            if target.shared_vocabulary_with is not None:
                raise FeatureSpecError(
                    f"field {field.name!r}: shares with {target_name!r}, which itself shares; "
                    "point both at the owner")
            if target.dtype != field.dtype:
                raise FeatureSpecError(
                    f"field {field.name!r}: dtype {field.dtype!r} differs from the dtype "
                    f"{target.dtype!r} of {target_name!r} whose vocabulary it shares")
            for attribute in field.attributes:
                owner = by_name.get(attribute)
                if (owner is None or owner.role != "item" or owner.multivalued
                        or owner.shared_vocabulary_with is not None):
                    raise FeatureSpecError(
                        f"field {field.name!r}: attribute {attribute!r} must name a "
                        "single-valued item field with its own vocabulary")
        if not any(f.role == "item" for f in self.fields):
            raise FeatureSpecError("a feature spec needs at least one field with role 'item'")

    @classmethod
    def from_config(cls, entries: Sequence[Mapping[str, Any]]) -> FeatureSpec:
        return cls([Field.from_dict(e) for e in entries])

    def get_config(self) -> list[dict[str, Any]]:
        config = []
        for field in self.fields:
            entry = dataclasses.asdict(field)
            entry["attributes"] = list(field.attributes)
            config.append(entry)
        return config

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    def __getitem__(self, name: str) -> Field:
        for field in self.fields:
            if field.name == name:
                return field
        raise KeyError(f"no field {name!r}; fields are {list(self.names)}")

    def positions(self, *roles: str) -> list[int]:
        """Positions (in the embedding output E [B, F, d]) of fields with these roles."""
        for role in roles:
            if role not in ROLES:
                raise FeatureSpecError(f"unknown role {role!r}; valid roles are {ROLES}")
        return [i for i, f in enumerate(self.fields) if f.role in roles]

    def build_vocabularies(
        self, columns: Mapping[str, np.ndarray]
    ) -> dict[str, list[Any]]:
        """Learns each owning field's vocabulary from training columns.

        Args:
          columns: name -> 1-D numpy array of raw values (multi-valued string
            fields joined by their separator; behavior fields [N, L] with
            padding values that never occur as ids, see `FeatureLookup`).

        Returns:
          name -> sorted list of kept values, for every field that owns a
          vocabulary (fields with `shared_vocabulary_with` use their owner's);
          and for each attribute of a behavior field, "<field>:<attribute>" ->
          sorted [item value, attribute value] pairs (`attribute_key`), the
          first attribute value seen with each item in the training rows.
        """
        sources: dict[str, list[np.ndarray]] = {}
        for field in self.fields:
            owner = field.shared_vocabulary_with or field.name
            if field.hash_buckets is not None:
                continue
            if field.name not in columns:
                raise FeatureSpecError(
                    f"field {field.name!r}: no such column in the training data; "
                    f"columns are {sorted(columns)}")
            values = np.asarray(columns[field.name])
            if self[owner].dtype == "string":
                values = _string_counts(values, field.separator if field.multivalued
                                        else None)
            else:
                values = values.reshape(-1)
                if field.multivalued:
                    values = values[values != BEHAVIOR_PADDING]
            sources.setdefault(owner, []).append(values)
        vocabularies = {}
        for owner, parts in sources.items():
            field = self[owner]
            if field.dtype == "string":
                counts = pd.concat(parts).groupby(level=0).sum()
                vocabularies[owner] = sorted(str(v) for v in
                                             counts.index[counts.to_numpy() >= field.min_count])
                continue
            values = np.concatenate(parts).astype(np.int64)
            uniques, counts = np.unique(values, return_counts=True)
            kept = uniques[counts >= field.min_count]
            vocabularies[owner] = [v.item() for v in kept]
        for field in self.fields:
            for attribute in field.attributes:
                first = first_values(columns[field.shared_vocabulary_with], columns[attribute])
                vocabularies[attribute_key(field.name, attribute)] = [
                    [item, value] for item, value in first.items()]
        return vocabularies


def first_values(items: np.ndarray, values: np.ndarray) -> dict[Any, Any]:
    """{item: the value on its first row}, items ascending, as plain Python values: the
    item -> attribute map of a behavior field's attribute, from parallel columns [N]."""
    keys, first = np.unique(np.asarray(items), return_index=True)
    return dict(zip(keys.tolist(), np.asarray(values)[first].tolist(), strict=True))


def _string_counts(values: np.ndarray, separator: str | None) -> pd.Series:
    """value -> rows holding it, for a string column (each part of a joined one)."""
    values = values.reshape(-1)
    if values.dtype.kind not in "OUS":
        values = values.astype(str)
    counts = pd.Series(values.astype(object) if values.dtype.kind == "U" else values
                       ).value_counts(sort=False)
    counts.index = counts.index.map(str)
    if separator is None:
        return counts
    parts, weights = [], []
    for joined, count in counts.items():
        for part in joined.split(separator):
            if part:
                parts.append(part)
                weights.append(count)
    return pd.Series(weights, index=parts, dtype=np.int64).groupby(level=0).sum()


def attribute_key(field: str, attribute: str) -> str:
    """The vocabularies key of a behavior field's item -> attribute map."""
    return f"{field}:{attribute}"



def field_rows(field: Field, vocabularies: Mapping[str, list]) -> int:
    """Rows an owning field takes in the fused id space, without its OOV row: its
    hash buckets or its vocabulary's size."""
    if field.hash_buckets is not None:
        return field.hash_buckets
    return len(vocabularies[field.name])


def fused_vocabulary_size(spec: FeatureSpec, vocabularies: Mapping[str, list]) -> int:
    """Rows of the fused id space `FeatureLookup` builds: each owning field's
    vocabulary (or hash buckets) plus its OOV row."""
    return sum(field_rows(f, vocabularies) + 1 for f in spec.fields
               if f.shared_vocabulary_with is None)
