"""train.py end to end on MovieLens 100K: outputs, TensorBoard tags, refusals, seeds."""


import json
import math

import numpy as np
import pytest
from tensorboard.backend.event_processing import event_accumulator

import tfrs_userlevel.cli.train as train
from tests.unit.cli.test_train import SMOKE
from tfrs_userlevel import tf


def _scalars(log_dir):
    accumulator = event_accumulator.EventAccumulator(
        str(log_dir), size_guidance={event_accumulator.TENSORS: 0})
    accumulator.Reload()
    return {tag: [float(tf.make_ndarray(event.tensor_proto)) for event in accumulator.Tensors(tag)]
            for tag in accumulator.Tags()["tensors"]}


@pytest.mark.usefixtures("data_dir")  # runs the command on the real data
def test_train_writes_metrics_checkpoint_and_tensorboard(tmp_path, capsys):
    assert train.main(SMOKE + ["--model-dir", str(tmp_path)]) == 0
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert set(metrics) == {"val", "test", "epochs", "best_epoch", "train_examples_per_second",
                            "parameters", "versions", "resumed_after_epoch", "config"}
    counts = metrics["parameters"]
    assert 0 < counts["outside_embeddings"] < counts["all"]  # the tables are left out
    for split in ("val", "test"):
        assert set(metrics[split]) == {"auc", "logloss", "rmse", "rig"}
        assert all(math.isfinite(v) for v in metrics[split].values())
        assert 0.5 < metrics[split]["auc"] < 1
    assert metrics["epochs"] == 1 and metrics["best_epoch"] == 1  # 20 steps fit one epoch
    assert metrics["config"]["max_steps"] == 20 and metrics["config"]["dataset"] == "movielens_100k"
    assert metrics["train_examples_per_second"] > 0
    assert list((tmp_path / "checkpoint").glob("best.index"))
    train_tags = _scalars(tmp_path / "logs" / "train")
    val_tags = _scalars(tmp_path / "logs" / "validation")
    for tag in ("epoch_loss", "epoch_main_loss", "epoch_regularization_loss",
                "epoch_learning_rate"):
        assert tag in train_tags and all(map(math.isfinite, train_tags[tag])), tag
    for tag in ("epoch_auc", "epoch_logloss", "epoch_rmse", "epoch_rig", "epoch_main_loss"):
        assert tag in val_tags and all(map(math.isfinite, val_tags[tag])), tag
    out = capsys.readouterr().out
    assert "test" in out and "logloss" in out


@pytest.mark.usefixtures("data_dir")  # runs the command on the real data
def test_seeds_report_mean_and_std(tmp_path):
    argv = SMOKE + ["--epochs", "1", "--max-steps", "5", "--seeds", "1", "2",
                    "--model-dir", str(tmp_path)]
    assert train.main(argv) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    aucs = [json.loads((tmp_path / f"seed_{s}" / "metrics.json").read_text())["test"]["auc"]
            for s in (1, 2)]
    assert summary["seeds"] == [1, 2]
    assert summary["test_auc_mean"] == pytest.approx(np.mean(aucs))
    assert summary["test_auc_std"] == pytest.approx(np.std(aucs, ddof=1))
