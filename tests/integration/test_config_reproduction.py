"""The MovieLens-1M configuration is the built-in path: same rows, same model, same metrics.

With --deterministic and one seed, `train.py --config movielens_1m` and
`train.py --dataset movielens_1m` give the same validation and test metrics
for the MLP and for GPRec's default (the recommended preset)."""


import json

import numpy as np
import pytest

import tfrs_userlevel.cli.train as train
from tfrs_userlevel import datasets, tables
from tfrs_userlevel.config import load_run_config

SHORT = ["--epochs", "2", "--max-steps", "15", "--deterministic"]


@pytest.mark.parametrize("split", ["random", "time"])
def test_the_configured_rows_are_the_built_in_rows(ml1m, split):
    config = load_run_config(datasets.config_path("movielens_1m"),
                             [f"data.split.column={split}_split"])
    spec, splits = tables.read_splits(config.data, config.base_dir)
    assert [(f.name, f.dtype, f.role) for f in spec.fields] == [
        (f["name"], f["dtype"], f["role"]) for f in datasets.feature_spec("movielens_1m")]
    reference = ml1m if split == "random" else datasets.load_splits("movielens_1m", "time")
    for name, columns in splits.items():
        assert set(columns) == set(spec.names) | {"label"}
        for column, values in columns.items():
            np.testing.assert_array_equal(values, reference[name][column],
                                          err_msg=f"{name}/{column}")


def test_configured_and_built_in_runs_give_the_same_metrics(data_dir, tmp_path):
    """GPRec's default (the MLP is its backbone); full runs of both models are in
    benchmarks/config_reproduction.py."""
    flags, sets = ["--user-level", "gprec"], ["--set", "model.user_level={name: gprec}"]
    built_in, configured = tmp_path / "built_in", tmp_path / "configured"
    assert train.main(["--dataset", "movielens_1m", *flags, *SHORT,
                       "--model-dir", str(built_in)]) == 0
    assert train.main(["--config", "movielens_1m", *sets, *SHORT,
                       "--model-dir", str(configured)]) == 0
    a, b = (json.loads((d / "metrics.json").read_text()) for d in (built_in, configured))
    for split in ("val", "test"):
        for metric, value in a[split].items():
            assert abs(b[split][metric] - value) <= 1e-6, (split, metric, value,
                                                           b[split][metric])
    assert a["best_epoch"] == b["best_epoch"]
