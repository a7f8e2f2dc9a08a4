"""Named auxiliary loss terms, reported to whichever Keras model holds the layer.

A layer with weighted auxiliary terms (GPRec's backbone, group, contrastive and
orthogonal terms; DIEN's auxiliary loss) returns them as `{name: scalar}`
and their sum as "loss". Through `LossTerms.report_losses` it also

* logs each term under its own name as a mean over the epoch (`add_metric`),
  so `fit`'s history, the progress bar and the TensorBoard callback show
  `gprec_group_loss`, `val_gprec_group_loss`, ... in any Keras model whose
  steps report `model.metrics`: a functional or subclassed `keras.Model`,
  and a `tfrs.Model`;
* with `add_losses=True`, hands the sum to `add_loss`, for models whose
  training step adds `model.losses` to the compiled loss (a functional
  model: the terms are then part of "loss", once).

In a `tfrs.Model`, the train step adds every `add_loss` term as well, but
reports their sum as `regularization_loss`. There, keep `add_losses=False`
and add the layer's "loss" output in `compute_loss`:
`return self.task(labels=labels, predictions=out["logit"]) + out["loss"]`;
`regularization_loss` then holds only the weight regularizers.

`RankingModel` reads the returned terms itself (its own trackers, exact under
`tf.distribute`) and turns the layer's reporting off (`report_to_model`).
"""

from __future__ import annotations

from collections.abc import Mapping

from tfrs_userlevel.backend import tf


class LossTerms:
    """Mixin for a `keras.layers.Layer` with named auxiliary terms.

    The layer sets `self.add_losses` (bool) in its constructor and calls
    `report_losses` in `call` with the terms it computed.
    """

    add_losses: bool = False
    # False when the enclosing model tracks the terms itself (RankingModel).
    report_to_model: bool = True

    def report_losses(self, losses: Mapping[str, tf.Tensor]) -> tf.Tensor:
        """Logs each term by name (and `add_loss`es the sum with `add_losses`).

        Args:
          losses: {name: weighted float32 scalar}; may be empty.

        Returns:
          Their sum, a float32 scalar (0 when empty).
        """
        total = tf.add_n(list(losses.values())) if losses else tf.constant(0.0)
        if self.report_to_model and losses:
            for name, value in losses.items():
                self.add_metric(value, name=name)
            if self.add_losses:
                self.add_loss(total)
        return total
