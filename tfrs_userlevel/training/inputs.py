"""Where a run's examples come from: one interface, three sources.

A `TrainingInput` says what the model is built from (the positive rate and
row count of the training split, the vocabularies) and, once the model's
lookup exists, gives the run its `Batches`:

* `InMemoryInput`: numpy columns; the lookups run once on the host and the
  batches slice the ids (`data.training_dataset`).
* `StreamedInput`: TFRecord shards (`streaming.write_tfrecords`); the lookups
  run in the input pipeline and memory does not grow with the rows.
* `ParameterServerInput`: numpy columns for a ParameterServerStrategy
  cluster; each worker builds its own shuffled, repeated batches
  (`DatasetCreator`), and validation and test are scored on the coordinator
  after training (Keras 2's `fit` validates nothing under that strategy).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from tfrs_userlevel import data as data_lib
from tfrs_userlevel import streaming
from tfrs_userlevel.backend import keras, tf
from tfrs_userlevel.features import FeatureSpec
from tfrs_userlevel.metrics import METRIC_NAMES, evaluate_ids
from tfrs_userlevel.training.train_config import TrainConfig

MONITOR_BATCHES = 16  # batches of a streamed input that the monitor keeps as its sample

Splits = Mapping[str, Mapping[str, np.ndarray]]


@dataclasses.dataclass
class Batches:
    """A run's batches, for a model whose lookup made them.

    Attributes:
      train: `(ids, labels [B, 1])` batches (repeated where `steps_per_pass`
        must bound the epochs), or a `DatasetCreator`.
      steps_per_pass: Batches in one pass over the training split.
      sample_ids, sample_labels, sample_order: Training rows the monitor
        scores each epoch, and their time order.
      validation, test: Evaluation batches (None where `evaluate` scores ids).
      eval_steps: {"validation"|"test": batches per pass, or None: to the end}.
      validates_in_fit: Whether `fit` validates each epoch (early stopping and
        the best weights need it).
      fit_needs_steps: Whether `fit` must be told the steps of an epoch.
    """

    train: Any
    steps_per_pass: int
    sample_ids: Mapping[str, np.ndarray]
    sample_labels: np.ndarray
    sample_order: np.ndarray
    validation: tf.data.Dataset | None = None
    test: tf.data.Dataset | None = None
    eval_steps: Mapping[str, int | None] = dataclasses.field(
        default_factory=lambda: {"validation": None, "test": None})
    validates_in_fit: bool = True
    fit_needs_steps: bool = False
    evaluation_ids: Mapping[str, tuple[Mapping[str, np.ndarray], np.ndarray]] | None = None
    skip_batches: bool = False

    def resume(self, finished_epochs: int, steps_per_epoch: int) -> None:
        """Moves the training order past `finished_epochs` epochs, as the uninterrupted
        run drew them: a streamed input skips their batches (one pass after another); an
        in-memory input draws a new order per iterator, so one iterator per epoch."""
        if not finished_epochs:
            return
        if self.skip_batches:
            self.train = self.train.skip(finished_epochs * steps_per_epoch)
        else:
            for _ in range(finished_epochs):
                iter(self.train)

    def shard_by_data(self) -> None:
        """In-memory batches under a multi-worker strategy: shard by data (there are no
        files to shard by)."""
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = (
            tf.data.experimental.AutoShardPolicy.DATA)
        self.train, self.validation, self.test = (
            d.with_options(options) for d in (self.train, self.validation, self.test))

    def evaluate(self, model: keras.Model, split: str) -> dict[str, float]:
        """{metric: value} of `model` on "validation" or "test"."""
        if self.evaluation_ids is not None:
            return evaluate_ids(model, *self.evaluation_ids[split])
        dataset = self.validation if split == "validation" else self.test
        logs = model.evaluate(dataset, steps=self.eval_steps[split], verbose=0,
                              return_dict=True)
        return {name: float(logs[name]) for name in METRIC_NAMES}


class TrainingInput:
    """The interface the training loop reads its examples through."""

    positive_rate: float  # of the training split's labels
    train_rows: int

    def vocabularies(self, spec: FeatureSpec) -> Mapping[str, list]:
        """The vocabularies the model is built with."""
        raise NotImplementedError

    def batches(self, model: keras.Model, config: TrainConfig) -> Batches:
        """The run's batches, through `model.lookup`."""
        raise NotImplementedError


class InMemoryInput(TrainingInput):
    """Numpy columns {"train"|"validation"|"test": {column: [N]}} with a 0/1 "label".

    Args:
      splits: The three splits.
      vocabularies: Used instead of those of the training split (e.g. with rows for
        users that only come later).
    """

    def __init__(self, splits: Splits, vocabularies: Mapping[str, list] | None = None):
        self.splits = splits
        self._vocabularies = vocabularies
        labels = splits["train"]["label"]
        self.positive_rate, self.train_rows = float(np.mean(labels)), len(labels)

    def vocabularies(self, spec: FeatureSpec) -> Mapping[str, list]:
        if self._vocabularies is None:
            self._vocabularies = spec.build_vocabularies(self.splits["train"])
        return self._vocabularies

    def ids(self, model: keras.Model) -> dict[str, dict[str, np.ndarray]]:
        return {name: data_lib.lookup_columns(model.lookup, columns)
                for name, columns in self.splits.items()}

    def batches(self, model: keras.Model, config: TrainConfig) -> Batches:
        ids, train = self.ids(model), self.splits["train"]
        labels = train["label"]
        batches = data_lib.training_dataset(ids["train"], labels, config.batch_size,
                                            seed=config.seed)
        return Batches(
            train=batches, steps_per_pass=int(batches.cardinality()),
            sample_ids=ids["train"], sample_labels=labels,
            sample_order=train.get("timestamp", np.arange(len(labels))),
            validation=data_lib.evaluation_dataset(
                ids["validation"], self.splits["validation"]["label"], config.eval_batch_size),
            test=data_lib.evaluation_dataset(ids["test"], self.splits["test"]["label"],
                                             config.eval_batch_size))


class StreamedInput(TrainingInput):
    """TFRecord shards in `tfrecord_dir` (prefixes "train", "validation", "test"); the
    vocabularies come from the train manifest unless given."""

    def __init__(self, tfrecord_dir: str | os.PathLike,
                 vocabularies: Mapping[str, list] | None = None):
        self.tfrecord_dir = tfrecord_dir
        self.manifest = streaming.read_manifest(tfrecord_dir, "train")
        self.positive_rate = float(self.manifest["positive_rate"])
        self.train_rows = int(self.manifest["rows"])
        self._vocabularies = vocabularies or self.manifest["vocabularies"]

    def vocabularies(self, spec: FeatureSpec) -> Mapping[str, list]:
        return self._vocabularies

    def batches(self, model: keras.Model, config: TrainConfig) -> Batches:
        block = self.manifest["block_rows"]
        train = streaming.streaming_dataset(self.tfrecord_dir, model.lookup,
                                            config.batch_size, seed=config.seed)
        eval_batch = max(block, config.eval_batch_size // block * block)
        validation, test = (streaming.streaming_dataset(
            self.tfrecord_dir, model.lookup, eval_batch, prefix=prefix)
            for prefix in ("validation", "test"))
        eval_steps = {prefix: streaming.batches_per_pass(
            streaming.read_manifest(self.tfrecord_dir, prefix), eval_batch)
            for prefix in ("validation", "test")}
        sample = list(train.take(MONITOR_BATCHES))
        sample_ids = {k: np.concatenate([b[0][k].numpy() for b in sample])
                      for k in sample[0][0]}
        sample_labels = np.concatenate([b[1].numpy()[:, 0] for b in sample])
        return Batches(
            train=train.repeat(),  # fit counts the steps (steps_per_execution needs a count)
            steps_per_pass=streaming.batches_per_pass(self.manifest, config.batch_size),
            sample_ids=sample_ids, sample_labels=sample_labels,
            sample_order=np.arange(len(sample_labels)), validation=validation, test=test,
            eval_steps=eval_steps, fit_needs_steps=True, skip_batches=True)


class ParameterServerInput(InMemoryInput):
    """Numpy columns for a ParameterServerStrategy cluster: the lookups run on the
    coordinator, once; each worker shuffles and repeats its own batches."""

    def batches(self, model: keras.Model, config: TrainConfig) -> Batches:
        ids, labels = self.ids(model), self.splits["train"]["label"]
        train_ids = ids["train"]

        def dataset_fn(context: tf.distribute.InputContext) -> tf.data.Dataset:
            return data_lib.training_dataset(train_ids, labels, config.batch_size,
                                             seed=config.seed + context.input_pipeline_id
                                             ).repeat()

        return Batches(
            train=keras.utils.experimental.DatasetCreator(dataset_fn),
            steps_per_pass=-(-len(labels) // config.batch_size),
            sample_ids=train_ids, sample_labels=labels, sample_order=np.arange(len(labels)),
            validates_in_fit=False, fit_needs_steps=True,
            evaluation_ids={split: (ids[split], self.splits[split]["label"])
                            for split in ("validation", "test")})


def training_input(config: TrainConfig, splits: Splits | None,
                   vocabularies: Mapping[str, list] | None,
                   tfrecord_dir: str | os.PathLike | None) -> TrainingInput:
    """The input a run reads: parameter-server, streamed or in-memory."""
    if config.distribute == "parameter_server":
        return ParameterServerInput(splits, vocabularies)
    if tfrecord_dir is not None:
        return StreamedInput(tfrecord_dir, vocabularies)
    return InMemoryInput(splits, vocabularies)
