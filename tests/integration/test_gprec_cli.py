"""GPRec from the command line: train.py options, experiments.py tables, the RQ5 command."""


import json
import math

import pytest
from tensorboard.backend.event_processing import event_accumulator

import tfrs_userlevel.cli.train as train
from tests.unit.cli.test_gprec_flags import SMOKE
from tfrs_userlevel import tf
from tfrs_userlevel.training import TrainConfig, load_trained, schedule_callbacks


@pytest.mark.usefixtures("data_dir")  # runs the command on the real data
@pytest.mark.parametrize("strategy", ["input", "dp", "ensemble"])
def test_train_py_runs_gprec_and_logs_every_loss_term(tmp_path, strategy):
    argv = SMOKE + ["--user-level", "gprec", "--strategy", strategy, "--temperature", "0.3",
                    "--contrast-weight", "0.01", "--model-dir", str(tmp_path)]
    assert train.main(argv) == 0
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    config = metrics["config"]
    assert (config["user_level"], config["strategy"], config["groups"]) == ("gprec", strategy, 6)
    assert config["temperature"] == 0.3 and config["contrast_weight"] == 0.01
    assert 0.5 < metrics["test"]["auc"] < 1
    accumulator = event_accumulator.EventAccumulator(
        str(tmp_path / "logs" / "train"), size_guidance={event_accumulator.TENSORS: 0})
    accumulator.Reload()
    tags = accumulator.Tags()["tensors"]
    for term in ("main_loss", "gprec_backbone_loss", "gprec_group_loss", "gprec_contrastive_loss",
                 "gprec_orthogonal_loss"):
        values = [float(tf.make_ndarray(e.tensor_proto))
                  for e in accumulator.Tensors(f"epoch_{term}")]
        assert f"epoch_{term}" in tags and all(map(math.isfinite, values)), term
    # The run can be rebuilt from its folder alone (used by the RQ5 command and export).
    model = load_trained(tmp_path)
    assert model.user_level.get_config()["strategy"] == strategy


@pytest.mark.usefixtures("data_dir")  # runs the command on the real data
def test_ablation_flag_reaches_the_layer(tmp_path):
    argv = SMOKE + ["--user-level", "gprec", "--ablation", "gprec-2", "--model-dir",
                    str(tmp_path)]
    assert train.main(argv) == 0
    model = load_trained(tmp_path)
    assert model.user_level.individual is False
    assert "gprec_orthogonal_loss" not in model.loss_names


@pytest.mark.usefixtures("data_dir")  # runs the command on the real data
def test_the_schedule_can_follow_the_backbones_own_auc(tmp_path):
    """--schedule-monitor backbone_auc: reduce-on-plateau and early stopping read the
    backbone logit's validation AUC, which the run logs beside the prediction's."""
    assert [c.monitor for c in schedule_callbacks(
        TrainConfig(user_level="gprec", strategy="input"))] == ["val_auc", "val_auc"]
    config = TrainConfig(user_level="gprec", strategy="input", schedule_monitor="backbone_auc")
    assert [c.monitor for c in schedule_callbacks(config)] == ["val_backbone_auc"] * 2
    argv = SMOKE + ["--user-level", "gprec", "--strategy", "ensemble", "--ensemble-weights",
                    "learned", "--no-ensemble-backbone-gradient", "--schedule-monitor",
                    "backbone_auc", "--epochs", "2", "--max-steps", "100",
                    "--model-dir", str(tmp_path)]
    assert train.main(argv) == 0
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["config"]["schedule_monitor"] == "backbone_auc"
    accumulator = event_accumulator.EventAccumulator(
        str(tmp_path / "logs" / "validation"), size_guidance={event_accumulator.TENSORS: 0})
    accumulator.Reload()
    values = {tag: [float(tf.make_ndarray(e.tensor_proto)) for e in accumulator.Tensors(tag)]
              for tag in ("epoch_auc", "epoch_backbone_auc")}
    assert len(values["epoch_backbone_auc"]) == 2
    assert all(0.5 < v < 1 for v in values["epoch_backbone_auc"])
    assert values["epoch_backbone_auc"] != values["epoch_auc"]
