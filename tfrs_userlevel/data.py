"""tf.data input pipelines over looked-up ids held in memory.

The vocabulary lookup runs once over a whole split (`lookup_columns`), and
its int32 output is the cache every epoch reads; the training step then only
gathers rows. Training batches come from a seeded permutation of all row
indices, drawn in one op every epoch and sliced into batches (one gather per
batch): about 4M examples/s on 2 cores (benchmarks/input_pipeline.py), where
a per-element `Dataset.shuffle` of 800k rows managed about 0.3M.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from tfrs_userlevel.backend import tf
from tfrs_userlevel.lookup import FeatureLookup

AUTOTUNE = tf.data.AUTOTUNE


def _static_options() -> tf.data.Options:
    # The per-batch work is one gather, far cheaper than a training step. The
    # autotuner brings nothing here, and on 2 cores its background work stalled
    # some epoch ends by seconds (measured with benchmarks/input_pipeline.py).
    options = tf.data.Options()
    options.autotune.enabled = False
    return options


_STATIC_OPTIONS = _static_options()


def lookup_columns(lookup: FeatureLookup, columns: Mapping[str, np.ndarray],
                   chunk_size: int = 1 << 18) -> dict[str, np.ndarray]:
    """Runs `lookup` over numpy columns: the ids the layer would give.

    Fields with a vocabulary (single values, and separator-joined strings)
    are looked up on the host with pyarrow's hash lookup, several times
    faster than the layer's tables on CPU; a spec with hashed fields or
    behavior lists runs the layer itself, in chunks.

    Args:
      lookup: The model's `FeatureLookup`.
      columns: name -> raw values [N] (or [N, L] for behavior lists).

    Returns:
      The lookup output as numpy: "ids" int32 [N, F_single] and the padded
      id lists of multi-valued fields.
    """
    names = list(lookup.spec.names)
    missing = [name for name in names if name not in columns]
    if missing:
        raise KeyError(f"columns {missing} are missing; have {sorted(columns)}")
    n = len(columns[names[0]])
    for name in names:
        if len(columns[name]) != n:
            raise ValueError(f"column {name!r} has {len(columns[name])} rows, expected {n}")
    if all(f.hash_buckets is None and f.role != "behavior" for f in lookup.spec.fields):
        return _host_lookup(lookup, columns, n)
    parts: dict[str, list[np.ndarray]] = {}
    for start in range(0, max(n, 1), chunk_size):
        chunk = {name: tf.constant(np.asarray(columns[name][start:start + chunk_size]))
                 for name in names}
        for key, value in lookup(chunk).items():
            parts.setdefault(key, []).append(value.numpy())
    return {key: np.concatenate(values) for key, values in parts.items()}


def _host_lookup(lookup: FeatureLookup, columns: Mapping[str, np.ndarray], n: int
                 ) -> dict[str, np.ndarray]:
    """`lookup`'s output for vocabulary fields, computed on the host.

    Each column is factorized (pandas' hash factorization), each distinct value is
    looked up once, and the ids are gathered back by code.
    """
    single, outputs = [], {}
    for field in lookup.spec.fields:
        owner = field.shared_vocabulary_with or field.name
        # list(): the layer holds its vocabularies in Keras' tracking wrappers.
        index = {value: position + lookup.offsets[owner] + 1
                 for position, value in enumerate(list(lookup.vocabularies[owner]))}
        oov = lookup.offsets[owner]
        values = np.asarray(columns[field.name])
        if field.dtype == "string" and values.dtype.kind not in "OUS":
            values = values.astype(str)
        codes, uniques = pd.factorize(values.astype(object) if values.dtype.kind == "U"
                                      else values)
        if not field.multivalued:
            keys = [str(u) for u in uniques] if field.dtype == "string" else [
                int(u) for u in uniques]
            ids = np.fromiter((index.get(k, oov) for k in keys), np.int64, len(keys))
            single.append(ids[codes])
            continue
        rows = np.full((len(uniques), field.max_length), -1, np.int32)
        for row, joined in enumerate(uniques):
            parts = [part for part in str(joined).split(field.separator) if part]
            kept = parts[len(parts) - field.max_length:] if len(parts) > field.max_length \
                else parts
            rows[row, :len(kept)] = [index.get(part, oov) for part in kept]
        outputs[field.name] = rows[codes]
    if single:
        outputs["ids"] = np.stack(single, axis=1).astype(np.int32)
    return outputs


def _labels(labels: np.ndarray) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"labels must be 1-D, got shape {labels.shape}")
    bad = np.flatnonzero(~np.isin(labels, (0, 1)))
    if len(bad):
        raise ValueError(f"labels must be 0 or 1; row {bad[0]} holds {labels[bad[0]].item()!r}")
    return labels.astype(np.float32)[:, None]


def _gather(features: Mapping[str, tf.Tensor], labels: tf.Tensor):
    def gather(indices):
        return ({key: tf.gather(value, indices) for key, value in features.items()},
                tf.gather(labels, indices))
    return gather


def training_dataset(ids: Mapping[str, np.ndarray], labels: np.ndarray, batch_size: int,
                     seed: int, drop_remainder: bool = False) -> tf.data.Dataset:
    """Shuffled batches `(ids, labels [B, 1])`, a new seeded order each epoch.

    Each iteration (epoch) draws one seed from `Dataset.random(seed)`, permutes
    all row indices with it in a single op and slices the permutation into
    batches, so the order is reproducible for a given `seed` and differs
    between epochs.
    """
    labels = _labels(labels)
    features = {key: tf.constant(value) for key, value in ids.items()}
    n = len(labels)
    num_batches = n // batch_size if drop_remainder else -(-n // batch_size)

    def epoch(epoch_seed):
        order = tf.random.experimental.stateless_shuffle(
            tf.range(n, dtype=tf.int64), seed=tf.stack([epoch_seed, tf.constant(seed, tf.int64)]))
        return tf.data.Dataset.range(num_batches).map(
            lambda i: order[i * batch_size:tf.minimum((i + 1) * batch_size, n)])

    return (tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
            .take(1)
            .flat_map(epoch)
            .apply(tf.data.experimental.assert_cardinality(num_batches))
            .map(_gather(features, tf.constant(labels)))
            .prefetch(2)
            .with_options(_STATIC_OPTIONS))


def evaluation_dataset(ids: Mapping[str, np.ndarray], labels: np.ndarray,
                       batch_size: int) -> tf.data.Dataset:
    """Batches `(ids, labels [B, 1])` in row order (slices of the in-memory ids)."""
    labels = _labels(labels)
    features = {key: tf.constant(value) for key, value in ids.items()}
    n = len(labels)
    starts = tf.data.Dataset.range(0, n, batch_size)
    return (starts
            .map(lambda s: tf.range(s, tf.minimum(s + batch_size, n)))
            .map(_gather(features, tf.constant(labels)), num_parallel_calls=AUTOTUNE,
                 deterministic=True)
            .prefetch(AUTOTUNE))
