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


def _bce(y, p):
    return -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))


def test_each_metric_reads_logits_unless_told_otherwise():
    y = np.array([1, 0, 1, 0], np.float32)
    logits = np.array([2.0, -1.0, -0.5, 0.3], np.float32)
    p = 1 / (1 + np.exp(-logits))
    for metric, expected in ((metrics.LogLoss(), _bce(y, p)),
                             (metrics.RMSE(), math.sqrt(np.mean((y - p) ** 2))),
                             (metrics.RIG(0.5), 1 - _bce(y, p) / math.log(2)),
                             (metrics.LogLoss(from_logits=False), _bce(y, np.clip(
                                 logits, 1e-7, 1 - 1e-7)))):
        metric.update_state(y[:, None], logits[:, None])
        assert float(metric.result()) == pytest.approx(expected, rel=1e-5), metric.name


def test_probabilities_of_exactly_0_and_1_are_clipped_inside_the_interval():
    # A confident mistake costs -log(1e-7), not infinity; a confident hit costs ~1e-7.
    y = np.array([1, 0, 1, 0], np.float32)
    p = np.array([1.0, 1.0, 0.0, 0.0], np.float32)
    loss = metrics.LogLoss(from_logits=False)
    loss.update_state(y[:, None], p[:, None])
    eps = np.float32(1e-7)  # clipped in float32, as the metric computes
    expected = _bce(y, np.clip(p, eps, np.float32(1) - eps).astype(np.float64))
    assert math.isfinite(float(loss.result()))
    assert float(loss.result()) == pytest.approx(expected, rel=1e-3)


@pytest.mark.parametrize("cls", [metrics.LogLoss, metrics.RMSE, metrics.RIG])
def test_metrics_are_registered_and_round_trip(cls):
    from tfrs_userlevel import keras

    assert keras.utils.get_registered_name(cls) == f"tfrs_userlevel>{cls.__name__}"
    metric = cls(0.25, from_logits=False) if cls is metrics.RIG else cls(from_logits=False)
    clone = keras.metrics.deserialize(keras.metrics.serialize(metric))
    assert type(clone) is cls and clone.get_config() == metric.get_config()
    assert clone.from_logits is False


@pytest.mark.parametrize("rate", [0.0, 1.0, -0.1])
def test_rig_refuses_a_positive_rate_outside_0_1(rate):
    with pytest.raises(ValueError, match=rf"^RIG: positive_rate must lie in \(0, 1\), got "
                                         rf"{rate}$"):
        metrics.RIG(rate)


def test_evaluate_ids_scores_batch_by_batch_as_one_pass():
    from tfrs_userlevel import tf

    rng = np.random.default_rng(4)
    logits = rng.normal(size=1000).astype(np.float32)
    labels = (rng.uniform(size=1000) < 1 / (1 + np.exp(-logits))).astype(np.int64)

    class Scorer:
        """A model whose logit for row i is logits[i] (its one id column)."""
        positive_rate = 0.4

        def score(self, features, training=False):
            assert not training
            return {"logit": tf.gather(tf.constant(logits), features["ids"][:, 0])[:, None]}

    ids = {"ids": np.arange(1000)[:, None]}
    result = metrics.evaluate_ids(Scorer(), ids, labels, batch_size=128)
    p = 1 / (1 + np.exp(-logits.astype(np.float64)))
    assert result["auc"] == pytest.approx(exact_auc(labels, p), abs=2e-4)
    assert result["logloss"] == pytest.approx(_bce(labels, p), rel=1e-5)
    assert result["rmse"] == pytest.approx(math.sqrt(np.mean((labels - p) ** 2)), rel=1e-5)
    assert result["rig"] == pytest.approx(
        1 - _bce(labels, p) / -(0.4 * math.log(0.4) + 0.6 * math.log(0.6)), rel=1e-4)


def test_ranking_metrics_read_logits_by_default():
    y = np.array([1, 0, 1, 0, 1], np.float32)
    logits = np.array([2.0, -1.0, -0.5, 0.3, 4.0], np.float32)
    p = 1 / (1 + np.exp(-logits))
    results = {}
    for metric in metrics.ranking_metrics(0.5):
        metric.update_state(y[:, None], logits[:, None])
        results[metric.name] = float(metric.result())
    assert results["logloss"] == pytest.approx(_bce(y, p), rel=1e-5)
    assert results["auc"] == pytest.approx(exact_auc(y, p), abs=1e-3)
