"""The experiment tables as configurations, the runner's keys and reuse, and the
analyses' arithmetic; nothing here trains or reads data."""

import json

import numpy as np
import pytest

import experiments
from tfrs_userlevel.config.errors import ConfigError
from tfrs_userlevel.experiments import analyses, runner, tables
from tfrs_userlevel.experiments.runner import MissingRunError, Runner, configuration_key
from tfrs_userlevel.training import TrainConfig


def test_the_key_is_the_resolved_configuration_without_its_seed():
    # The same configuration spelled two ways (a default given or left out) shares a key;
    # the seed is not part of it; any other change is.
    plain = TrainConfig(user_level="gprec", seed=1)
    spelled = TrainConfig(user_level="gprec", strategy="ensemble", seed=2)
    assert configuration_key(plain) == configuration_key(spelled)
    assert len(configuration_key(plain)) == runner.KEY_LENGTH
    assert configuration_key(plain) != configuration_key(TrainConfig(user_level="gprec",
                                                                     groups=40))
    folder = Runner("runs", base={"dataset": "movielens_100k"})
    assert folder.run_dir({"user_level": "none"}, 3).name == "seed_3"
    assert folder.run_dir({"user_level": "none"}, 3).parent == folder.run_dir({}, 4).parent


@pytest.mark.parametrize("name", sorted(tables.TABLES))
def test_every_row_of_every_table_is_a_valid_configuration(name):
    table = tables.TABLES[name]
    names = [r.name for r in table.rows]
    assert len(set(names)) == len(names), names
    for position, row in enumerate(table.rows):
        TrainConfig.from_dict({**table.base, **row.overrides})  # refuses a wrong key
        if row.reference is not None:
            assert row.reference in names[:position], (row.name, row.reference)
        assert set(row.measures) <= set(tables.MEASURES)


def test_the_papers_form_is_spelled_out_and_differs_from_the_defaults():
    paper = TrainConfig(**tables.PAPER_INPUT)
    assert (paper.strategy, paper.stop_embedding_gradient, paper.prediction_units) == (
        "input", False, (64, 32, 16))
    assert (paper.classifier_shared, paper.classifier_units) == (False, (4,))
    assert (paper.head_units, paper.individual_units) == ((64, 32, 16), (64,))
    default = TrainConfig(user_level="gprec")
    assert configuration_key(paper) != configuration_key(default)
    detached = TrainConfig(user_level="gprec", backbone="dcn", **tables.DETACHED_ENSEMBLE)
    assert (detached.ensemble_weights, detached.ensemble_backbone_gradient) == ("learned", False)


def test_a_finished_run_is_reused_and_a_missing_one_is_refused(tmp_path, monkeypatch):
    def no_training(*args, **kwargs):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(runner, "run", no_training)
    runs = Runner(tmp_path, base={"dataset": "movielens_100k"}, train=False)
    overrides = {"user_level": "gprec", "groups": 4}
    with pytest.raises(MissingRunError, match=r"no finished run of \{'user_level': 'gprec', "
                                              r"'groups': 4\} \(seed 7\) in .*seed_7"):
        runs.metrics(overrides, 7)
    folder = runs.run_dir(overrides, 7)
    folder.mkdir(parents=True)
    finished = {"val": {"auc": 0.6}, "test": {"auc": 0.7},
                "config": runs.config(overrides, 7).to_dict()}
    (folder / "metrics.json").write_text(json.dumps(finished))
    assert runs.metrics(overrides, 7) == finished
    # A run recorded with another configuration in the same folder is not this one.
    (folder / "metrics.json").write_text(json.dumps({**finished, "config": {"groups": 5}}))
    with pytest.raises(MissingRunError):
        runs.metrics(overrides, 7)


def test_command_line_overrides_are_key_value_pairs_read_as_yaml():
    assert experiments.overrides("epochs=2 hidden_units=[32,16] user_level=gprec "
                                 "baseline_options='{epnet: false}'") == {
        "epochs": 2, "hidden_units": [32, 16], "user_level": "gprec",
        "baseline_options": {"epnet": False}}
    with pytest.raises(ConfigError, match="--a: expected KEY=VALUE pairs, got 'epochs'"):
        experiments.overrides("epochs", "--a")
    # The flags of tfrs-userlevel train, as the recorded commands of the tables spell them.
    flags = experiments.overrides("--user-level gprec --no-classifier-shared --head-units 64 32 "
                                  "--baseline-options '{}'")
    assert flags == {"user_level": "gprec", "classifier_shared": False, "head_units": [64, 32],
                     "baseline_options": {}}
    assert TrainConfig.from_dict(flags).head_units == (64, 32)
    with pytest.raises(ConfigError, match="--data-dir set no training option"):
        experiments.overrides("--user-level gprec --data-dir x")


def test_a_wrong_key_on_the_command_line_is_an_error_not_a_traceback(tmp_path, capsys):
    argv = ["ml1m_gprec", "--runs-dir", str(tmp_path), "--results-dir", str(tmp_path),
            "--set", "epochz=2"]
    assert experiments.main(argv) == 2
    assert "epochz" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_bucket_auc_counts_ordered_pairs_and_half_ties():
    labels = np.array([1, 0, 1, 0, 1])
    scores = np.array([0.9, 0.1, 0.4, 0.4, 0.2])
    # positive/negative pairs: 0.9 beats both, 0.4 beats 0.1 and ties 0.4, 0.2 beats 0.1.
    assert analyses.bucket_auc(labels, scores, "x") == pytest.approx((2 + 1.5 + 1) / 6)
    assert analyses.bucket_auc(labels, -scores, "x") == pytest.approx(1 - (2 + 1.5 + 1) / 6)
    with pytest.raises(ValueError, match="AUC of bucket 3: needs both classes, got 3 posi"):
        analyses.bucket_auc(np.ones(3), np.arange(3.0), "bucket 3")


def test_activity_buckets_cut_users_by_training_rows():
    train_users = np.repeat([1, 2, 3, 4], [1, 2, 3, 10])
    bucket, labels = analyses.activity_buckets(train_users, np.array([4, 1, 2, 3, 1]),
                                               buckets=2)
    assert bucket.tolist() == [1, 0, 0, 1, 0]
    assert labels == ["1–2 rows, 2 users", "3–10 rows, 2 users"]
    with pytest.raises(ValueError, match="1 test rows belong to users with no training"):
        analyses.activity_buckets(train_users, np.array([1, 5]), buckets=2)


def test_where_prints_the_run_folder_of_a_table_row(tmp_path, capsys):
    argv = ["where", "--row", "ml1m_gprec:GPRec(MLP) input", "--seeds", "2024", "2025",
            "--runs-dir", str(tmp_path)]
    assert experiments.main(argv) == 0
    folders = capsys.readouterr().out.split()
    runs = Runner(tmp_path, base=tables.ML1M)
    assert folders == [str(runs.run_dir(tables.PAPER_INPUT, s)) for s in (2024, 2025)]
    assert experiments.main(["where", "--row", "ml1m_gprec:nope"]) == 2
    assert "its rows are ['MLP', 'GPRec(MLP) input'" in capsys.readouterr().err


def test_each_udg_row_of_the_planted_world_is_tested_against_its_own_same_size_mlp(
        monkeypatch):
    from tfrs_userlevel.experiments import planted_worlds

    overrides = dict(planted_worlds.UDG_ROWS)
    for udg, mlp in planted_worlds.SAME_SIZE_MLP.items():
        assert overrides[udg]["user_level"] == "udg" and "user_level" not in overrides[mlp]
        # Same regularisation: the reference differs in its widths only.
        assert overrides[udg].get("dropout") == overrides[mlp].get("dropout"), udg
    assert {n for n, o in overrides.items() if o.get("user_level") == "udg"} == set(
        planted_worlds.SAME_SIZE_MLP)

    monkeypatch.setattr(planted_worlds, "planted_auc", lambda name: 0.9)
    monkeypatch.setattr(planted_worlds, "structure_known_auc", lambda name: (0.88, 1e-3))
    aucs = {"MLP": [0.80, 0.81], "MLP + UDG": [0.70, 0.71],
            planted_worlds.PARAMETER_MATCHED: [0.60, 0.61],
            "MLP + UDG, dropout 0": [0.60, 0.62],
            f"{planted_worlds.PARAMETER_MATCHED}, dropout 0": [0.90, 0.91]}
    rows = [{"dataset": "planted_udg", "model": m, "test_auc": a, "auc_mean": np.mean(a)}
            for m, a in aucs.items()]
    cells = [[c.strip() for c in line.split("|")[1:-1]]
             for line in planted_worlds.udg_section(rows).splitlines() if line.startswith("| M")]
    lines = {c[0]: c[-1] for c in cells}
    assert float(lines["MLP + UDG"]) < 0.05  # well above the 256-128-64 MLP with dropout
    assert float(lines["MLP + UDG, dropout 0"]) > 0.95  # well below its dropout-0 reference
    assert lines["MLP"] == "" and lines[planted_worlds.PARAMETER_MATCHED] == ""
