"""GPRec from the command line: train.py options, experiments.py tables, the RQ5 command."""


import json
import math

import numpy as np
import pytest

import experiments
import tfrs_userlevel.cli.train as train
from tests.helpers import paired_p, welch_p
from tfrs_userlevel import tf
from tfrs_userlevel.cli.terminal import UsageError
from tfrs_userlevel.significance import one_sided_ttest, paired_one_sided_ttest
from tfrs_userlevel.training import ConfigError, TrainConfig, load_trained

SMOKE = ["--dataset", "movielens_100k", "--epochs", "1", "--max-steps", "15",
         "--batch-size", "1024", "--groups", "6"]


@pytest.mark.slow  # an experiment table: several short trainings per row
def test_ensemble_heads_scores_each_averaged_prediction(tmp_path, capsys):
    argv = SMOKE + ["--user-level", "gprec", "--strategy", "ensemble", "--ensemble-weights",
                    "learned", "--model-dir", str(tmp_path)]
    assert train.main(argv) == 0
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    model = load_trained(tmp_path)
    assert model.user_level.get_config()["ensemble_weights"] == "learned"
    stats = experiments.ensemble_heads(tmp_path, None)
    assert set(stats["weights"]) == {"backbone", "group", "individual"}
    assert sum(stats["weights"].values()) == pytest.approx(1.0, abs=1e-6)
    learned = tf.nn.softmax(model.user_level.combiner.mixing).numpy()
    np.testing.assert_allclose(list(stats["weights"].values()), learned, rtol=1e-6)
    for head in ("backbone", "group", "individual", "ensemble"):
        assert 0.5 < stats[head]["auc"] < 1, head
    # The averaged prediction is the model's own: its exact AUC is train.py's validation AUC.
    assert stats["ensemble"]["auc"] == pytest.approx(metrics["val"]["auc"], abs=2e-3)
    assert "individual" in capsys.readouterr().out
    assert train.main(SMOKE + ["--user-level", "gprec", "--strategy", "input", "--model-dir",
                               str(tmp_path / "input")]) == 0
    with pytest.raises(SystemExit, match="ensemble strategy"):
        experiments.ensemble_heads(tmp_path / "input", None)


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


@pytest.mark.slow  # an experiment table: several short trainings per row
def test_compare_trains_both_configs_reuses_runs_and_writes_rows(tmp_path, monkeypatch):
    monkeypatch.setattr(experiments, "RESULTS", tmp_path / "results")
    common = ["--runs-dir", str(tmp_path / "runs"), "--seeds", "1", "2", "--train-args",
              "--dataset movielens_100k --epochs 1 --max-steps 8 --batch-size 1024"]
    argv = ["compare", "--a", "--user-level none", "--b", "--user-level gprec --groups 4",
            "--name", "cmp"] + common
    assert experiments.main(argv) == 0
    rows = json.loads((tmp_path / "results" / "cmp" / "cmp.json").read_text())
    assert [r["user_level"] for r in rows] == ["none", "gprec"]
    for r in rows:
        assert set(r) >= {"dataset", "model", "backbone", "user_level", "strategy", "seeds",
                          "test_auc", "test_logloss", "auc_mean", "logloss_mean", "p_value",
                          "p_value_vs", "command"}
        assert r["seeds"] == [1, 2] and r["dataset"] == "movielens_100k"
        assert r["auc_mean"] == pytest.approx(np.mean(r["test_auc"]))
    assert rows[1]["p_value"] == pytest.approx(
        welch_p(rows[1]["test_auc"], rows[0]["test_auc"]), rel=1e-9)
    assert "python experiments.py compare" in (tmp_path / "results" / "cmp" / "cmp.md").read_text()
    runs = sorted((tmp_path / "runs").glob("*/seed_*/metrics.json"))
    assert len(runs) == 4
    stamps = [p.stat().st_mtime_ns for p in runs]
    assert experiments.main(argv) == 0  # everything reused, nothing retrained
    assert [p.stat().st_mtime_ns for p in runs] == stamps


@pytest.mark.slow  # an experiment table: several short trainings per row
def test_diversity_writes_heatmap_and_similarities(tmp_path):
    run_dir = tmp_path / "run"
    assert train.main(SMOKE + ["--user-level", "gprec", "--model-dir", str(run_dir)]) == 0
    stats = experiments.diversity(run_dir, tmp_path / "div")
    assert (tmp_path / "div.png").stat().st_size > 1000
    assert json.loads((tmp_path / "div.json").read_text()) == stats
    assert stats["groups"] == 6 and len(stats["shown_groups"]) == 5
    assert stats["embeddings"] == "dual"
    # The same statistics from the saved group tables, with plain numpy.
    tables = load_trained(run_dir).user_level.group_embeddings()
    positive, negative = tables["positive"], tables["negative"]

    def cos(a, b):
        return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))

    pairs = [(i, j) for i in range(6) for j in range(6) if i != j]
    assert stats["mean_cos_positive_vs_own_negative"] == pytest.approx(
        np.mean([cos(positive[i], negative[i]) for i in range(6)]), abs=1e-6)
    assert stats["mean_cos_positive_vs_positive"] == pytest.approx(
        np.mean([cos(positive[i], positive[j]) for i, j in pairs]), abs=1e-6)
    assert stats["mean_cos_negative_vs_negative"] == pytest.approx(
        np.mean([cos(negative[i], negative[j]) for i, j in pairs]), abs=1e-6)
    both = np.concatenate([positive, negative])
    assert stats["mean_abs_cos_all_pairs"] == pytest.approx(np.mean(
        [abs(cos(both[i], both[j])) for i in range(12) for j in range(12) if i != j]),
        abs=1e-6)
    with pytest.raises(SystemExit, match="no GPRec"):
        plain = tmp_path / "plain"
        assert train.main(SMOKE[:-2] + ["--model-dir", str(plain)]) == 0
        experiments.diversity(plain, tmp_path / "x")


@pytest.mark.slow  # an experiment table: several short trainings per row
def test_strategy_table_rows_and_p_values_against_the_mlp(tmp_path, monkeypatch):
    monkeypatch.setattr(experiments, "RESULTS", tmp_path)
    argv = ["ml1m_gprec", "--runs-dir", str(tmp_path / "runs"), "--seeds", "1", "2",
            "--train-args", "--dataset movielens_100k --epochs 1 --max-steps 4 "
                            "--batch-size 2048 --groups 4"]
    assert experiments.main(argv) == 0
    rows = json.loads((tmp_path / "gprec" / "ml1m_gprec.json").read_text())
    assert [r["model"] for r in rows] == ["MLP", "GPRec(MLP) input", "GPRec(MLP) dp",
                                          "GPRec(MLP) ensemble"]
    assert [r["strategy"] for r in rows] == [None, "input", "dp", "ensemble"]
    assert rows[0]["p_value"] is None
    for r in rows[1:]:
        assert r["p_value_vs"] == "MLP"
        assert r["p_value"] == pytest.approx(welch_p(r["test_auc"], rows[0]["test_auc"]),
                                             rel=1e-9)
    assert "partial" not in (tmp_path / "ml1m_gprec.md").read_text()


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
                   *experiments.WIDE_HEADS)
    assert (paper.stop_embedding_gradient, paper.prediction_units) == (False, (64, 32, 16))
    assert (paper.classifier_shared, paper.classifier_units) == (False, (4,))
    assert (paper.head_units, paper.individual_units) == ((64, 32, 16), (64,))
    assert config("--strategy", "dp", "--prediction-units").prediction_units == ()
    # A run recorded before these defaults (prediction_units None meant hidden_units, and no
    # stop-gradient, classifier_shared, head_units or individual_units field) is the same
    # configuration as the explicit paper form, and keeps its run folder.
    old = {**paper.to_dict(), "prediction_units": None}
    for name in ("stop_embedding_gradient", "classifier_shared", "head_units",
                 "individual_units"):
        del old[name]
    assert experiments.effective(old) == experiments.effective(paper.to_dict())
    assert experiments.Runner._slug(old, 2024) == experiments.Runner._slug(
        paper.to_dict(), 2024) == "user_level=gprec"
    assert experiments.effective(old) != experiments.effective(default.to_dict())


def test_bucket_auc_counts_ordered_pairs_and_half_ties():
    labels = np.array([1, 0, 1, 0, 1])
    scores = np.array([0.9, 0.1, 0.4, 0.4, 0.2])
    # positive/negative pairs: 0.9 beats both, 0.4 beats 0.1 and ties 0.4, 0.2 beats 0.1.
    assert experiments.bucket_auc(labels, scores, "x") == pytest.approx((2 + 1.5 + 1) / 6)
    assert experiments.bucket_auc(labels, -scores, "x") == pytest.approx(1 - (2 + 1.5 + 1) / 6)
    with pytest.raises(ValueError, match="AUC of bucket 3: needs both classes, got 3 posi"):
        experiments.bucket_auc(np.ones(3), np.arange(3.0), "bucket 3")


def test_activity_buckets_cut_users_by_training_rows():
    train_users = np.repeat([1, 2, 3, 4], [1, 2, 3, 10])
    bucket, labels = experiments.activity_buckets(train_users, np.array([4, 1, 2, 3, 1]),
                                                  buckets=2)
    assert bucket.tolist() == [1, 0, 0, 1, 0]
    assert labels == ["1–2 rows, 2 users", "3–10 rows, 2 users"]
    with pytest.raises(ValueError, match="1 test rows belong to users with no training"):
        experiments.activity_buckets(train_users, np.array([1, 5]), buckets=2)


@pytest.mark.slow  # an experiment table: several short trainings per row
def test_by_activity_rescores_the_saved_runs_and_matches_their_test_auc(tmp_path, monkeypatch):
    monkeypatch.setattr(experiments, "RESULTS", tmp_path / "results")
    (tmp_path / "results").mkdir()
    runs = tmp_path / "runs"
    argv = ["by_activity", "--a", "--user-level none", "--b", "--user-level gprec --groups 4",
            "--name", "act", "--runs-dir", str(runs), "--seeds", "1", "2", "--train-args",
            "--dataset movielens_100k --epochs 1 --max-steps 20 --batch-size 1024"]
    assert experiments.main(argv) == 0
    report = json.loads((tmp_path / "results" / "act" / "act.json").read_text())
    rows = report["rows"]
    assert rows[0]["bucket"] == "all users" and len(rows) == 1 + experiments.ACTIVITY_BUCKETS
    assert sum(r["test_rows"] for r in rows[1:]) == rows[0]["test_rows"]
    # The rescored saved models give the AUC their runs recorded (Keras' AUC uses buckets).
    recorded = sorted(json.loads(p.read_text())["test"]["auc"]
                      for p in runs.glob("*/seed_*/metrics.json"))
    assert sorted(rows[0]["auc_a"] + rows[0]["auc_b"]) == pytest.approx(recorded, abs=2e-3)
    assert all(0.5 < auc < 1 for r in rows for auc in r["auc_a"] + r["auc_b"])
    assert "| all users |" in (tmp_path / "results" / "act" / "act.md").read_text()


def test_run_folder_names_stay_within_the_file_system_limit():
    """A configuration far from the folder baseline (GPRec's defaults on DCN list a dozen
    options) gets a name cut to SLUG_LIMIT with a hash of the whole, so that two such
    configurations still get different folders; short names are unchanged."""
    def config(*flags):
        parsed = train.parse_args([*flags, "--model-dir", "x"])
        return train.config_from_args(parsed, 2024).to_dict()

    long_a = experiments.Runner._slug(config("--backbone", "dcn", "--user-level", "gprec"), 2024)
    long_b = experiments.Runner._slug(config("--backbone", "dcnv2", "--user-level", "gprec"),
                                      2024)
    assert len(long_a) <= experiments.SLUG_LIMIT and len(long_b) <= experiments.SLUG_LIMIT
    assert long_a != long_b
    assert experiments.Runner._slug(config("--backbone", "dcn"), 2024) == "backbone=dcn"
