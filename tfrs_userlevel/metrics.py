"""Evaluation metrics (AUC, LogLoss, RMSE, RIG) as Keras metrics taking logits or probabilities.

AUC, LogLoss (binary cross-entropy), RMSE and RIG (relative information gain,
`1 - LogLoss / H(p̄)` with p̄ the positive rate of the training split).
Every metric's `update_state(y_true [B, 1], y_pred [B, 1])` reads `y_pred` as
logits when `from_logits=True` (the model's default) and as probabilities
otherwise.
"""

from __future__ import annotations

import math

import numpy as np

from tfrs_userlevel.backend import keras, tf

# Evenly spaced thresholds let Keras use its bucketed O(N + T) AUC update;
# 10,000 of them put the AUC within ~1e-5 of the exact rank AUC.
AUC_THRESHOLDS = 10_000
_EPSILON = 1e-7


def _probabilities(y_pred: tf.Tensor, from_logits: bool) -> tf.Tensor:
    y_pred = tf.cast(y_pred, tf.float32)
    return tf.sigmoid(y_pred) if from_logits else y_pred


def _binary_cross_entropy(y_true, y_pred, from_logits: bool) -> tf.Tensor:
    y_true = tf.cast(tf.reshape(y_true, [-1]), tf.float32)
    y_pred = tf.cast(tf.reshape(y_pred, [-1]), tf.float32)
    if from_logits:
        return tf.nn.sigmoid_cross_entropy_with_logits(labels=y_true, logits=y_pred)
    p = tf.clip_by_value(y_pred, _EPSILON, 1.0 - _EPSILON)
    return -(y_true * tf.math.log(p) + (1.0 - y_true) * tf.math.log(1.0 - p))


class _PerExampleMean(keras.metrics.Mean):
    """Mean of a per-example value computed from (labels, logits or probabilities)."""

    def __init__(self, from_logits: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.from_logits = from_logits

    def per_example(self, y_true, y_pred) -> tf.Tensor:
        raise NotImplementedError

    def update_state(self, y_true, y_pred, sample_weight=None):
        return super().update_state(self.per_example(y_true, y_pred),
                                    sample_weight=sample_weight)

    def get_config(self):
        return {**super().get_config(), "from_logits": self.from_logits}


@keras.utils.register_keras_serializable(package="tfrs_userlevel")
class LogLoss(_PerExampleMean):
    """Mean binary cross-entropy of the predictions."""

    def __init__(self, from_logits: bool = True, name: str = "logloss", **kwargs):
        super().__init__(from_logits=from_logits, name=name, **kwargs)

    def per_example(self, y_true, y_pred):
        return _binary_cross_entropy(y_true, y_pred, self.from_logits)


@keras.utils.register_keras_serializable(package="tfrs_userlevel")
class RMSE(_PerExampleMean):
    """Root mean squared error between labels and predicted probabilities."""

    def __init__(self, from_logits: bool = True, name: str = "rmse", **kwargs):
        super().__init__(from_logits=from_logits, name=name, **kwargs)

    def per_example(self, y_true, y_pred):
        y_true = tf.cast(tf.reshape(y_true, [-1]), tf.float32)
        return tf.square(y_true - tf.reshape(_probabilities(y_pred, self.from_logits), [-1]))

    def result(self):
        return tf.sqrt(super().result())


def binary_entropy(positive_rate: float) -> float:
    """H(p) in nats: the LogLoss of always predicting the base rate."""
    p = min(max(float(positive_rate), _EPSILON), 1.0 - _EPSILON)
    return -(p * math.log(p) + (1.0 - p) * math.log(1.0 - p))


@keras.utils.register_keras_serializable(package="tfrs_userlevel")
class RIG(LogLoss):
    """Relative information gain `1 - LogLoss / H(positive_rate)`.

    Args:
      positive_rate: p̄, the positive rate of the TRAINING split.
    """

    def __init__(self, positive_rate: float, from_logits: bool = True, name: str = "rig",
                 **kwargs):
        if not 0.0 < positive_rate < 1.0:
            raise ValueError(f"RIG: positive_rate must lie in (0, 1), got {positive_rate}")
        super().__init__(from_logits=from_logits, name=name, **kwargs)
        self.positive_rate = float(positive_rate)
        self._entropy = binary_entropy(positive_rate)

    def result(self):
        return 1.0 - super().result() / self._entropy

    def get_config(self):
        return {**super().get_config(), "positive_rate": self.positive_rate}


def ranking_metrics(positive_rate: float, from_logits: bool = True) -> list[keras.metrics.Metric]:
    """[AUC, LogLoss, RMSE, RIG], named auc / logloss / rmse / rig."""
    return [
        keras.metrics.AUC(num_thresholds=AUC_THRESHOLDS, from_logits=from_logits, name="auc"),
        LogLoss(from_logits=from_logits),
        RMSE(from_logits=from_logits),
        RIG(positive_rate, from_logits=from_logits),
    ]


METRIC_NAMES = ("auc", "logloss", "rmse", "rig")


def evaluate_ids(model, ids, labels, batch_size: int = 16384) -> dict[str, float]:
    """`ranking_metrics` of a `RankingModel` on looked-up rows, scored batch by batch
    outside `Model.evaluate` (which a ParameterServerStrategy coordinator cannot run on
    in-memory data).

    Args:
      model: A `RankingModel`.
      ids: `FeatureLookup` output as numpy ("ids" [N, F] and any id lists).
      labels: 0/1 [N].
    """
    metrics = ranking_metrics(model.positive_rate)
    labels = np.asarray(labels, np.float32).reshape(-1, 1)
    for start in range(0, len(labels), batch_size):
        logits = model.score({k: tf.constant(v[start:start + batch_size])
                              for k, v in ids.items()}, training=False)["logit"]
        for metric in metrics:
            metric.update_state(labels[start:start + batch_size], logits)
    return {metric.name: float(metric.result()) for metric in metrics}
