"""Fault tolerance of a training run: resume after a kill, stop on a non-finite loss.

* `TrainingState` saves, at every epoch end, the counters of the stateful
  callbacks (early stopping, LR-on-plateau, best weights, epoch timer) to a
  JSON file written atomically beside `keras.callbacks.BackupAndRestore`'s
  checkpoint, and puts them back when `fit` resumes from that checkpoint, so
  a resumed run stops, lowers its learning rate and keeps its best weights
  exactly as the uninterrupted run would have.
* `NonFiniteGuard` checks every loss term after every executed batch and, at
  the first NaN or inf, stops training with a `NonFiniteLossError` that names
  the term(s) and the step. Weights are only written at epoch ends, so the
  best and backup checkpoints of the last good epochs stay as they were.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from tfrs_userlevel.backend import keras

# The attributes of each stateful callback that a resumed run needs back.
STATE_ATTRIBUTES = {
    "EarlyStopping": ("wait", "best", "stopped_epoch", "best_epoch"),
    "ReduceLROnPlateau": ("wait", "best", "cooldown_counter"),
    "BestWeights": ("best", "best_epoch"),
    "EpochTimer": ("seconds",),
}


class NonFiniteLossError(FloatingPointError):
    """A loss term became NaN or inf during training."""


def _json_number(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return {"float": repr(value)}
    return value


def _from_json(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"float"}:
        return float(value["float"])
    return value


class TrainingState(keras.callbacks.Callback):
    """Persists and restores the counters of `callbacks` (see the module docstring).

    Place it after the callbacks it covers: their `on_train_begin` resets the
    counters, and this one's then restores them.

    Args:
      path: The JSON file (inside the backup folder).
      callbacks: The callbacks whose `STATE_ATTRIBUTES` are kept.
    """

    def __init__(self, path: str | Path, callbacks: list[keras.callbacks.Callback]):
        super().__init__()
        self.path = Path(path)
        self.callbacks = [c for c in callbacks if type(c).__name__ in STATE_ATTRIBUTES]
        self.resumed_epoch: int | None = None

    def on_train_begin(self, logs=None):
        if not self.path.exists():
            return
        state = json.loads(self.path.read_text())
        for callback in self.callbacks:
            saved = state["callbacks"].get(type(callback).__name__, {})
            for name, value in saved.items():
                setattr(callback, name, _from_json(value))
        self.resumed_epoch = int(state["epoch"])

    def on_epoch_end(self, epoch, logs=None):
        from tfrs_userlevel.training import write_json_atomic

        state = {"epoch": epoch + 1, "callbacks": {
            type(c).__name__: {name: _json_number(_plain(getattr(c, name, None)))
                               for name in STATE_ATTRIBUTES[type(c).__name__]}
            for c in self.callbacks}}
        write_json_atomic(self.path, state)

    def on_train_end(self, logs=None):
        # BackupAndRestore deletes its checkpoint when fit completes; so does this.
        self.path.unlink(missing_ok=True)


def _plain(value: Any) -> Any:
    """numpy scalars and lists of them -> Python numbers."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item"):
        return value.item()
    return value


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
