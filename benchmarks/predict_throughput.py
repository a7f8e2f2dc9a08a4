"""Throughput of `tfrs-userlevel predict` on the 100,021 MovieLens-1M test rows from CSV.

    TFRS_USERLEVEL_DATA=/path/to/data python benchmarks/predict_throughput.py

For the MLP and for GPRec (train.py's defaults for each, trained briefly: scoring
speed does not depend on how long a model trained), with a run's model directory and
with its export, measures in one process:

* load: rebuilding the model and restoring the best weights, and tracing the scoring
  function once (model directory), or loading the SavedModel (export);
* score: CSV in -> features -> model -> CSV out (`scoring.score_file`, 65,536 rows a
  batch), the first pass after loading and the median of five;

and, as a user sees it, the whole `tfrs-userlevel predict` command in a new process
(Python start, TensorFlow import, load, score, write). Writes
results/speed/predict_throughput.json.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tfrs_userlevel import cli, datasets  # noqa: E402
from tfrs_userlevel.scoring import Scorer, score_file  # noqa: E402

MODELS = {"mlp": [], "gprec": ["--user-level", "gprec"]}
REPEATS = 5


def _timed(function, *args):
    start = time.perf_counter()
    value = function(*args)
    return value, time.perf_counter() - start


def measure(load, model_path: Path, source: Path, work: Path, ids) -> dict:
    scorer, load_seconds = _timed(load, model_path)
    passes = []
    for i in range(REPEATS + 1):
        rows, seconds = _timed(score_file, scorer, source, work / f"out{i}.csv", ids)
        passes.append(seconds)
    scored = pd.read_csv(work / "out0.csv")
    assert len(scored) == rows and np.isfinite(scored["probability"]).all()
    return {"rows": rows, "load_seconds": load_seconds,
            "first_pass_rows_per_second": rows / passes[0],
            "rows_per_second": rows / float(np.median(passes[1:])),
            "first_pass_seconds": passes[0], "median_pass_seconds": float(np.median(passes[1:]))}


def command_seconds(argv, cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "tfrs_userlevel", "predict", *argv], cwd=cwd,
                   check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    data_dir = os.environ.get(datasets.ENV_VAR)
    test = datasets.load_splits("movielens_1m", "random", data_dir)["test"]
    results = {"dataset": "movielens_1m", "split": "random (test)", "repeats": REPEATS,
               "cpus": os.cpu_count(), "models": {}}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        source = work / "test.csv"
        pd.DataFrame(test).to_csv(source, index=False)
        results["csv_megabytes"] = source.stat().st_size / 2**20
        for name, options in MODELS.items():
            run_dir, export_dir = work / name, work / f"{name}_serving"
            assert cli.main(["train", "--dataset", "movielens_1m", "--epochs", "1",
                             "--max-steps", "20", *options, "--model-dir", str(run_dir)]) == 0
            assert cli.main(["export", "--model-dir", str(run_dir), "--export-dir",
                             str(export_dir)]) == 0
            ids = ["user_id", "movie_id"]
            found = {
                "model_dir": measure(Scorer.from_run, run_dir, source, work, ids),
                "saved_model": measure(Scorer.from_saved_model, export_dir, source, work, ids),
                "command_seconds": {
                    "model_dir": command_seconds(["--model-dir", str(run_dir), "--input",
                                                  str(source), "--output",
                                                  str(work / f"{name}_command.csv")], work),
                    "saved_model": command_seconds(
                        ["--saved-model", str(export_dir), "--input", str(source), "--output",
                         str(work / f"{name}_command_export.csv")], work),
                },
            }
            results["models"][name] = found
            for kind in ("model_dir", "saved_model"):
                m = found[kind]
                print(f"{name:<6} {kind:<12} {m['rows']:,} rows: load {m['load_seconds']:.2f} s, "
                      f"first pass {m['first_pass_rows_per_second']:,.0f} rows/s, "
                      f"median {m['rows_per_second']:,.0f} rows/s; whole command "
                      f"{found['command_seconds'][kind]:.1f} s")
    out = REPO / "results" / "speed" / "predict_throughput.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
