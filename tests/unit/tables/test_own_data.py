"""Real data with foreign schemas, end to end through a run configuration.

The Criteo and Avazu samples as shipped, and MovieLens-100K rewritten by the
test into CSV and Parquet with other column names and a time split, train
with GPRec, UDG and a baseline through `train.py --config`, and export a
SavedModel whose serving signature takes the data's own column names."""


import yaml

import tfrs_userlevel.cli.train as train


def test_a_stream_that_meets_a_bad_row_leaves_nothing(tmp_path, capsys):
    rows = ["uid,video,click"] + [f"u{i % 5},v{i % 3},{i % 2}" for i in range(50)]
    rows[40] = "u1,v1,maybe"
    (tmp_path / "clicks.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "run.yaml").write_text(yaml.safe_dump({"data": {
        "format": "csv", "files": "clicks.csv", "stream": True,
        "split": {"by": "ratio"}, "label": {"column": "click"},
        "fields": [{"name": "uid", "role": "user_personal"},
                   {"name": "video", "role": "item"}]}}))
    run_dir = tmp_path / "runs" / "bad"
    assert train.main(["--config", str(tmp_path / "run.yaml"), "--model-dir",
                       str(run_dir)]) == 2
    assert "clicks.csv, line 41: label column 'click' holds 'maybe'" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()
