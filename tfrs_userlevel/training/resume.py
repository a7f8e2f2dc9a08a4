"""Resuming a killed run exactly where its last finished epoch left it.

`TrainingState` saves, at every epoch end, the `resume_state` counters of the
callbacks (early stopping, LR-on-plateau, best weights, epoch timer) and the
states of the layers' random-number generators to a JSON file written
atomically beside `keras.callbacks.BackupAndRestore`'s checkpoint, and puts
the entry of the checkpoint's epoch back when `fit` resumes from it, so a
resumed run stops, lowers its learning rate, keeps its best weights and
draws its dropout and Gumbel noise exactly as the uninterrupted run would
have. With `--deterministic` the training order resumes too (the inputs skip
the finished epochs' batches, `inputs.Batches.resume`).
"""

from __future__ import annotations

import contextlib
import json
import math
from pathlib import Path
from typing import Any

from tfrs_userlevel.backend import keras, tf
from tfrs_userlevel.training.artifacts import write_json_atomic


def _json_number(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return {"float": repr(value)}
    return value


def _from_json(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"float"}:
        return float(value["float"])
    return value


class TrainingState(keras.callbacks.Callback):
    """Persists and restores the counters of `callbacks` and the random-number
    generators' states (see the module docstring).

    Place it after the callbacks it covers (their `on_train_begin` resets the
    counters, and this one's then restores them) and before
    `BackupAndRestore`: at an epoch's end it writes that epoch's entry first,
    and keeps the previous one, so whichever checkpoint the backup holds after
    a kill, the entry of the same epoch is there.

    Args:
      path: The JSON file (inside the backup folder).
      callbacks: The callbacks; the `resume_state` attributes of those that list any are
        kept.
      finished_epochs: The epochs the backup checkpoint holds (`backed_up_epochs`):
        the entry restored at the start of training (0: a new run).
    """

    def __init__(self, path: str | Path, callbacks: list[keras.callbacks.Callback],
                 finished_epochs: int = 0):
        super().__init__()
        self.path = Path(path)
        self.callbacks = [c for c in callbacks if getattr(c, "resume_state", ())]
        self.finished_epochs = finished_epochs
        self.resumed_epoch: int | None = None
        self._entries: dict[str, Any] = {}  # epochs finished -> state, as in the file

    def on_train_begin(self, logs=None):
        if not self.finished_epochs or not self.path.exists():
            return
        self._entries = json.loads(self.path.read_text())["epochs"]
        entry = self._entries.get(str(self.finished_epochs))
        if entry is None:
            raise RuntimeError(f"{self.path} holds no state for epoch {self.finished_epochs}, "
                               f"which the backup in {self.path.parent} resumes from")
        for callback in self.callbacks:
            saved = entry["callbacks"].get(type(callback).__name__, {})
            for name, value in saved.items():
                setattr(callback, name, _from_json(value))
        generators = random_generators(self.model)
        if len(generators) != len(entry["generators"]):
            raise RuntimeError(f"{self.path}: {len(entry['generators'])} random generators "
                               f"saved, the model has {len(generators)}")
        for generator, state in zip(generators, entry["generators"], strict=True):
            generator.state.assign(state)
        self.resumed_epoch = self.finished_epochs

    def on_epoch_end(self, epoch, logs=None):
        entry = {"callbacks": {
            type(c).__name__: {name: _json_number(_plain(getattr(c, name, None)))
                               for name in c.resume_state}
            for c in self.callbacks},
            "generators": [g.state.numpy().tolist() for g in random_generators(self.model)]}
        # This epoch's entry and the one before it (the checkpoint may still hold that).
        self._entries = {key: value for key, value in self._entries.items()
                         if int(key) == epoch}
        self._entries[str(epoch + 1)] = entry
        write_json_atomic(self.path, {"epochs": self._entries})

    def on_train_end(self, logs=None):
        # BackupAndRestore deletes its checkpoint when fit completes; so does this.
        self.path.unlink(missing_ok=True)


def backed_up_epochs(backup_dir: str | Path) -> int:
    """The epochs finished in the checkpoint `keras.callbacks.BackupAndRestore` keeps in
    `backup_dir` (0 when there is none): the epoch a resumed `fit` starts at."""
    for folder in (Path(backup_dir) / "chief", Path(backup_dir)):
        checkpoint = tf.train.latest_checkpoint(str(folder)) if folder.is_dir() else None
        if checkpoint is not None:
            epoch = tf.train.load_checkpoint(checkpoint).get_tensor(
                "ckpt_saved_epoch/.ATTRIBUTES/VARIABLE_VALUE")
            return int(epoch) + 1
    return 0


def create_random_generators(model: keras.Model) -> None:
    """Creates now the generators Keras would create at a layer's first training call
    (a dropout used only in training, say), so that `TrainingState` finds and restores
    all of them before the first step."""
    for module in (model, *model.submodules):
        generator = getattr(module, "_random_generator", None)
        if generator is not None and hasattr(generator, "_maybe_init"):
            generator._maybe_init()


def random_generators(model: keras.Model) -> list:
    """The `tf.random.Generator`s of the model's layers (dropout, Gumbel noise), in a
    fixed order. Layers have them when they were built with Keras's TF random
    generator enabled (`--deterministic`); Keras leaves their states out of
    checkpoints, so `TrainingState` keeps them."""
    found = []
    for module in (model, *model.submodules):
        generator = getattr(getattr(module, "_random_generator", None), "_generator", None)
        if generator is not None and all(generator is not g for g in found):
            found.append(generator)
    return found


def _plain(value: Any) -> Any:
    """numpy scalars and lists of them -> Python numbers."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item"):
        return value.item()
    return value


@contextlib.contextmanager
def tf_random_generators(enabled: bool):
    """Layers built in the block draw dropout and Gumbel noise from `tf.random.Generator`s
    (whose states `TrainingState` restores on resume) when `enabled`; otherwise Keras's
    default stateful ops."""
    experimental = keras.backend.experimental
    before = experimental.is_tf_random_generator_enabled()
    if enabled:
        experimental.enable_tf_random_generator()
    try:
        yield
    finally:
        if not before:
            experimental.disable_tf_random_generator()
