"""A deterministic GPRec run on MovieLens-100K that kills itself (SIGKILL) at a chosen point.

    python tests/kill_points.py MODEL_DIR POINT

POINT is `none` (run to the end, resuming whatever MODEL_DIR holds), `mid_epoch` (epoch
2, after batch 7), `validation` (epoch 2, during its validation pass) or `best_weights`
(epoch 3, after the best weights' temporary files are written and before they are
renamed into place). Used by tests/integration/test_resilience.py; the run has dropout in the MLP
and in GPRec's heads, Gumbel noise, and reduce-on-plateau.
"""

from __future__ import annotations

import os
import signal
import sys

from tfrs_userlevel import datasets, keras
from tfrs_userlevel.training import TrainConfig, run

CONFIG = TrainConfig(dataset="movielens_100k", user_level="gprec", groups=6, epochs=3,
                     batch_size=4096, patience=10, seed=11, deterministic=True,
                     lr_schedule="plateau", lr_plateau_patience=1, steps_per_execution=5)


def _die() -> None:
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)


class KillAt(keras.callbacks.Callback):
    def __init__(self, point: str):
        super().__init__()
        self.point, self.epoch = point, 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.point == "mid_epoch" and self.epoch == 0 and batch == 9:
            _die()

    def on_test_batch_end(self, batch, logs=None):
        if self.point == "validation" and self.epoch == 1:
            _die()


def main(model_dir: str, point: str) -> None:
    killer = KillAt(point)
    if point == "best_weights":
        real_save = keras.Model.save_weights

        def save_then_die(model, path, *args, **kwargs):
            real_save(model, path, *args, **kwargs)
            if killer.epoch == 2:  # epoch 3's best weights: written, not yet in place
                _die()

        keras.Model.save_weights = save_then_die
    splits = datasets.load_splits("movielens_100k", "random")
    run(CONFIG, splits, datasets.feature_spec("movielens_100k"), model_dir, verbose=0,
        extra_callbacks=[killer])


if __name__ == "__main__":
    main(*sys.argv[1:])
