"""Metrics against hand and numpy computations."""

import math

import numpy as np
import pytest

from tfrs_userlevel import metrics


def exact_auc(y, p):
    order = np.argsort(p, kind="mergesort")
    ranks = np.empty(len(p))
    ranks[order] = np.arange(1, len(p) + 1)
    pos = y == 1
    return (ranks[pos].sum() - pos.sum() * (pos.sum() + 1) / 2) / (pos.sum() * (~pos).sum())


def test_metrics_match_numpy_on_logits_and_probabilities():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 20_000)
    logits = rng.normal(size=20_000) + 1.2 * y
    p = 1 / (1 + np.exp(-logits))
    logloss = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
    expected = {"auc": exact_auc(y, p), "logloss": logloss,
                "rmse": math.sqrt(np.mean((y - p) ** 2)),
                "rig": 1 - logloss / -(0.3 * math.log(0.3) + 0.7 * math.log(0.7))}
    for from_logits, pred in ((True, logits), (False, p)):
        for metric in metrics.ranking_metrics(0.3, from_logits=from_logits):
            metric.update_state(y[:, None], pred[:, None].astype(np.float32))
            assert float(metric.result()) == pytest.approx(expected[metric.name], abs=2e-5), (
                metric.name, from_logits)


def test_rig_hand_values():
    assert metrics.binary_entropy(0.5) == pytest.approx(math.log(2))
    assert metrics.binary_entropy(0.25) == pytest.approx(0.562335, abs=1e-6)  # −Σ p ln p
    rig = metrics.RIG(positive_rate=0.5, from_logits=False)
    rig.update_state(np.array([[1.0], [0.0]]), np.array([[0.5], [0.5]]))
    assert float(rig.result()) == pytest.approx(0.0, abs=1e-6)  # base-rate predictions gain nothing
    with pytest.raises(ValueError, match="positive_rate must lie in"):
        metrics.RIG(positive_rate=1.0)


def test_exact_auc_and_logloss_by_hand_and_against_mann_whitney():
    from scipy.stats import mannwhitneyu

    from tfrs_userlevel.monitoring import exact_auc_logloss

    # Pairs (positive, negative): (2, 1) right, (2, -1) right, (0, 1) wrong, (0, -1) right.
    auc, logloss = exact_auc_logloss(np.array([1, 0, 1, 0]), np.array([2.0, 1.0, 0.0, -1.0]))
    assert auc == pytest.approx(0.75)
    by_hand = np.mean([math.log1p(math.exp(-2.0)), math.log1p(math.exp(1.0)),
                       math.log(2.0), math.log1p(math.exp(-1.0))])
    assert logloss == pytest.approx(by_hand)
    # Ties count one half, as in the Mann-Whitney U statistic.
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 5000)
    logits = np.round(rng.normal(size=5000) + y, 1)  # many ties
    u = mannwhitneyu(logits[y == 1], logits[y == 0]).statistic
    assert exact_auc_logloss(y, logits)[0] == pytest.approx(
        u / ((y == 1).sum() * (y == 0).sum()), rel=1e-12)
