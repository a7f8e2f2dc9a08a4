"""A finished run as one session of TensorBoard's HParams dashboard.

`write_session` writes into a run's `logs/` folder the HParams plugin's
session data: the run's resolved configuration as hyper-parameters (nested
keys joined by dots, e.g. `train.seed`, `gprec.groups`; lists as JSON text)
and its final metrics as scalars at step 0 (`final/val_auc`,
`final/test_logloss`, ..., `final/best_epoch`). TensorBoard pointed at a
folder of runs (`tensorboard --logdir runs/`) then lists one session per run,
e.g. one per seed of `train --seeds`, and compares them in its table, parallel
coordinates and scatter views. No experiment summary is written: the
dashboard infers the hyper-parameters and metrics from all sessions it finds,
so runs of different configurations sit side by side.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tensorboard.plugins.hparams import api as hp

from tfrs_userlevel.backend import tf

# Sections of metrics.json written as final metrics, and the plain numbers beside them.
METRIC_SECTIONS = ("val", "test")
METRIC_NUMBERS = ("epochs", "best_epoch", "train_examples_per_second")


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, bool | int | float | str]:
    """{"a": {"b": 1}, "c": [1, 2], "d": None} -> {"a.b": 1, "c": "[1, 2]", "d": "null"}:
    the value types the HParams plugin accepts."""
    flat: dict[str, bool | int | float | str] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, f"{name}."))
        elif isinstance(value, bool | int | float | str):
            flat[name] = value
        else:
            flat[name] = json.dumps(value, sort_keys=True, default=str)
    return flat


def final_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    """The numbers of a run's metrics.json shown as the session's metrics:
    {"final/val_auc": ..., "final/test_logloss": ..., "final/epochs": ...}."""
    out = {}
    for section in METRIC_SECTIONS:
        for name, value in metrics.get(section, {}).items():
            out[f"final/{section}_{name}"] = float(value)
    for name in METRIC_NUMBERS:
        if isinstance(metrics.get(name), int | float):
            out[f"final/{name}"] = float(metrics[name])
    return out


def write_session(log_dir: str | Path, config: Mapping[str, Any],
                  metrics: Mapping[str, Any]) -> None:
    """Writes one HParams session (configuration and final metrics) into `log_dir`."""
    writer = tf.summary.create_file_writer(str(log_dir))
    with writer.as_default():
        hp.hparams(flatten(config))
        for tag, value in final_metrics(metrics).items():
            tf.summary.scalar(tag, value, step=0)
    writer.close()
