"""The `tfrs-userlevel` command: train -> export -> predict -> evaluate, its user errors
(one `error:` line, exit 2, no traceback), a quiet start, and the `datasets` name."""


from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from tests.unit.cli.test_cli import _run
from tfrs_userlevel import __version__, cli, datasets
from tfrs_userlevel.backend import tf

TRAIN = ["train", "--dataset", "movielens_100k", "--epochs", "2", "--max-steps", "12",
         "--batch-size", "512", "--lr-schedule", "plateau"]


@pytest.fixture(scope="module")
def trained(data_dir, tmp_path_factory, ml100k):
    """A short ML-100K run, its test split as CSV, and its export."""
    root = tmp_path_factory.mktemp("cli")
    run_dir = root / "run"
    assert cli.main([*TRAIN, "--data-dir", str(data_dir), "--model-dir", str(run_dir)]) == 0
    test = pd.DataFrame({k: v for k, v in ml100k["test"].items()})
    test.to_csv(root / "test.csv", index=False)
    test.to_parquet(root / "test.parquet")
    assert cli.main(["export", "--model-dir", str(run_dir), "--export-dir",
                     str(root / "serving")]) == 0
    return root, run_dir, test


def test_train_records_versions_and_logs_one_learning_rate(trained):
    _, run_dir, _ = trained
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["versions"]["tfrs_userlevel"] == __version__
    assert metrics["versions"]["tensorflow"] == tf.__version__
    assert set(metrics["versions"]) == {"tfrs_userlevel", "tensorflow", "tf_keras",
                                        "tensorflow_recommenders"}
    tags = set()
    for path in (run_dir / "logs" / "train").glob("events.out.tfevents.*"):
        for record in tf.data.TFRecordDataset(str(path)):
            event = tf.compat.v1.Event.FromString(record.numpy())
            tags |= {value.tag for value in event.summary.value}
    # ReduceLROnPlateau's own `lr` entry is dropped: one learning-rate scalar.
    assert "epoch_learning_rate" in tags and "epoch_lr" not in tags


def test_predict_scores_every_row_with_the_run_and_with_its_export(trained, capsys):
    root, run_dir, test = trained
    assert cli.main(["predict", "--model-dir", str(run_dir), "--input", str(root / "test.csv"),
                     "--output", str(root / "p.csv")]) == 0
    assert cli.main(["predict", "--saved-model", str(root / "serving"), "--input",
                     str(root / "test.parquet"), "--output", str(root / "p.parquet"),
                     "--batch-size", "999"]) == 0
    from_run, from_export = pd.read_csv(root / "p.csv"), pd.read_parquet(root / "p.parquet")
    assert list(from_run.columns) == ["user_id", "item_id", "probability"]
    assert len(from_run) == len(from_export) == len(test)
    np.testing.assert_array_equal(from_run["user_id"], test["user_id"])
    np.testing.assert_array_equal(from_export["item_id"], test["item_id"])
    p = from_run["probability"].to_numpy()
    assert np.all(np.isfinite(p)) and p.min() > 0 and p.max() < 1 and p.std() > 0.01
    # The same rows in batches of 999 through the SavedModel give the same scores.
    np.testing.assert_allclose(from_export["probability"], p, atol=1e-5)
    # The scores are the model's own: their AUC is the test AUC the run reported.
    evaluated = tf.keras.metrics.AUC(num_thresholds=10_000)
    evaluated.update_state(test["label"].to_numpy(), p)
    reported = json.loads((run_dir / "metrics.json").read_text())["test"]["auc"]
    assert float(evaluated.result()) == pytest.approx(reported, abs=2e-3)


def test_predict_takes_unseen_and_empty_values(trained, tmp_path):
    root, run_dir, test = trained
    rows = test.head(4).copy()
    rows["user_id"] = [10**9, 1, 2, 3]
    rows["genres"] = ["Space Western", "", "Drama", "Comedy"]
    rows["zip"] = ["no-such-zip", "", "x", "y"]
    rows.to_csv(tmp_path / "odd.csv", index=False)
    with (tmp_path / "odd.csv").open("a") as handle:  # empty integer values
        handle.write(",,,,,,,,1,,\n")
    assert cli.main(["predict", "--model-dir", str(run_dir), "--input",
                     str(tmp_path / "odd.csv"), "--output", str(tmp_path / "odd_p.csv"),
                     "--id-columns", "user_id"]) == 0
    scored = pd.read_csv(tmp_path / "odd_p.csv")
    assert len(scored) == 5 and np.all(np.isfinite(scored["probability"]))
    assert list(scored.columns) == ["user_id", "probability"]


def test_evaluate_on_a_split_and_on_a_file_gives_the_runs_metrics(trained, data_dir, capsys):
    root, run_dir, _ = trained
    reported = json.loads((run_dir / "metrics.json").read_text())["test"]
    assert cli.main(["evaluate", "--model-dir", str(run_dir), "--split", "test",
                     "--data-dir", str(data_dir), "--output", str(root / "split.json")]) == 0
    assert cli.main(["evaluate", "--model-dir", str(run_dir), "--input",
                     str(root / "test.csv"), "--output", str(root / "file.json")]) == 0
    for name in ("split.json", "file.json"):
        found = json.loads((root / name).read_text())
        assert found["rows"] == 10_000
        for metric in ("auc", "logloss", "rmse", "rig"):
            assert found[metric] == pytest.approx(reported[metric], abs=1e-4), (name, metric)


def _user_error_cases(root: Path, run_dir: Path, data_dir: Path) -> dict[str, tuple]:
    bad_config = root / "bad.yaml"
    tree = yaml.safe_load(datasets.config_path("movielens_100k").read_text())
    tree["model"]["user_level"] = {"name": "gprec", "grups": 4}
    bad_config.write_text(yaml.safe_dump(tree))
    no_files = root / "no_files.yaml"
    no_files.write_text(textwrap.dedent(f"""\
        data:
          format: csv
          files: {root / 'nowhere'}/*.csv
          split: {{by: ratio}}
          label: {{column: label}}
          fields: [{{name: user_id, role: user_personal}}, {{name: item_id, role: item}}]
        """))
    broken = root / "broken.csv"
    broken.write_text("user_id,item_id,label\n1,2,1\n1,two,0\n")
    broken_config = root / "broken.yaml"
    broken_config.write_text(textwrap.dedent(f"""\
        data:
          format: csv
          files: {broken}
          split: {{by: ratio}}
          label: {{column: label}}
          fields:
            - {{name: user_id, role: user_personal}}
            - {{name: item_id, role: item, dtype: int64}}
        """))
    a_file = root / "a_file"
    a_file.write_text("")
    finished = root / "finished"
    finished.mkdir(exist_ok=True)
    (finished / "metrics.json").write_text("{}")
    missing_column = root / "missing_column.csv"
    pd.DataFrame({"user_id": [1], "item_id": [2]}).to_csv(missing_column, index=False)
    bad_label = root / "bad_label.csv"
    frame = pd.read_csv(root / "test.csv").head(3)
    frame["label"] = [0, 1, 7]
    frame.to_csv(bad_label, index=False)
    bad_int = root / "bad_int.csv"
    frame["label"] = [0, 1, 1]
    frame["age"] = frame["age"].astype(str)
    frame.loc[1, "age"] = "twenty"
    frame.to_csv(bad_int, index=False)
    existing = root / "existing.csv"
    existing.write_text("keep me\n")
    short = root / "short" / "movielens-100k"
    short.mkdir(parents=True, exist_ok=True)
    for name in ("u.data", "u.item", "u.genre", "u.user"):
        text = (data_dir / "movielens-100k" / name).read_text(encoding="latin-1")
        if name == "u.user":
            text = text.replace("11|39|F|other|30329\n", "11|39|F\n")
        (short / name).write_text(text, encoding="latin-1")
    model = ["--model-dir", str(run_dir)]
    return {
        "malformed built-in data": (["train", "--dataset", "movielens_100k", "--data-dir",
                                     str(short.parent), "--model-dir", str(root / "x")],
                                    "u.user, line 11"),
        "option value": (["train", "--batch-size", "0", "--model-dir", str(root / "x")],
                         "--batch-size must be >= 1"),
        "GPRec option value": (["train", "--user-level", "gprec", "--temperature", "0",
                                "--model-dir", str(root / "x")], "--temperature must be > 0"),
        "option type": (["train", "--epochs", "many", "--model-dir", str(root / "x")],
                        "--epochs: invalid int value"),
        "unknown command": (["fit"], "unknown command 'fit'"),
        "configuration key": (["train", "--config", str(bad_config), "--model-dir",
                               str(root / "x")], "grups"),
        "missing configuration": (["train", "--config", str(root / "none.yaml"),
                                   "--model-dir", str(root / "x")], "none.yaml"),
        "missing data": (["train", "--config", str(no_files), "--model-dir",
                          str(root / "x")], "matches no file"),
        "malformed data": (["train", "--config", str(broken_config), "--model-dir",
                            str(root / "x")], "line 3"),
        "model dir is a file": (["train", "--dataset", "movielens_100k", "--model-dir",
                                 str(a_file)], "is a file"),
        "existing result": (["train", "--dataset", "movielens_100k", "--model-dir",
                             str(finished)], "already holds results"),
        "not a run": (["export", "--model-dir", str(root / "nothing"), "--export-dir",
                       str(root / "e")], "nothing"),
        "existing output": (["predict", *model, "--input", str(root / "test.csv"),
                             "--output", str(existing)], "pass --overwrite"),
        "missing input": (["predict", *model, "--input", str(root / "none.csv"),
                           "--output", str(root / "o.csv")], "none.csv: no such file"),
        "input lacks a field": (["predict", *model, "--input", str(missing_column),
                                 "--output", str(root / "o.csv")], "no column"),
        "bad value in the input": (["predict", *model, "--input", str(bad_int),
                                    "--output", str(root / "o.csv")], "line 3"),
        "bad label": (["evaluate", *model, "--input", str(bad_label)], "line 4"),
        "unknown dataset": (["datasets", "show", "nope"], "nope"),
        "evaluate without a source": (["evaluate", *model], "--split"),
        "existing metrics file": (["evaluate", *model, "--split", "test", "--output",
                                   str(existing)], "pass --overwrite"),
        "compare what is not a run": (["compare", str(run_dir), str(root)],
                                      "is not a finished run"),
    }


def test_every_user_error_is_one_error_line_with_exit_code_2(trained, data_dir, capsys):
    root, run_dir, _ = trained
    cases = _user_error_cases(root, run_dir, data_dir)
    for case, (argv, expected) in cases.items():
        code, _, err = _run(argv, capsys)
        lines = err.strip().splitlines()
        assert code == 2, (case, err)
        assert len(lines) == 1 and lines[0].startswith("error: "), (case, err)
        assert expected in lines[0], (case, lines[0])
        assert "Traceback" not in err
    assert (root / "existing.csv").read_text() == "keep me\n"  # nothing written over
    assert not (root / "o.csv").exists()  # nothing half-written
    assert not (root / "x").exists()


def test_debug_shows_the_traceback(trained, capsys):
    root, _, _ = trained
    code, _, err = _run(["export", "--debug", "--model-dir", str(root / "nothing"),
                         "--export-dir", str(root / "e")], capsys)
    assert code == 2 and "Traceback" in err and err.strip().splitlines()[-1].startswith(
        "error: ")


def test_datasets_lists_the_built_in_ones_and_shows_a_configurations_data(data_dir, capsys):
    code, out, _ = _run(["datasets", "list", "--data-dir", str(data_dir)], capsys)
    assert code == 0
    listed = {line.split()[0]: line.split()[1] for line in out.splitlines()[1:7:2]}
    assert listed == {"movielens_1m": str(data_dir / "movielens-1m"),
                      "movielens_100k": str(data_dir / "movielens-100k"),
                      "synthetic": "generated"}
    code, out, _ = _run(["datasets", "show", "movielens_100k", "--data-dir",
                         str(data_dir / "movielens-100k")], capsys)
    assert code == 0
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line.strip()}
    assert rows["train"][0] == "80,000" and rows["validation"][0] == "10,000"
    assert rows["test"][0] == "10,000" and 0.5 < float(rows["train"][1]) < 0.6
    assert rows["user_id"] == ["user_personal", "int64", "943"]
    assert rows["gender"] == ["user_other", "string", "2"]


def test_a_live_run_keeps_its_model_dir_to_itself(trained, tmp_path, capsys):
    """A second run on the directory of a live one is refused and touches nothing; once
    the holder is gone (killed), the directory is free again."""
    root, run_dir, _ = trained
    live = tmp_path / "live"
    (live / "backup").mkdir(parents=True)  # looks like an interrupted run
    (live / "backup" / "marker").write_text("kept")
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom tfrs_userlevel.writer_lock import "
         "WriterLock\nwith WriterLock(sys.argv[1]):\n    print('held', flush=True)\n"
         "    time.sleep(600)\n", str(live)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        for extra in ([], ["--overwrite"]):
            code, out, err = _run([*TRAIN, "--model-dir", str(live), *extra], capsys)
            assert code == 2 and err.startswith("error: --model-dir ") and \
                f"being written by a live run (pid {holder.pid})" in err, err
            assert "resuming" not in out
            assert (live / "backup" / "marker").read_text() == "kept"
    finally:
        holder.kill()
        holder.wait()
    from tfrs_userlevel.writer_lock import WriterLock

    with WriterLock(live), WriterLock(live):  # free again, and re-entrant
        pass


def test_an_export_names_features_whose_batch_sizes_differ(trained):
    root, _, test = trained
    serve = tf.saved_model.load(str(root / "serving" / "1")).signatures["serving_default"]
    specs = serve.structured_input_signature[1]
    rows = {name: tf.constant(test[name].to_numpy()[:3].astype(
        str if spec.dtype == tf.string else np.int64)) for name, spec in specs.items()}
    assert serve(**rows)["probability"].shape == (3, 1)
    rows["item_id"] = rows["item_id"][:2]
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match="every feature needs one value per example: feature item_id "
                             r"has another batch size than feature age\] .*\[2\] .*\[3\]"):
        serve(**rows)


def test_a_wrongly_typed_example_feature_is_named(trained):
    """The tf.Example signature parses each feature by its declared type: a value of
    another type fails naming the feature."""
    root, _, _ = trained
    examples = tf.saved_model.load(str(root / "serving" / "1")).signatures[
        "predict_examples"]
    feature = {"user_id": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"abc"]))}
    example = tf.train.Example(features=tf.train.Features(feature=feature))
    with pytest.raises(tf.errors.InvalidArgumentError, match="Key: user_id.*Data types don't "
                       "match. Data type: string but expected type: int64"):
        examples(examples=tf.constant([example.SerializeToString()]))


@pytest.mark.parametrize("feature", ["user_id", "year"])
def test_a_wrongly_typed_tensor_is_numbered_in_alphabetical_order(trained, feature):
    """serving_default's typed inputs are checked by TensorFlow before the graph runs, by
    position: the position of the feature in the sorted names (as documented)."""
    root, _, test = trained
    serve = tf.saved_model.load(str(root / "serving" / "1")).signatures["serving_default"]
    specs = serve.structured_input_signature[1]
    rows = {name: tf.constant(test[name].to_numpy()[:3].astype(
        str if spec.dtype == tf.string else np.int64)) for name, spec in specs.items()}
    rows[feature] = tf.constant(["a", "b", "c"])
    position = sorted(specs).index(feature)
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=rf"input #{position}\(zero-based\) was expected to be a int64"):
        serve(**rows)


def test_compare_prints_runs_and_runs_over_seeds_side_by_side(trained, tmp_path, capsys):
    _, run_dir, _ = trained
    metrics = json.loads((run_dir / "metrics.json").read_text())
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "summary.json").write_text(json.dumps({
        "seeds": [1, 2], **{f"{split}_{m}_{stat}": value
                            for split in ("val", "test") for m in ("auc", "logloss")
                            for stat, value in (("mean", 0.75), ("std", 0.0125))}}))
    code, out, _ = _run(["compare", str(run_dir), str(seeds)], capsys)
    assert code == 0
    header, rule, first, second = out.strip().splitlines()
    assert header.split() == ["run", "model", "val", "auc", "val", "logloss", "test", "auc",
                              "test", "logloss"]
    assert first.split()[:2] == [str(run_dir), "mlp"]
    assert first.split()[2:] == [f"{metrics[split][m]:.4f}" for split in ("val", "test")
                                 for m in ("auc", "logloss")]
    assert "0.7500 ± 0.0125" in second and "2 seeds" in second
