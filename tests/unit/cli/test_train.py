"""train.py end to end on MovieLens 100K: outputs, TensorBoard tags, refusals, seeds."""


import json

import pytest

import tfrs_userlevel.cli.train as train
from tfrs_userlevel.training import ConfigError, TrainConfig

SMOKE = ["--dataset", "movielens_100k", "--epochs", "2", "--max-steps", "20",
         "--batch-size", "1024"]


def test_existing_results_are_not_overwritten(tmp_path, capsys):
    (tmp_path / "metrics.json").write_text('{"keep": true}')
    assert train.main(SMOKE + ["--model-dir", str(tmp_path)]) == 2
    assert "pass --overwrite" in capsys.readouterr().err
    assert json.loads((tmp_path / "metrics.json").read_text()) == {"keep": True}


def test_bad_options_are_rejected_with_the_valid_choices(capsys):
    assert train.main(["--backbone", "resnet", "--model-dir", "x"]) == 2
    assert "invalid choice: 'resnet'" in capsys.readouterr().err
    with pytest.raises(ConfigError, match=r"unknown option\(s\) \['learning_rat'\]"):
        TrainConfig.from_dict({"learning_rat": 0.1})
    with pytest.raises(ConfigError, match="dropout must lie in"):
        TrainConfig(dropout=1.5)
