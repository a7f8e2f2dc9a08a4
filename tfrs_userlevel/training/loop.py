"""One training run: configuration -> model -> fit -> metrics.json.

`run(config, splits, feature_spec, model_dir)` builds the model, trains it
with early stopping on the validation AUC, keeps the best weights, scores
validation and test once with them, and writes the model directory that
`artifacts` describes. The examples come through one `inputs.TrainingInput`
(in-memory, streamed or parameter-server), so the run has one path.
"""

from __future__ import annotations

import functools
import json
import math
import shutil
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tfrs_userlevel import hparams
from tfrs_userlevel.backend import keras, tf
from tfrs_userlevel.config.errors import ConfigError
from tfrs_userlevel.distribute import cluster_spec, is_chief, make_strategy
from tfrs_userlevel.features import FeatureSpec
from tfrs_userlevel.monitoring import UserLevelMonitor
from tfrs_userlevel.parameter_counts import parameter_counts
from tfrs_userlevel.training.artifacts import (
    BACKUP,
    BEST_WEIGHTS,
    CONFIG_FILE,
    LOGS,
    METRICS_FILE,
    MODEL_FILE,
    versions,
    write_json_atomic,
)
from tfrs_userlevel.training.builders import ModelBuilder, build_model
from tfrs_userlevel.training.callbacks import (
    BestWeights,
    EpochTimer,
    LearningRateLogger,
    NonFiniteGuard,
    schedule_callbacks,
)
from tfrs_userlevel.training.inputs import Batches, Splits, training_input
from tfrs_userlevel.training.resume import (
    TrainingState,
    backed_up_epochs,
    create_random_generators,
    tf_random_generators,
)
from tfrs_userlevel.training.train_config import TrainConfig
from tfrs_userlevel.writer_lock import WriterLock


def run(config: TrainConfig, splits: Splits | None,
        feature_spec: FeatureSpec | Sequence[Mapping[str, Any]], model_dir: str | Path,
        verbose: int | None = None, extra_callbacks: Sequence[keras.callbacks.Callback] = (),
        vocabularies: Mapping[str, list] | None = None,
        tfrecord_dir: str | Path | None = None,
        model_builder: ModelBuilder | None = None,
        record: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Trains one model and writes its outputs under `model_dir`.

    Args:
      config: The run's options.
      splits: {"train"|"validation"|"test": {column: numpy [N]}} with a
        "label" column of 0/1.
      feature_spec: The model's fields.
      model_dir: Output folder (created).
      verbose: Keras verbosity; default: a progress bar on a terminal, one
        line per epoch otherwise.
      extra_callbacks: Added after the run's own callbacks.
      vocabularies: The vocabularies to use instead of those of the training
        split (e.g. with rows for users that only come later).
      tfrecord_dir: Stream train / validation / test from the TFRecord shards
        `tfrecord_dir` holds (`tfrs_userlevel.streaming.write_tfrecords`,
        prefixes "train", "validation", "test") instead of `splits` (which may
        then be None); the vocabularies come from the train manifest.
      model_builder: (feature spec, vocabularies, positive rate) -> the model;
        default: `build_model` from `config`'s own model options.
      record: The configuration written to config.json and metrics.json (a
        run configuration's resolved tree); default: `config.to_dict()`.

    Returns:
      The content of metrics.json.
    """
    spec = (feature_spec if isinstance(feature_spec, FeatureSpec)
            else FeatureSpec.from_config(feature_spec))
    strategy = make_strategy(config.distribute)
    model_builder = model_builder or functools.partial(build_model, config)
    record = dict(config.to_dict() if record is None else record)
    source = training_input(config, splits, vocabularies, tfrecord_dir)
    model_dir = Path(model_dir)
    if config.distribute != "parameter_server" and not is_chief(strategy):
        # Every worker of a multi-worker cluster saves (saving is collective), only the
        # chief into model_dir.
        model_dir = Path(tempfile.mkdtemp(prefix="worker_"))
    with WriterLock(model_dir):
        return _train(config, source, spec, model_dir, strategy, verbose, extra_callbacks,
                      model_builder, record)


def _train(config: TrainConfig, source, spec: FeatureSpec, model_dir: Path, strategy,
           verbose, extra_callbacks, model_builder: ModelBuilder,
           record: dict[str, Any]) -> dict[str, Any]:
    """`run` in `model_dir`, which this process holds the writer lock of."""
    backup_dir = model_dir / BACKUP
    if backup_dir.exists() and (model_dir / CONFIG_FILE).exists():
        previous = json.loads((model_dir / CONFIG_FILE).read_text()).get("config")
        if previous != record:
            raise ConfigError(
                f"{model_dir} holds an interrupted run with another config; resume it with "
                f"the same options, or delete {backup_dir} (train.py --overwrite) to start over")
    write_json_atomic(model_dir / CONFIG_FILE,
                      {"config": record, "feature_spec": spec.get_config()})
    keras.utils.set_random_seed(config.seed)
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()

    vocabularies = source.vocabularies(spec)
    with strategy.scope(), tf_random_generators(config.deterministic):
        model = model_builder(spec, vocabularies, source.positive_rate)
        model(model.example_features())  # built before fit: BackupAndRestore restores into it
        create_random_generators(model)
    write_json_atomic(model_dir / MODEL_FILE, keras.layers.serialize(model))
    batches = source.batches(model, config)

    steps_per_epoch, epochs = batches.steps_per_pass, config.epochs
    if config.max_steps:
        steps_per_epoch = min(batches.steps_per_pass, config.max_steps)
        epochs = min(epochs, math.ceil(config.max_steps / steps_per_epoch))
    # A resumed run trains its remaining epochs on the batches the uninterrupted run
    # would have had.
    resumed = backed_up_epochs(backup_dir)
    batches.resume(resumed, steps_per_epoch)
    if config.distribute not in ("default", "parameter_server"):
        batches.shard_by_data()
    with strategy.scope():
        model.compile(optimizer=keras.optimizers.Adam(config.learning_rate),
                      steps_per_execution=min(config.steps_per_execution, steps_per_epoch))
    timer = EpochTimer(min(source.train_rows, steps_per_epoch * config.batch_size))
    if verbose is None:
        verbose = 1 if sys.stdout.isatty() else 2
    fit = _fit_keeping_best if batches.validates_in_fit else _fit_fixed_epochs
    details = fit(model, batches, config, model_dir, timer, steps_per_epoch, epochs,
                  resumed, verbose, extra_callbacks)
    meta = details.pop("meta_generator", None)
    metrics = {
        "val": batches.evaluate(model, "validation"),
        "test": batches.evaluate(model, "test"),
        **details,
        "train_examples_per_second": timer.examples_per_second(),
        "parameters": parameter_counts(model),
        "versions": versions(),
        "config": record,
    }
    if meta is not None:
        metrics["meta_generator"] = meta
    if not batches.validates_in_fit:
        metrics["parameter_servers"] = _parameter_servers(model)
    write_json_atomic(model_dir / METRICS_FILE, metrics)
    hparams.write_session(model_dir / LOGS, record, metrics)
    return metrics


def _fit_keeping_best(model, batches: Batches, config: TrainConfig, model_dir: Path,
                      timer: EpochTimer, steps_per_epoch: int, epochs: int, resumed: int,
                      verbose: int, extra_callbacks) -> dict[str, Any]:
    """`fit` with validation each epoch, early stopping, the best weights kept and
    restored, and resume after a kill; then the meta generator's training (UDG's
    Algorithm 1), when the model has one. Returns the epoch counts for metrics.json."""
    backup_dir = model_dir / BACKUP
    best = BestWeights(model_dir / BEST_WEIGHTS)
    callbacks = [
        *schedule_callbacks(config),
        NonFiniteGuard(model_dir / BEST_WEIGHTS.parent),
        timer,
        best,
        LearningRateLogger(),
        # Before TensorBoard: it adds train AUC/LogLoss to the logs TensorBoard writes.
        UserLevelMonitor(model_dir / LOGS, batches.sample_ids, batches.sample_labels,
                         seed=config.seed),
        keras.callbacks.TensorBoard(log_dir=str(model_dir / LOGS), update_freq="epoch",
                                    write_graph=False, profile_batch=0),
        *extra_callbacks,
    ]
    # Resume after a kill: weights, optimizer and epoch from the last finished epoch, and
    # the callbacks' counters and random generators' states (TrainingState: after the
    # callbacks, so that it restores after their resets; before BackupAndRestore, so that
    # its entry for an epoch is on disk before the checkpoint of that epoch).
    state = TrainingState(backup_dir / "callbacks.json", callbacks, resumed)
    callbacks += [state, keras.callbacks.BackupAndRestore(str(backup_dir))]
    history = model.fit(batches.train, validation_data=batches.validation, epochs=epochs,
                        steps_per_epoch=(steps_per_epoch
                                         if config.max_steps or batches.fit_needs_steps
                                         else None),
                        validation_steps=batches.eval_steps["validation"],
                        callbacks=callbacks, verbose=verbose)
    best.restore()
    details = {"epochs": (state.resumed_epoch or 0) + len(history.history.get("loss", [])),
               "resumed_after_epoch": state.resumed_epoch, "best_epoch": best.best_epoch}
    if getattr(model, "gating", None) is not None and model.gating.generator is not None:
        # Algorithm 1 on the trained, frozen model; the generator joins the best weights.
        from tfrs_userlevel.cold_start.meta_training import MetaEmbeddingTrainer

        losses = MetaEmbeddingTrainer(model, seed=config.seed).fit(
            batches.sample_ids, batches.sample_labels, batches.sample_order,
            config.meta_steps)
        best.save()
        details["meta_generator"] = {
            "steps": config.meta_steps,
            "meta_loss_first": losses[0]["meta_loss"] if losses else None,
            "meta_loss_last": losses[-1]["meta_loss"] if losses else None}
    shutil.rmtree(backup_dir, ignore_errors=True)  # finished: nothing left to resume
    return details


def _fit_fixed_epochs(model, batches: Batches, config: TrainConfig, model_dir: Path,
                      timer: EpochTimer, steps_per_epoch: int, epochs: int, resumed: int,
                      verbose: int, extra_callbacks) -> dict[str, Any]:
    """`fit` for all `epochs` without validation (a ParameterServerStrategy cluster);
    the last weights are the run's. Returns the epoch counts for metrics.json."""
    history = model.fit(batches.train, epochs=epochs, steps_per_epoch=steps_per_epoch,
                        callbacks=[timer, *extra_callbacks], verbose=verbose)
    (model_dir / BEST_WEIGHTS.parent).mkdir(exist_ok=True)
    model.save_weights(str(model_dir / BEST_WEIGHTS))
    losses = [float(v) for v in history.history.get("loss", [])]
    return {"epochs": len(losses), "best_epoch": len(losses), "train_loss": losses}


def _parameter_servers(model) -> dict[str, Any]:
    """How many parameter servers the cluster has and the shards of the embedding table."""
    table = model.embedding.table
    return {"count": len(cluster_spec()["cluster"]["ps"]),
            "sharded_variables": {"embedding_table": [
                list(v.shape) for v in getattr(table, "variables", [table])]}}
