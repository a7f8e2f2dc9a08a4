"""Real data with foreign schemas, end to end through a run configuration.

The Criteo and Avazu samples as shipped, and MovieLens-100K rewritten by the
test into CSV and Parquet with other column names and a time split, train
with GPRec, UDG and a baseline through `train.py --config`, and export a
SavedModel whose serving signature takes the data's own column names."""


import json

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest
import yaml

import tfrs_userlevel.cli.train as train
from tfrs_userlevel import cli, tf
from tfrs_userlevel import serving as export
from tfrs_userlevel.training import load_trained

SMOKE = ["--set", "train.epochs=2", "--set", "train.max_steps=6", "--set",
         "train.batch_size=64", "--set", "train.patience=1"]


RENAMED = {"user_id": "viewer", "age": "viewer_age", "gender": "sex", "occupation": "job",
           "zip": "postcode", "item_id": "film", "genres": "film_genres", "year": "released",
           "rating": "stars", "timestamp": "ts"}


def criteo(data_dir):
    dense = [f"I{i}" for i in range(1, 14)]
    sparse = [f"C{i}" for i in range(1, 27)]
    fields = ([{"name": "C1", "role": "user_personal", "default": ""},
               {"name": "C2", "role": "user_other", "default": ""}]
              + [{"name": c, "role": "item", "default": ""} for c in sparse[2:]]
              + [{"name": c, "role": "context", "dtype": "string", "default": ""}
                 for c in dense])
    return {"data": {"format": "csv",
                     "files": str(data_dir / "ctr-tiny-samples" / "criteo_sample.txt"),
                     "split": {"by": "ratio", "train": 0.7, "validation": 0.15,
                               "test": 0.15},
                     "label": {"column": "label"}, "fields": fields},
            "model": {"baseline": {"name": "apg", "hidden_units": [32, 16]}}}


def avazu(data_dir):
    return {"data": {"format": "csv",
                     "files": str(data_dir / "ctr-tiny-samples" / "avazu_sample.txt"),
                     "split": {"by": "time", "column": "hour", "train": 0.6,
                               "validation": 0.2, "test": 0.2},
                     "label": {"column": "click"},
                     "fields": [{"name": "device_id", "role": "user_personal"},
                                {"name": "device_ip", "role": "user_other"},
                                {"name": "device_model", "role": "user_other"},
                                {"name": "site_id", "role": "item"},
                                {"name": "app_id", "role": "item"},
                                {"name": "banner_pos", "role": "context"},
                                {"name": "C14", "role": "item", "hash_buckets": 64}]},
            "model": {"user_level": {"name": "gprec", "groups": 8}}}


@pytest.fixture(scope="module")
def ml100k_files(ml100k, tmp_path_factory):
    """MovieLens-100K as one CSV and one Parquet file with renamed columns."""
    root = tmp_path_factory.mktemp("ml100k")
    columns = {RENAMED[k]: np.concatenate([ml100k[s][k] for s in ml100k])
               for k in RENAMED}
    table = pa.table(columns)
    pa_csv.write_csv(table, root / "ratings.csv")
    pq.write_table(table, root / "ratings.parquet")
    return root, table


def ml100k_config(root, fmt, user_level):
    fields = [{"name": "viewer", "role": "user_personal"},
              {"name": "viewer_age", "role": "user_other"},
              {"name": "sex", "role": "user_other"}, {"name": "job", "role": "user_other"},
              {"name": "postcode", "role": "user_other", "dtype": "string"},
              {"name": "film", "role": "item"}, {"name": "film_genres", "role": "item"},
              {"name": "released", "role": "item"}]
    return {"data": {"format": fmt, "files": f"ratings.{fmt}",
                     "split": {"by": "time", "column": "ts"},
                     "label": {"column": "stars", "positive_above": 3}, "fields": fields},
            "model": {"user_level": user_level}}


def _train_and_export(tree, tmp_path, base=None):
    path = (base or tmp_path) / f"{tmp_path.name}.yaml"
    path.write_text(yaml.safe_dump(tree))
    run_dir = tmp_path / "run"
    assert train.main(["--config", str(path), "--model-dir", str(run_dir), *SMOKE]) == 0
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert 0 < metrics["test"]["auc"] < 1 and np.isfinite(metrics["test"]["logloss"])
    written = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert all(f["dtype"] in ("string", "int64") for f in written["data"]["fields"])
    version = export.export_run(run_dir, tmp_path / "serving")
    return run_dir, version, written


def _serve(version, rows):
    signature = tf.saved_model.load(str(version)).signatures["serving_default"]
    inputs = signature.structured_input_signature[1]
    served = signature(**{name: tf.constant(rows[name], spec.dtype)
                          for name, spec in inputs.items()})["probability"].numpy()
    return set(inputs), served


def test_criteo_sample_with_a_baseline(data_dir, tmp_path):
    tree = criteo(data_dir)
    run_dir, version, _ = _train_and_export(tree, tmp_path)
    rows = pa_csv.read_csv(data_dir / "ctr-tiny-samples" / "criteo_sample.txt",
                           convert_options=pa_csv.ConvertOptions(
                               column_types={f"I{i}": pa.string() for i in range(1, 14)},
                               strings_can_be_null=False)).slice(0, 16).to_pydict()
    names, served = _serve(version, rows)
    assert names == {f["name"] for f in tree["data"]["fields"]}
    assert served.shape == (16, 1) and np.all((served > 0) & (served < 1))


def test_avazu_sample_with_gprec(data_dir, tmp_path):
    run_dir, version, written = _train_and_export(avazu(data_dir), tmp_path)
    assert written["model"]["user_level"]["preset"] == "recommended"
    model = load_trained(run_dir)
    assert model.user_level.groups == 8 and model.user_level.strategy == "ensemble"
    rows = pa_csv.read_csv(data_dir / "ctr-tiny-samples" / "avazu_sample.txt").slice(
        0, 8).to_pydict()
    names, served = _serve(version, rows)
    assert names == {"device_id", "device_ip", "device_model", "site_id", "app_id",
                     "banner_pos", "C14"}
    expected = model({k: tf.constant(rows[k]) for k in names}).numpy()
    np.testing.assert_allclose(served, expected, atol=1e-5)


@pytest.mark.parametrize("fmt, user_level", [
    ("csv", {"name": "udg", "preset": "recommended"}),
    ("parquet", {"name": "gprec", "preset": "paper", "groups": 6})])
def test_movielens_100k_renamed_with_a_time_split(ml100k_files, tmp_path, fmt, user_level,
                                                  monkeypatch):
    root, table = ml100k_files
    run_dir, version, written = _train_and_export(
        ml100k_config(root, fmt, user_level), tmp_path, base=root)
    # config.yaml names the files by absolute path: the run's data reads again from
    # anywhere, and gives the run's own test metrics.
    assert written["data"]["files"] == str(root / f"ratings.{fmt}")
    monkeypatch.chdir(tmp_path)
    assert cli.main(["evaluate", "--model-dir", str(run_dir), "--split", "test",
                     "--output", str(tmp_path / "evaluated.json")]) == 0
    evaluated = json.loads((tmp_path / "evaluated.json").read_text())
    reported = json.loads((run_dir / "metrics.json").read_text())["test"]
    assert evaluated["auc"] == pytest.approx(reported["auc"], abs=1e-4)
    assert evaluated["logloss"] == pytest.approx(reported["logloss"], abs=1e-4)
    model = load_trained(run_dir)
    assert (model.gating is not None) == (user_level["name"] == "udg")
    assert (model.user_level is not None) == (user_level["name"] == "gprec")
    # The time split: every training row is older than every test row.
    order = np.argsort(table["ts"].to_numpy(), kind="stable")
    n = table.num_rows
    assert json.loads((run_dir / "metrics.json").read_text())["config"]["data"]["split"][
        "by"] == "time"
    rows = table.take(order[-10:]).to_pydict()  # the newest rows: the test split
    names, served = _serve(version, rows)
    assert names == {"viewer", "viewer_age", "sex", "job", "postcode", "film",
                     "film_genres", "released"}
    assert served.shape == (10, 1) and n > 90_000


def test_a_failed_configured_run_leaves_no_results(data_dir, tmp_path, capsys):
    tree = avazu(data_dir)
    tree["data"]["fields"][0]["name"] = "device_idd"
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(tree))
    assert train.main(["--config", str(path), "--model-dir", str(tmp_path / "run")]) == 2
    error = capsys.readouterr().err
    assert "no column 'device_idd'" in error and "Traceback" not in error
    assert not (tmp_path / "run").exists()
    path.write_text(yaml.safe_dump(avazu(data_dir)))
    assert train.main(["--config", str(path), "--model-dir", str(tmp_path / "run"),
                       "--set", "model.user_level.grups=3"]) == 2
    assert "model.user_level.grups: unknown key (did you mean groups?)" in (
        capsys.readouterr().err)
    assert train.main(["--config", str(path), "--model-dir", str(tmp_path / "run"),
                       "--ablation", "gprec-2"]) == 2
    assert "--ablation: no key of the run configuration" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_flags_are_shorthands_for_configuration_keys(data_dir):
    argv = ["--config", "movielens_1m", "--model-dir", "unused", "--user-level", "gprec",
            "--groups", "12", "--strategy", "input", "--gprec-dropout", "0.1",
            "--no-stop-embedding-gradient", "--epochs", "3", "--hidden-units", "32", "16"]
    config = train.configured_run(argv, train.parse_args(argv))
    assert config.model.user_level == {
        "name": "gprec", "preset": "recommended", "groups": 12, "strategy": "input",
        "dropout": 0.1, "stop_embedding_gradient": False}
    assert config.train.epochs == 3 and config.model.backbone["hidden_units"] == [32, 16]
    argv = ["--config", "movielens_1m", "--model-dir", "unused", "--user-level",
            "gprec+udg", "--groups", "5", "--udg-units", "8", "--udg-l2", "0.001"]
    config = train.configured_run(argv, train.parse_args(argv))
    assert config.model.user_level["gprec"]["groups"] == 5
    assert config.model.user_level["udg"]["hidden_units"] == [8]
    assert config.model.user_level["udg"]["l2"] == 0.001
