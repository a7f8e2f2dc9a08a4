"""The backbone zoo from the command line: --backbone, --backbone-options, the table."""


import dataclasses
import json
import re

import pytest

import experiments
import tfrs_userlevel.cli.train as train
from tests.helpers import welch_p
from tfrs_userlevel.cli.terminal import UsageError
from tfrs_userlevel.training import DERIVED_FIELDS, TrainConfig

SMOKE = ["--dataset", "movielens_100k", "--epochs", "1", "--max-steps", "10",
         "--batch-size", "1024"]


def test_bad_backbone_options_are_refused_with_the_valid_ones(tmp_path, capsys):
    with pytest.raises(UsageError, match="not valid JSON"):
        train.parse_args(["--backbone-options", "{cross_layers: 2}", "--model-dir", "x"])
    with pytest.raises(UsageError, match="expected a JSON object"):
        train.parse_args(["--backbone-options", "[2]", "--model-dir", "x"])
    assert train.main(SMOKE + ["--backbone-options", '{"cross_layers": 2}',
                               "--model-dir", str(tmp_path)]) == 2
    assert re.search("^error: .*'mlp' has no option.*cross_layers", capsys.readouterr().err)
    assert train.main(SMOKE + ["--backbone", "gdcn", "--backbone-options", '{"dropout": 0.5}',
                               "--model-dir", str(tmp_path)]) == 2
    assert "own options" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # refused before anything was written


@pytest.mark.slow  # an experiment table: several short trainings per row
def test_backbone_table_rows_library_gaps_and_gprec_p_values(tmp_path, monkeypatch):
    monkeypatch.setattr(experiments, "RESULTS", tmp_path)
    monkeypatch.setattr(experiments, "ZOO", ["mlp", "gdcn", "deepfm"])
    monkeypatch.setattr(experiments, "ZOO_WITH_GPREC", ["gdcn"])
    argv = ["ml1m_backbones", "--runs-dir", str(tmp_path / "runs"), "--seeds", "1", "2",
            "--train-args", "--dataset movielens_100k --epochs 1 --max-steps 4 "
                            "--batch-size 2048 --groups 4"]
    assert experiments.main(argv) == 0
    rows = json.loads((tmp_path / "backbones" / "ml1m_backbones.json").read_text())
    assert [r["model"] for r in rows] == ["GDCN", "GPRec(GDCN)", "MLP", "DeepFM"]
    assert [r["backbone"] for r in rows] == ["gdcn", "gdcn", "mlp", "deepfm"]
    assert rows[1]["p_value_vs"] == "GDCN"
    assert rows[1]["p_value"] == pytest.approx(welch_p(rows[1]["test_auc"], rows[0]["test_auc"]),
                                               rel=1e-9)
    assert rows[1]["args"][-len(experiments.ZOO_GPREC_ARGS):] == experiments.ZOO_GPREC_ARGS
    assert rows[0]["library_auc"] == experiments.LIBRARY_AUC["gdcn"]
    text = (tmp_path / "ml1m_backbones.md").read_text()
    assert "established library" in text and "| DeepFM |" in text and "partial" not in text

    # The GPRec backbones table reuses the backbones' runs and adds its own GPRec rows.
    argv[0] = "ml1m_gprec_backbones"
    assert experiments.main(argv) == 0
    rows = json.loads((tmp_path / "gprec_backbones" / "ml1m_gprec_backbones.json").read_text())
    assert [r["model"] for r in rows] == ["GDCN", "GPRec(GDCN)"]
    assert rows[0]["test_auc"] == json.loads(
        (tmp_path / "backbones" / "ml1m_backbones.json").read_text())[0]["test_auc"]
    assert rows[1]["args"][-len(experiments.DETACHED_ENSEMBLE_ARGS):] == (
        experiments.DETACHED_ENSEMBLE_ARGS)
    assert rows[1]["p_value_vs"] == "GDCN"
    run = next((tmp_path / "runs").glob("*ensemble_weights=learned*/seed_1"))
    config = json.loads((run / "metrics.json").read_text())["config"]
    assert config["ensemble_weights"] == "learned"
    assert config["ensemble_backbone_gradient"] is False


def test_derived_fields_list_every_field_resolved_after_init():
    """DERIVED_FIELDS (read by train.unused_gprec_options) must name every field that
    defaults to None and is filled in by TrainConfig.__post_init__, and only those."""
    config = TrainConfig()
    resolved = {field.name for field in dataclasses.fields(TrainConfig)
                if field.default is None and getattr(config, field.name) is not None}
    assert resolved == set(DERIVED_FIELDS)


def test_gprec_options_without_gprec_are_refused(tmp_path, capsys):
    assert train.main(SMOKE + ["--strategy", "input", "--groups", "7",
                               "--model-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "--strategy, --groups only apply to GPRec" in err
    assert not (tmp_path / "metrics.json").exists()
    # Options that default per strategy are judged against their strategy's defaults.
    for flags, unused in [(["--strategy", "input"], ["strategy"]), (["--dropout", "0.3"], []),
                          (["--backbone-weight", "0"], ["backbone_weight"])]:
        config = train.config_from_args(train.parse_args([*flags, "--model-dir", "x"]), 2024)
        assert train.unused_gprec_options(config) == unused, flags
    config = train.config_from_args(train.parse_args(
        ["--gprec-dropout", "0.5", "--model-dir", "x"]), 2024)
    assert train.unused_gprec_options(config) == ["gprec_dropout"]
