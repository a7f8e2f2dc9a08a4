"""GPRec from the command line: train.py options, experiments.py tables, the RQ5 command."""


import math

import numpy as np
import pytest

import tfrs_userlevel.cli.train as train
from tests.helpers import paired_p, welch_p
from tfrs_userlevel.cli.terminal import UsageError
from tfrs_userlevel.significance import one_sided_ttest, paired_one_sided_ttest
from tfrs_userlevel.training import ConfigError, TrainConfig

SMOKE = ["--dataset", "movielens_100k", "--epochs", "1", "--max-steps", "15",
         "--batch-size", "1024", "--groups", "6"]


def test_gprec_options_are_validated():
    with pytest.raises(ConfigError, match="ablation needs user_level gprec"):
        TrainConfig(ablation="gprec-1")
    with pytest.raises(ConfigError, match="temperature must be > 0"):
        TrainConfig(user_level="gprec", temperature=0)
    with pytest.raises(ConfigError, match="every width of head_units must be >= 1"):
        TrainConfig(user_level="gprec", head_units=(16, 0))
    with pytest.raises(ConfigError, match="every width of hidden_units must be >= 1"):
        TrainConfig(hidden_units=(64, -32))
    with pytest.raises(ConfigError, match="ensemble_weights 'learned' needs strategy"):
        TrainConfig(user_level="gprec", strategy="input", ensemble_weights="learned")
    with pytest.raises(ConfigError, match="needs backbone_weight > 0"):
        TrainConfig(user_level="gprec", strategy="ensemble", ensemble_backbone_gradient=False,
                    backbone_weight=0)
    with pytest.raises(ConfigError, match="schedule_monitor 'backbone_auc' needs user_level"):
        TrainConfig(schedule_monitor="backbone_auc")
    with pytest.raises(ConfigError, match="schedule_monitor must be one of"):
        TrainConfig(user_level="gprec", schedule_monitor="val_auc")
    with pytest.raises(UsageError, match="invalid choice: 'stack'"):
        train.parse_args(["--strategy", "stack", "--model-dir", "x"])
    with pytest.raises(UsageError, match="invalid choice: 'mean'"):
        train.parse_args(["--ensemble-weights", "mean", "--model-dir", "x"])
    args = train.parse_args(["--user-level", "gprec", "--strategy", "ensemble",
                             "--ensemble-weights", "learned", "--model-dir", "x"])
    assert train.config_from_args(args, 2024).ensemble_weights == "learned"


def test_one_sided_ttest_direction_and_guard():
    better = [0.822, 0.823, 0.821, 0.824, 0.822]
    worse = [0.819, 0.820, 0.818, 0.820, 0.819, 0.821]
    assert one_sided_ttest(better, worse) == pytest.approx(welch_p(better, worse), rel=1e-9)
    assert one_sided_ttest(worse, better) == pytest.approx(welch_p(worse, better), rel=1e-9)
    # By hand: means 0.8224 and 0.8195, variances 1.3e-6/5 and 1.1e-6/6, t ≈ 4.36.
    assert (np.mean(better) - np.mean(worse)) / math.sqrt(
        np.var(better, ddof=1) / 5 + np.var(worse, ddof=1) / 6) == pytest.approx(4.355, abs=1e-3)
    assert one_sided_ttest(better, worse) < 0.01
    assert one_sided_ttest(worse, better) > 0.99
    assert one_sided_ttest(better, better) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="at least two"):
        one_sided_ttest([0.8], worse)


def test_paired_ttest_sees_a_small_gain_that_the_seed_spread_hides():
    """Seeds move both models together (0.818 to 0.826); the candidate is +0.0004 on
    every seed. Welch's test cannot separate them, the paired test can; a gain on
    some seeds and a loss on others stays unproven either way."""
    reference = np.array([0.818, 0.822, 0.826, 0.820, 0.824])
    candidate = reference + np.array([0.0004, 0.0005, 0.0003, 0.0004, 0.0004])
    assert one_sided_ttest(candidate, reference) > 0.3
    assert paired_one_sided_ttest(candidate, reference) < 1e-3
    for a, b in ((candidate, reference), (reference, candidate)):
        assert paired_one_sided_ttest(a, b) == pytest.approx(paired_p(a, b), rel=1e-9)
    mixed = reference + np.array([0.0004, -0.0004, 0.0003, -0.0003, 0.0001])
    assert paired_one_sided_ttest(mixed, reference) > 0.2
    assert paired_one_sided_ttest(reference, candidate) > 0.999
    with pytest.raises(ValueError, match="one per seed"):
        paired_one_sided_ttest(candidate[:4], reference)


def test_gprec_options_name_exactly_the_gprec_fields_of_the_config():
    import dataclasses

    from tfrs_userlevel.training import GPREC_OPTIONS
    names = [f.name for f in dataclasses.fields(TrainConfig)]
    assert names[names.index("strategy"):] == list(GPREC_OPTIONS)


def test_gprec_defaults_are_the_chosen_form_and_the_paper_form_is_spelled_out():
    """train.py --user-level gprec: the ensemble strategy with learned weights, no gradient
    from the average into the backbone, GPRec dropout as the backbone's, the schedule on
    the backbone's own AUC and a linear MLP_p head; the embeddings left to
    the backbone, one 16-unit classifier MLP shared by the groups, a 16-unit group head
    and MLP_p. The input
    strategy keeps its own defaults (a linear layer on [h, r_g, r_p], no GPRec dropout,
    the paper's ensemble options unused); the per-group classifier has 4 units."""
    def config(*flags):
        parsed = train.parse_args(["--user-level", "gprec", *flags, "--model-dir", "x"])
        return train.config_from_args(parsed, 2024)

    default = config()
    assert (default.strategy, default.ensemble_weights, default.ensemble_backbone_gradient,
            default.gprec_dropout, default.schedule_monitor, default.prediction_units) == (
        "ensemble", "learned", False, default.dropout, "backbone_auc", ())
    assert default.stop_embedding_gradient is True
    assert (default.classifier_shared, default.classifier_units) == (True, (16,))
    assert (default.head_units, default.individual_units) == ((16,), (16,))
    # Each strategy-dependent default follows the strategy, and an explicit flag wins.
    before = config("--strategy", "input")
    assert (before.prediction_units, before.ensemble_weights, before.ensemble_backbone_gradient,
            before.gprec_dropout, before.schedule_monitor) == ((), "equal", True, 0.0, "auc")
    assert config("--ensemble-backbone-gradient").schedule_monitor == "auc"
    assert config("--backbone-weight", "0").ensemble_backbone_gradient is True
    assert config("--gprec-dropout", "0").gprec_dropout == 0.0
    assert config("--schedule-monitor", "auc").schedule_monitor == "auc"
    assert TrainConfig().schedule_monitor == "auc"  # without GPRec nothing changes
    assert config("--head-units").head_units == ()
    assert config("--no-classifier-shared").classifier_units == (4,)
    assert config("--classifier-units", "8").classifier_units == (8,)
    assert config("--strategy", "dp").prediction_units == default.hidden_units == (64, 32, 16)
    assert config("--strategy", "dp", "--hidden-units", "32", "16").prediction_units == (32, 16)
    assert config("--hidden-units", "32", "16").prediction_units == ()  # ensemble: linear
    paper = config("--strategy", "input", "--no-stop-embedding-gradient",
                   "--no-classifier-shared", "--prediction-units", "64", "32", "16",
                   "--head-units", "64", "32", "16", "--individual-units", "64")
    assert (paper.stop_embedding_gradient, paper.prediction_units) == (False, (64, 32, 16))
    assert (paper.classifier_shared, paper.classifier_units) == (False, (4,))
    assert (paper.head_units, paper.individual_units) == ((64, 32, 16), (64,))
    assert config("--strategy", "dp", "--prediction-units").prediction_units == ()
