"""Long runs on ML-1M that reproduce the README's numbers (`pytest -m slow`)."""


import json
import subprocess
import sys
import time

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.usefixtures("data_dir")  # trains on ML-1M


def _train(args, model_dir, timeout):
    command = [sys.executable, "train.py", "--dataset", "movielens_1m", "--backbone", "mlp",
               "--model-dir", str(model_dir), *args]
    start = time.perf_counter()
    subprocess.run(command, cwd=REPO, check=True, timeout=timeout)
    return time.perf_counter() - start


@pytest.mark.slow
def test_one_epoch_on_ml1m_within_three_minutes(tmp_path):
    seconds = _train(["--epochs", "1"], tmp_path, timeout=600)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["epochs"] == 1 and metrics["test"]["auc"] > 0.75
    assert seconds < 180, f"one epoch took {seconds:.0f}s"


@pytest.mark.slow
def test_mlp_three_seeds_reach_the_bar(tmp_path):
    _train(["--seeds", "2024", "2025", "2026"], tmp_path, timeout=3600)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["test_auc_mean"] >= 0.8175, summary["test_auc"]
    assert summary["test_logloss_mean"] <= 0.5140, summary["test_logloss"]


@pytest.mark.slow
def test_gprec_one_seed_lands_where_results_say(tmp_path):
    # results/gprec/ml1m_gprec.md: GPRec(MLP) input, seed 2024, test AUC 0.820 (below our MLP's
    # 0.8225 on that seed, above the established libraries' MLP of 0.8172-0.8180).
    _train(["--user-level", "gprec", "--strategy", "input", "--seed", "2024"], tmp_path,
           timeout=1800)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["test"]["auc"] >= 0.818, metrics["test"]
    assert metrics["config"]["user_level"] == "gprec"
