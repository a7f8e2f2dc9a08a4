"""The callbacks of a training run.

A callback whose counters a resumed run needs back lists them in its
`resume_state` class attribute; `resume.TrainingState` saves and restores
exactly those.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

import numpy as np

from tfrs_userlevel.backend import keras
from tfrs_userlevel.training.train_config import TrainConfig


class NonFiniteLossError(FloatingPointError):
    """A loss term became NaN or inf during training."""


class EarlyStopping(keras.callbacks.EarlyStopping):
    """Keras's early stopping, with the counters a resumed run needs back."""

    resume_state = ("wait", "best", "stopped_epoch", "best_epoch")


class ReduceLROnPlateau(keras.callbacks.ReduceLROnPlateau):
    """Keras's reduce-on-plateau, with the counters a resumed run needs back."""

    resume_state = ("wait", "best", "cooldown_counter")


class EpochTimer(keras.callbacks.Callback):
    """Wall time of each epoch's training phase (input included, evaluation excluded)."""

    resume_state = ("seconds",)

    def __init__(self, examples_per_epoch: int):
        super().__init__()
        self.examples_per_epoch = examples_per_epoch
        self.seconds: list[float] = []
        self._start = None

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def _stop(self):
        if self._start is not None:
            self.seconds.append(time.perf_counter() - self._start)
            self._start = None

    def on_test_begin(self, logs=None):
        self._stop()

    def on_epoch_end(self, epoch, logs=None):
        self._stop()

    def examples_per_second(self) -> float:
        """Median over epochs after the first (the first includes tracing)."""
        times = self.seconds[1:] or self.seconds
        return float(self.examples_per_epoch / np.median(times)) if times else float("nan")


class LearningRateLogger(keras.callbacks.Callback):
    """Logs the learning rate the epoch trained with as `learning_rate`, once.

    Keras's `ReduceLROnPlateau` and `LearningRateScheduler` add their own `lr`
    entry (the former read before it cuts the rate); it is dropped, so the
    progress bar, the history and TensorBoard show one learning rate.
    """

    def on_epoch_begin(self, epoch, logs=None):
        self._rate = float(keras.backend.get_value(self.model.optimizer.learning_rate))

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs.pop("lr", None)
            logs["learning_rate"] = getattr(self, "_rate", float(
                keras.backend.get_value(self.model.optimizer.learning_rate)))


class BestWeights(keras.callbacks.Callback):
    """Saves the weights of the epoch with the best monitored value.

    Unlike `EarlyStopping(restore_best_weights=True)` this keeps the best
    weights on disk and `restore()` works also when training ran out of
    epochs without stopping early.
    """

    resume_state = ("best", "best_epoch")

    def __init__(self, path: Path, monitor: str = "val_auc"):
        super().__init__()
        self.path = Path(path)
        self.monitor = monitor
        self.best = -math.inf
        self.best_epoch: int | None = None

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None:
            raise KeyError(
                f"BestWeights: {self.monitor!r} is not in the epoch logs {sorted(logs or {})}")
        if value > self.best:
            self.best, self.best_epoch = float(value), epoch + 1
            self.save()

    def save(self) -> None:
        """Writes the weights under a temporary prefix, then renames the data shards and,
        last, the index: a reader of `path` sees the previous or the new checkpoint."""
        staging = self.path.with_name(self.path.name + ".tmp")
        try:
            self.model.save_weights(str(staging))
        except BaseException:  # a failed write (full disk): the previous best stays whole
            for partial in self.path.parent.glob(staging.name + ".*"):
                partial.unlink(missing_ok=True)
            raise
        shards = sorted(self.path.parent.glob(staging.name + ".data-*"))
        for shard in shards:
            target = shard.name.replace(staging.name, self.path.name, 1)
            os.replace(shard, self.path.parent / target)
        os.replace(self.path.parent / (staging.name + ".index"),
                   self.path.parent / (self.path.name + ".index"))

    def restore(self) -> None:
        if self.best_epoch is not None:
            self.model.load_weights(str(self.path)).expect_partial()


def schedule_callbacks(config: TrainConfig) -> list:
    """The learning-rate schedule and early stopping of a run; both follow
    `val_<config.schedule_monitor>`."""
    monitor = f"val_{config.schedule_monitor}"
    callbacks = []
    if config.lr_schedule == "step":
        callbacks.append(keras.callbacks.LearningRateScheduler(
            lambda epoch: config.learning_rate
            * config.lr_gamma ** (epoch // config.lr_step_epochs)))
    if config.lr_schedule == "plateau":
        callbacks.append(ReduceLROnPlateau(
            monitor=monitor, mode="max", factor=config.lr_plateau_factor,
            patience=config.lr_plateau_patience, min_delta=0.0, min_lr=1e-6))
    callbacks.append(EarlyStopping(monitor=monitor, mode="max",
                                                   patience=config.patience))
    return callbacks


class NonFiniteGuard(keras.callbacks.Callback):
    """Raises `NonFiniteLossError` at the first batch whose loss terms are not finite.

    Args:
      checkpoint: Where the last good weights are, for the message.
    """

    def __init__(self, checkpoint: str | Path | None = None):
        super().__init__()
        self.checkpoint = checkpoint
        self._epoch = 0
        self._steps_before = 0
        self._steps_in_epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._steps_before += self._steps_in_epoch
        self._steps_in_epoch = 0
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        self._steps_in_epoch = batch + 1
        bad = [name for name, value in (logs or {}).items()
               if not math.isfinite(float(value))]
        if not bad:
            return
        self.model.stop_training = True
        terms = [n for n in getattr(self.model, "loss_names", ()) if n in bad]
        terms += [n for n in bad if n not in terms]
        where = (f"; the weights of the last good epoch are kept in {self.checkpoint}"
                 if self.checkpoint else "")
        raise NonFiniteLossError(
            f"training stopped: loss term(s) {terms} became non-finite (NaN or inf) by step "
            f"{self._steps_before + batch + 1} (epoch {self._epoch + 1}, batch {batch + 1})"
            f"{where}")
