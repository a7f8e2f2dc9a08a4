"""Finished runs, keyed by their configuration.

A run is a `TrainConfig` (a base plus a row's overrides) and a seed. Its folder
is `runs_dir/<key>/seed_<seed>/` (the model directory `training.run` writes),
where `<key>` is a hash of the resolved configuration without the seed, and
`runs_dir/<key>/configuration.json` holds that configuration. A run whose
metrics.json records the same resolved configuration is reused, never
retrained; with `train=False` a missing run is an error instead of a training.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from tfrs_userlevel import datasets
from tfrs_userlevel.training import TrainConfig, run, write_json_atomic

Overrides = Mapping[str, Any]
CONFIGURATION_FILE = "configuration.json"
KEY_LENGTH = 16


class MissingRunError(LookupError):
    """A run that a table needs is not finished, and the runner may not train."""


def configuration_key(config: TrainConfig) -> str:
    """A hash of the resolved configuration without its seed (hex, `KEY_LENGTH` chars)."""
    text = json.dumps(without_seed(config), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:KEY_LENGTH]


def without_seed(config: TrainConfig) -> dict[str, Any]:
    return {k: v for k, v in config.to_dict().items() if k != "seed"}


class Runner:
    """Trains, or reuses, one configuration per seed.

    Args:
      runs_dir: The folder of every run.
      data_dir: The datasets' raw files (None: `datasets.ENV_VAR`, then TFDS's folders).
      base: `TrainConfig` fields every configuration starts from.
      train: Train a run that is not finished; False: raise `MissingRunError`.
      loader: config -> (splits, feature spec config) for data that is not a built-in
        dataset (a planted world, say); default: `datasets.load_splits` and
        `datasets.feature_spec` of `config.dataset`.
    """

    def __init__(self, runs_dir: str | Path, data_dir: str | None = None,
                 base: Overrides | None = None, train: bool = True,
                 loader: Callable[[TrainConfig], tuple[dict, list]] | None = None):
        self.runs_dir = Path(runs_dir)
        self.data_dir = data_dir
        self.base = dict(base or {})
        self.train = train
        self.loader = loader
        self._splits: dict[tuple, tuple[dict, list]] = {}

    def config(self, overrides: Overrides, seed: int) -> TrainConfig:
        """The resolved configuration of `overrides` on the base, with `seed`."""
        return TrainConfig.from_dict({**self.base, **overrides, "seed": seed})

    def run_dir(self, overrides: Overrides, seed: int) -> Path:
        """The folder of the run of `overrides` with `seed`."""
        return self.runs_dir / configuration_key(self.config(overrides, seed)) / f"seed_{seed}"

    def data(self, config: TrainConfig) -> tuple[dict, list]:
        """(in-memory splits, feature spec config) that `config` trains on (one dataset
        held at a time)."""
        key = (config.dataset, config.split, config.history_length)
        if key not in self._splits:
            self._splits.clear()
            if self.loader is not None:
                self._splits[key] = self.loader(config)
            else:
                self._splits[key] = (
                    datasets.load_splits(config.dataset, config.split, self.data_dir,
                                         history_length=config.history_length),
                    datasets.feature_spec(config.dataset,
                                          history_length=config.history_length))
        return self._splits[key]

    def metrics(self, overrides: Overrides, seed: int) -> dict:
        """metrics.json of the run of `overrides` with `seed`, trained if needed."""
        config = self.config(overrides, seed)
        model_dir = self.run_dir(overrides, seed)
        done = model_dir / "metrics.json"
        if done.exists():
            metrics = json.loads(done.read_text())
            if metrics.get("config") == config.to_dict():
                return metrics
        if not self.train:
            raise MissingRunError(f"no finished run of {dict(overrides)} (seed {seed}) in "
                                  f"{model_dir}; run without --from-runs to train it")
        write_json_atomic(model_dir.parent / CONFIGURATION_FILE, without_seed(config))
        print(f"[train] {format_overrides(overrides) or '(base)'} seed {seed} -> {model_dir}",
              flush=True)
        splits, spec = self.data(config)
        return run(config, splits, spec, model_dir, verbose=0)

    def seeds(self, overrides: Overrides, seeds: Sequence[int]) -> dict[int, dict]:
        """{seed: metrics.json} of `overrides` over `seeds`."""
        return {seed: self.metrics(overrides, seed) for seed in seeds}


def format_overrides(overrides: Overrides) -> str:
    """`key=value` pairs, as a table's args column shows them."""
    def shown(value):
        if isinstance(value, (list, tuple)):
            return ",".join(map(str, value)) or "[]"
        if isinstance(value, dict):
            return json.dumps(value, separators=(",", ":"))
        return str(value)

    return " ".join(f"{k}={shown(v)}" for k, v in overrides.items())
