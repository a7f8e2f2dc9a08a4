"""Training input beyond memory: sharded TFRecord files read with interleaved streams.

Format ("row blocks"): each record is one `tf.train.Example` holding a block of
up to `block_rows` consecutive rows: every feature is a list with one value per
row (behavior lists: `max_length` values per row, padded with -1), plus the
"label" list. Blocks make writing ~30× faster than one Example per row (the
Python proto work is per record) and reading is one `parse_example` per batch
of blocks. `write_tfrecords` also writes `manifest.json`: row and shard
counts, the feature spec, the training positive rate and the vocabularies
(counted while writing, so no second pass over the data is needed).

`streaming_dataset` lists the shards, reads `cycle_length` of them at once
(interleaved, shuffled file order and blocks), parses `batch_size // block_rows`
blocks per batch, shuffles the rows inside the batch and runs the model's
lookup in the pipeline: memory is bounded by the buffers, not by the number of
rows (benchmarks/scale.py).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from tfrs_userlevel.backend import tf
from tfrs_userlevel.features import (
    BEHAVIOR_PADDING,
    FeatureSpec,
    attribute_key,
    first_values,
)

MANIFEST = "manifest.json"


def _feature(values: np.ndarray, dtype: str) -> tf.train.Feature:
    if dtype == "string":
        return tf.train.Feature(bytes_list=tf.train.BytesList(
            value=[str(v).encode() for v in values]))
    return tf.train.Feature(int64_list=tf.train.Int64List(value=values.reshape(-1).tolist()))


def write_tfrecords(chunks: Iterable[Mapping[str, np.ndarray]], spec: FeatureSpec | list,
                    out_dir: str | os.PathLike, prefix: str = "train",
                    rows_per_shard: int = 1 << 20, block_rows: int = 256) -> dict[str, Any]:
    """Writes column chunks (name -> [n] or [n, L]; with "label") as sharded TFRecords.

    Files are `out_dir/<prefix>-<k>.tfrecord`, written under a temporary name and
    renamed when complete; `out_dir/<prefix>.manifest.json` describes them.

    Returns:
      The manifest.
    """
    spec = spec if isinstance(spec, FeatureSpec) else FeatureSpec.from_config(spec)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    names = list(spec.names)
    counts: dict[str, Counter] = {f.shared_vocabulary_with or f.name: Counter()
                                  for f in spec.fields if f.hash_buckets is None}
    # Behavior attributes: item -> the attribute value of its first row (as in memory).
    attribute_maps: dict[str, dict] = {attribute_key(f.name, a): {}
                                       for f in spec.fields for a in f.attributes}
    rows = positives = blocks = 0
    shards: list[str] = []
    writer, in_shard = None, 0

    def close():
        nonlocal writer
        if writer is not None:
            writer.close()
            final = out_dir / shards[-1]
            os.replace(str(final) + ".tmp", final)
            writer = None

    for number, chunk in enumerate(chunks):
        missing = [n for n in names + ["label"] if n not in chunk]
        if missing:
            raise KeyError(f"write_tfrecords: chunk {number} lacks column(s) {missing}")
        n = len(chunk["label"])
        labels = np.asarray(chunk["label"])
        if not np.isin(labels, (0, 1)).all():
            row = int(np.flatnonzero(~np.isin(labels, (0, 1)))[0])
            raise ValueError(f"write_tfrecords: chunk {number}, row {row}: label must be 0 or "
                             f"1, got {labels[row]!r}")
        for field in spec.fields:
            if field.hash_buckets is not None:
                continue  # hashed: no vocabulary to count
            values = np.asarray(chunk[field.name])
            if field.multivalued and field.dtype == "int64":
                values = values[values != BEHAVIOR_PADDING]
            elif field.multivalued:
                values = [v for s in values.astype(str) for v in s.split(field.separator) if v]
            uniques, times = np.unique(np.asarray(values), return_counts=True)
            counts[field.shared_vocabulary_with or field.name].update(
                dict(zip(uniques.tolist(), times.tolist(), strict=True)))
            for attribute in field.attributes:  # earlier chunks' rows come first
                seen = attribute_maps[attribute_key(field.name, attribute)]
                for item, value in first_values(chunk[field.shared_vocabulary_with],
                                                chunk[attribute]).items():
                    seen.setdefault(item, value)
        rows += n
        positives += int(labels.sum())
        for start in range(0, n, block_rows):
            if writer is None:
                shards.append(f"{prefix}-{len(shards):05d}.tfrecord")
                writer = tf.io.TFRecordWriter(str(out_dir / shards[-1]) + ".tmp")
                in_shard = 0
            stop = min(start + block_rows, n)
            feature = {"label": _feature(labels[start:stop].astype(np.int64), "int64")}
            for field in spec.fields:
                feature[field.name] = _feature(np.asarray(chunk[field.name][start:stop]),
                                               field.dtype)
            writer.write(tf.train.Example(features=tf.train.Features(feature=feature))
                         .SerializeToString())
            blocks += 1
            in_shard += stop - start
            if in_shard >= rows_per_shard:
                close()
    close()
    vocabularies = {}
    for owner, counter in counts.items():
        field = spec[owner]
        kept = sorted(k for k, c in counter.items() if c >= field.min_count)
        vocabularies[owner] = kept
    for key, seen in attribute_maps.items():
        vocabularies[key] = [[item, seen[item]] for item in sorted(seen)]
    manifest = {"rows": rows, "blocks": blocks, "shards": shards, "block_rows": block_rows,
                "positive_rate": positives / max(rows, 1), "feature_spec": spec.get_config(),
                "vocabularies": vocabularies}
    path = out_dir / f"{prefix}.{MANIFEST}"
    path.with_suffix(".tmp").write_text(json.dumps(manifest))
    os.replace(path.with_suffix(".tmp"), path)
    return manifest


def read_manifest(out_dir: str | os.PathLike, prefix: str = "train") -> dict[str, Any]:
    path = Path(out_dir) / f"{prefix}.{MANIFEST}"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: {out_dir} holds no TFRecords written by "
                                "tfrs_userlevel.streaming.write_tfrecords")
    return json.loads(path.read_text())


def batches_per_pass(manifest: Mapping[str, Any], batch_size: int) -> int:
    """Batches in one pass over the shards (`streaming_dataset` batches whole blocks)."""
    return -(-int(manifest["blocks"]) // (batch_size // int(manifest["block_rows"])))


def streaming_dataset(out_dir: str | os.PathLike, lookup, batch_size: int, seed: int = 0,
                      prefix: str = "train", cycle_length: int = 4, shuffle_blocks: int = 64,
                      repeat: bool = False) -> tf.data.Dataset:
    """Batches `(ids, labels [B, 1])` streamed from the shards, through `lookup`.

    Args:
      out_dir, prefix: Where `write_tfrecords` wrote.
      lookup: The model's `FeatureLookup` (raw features -> ids), run in the pipeline.
      batch_size: Rows per batch, a multiple of the manifest's block_rows (the last
        batch of a pass can be smaller).
      seed: Shuffling seed (file order, blocks, rows within a batch).
      cycle_length: Shards read at once.
      shuffle_blocks: Blocks in the shuffle buffer.
    """
    manifest = read_manifest(out_dir, prefix)
    block = manifest["block_rows"]
    if batch_size % block:
        raise ValueError(f"streaming_dataset: batch_size {batch_size} must be a multiple of the "
                         f"block size {block} the shards were written with")
    spec = FeatureSpec.from_config(manifest["feature_spec"])
    features = {"label": tf.io.RaggedFeature(tf.int64)}
    for field in spec.fields:
        features[field.name] = tf.io.RaggedFeature(
            tf.string if field.dtype == "string" else tf.int64)
    files = [str(Path(out_dir) / s) for s in manifest["shards"]]

    def parse(serialized):
        parsed = tf.io.parse_example(serialized, features)
        rows = tf.shape(parsed["label"].flat_values)[0]
        order = tf.random.shuffle(tf.range(rows), seed=seed)
        raw = {}
        for field in spec.fields:
            values = parsed[field.name].flat_values
            if field.role == "behavior":
                values = tf.reshape(values, [rows, -1])
            raw[field.name] = tf.gather(values, order)
        labels = tf.cast(tf.gather(parsed["label"].flat_values, order), tf.float32)[:, None]
        return lookup(raw), labels

    dataset = (tf.data.Dataset.from_tensor_slices(files)
               .shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
               .interleave(lambda f: tf.data.TFRecordDataset(f, buffer_size=1 << 20),
                           cycle_length=cycle_length, block_length=1,
                           num_parallel_calls=tf.data.AUTOTUNE, deterministic=False)
               .shuffle(shuffle_blocks, seed=seed, reshuffle_each_iteration=True))
    if repeat:
        dataset = dataset.repeat()
    return (dataset.batch(batch_size // block)
            .map(parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=False)
            .prefetch(tf.data.AUTOTUNE))
