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
                "rig": 1 - logloss / metrics.binary_entropy(0.3)}
    for from_logits, pred in ((True, logits), (False, p)):
        for metric in metrics.ranking_metrics(0.3, from_logits=from_logits):
            metric.update_state(y[:, None], pred[:, None].astype(np.float32))
            assert float(metric.result()) == pytest.approx(expected[metric.name], abs=2e-5), (
                metric.name, from_logits)


def test_rig_hand_values():
    assert metrics.binary_entropy(0.5) == pytest.approx(math.log(2))
    rig = metrics.RIG(positive_rate=0.5, from_logits=False)
    rig.update_state(np.array([[1.0], [0.0]]), np.array([[0.5], [0.5]]))
    assert float(rig.result()) == pytest.approx(0.0, abs=1e-6)  # base-rate predictions gain nothing
    with pytest.raises(ValueError, match="positive_rate must lie in"):
        metrics.RIG(positive_rate=1.0)
