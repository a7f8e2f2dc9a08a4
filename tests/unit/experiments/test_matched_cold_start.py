"""The matched cold-start protocol's table: α is chosen on the validation new users only,
the rows report the test half at that α, and each initialisation is tested against random
initialisation on AUC and on GAUC."""

import numpy as np
import pytest

from tfrs_userlevel.experiments import matched_cold_start as matched
from tfrs_userlevel.significance import one_sided_ttest


def _per_seed(seeds=(1, 2, 3, 4)):
    """Results where meta wins on validation at α 0.1 and on test at α 1 (the trap: a table
    that chose α on test would pick α 1)."""
    rng = np.random.default_rng(0)
    out = {}
    for seed in seeds:
        out[seed] = {}
        for alpha in matched.ALPHAS:
            out[seed][alpha] = {}
            for init in matched.INITS:
                lift = 0.02 if init == "meta" else 0.0
                validation = 0.70 + (lift if alpha == 0.1 else 0.0)
                test = 0.66 + (lift if alpha == 1.0 else 0.0) + (0.005 if alpha == 0.1 else 0)
                out[seed][alpha][init] = {
                    part: {phase: {"auc": base + rng.normal(0, 0.001),
                                   "gauc": base - 0.01 + rng.normal(0, 0.001),
                                   "logloss": 0.65, "mean_probability": 0.55,
                                   "click_rate": 0.58}
                           for phase in matched.PHASES}
                    for part, base in (("validation", validation), ("test", test))}
    return out


def test_alpha_is_chosen_on_validation_and_reported_on_test():
    per_seed = _per_seed()
    assert matched.chosen_alpha(per_seed) == 0.1
    rows = list(matched.matched_rows(per_seed, {"norms": {"trained": 0.2}}, "d", "M", "cmd"))
    assert len(rows) == len(matched.INITS) * len(matched.PHASES)
    assert {r["alpha"] for r in rows} == {0.1}
    cold_meta = next(r for r in rows if r["init"] == "meta" and r["phase"] == "cold")
    values = [per_seed[s][0.1]["meta"]["test"]["cold"]["auc"] for s in per_seed]
    random = [per_seed[s][0.1]["random"]["test"]["cold"]["auc"] for s in per_seed]
    assert cold_meta["test_auc"] == values
    assert cold_meta["p_value"] == pytest.approx(one_sided_ttest(values, random))
    # At the chosen α meta has no edge on test, so its p-value is far from significant.
    assert cold_meta["p_value"] > 0.05
    assert all(r["p_value"] is None for r in rows if r["init"] == "random")
    assert cold_meta["norms"] == {"trained": 0.2}


def test_the_table_shows_auc_gauc_logloss_and_calibration_per_phase():
    rows = list(matched.matched_rows(_per_seed(), {"norms": {}}, "d", "M", "cmd"))
    text = matched.matched_table(rows)
    for init in matched.INITS:
        for measure in ("AUC", "GAUC", "LogLoss", "mean p̂"):
            assert f"| {init} | {measure} |" in text
    assert "Click rate of the held-out rows: 0.5800" in text
    assert "| 0.1 |" in text and "| 1 |" in text


def test_split_norms_averages_each_norm_over_seeds():
    per_seed = {1: {"norms": {"trained": 0.2, "generated": 0.4}, 0.1: {"x": 1}},
                2: {"norms": {"trained": 0.4, "generated": 0.6}, 0.1: {"x": 2}}}
    results, norms = matched.split_norms(per_seed)
    assert results == {1: {0.1: {"x": 1}}, 2: {0.1: {"x": 2}}}
    assert norms == {"norms": {"trained": pytest.approx(0.3), "generated": pytest.approx(0.5)}}


def test_planted_cold_start_runs_end_to_end_and_rewrites_from_its_runs(tmp_path, monkeypatch):
    """A small version of the planted cold-start world: every row is made, the finished
    runs are reused without training, and a missing run is named."""
    from tfrs_userlevel.experiments import planted_cold_start as planted
    from tfrs_userlevel.experiments.runner import MissingRunError

    monkeypatch.setattr(planted, "TRAIN_ROWS", 6000)
    monkeypatch.setattr(planted, "VALIDATION_ROWS", 800)
    monkeypatch.setattr(planted, "NEW_USERS", 20)
    monkeypatch.setattr(planted, "BASE", {**planted.BASE, "epochs": 1})
    monkeypatch.setattr(matched, "META_STEPS", 2)
    rows = list(planted.planted_cold_start(tmp_path, [1, 2], "cmd"))
    assert len(rows) == len(matched.INITS) * len(matched.PHASES)
    assert all(0.0 <= r["auc_mean"] <= 1.0 and 0.0 < r["mean_probability_mean"] < 1.0
               for r in rows)
    assert set(rows[0]["norms"]) == {"trained", "generated, α 0.1", "generated, α 1"}
    # Rewriting from the finished runs gives the same rows and trains nothing.
    monkeypatch.setattr("tfrs_userlevel.training.run", None)
    again = list(planted.planted_cold_start(tmp_path, [1, 2], "cmd", train=False))
    assert [r["test_auc"] for r in again] == [r["test_auc"] for r in rows]
    with pytest.raises(MissingRunError, match=r"no finished planted cold-start run \(seed 3\)"):
        list(planted.planted_cold_start(tmp_path, [1, 3], "cmd", train=False))
