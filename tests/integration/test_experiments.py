"""experiments.py on MovieLens-100K: tables from configurations, finished runs reused,
a table rewritten from finished runs alone, and the analyses of finished runs."""

import dataclasses
import json

import numpy as np
import pytest

import experiments
import tfrs_userlevel.cli.train as train
from tests.helpers import welch_p
from tfrs_userlevel import tf
from tfrs_userlevel.experiments import analyses, runner, tables
from tfrs_userlevel.parameter_counts import parameter_counts
from tfrs_userlevel.training import load_trained

pytestmark = pytest.mark.usefixtures("data_dir")  # trains on the real data

SHORT = "dataset=movielens_100k epochs=1 max_steps=4 batch_size=2048 groups=4"
SMOKE = ["--dataset", "movielens_100k", "--epochs", "1", "--max-steps", "15",
         "--batch-size", "1024", "--groups", "6"]


def table_argv(name, tmp_path, *seeds):
    return [name, "--runs-dir", str(tmp_path / "runs"), "--results-dir",
            str(tmp_path / "results"), "--seeds", *map(str, seeds), "--set", SHORT]


def assert_rewritten_from_runs(tmp_path, monkeypatch, name, study, *seeds):
    """`--from-runs` writes table `name` again, equal but for the command, training
    nothing."""
    written = tmp_path / "results" / study / f"{name}.json"
    before = json.loads(written.read_text())

    def no_training(*args, **kwargs):
        raise AssertionError("--from-runs trained a run")

    monkeypatch.setattr(runner, "run", no_training)
    written.unlink()
    assert experiments.main([*table_argv(name, tmp_path, *seeds), "--from-runs"]) == 0
    after = json.loads(written.read_text())
    assert [{k: v for k, v in r.items() if k != "command"} for r in after] == [
        {k: v for k, v in r.items() if k != "command"} for r in before]
    assert "partial" not in written.with_suffix(".md").read_text()


def test_a_table_is_rewritten_from_finished_runs_without_training(tmp_path, monkeypatch,
                                                                 capsys):
    argv = table_argv("ml1m_gprec", tmp_path, 1)
    assert experiments.main(argv) == 0
    written = tmp_path / "results" / "gprec" / "ml1m_gprec.json"
    rows = json.loads(written.read_text())
    assert [r["model"] for r in rows] == ["MLP", "GPRec(MLP) input", "GPRec(MLP) dp",
                                          "GPRec(MLP) ensemble"]
    assert [r["strategy"] for r in rows] == [None, "input", "dp", "ensemble"]
    assert all(r["dataset"] == "movielens_100k" and r["seeds"] == [1] for r in rows)
    assert all(r["p_value"] is None for r in rows)  # one seed: no spread to test
    # One folder per configuration, named by its key, holding the configuration.
    folders = sorted(p for p in (tmp_path / "runs").iterdir())
    assert len(folders) == 4
    for folder in folders:
        recorded = json.loads((folder / runner.CONFIGURATION_FILE).read_text())
        metrics = json.loads((folder / "seed_1" / "metrics.json").read_text())
        assert {**recorded, "seed": 1} == metrics["config"]

    assert_rewritten_from_runs(tmp_path, monkeypatch, "ml1m_gprec", "gprec", 1)
    # A run that is not finished is named, and nothing is written.
    written.unlink()
    assert experiments.main([*table_argv("ml1m_gprec", tmp_path, 1, 2), "--from-runs"]) == 2
    assert "error: no finished run of {'user_level': 'none'} (seed 2)" in capsys.readouterr().err
    assert not written.exists()


def test_a_table_is_rewritten_from_recorded_metrics_without_weights(tmp_path, monkeypatch):
    # Each run's metrics.json records its parameter counts, so a folder holding only
    # metrics.json and configuration.json (results/capacity/recorded) rewrites a table whose
    # rows show parameter counts.
    import shutil

    monkeypatch.setitem(tables.TABLES, "ml1m_equal_capacity", dataclasses.replace(
        tables.TABLES["ml1m_equal_capacity"],
        rows=tuple(dataclasses.replace(r, reference=None)  # UDG(MLP) at both budgets
                   for r in tables.TABLES["ml1m_equal_capacity"].rows[4:6])))
    assert experiments.main(table_argv("ml1m_equal_capacity", tmp_path, 1)) == 0
    written = tmp_path / "results" / "capacity" / "ml1m_equal_capacity.json"
    before = json.loads(written.read_text())
    assert [r["model"] for r in before] == ["UDG(MLP), 44k", "UDG(MLP), 176k"]
    recorded = tmp_path / "recorded"
    for metrics in (tmp_path / "runs").glob("*/seed_1/metrics.json"):
        key = metrics.parent.parent
        model = load_trained(metrics.parent)
        assert json.loads(metrics.read_text())["parameters"] == parameter_counts(model)
        assert analyses.network_parameters(metrics.parent) < parameter_counts(model)["all"]
        (recorded / key.name / "seed_1").mkdir(parents=True)
        shutil.copy(key / runner.CONFIGURATION_FILE, recorded / key.name)
        shutil.copy(metrics, recorded / key.name / "seed_1")
    monkeypatch.setattr(runner, "run", lambda *a, **k: pytest.fail("trained a run"))
    written.unlink()
    argv = table_argv("ml1m_equal_capacity", tmp_path, 1)
    argv[argv.index("--runs-dir") + 1] = str(recorded)
    assert experiments.main([*argv, "--from-runs"]) == 0
    after = json.loads(written.read_text())
    assert [r["network_parameters"] for r in after] == [
        r["network_parameters"] for r in before]
    assert before[1]["network_parameters"] > 2 * before[0]["network_parameters"]


@pytest.mark.slow  # an experiment table: several short trainings per row
def test_compare_trains_both_configs_reuses_runs_and_writes_rows(tmp_path):
    argv = ["compare", "--a", "user_level=none", "--b", "user_level=gprec groups=4",
            "--name", "cmp", "--runs-dir", str(tmp_path / "runs"), "--results-dir",
            str(tmp_path / "results"), "--seeds", "1", "2", "--set",
            "dataset=movielens_100k epochs=1 max_steps=8 batch_size=1024"]
    assert experiments.main(argv) == 0
    rows = json.loads((tmp_path / "results" / "cmp" / "cmp.json").read_text())
    assert [r["user_level"] for r in rows] == ["none", "gprec"]
    for r in rows:
        assert r["seeds"] == [1, 2] and r["dataset"] == "movielens_100k"
        assert r["auc_mean"] == pytest.approx(np.mean(r["test_auc"]))
    assert rows[1]["p_value"] == pytest.approx(
        welch_p(rows[1]["test_auc"], rows[0]["test_auc"]), rel=1e-9)
    assert "python experiments.py compare" in (tmp_path / "results" / "cmp" / "cmp.md"
                                               ).read_text()
    runs = sorted((tmp_path / "runs").glob("*/seed_*/metrics.json"))
    assert len(runs) == 4
    stamps = [p.stat().st_mtime_ns for p in runs]
    assert experiments.main(argv) == 0  # everything reused, nothing retrained
    assert [p.stat().st_mtime_ns for p in runs] == stamps


@pytest.mark.slow  # an experiment table: several short trainings per row
def test_backbone_tables_library_gaps_and_gprec_p_values(tmp_path, monkeypatch):
    for name, with_gprec, gprec in (("ml1m_backbones", ("gdcn",), tables.ZOO_GPREC),
                                    ("ml1m_gprec_backbones", ("gdcn",),
                                     tables.DETACHED_ENSEMBLE)):
        backbones = ("gdcn", "mlp", "deepfm") if name == "ml1m_backbones" else ("gdcn",)
        monkeypatch.setitem(tables.TABLES, name, dataclasses.replace(
            tables.TABLES[name], rows=tables._backbones(backbones, gprec, with_gprec)))
    assert experiments.main(table_argv("ml1m_backbones", tmp_path, 1, 2)) == 0
    rows = json.loads((tmp_path / "results" / "backbones" / "ml1m_backbones.json").read_text())
    assert [r["model"] for r in rows] == ["GDCN", "GPRec(GDCN)", "MLP", "DeepFM"]
    assert rows[1]["p_value_vs"] == "GDCN"
    assert rows[1]["p_value"] == pytest.approx(welch_p(rows[1]["test_auc"], rows[0]["test_auc"]),
                                               rel=1e-9)
    assert rows[0]["library_auc"] == tables.sections.LIBRARY_AUC["gdcn"]
    text = (tmp_path / "results" / "backbones" / "ml1m_backbones.md").read_text()
    assert "established library" in text and "| DeepFM |" in text and "partial" not in text
    # The GPRec backbones table reuses the backbone's runs and adds its own GPRec rows.
    assert experiments.main(table_argv("ml1m_gprec_backbones", tmp_path, 1, 2)) == 0
    rows = json.loads((tmp_path / "results" / "gprec_backbones" / "ml1m_gprec_backbones.json"
                       ).read_text())
    assert [r["model"] for r in rows] == ["GDCN", "GPRec(GDCN)"]
    assert {"ensemble_weights=learned", "ensemble_backbone_gradient=False",
            "schedule_monitor=auc"} <= set(rows[1]["args"].split())
    assert len(list((tmp_path / "runs").iterdir())) == 5
    assert_rewritten_from_runs(tmp_path, monkeypatch, "ml1m_backbones", "backbones", 1, 2)


@pytest.mark.slow  # an experiment table: several short trainings per row
def test_baseline_table_rows_and_parameter_counts(tmp_path, monkeypatch):
    monkeypatch.setitem(tables.TABLES, "ml1m_baselines", dataclasses.replace(
        tables.TABLES["ml1m_baselines"], rows=tuple(
            r for r in tables.TABLES["ml1m_baselines"].rows if r.name in ("MLP", "STAR",
                                                                         "GPRec(MLP)"))))
    assert experiments.main(table_argv("ml1m_baselines", tmp_path, 1, 2)) == 0
    rows = json.loads((tmp_path / "results" / "baselines" / "ml1m_baselines.json").read_text())
    assert [r["model"] for r in rows] == ["MLP", "STAR", "GPRec(MLP)"]
    assert rows[1]["p_value"] == pytest.approx(welch_p(rows[1]["test_auc"], rows[0]["test_auc"]),
                                               rel=1e-9)
    assert all(r["network_parameters"] > 0 for r in rows)
    text = (tmp_path / "results" / "baselines" / "ml1m_baselines.md").read_text()
    assert "| STAR | " in text and "GPRec(MLP) − model" in text and "partial" not in text
    assert_rewritten_from_runs(tmp_path, monkeypatch, "ml1m_baselines", "baselines", 1, 2)


@pytest.mark.slow  # an experiment table: several short trainings per row
def test_by_activity_rescores_the_saved_runs_and_matches_their_test_auc(tmp_path):
    runs = tmp_path / "runs"
    argv = ["by_activity", "--a", "user_level=none", "--b", "user_level=gprec groups=4",
            "--name", "act", "--runs-dir", str(runs), "--results-dir",
            str(tmp_path / "results"), "--seeds", "1", "2", "--set",
            "dataset=movielens_100k epochs=1 max_steps=20 batch_size=1024"]
    assert experiments.main(argv) == 0
    report = json.loads((tmp_path / "results" / "act" / "act.json").read_text())
    rows = report["rows"]
    assert rows[0]["bucket"] == "all users" and len(rows) == 1 + analyses.ACTIVITY_BUCKETS
    assert sum(r["test_rows"] for r in rows[1:]) == rows[0]["test_rows"]
    # The rescored saved models give the AUC their runs recorded (Keras' AUC uses buckets).
    recorded = sorted(json.loads(p.read_text())["test"]["auc"]
                      for p in runs.glob("*/seed_*/metrics.json"))
    assert sorted(rows[0]["auc_a"] + rows[0]["auc_b"]) == pytest.approx(recorded, abs=2e-3)
    assert all(0.5 < auc < 1 for r in rows for auc in r["auc_a"] + r["auc_b"])
    assert "| all users |" in (tmp_path / "results" / "act" / "act.md").read_text()


@pytest.mark.slow  # several short trainings
def test_ensemble_heads_scores_each_averaged_prediction(tmp_path, capsys):
    argv = SMOKE + ["--user-level", "gprec", "--strategy", "ensemble", "--ensemble-weights",
                    "learned", "--model-dir", str(tmp_path)]
    assert train.main(argv) == 0
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    model = load_trained(tmp_path)
    stats = analyses.ensemble_heads(tmp_path, None)
    assert set(stats["weights"]) == {"backbone", "group", "individual"}
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
        analyses.ensemble_heads(tmp_path / "input", None)


@pytest.mark.slow  # several short trainings
def test_diversity_writes_heatmap_and_similarities(tmp_path):
    run_dir = tmp_path / "run"
    assert train.main(SMOKE + ["--user-level", "gprec", "--model-dir", str(run_dir)]) == 0
    stats = analyses.diversity(run_dir, tmp_path / "div")
    assert (tmp_path / "div.png").stat().st_size > 1000
    assert json.loads((tmp_path / "div.json").read_text()) == stats
    assert stats["groups"] == 6 and len(stats["shown_groups"]) == 5
    # The same statistics from the saved group tables, with plain numpy.
    saved = load_trained(run_dir).user_level.group_embeddings()
    positive, negative = saved["positive"], saved["negative"]

    def cos(a, b):
        return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))

    pairs = [(i, j) for i in range(6) for j in range(6) if i != j]
    assert stats["mean_cos_positive_vs_own_negative"] == pytest.approx(
        np.mean([cos(positive[i], negative[i]) for i in range(6)]), abs=1e-6)
    assert stats["mean_cos_positive_vs_positive"] == pytest.approx(
        np.mean([cos(positive[i], positive[j]) for i, j in pairs]), abs=1e-6)
    both = np.concatenate([positive, negative])
    assert stats["mean_abs_cos_all_pairs"] == pytest.approx(np.mean(
        [abs(cos(both[i], both[j])) for i in range(12) for j in range(12) if i != j]),
        abs=1e-6)
    with pytest.raises(SystemExit, match="no GPRec"):
        plain = tmp_path / "plain"
        assert train.main(SMOKE[:-2] + ["--model-dir", str(plain)]) == 0
        analyses.diversity(plain, tmp_path / "x")
