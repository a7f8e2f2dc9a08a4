"""A trained run -> a TF Serving model version.

Layout written under the export base (what `tensorflow_model_server
--model_base_path=BASE` watches):

    BASE/<version>/saved_model.pb
    BASE/<version>/variables/
    BASE/<version>/assets.extra/tf_serving_warmup_requests
    BASE/<version>/assets.extra/feature_spec.json   (the fields, for predict)

Signatures:

* `serving_default`: one tensor per raw feature, batch first (the same batch
  size for all; a request that mixes sizes fails with an InvalidArgument
  error naming the features), named as the dataset names the feature:
  tf.string [None] for string fields (a multi-valued string field such as
  "Action|Comedy" is one joined string),
  tf.int64 [None] for integer fields, and tf.int64 [None, None] for
  behavior lists of any length, oldest first, padded with -1 (the model keeps
  the most recent max_length values). Returns {"probability": float32 [None, 1]}.
* `predict_examples`: {"examples": tf.string [None]} serialized `tf.Example`
  protos with the same feature names. A missing string feature reads as ""
  and a missing integer feature as -1; both land in the field's OOV bucket,
  like every value the training data did not have. Returns the same
  {"probability"}.

The graph is traced with `training=False`: no Gumbel noise, no dropout, and
none of GPRec's auxiliary heads or losses are computed. The version folder
is first written under a hidden temporary name in BASE and then renamed, so
TF Serving never sees a half-written version and an existing version is
never overwritten.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from tfrs_userlevel.backend import tf
from tfrs_userlevel.features import BEHAVIOR_PADDING
from tfrs_userlevel.models import RankingModel
from tfrs_userlevel.training import load_trained

WARMUP_FILE = "tf_serving_warmup_requests"
SPEC_FILE = "feature_spec.json"
MISSING_INT = -1
MISSING_STRING = ""


class ExportError(RuntimeError):
    """The export cannot be written as asked (existing version, bad folder...)."""


def input_specs(model: RankingModel) -> dict[str, tf.TensorSpec]:
    """The raw-feature signature: name -> TensorSpec (batch dimension None).

    Behavior lists are [None, None]: any length, padded with -1; the model
    keeps the last (most recent) max_length values.
    """
    behavior = {f.name for f in model.feature_spec.fields if f.role == "behavior"}
    return {name: tf.TensorSpec([None, None] if name in behavior else [None, *t.shape[1:]],
                                t.dtype, name=name)
            for name, t in model.example_features().items()}


def _parse_spec(model: RankingModel) -> dict[str, Any]:
    parse = {}
    for field in model.feature_spec.fields:
        if field.role == "behavior":
            parse[field.name] = tf.io.VarLenFeature(tf.int64)
        elif field.dtype == "string":
            parse[field.name] = tf.io.FixedLenFeature([], tf.string, MISSING_STRING)
        else:
            parse[field.name] = tf.io.FixedLenFeature([], tf.int64, MISSING_INT)
    return parse


def _same_batch(features: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
    """The features, after checking that they hold the same number of rows (a request
    with, say, 3 user ids and 2 item ids fails with a message naming both)."""
    names = sorted(features)
    rows = tf.shape(features[names[0]])[0]
    checks = [tf.debugging.assert_equal(
        tf.shape(features[name])[0], rows,
        message=f"every feature needs one value per example: feature {name} has another "
                f"batch size than feature {names[0]}") for name in names[1:]]
    with tf.control_dependencies(checks):
        return {name: tf.identity(value) for name, value in features.items()}


class ServingModule(tf.Module):
    """Wraps a trained `RankingModel` with the two serving signatures."""

    def __init__(self, model: RankingModel):
        super().__init__(name="tfrs_userlevel_serving")
        self.model = model
        specs = input_specs(model)
        parse = _parse_spec(model)
        lengths = {f.name: f.max_length for f in model.feature_spec.fields
                   if f.role == "behavior"}

        @tf.function(input_signature=[specs])
        def serve(features):
            return {"probability": model(_same_batch(features), training=False)}

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
        def serve_examples(examples):
            parsed = tf.io.parse_example(examples, parse)
            features = {}
            for name, value in parsed.items():
                if name in lengths:
                    dense = tf.sparse.to_dense(value, default_value=BEHAVIOR_PADDING)
                    dense = dense[:, -lengths[name]:]
                    pad = lengths[name] - tf.shape(dense)[1]
                    value = tf.pad(dense, [[0, 0], [0, pad]],
                                   constant_values=BEHAVIOR_PADDING)
                    value = tf.ensure_shape(value, [None, lengths[name]])
                features[name] = value
            return {"probability": model(features, training=False)}

        self.serve = serve
        self.serve_examples = serve_examples

    def signatures(self) -> dict[str, Any]:
        return {"serving_default": self.serve, "predict_examples": self.serve_examples}


def warmup_rows(model: RankingModel, batch_size: int) -> dict[str, np.ndarray]:
    """`batch_size` rows of real vocabulary values (row i takes each field's i-th value),
    the last row with values the model has never seen (its OOV path)."""
    rows = {}
    for field in model.feature_spec.fields:
        owner = field.shared_vocabulary_with or field.name
        vocabulary = model.vocabularies.get(owner) or (
            [f"value{i}" for i in range(batch_size)] if field.dtype == "string"
            else list(range(batch_size)))  # a hashed field has no vocabulary
        values = [vocabulary[i % len(vocabulary)] for i in range(batch_size)]
        if field.role == "behavior":
            column = np.full((batch_size, field.max_length), BEHAVIOR_PADDING, np.int64)
            for i, v in enumerate(values):
                column[i, -1] = int(v)
            column[-1, -1] = 987654321  # unseen
        elif field.dtype == "string":
            column = np.array([str(v) for v in values[:-1]] + ["<unseen>"], dtype=object)
        else:
            column = np.array([int(v) for v in values[:-1]] + [987654321], dtype=np.int64)
        rows[field.name] = column
    return rows


def write_warmup(path: Path, model: RankingModel, model_name: str,
                 batch_sizes=(1, 64)) -> int:
    """Writes PredictionLog records (TF Serving's warmup format); returns their number."""
    from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

    count = 0
    with tf.io.TFRecordWriter(str(path)) as writer:
        for batch_size in batch_sizes:
            request = predict_pb2.PredictRequest(
                model_spec=model_pb2.ModelSpec(name=model_name,
                                               signature_name="serving_default"))
            for name, column in warmup_rows(model, batch_size).items():
                request.inputs[name].CopyFrom(tf.make_tensor_proto(column))
            log = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request))
            writer.write(log.SerializeToString())
            count += 1
    return count


def versions(base: Path) -> list[int]:
    """The numeric version folders in `base`, ascending."""
    return sorted(int(p.name) for p in base.iterdir()
                  if p.is_dir() and re.fullmatch(r"\d+", p.name))


def next_version(base: Path) -> int:
    """1 + the largest numeric version folder in `base` (1 when there is none)."""
    return max(versions(base), default=0) + 1


def export_model(model: RankingModel, export_base: str | os.PathLike,
                 version: int | None = None, model_name: str = "tfrs_userlevel") -> Path:
    """Writes `model` as version `version` (default: the next one) under `export_base`.

    Raises ExportError when that version already exists.
    """
    base = Path(export_base)
    if base.exists() and not base.is_dir():
        raise ExportError(f"--export-dir {base} exists and is not a folder")
    base.mkdir(parents=True, exist_ok=True)
    version = next_version(base) if version is None else int(version)
    if version < 1:
        raise ExportError(f"version must be a positive integer, got {version}")
    final = base / str(version)
    if final.exists():
        raise ExportError(f"{final} already exists; TF Serving versions are immutable, so it "
                          "is not overwritten (omit --version to write the next one)")
    staging = Path(tempfile.mkdtemp(prefix=f".tmp-{version}-", dir=base))
    try:
        module = ServingModule(model)
        tf.saved_model.save(module, str(staging), signatures=module.signatures())
        (staging / "assets.extra").mkdir()
        write_warmup(staging / "assets.extra" / WARMUP_FILE, model, model_name)
        # The fields' roles and lengths, for `tfrs-userlevel predict --saved-model`.
        (staging / "assets.extra" / SPEC_FILE).write_text(
            json.dumps(model.feature_spec.get_config(), indent=1))
        if final.exists():  # written meanwhile by another export
            raise ExportError(f"{final} appeared while exporting; not overwritten")
        staging.chmod(0o755)  # mkdtemp makes it private; a serving user must read it
        os.rename(staging, final)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return final


def export_run(model_dir: str | os.PathLike, export_base: str | os.PathLike,
               version: int | None = None, model_name: str = "tfrs_userlevel") -> Path:
    """Exports the best weights of a finished training run."""
    return export_model(load_trained(model_dir), export_base, version, model_name)

