"""The backbone zoo from the command line: --backbone, --backbone-options, the table."""


import dataclasses
import re

import pytest

import tfrs_userlevel.cli.train as train
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
