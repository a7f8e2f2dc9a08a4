"""The one update Algorithm 1 and the matched warm-up agree on (docs/udg.md).

A new user is read as the meta-objective reads it: its base user-id embedding
is the OOV row (`as_new_users`), and its UDG embedding is held outside the
model and passed to `RankingModel.score(udg_embedding=...)`. The inner step
moves those embeddings by one plain gradient step on each user's mean row
loss,

    e_u ← e_u − α · ∂/∂e_u ( (1/n_u) Σ_{rows r of u} CE(y_r, ŷ_r(e_u)) ),

with n_u the user's rows in the batch, so α does not depend on how many users
or rows a batch holds. `MetaEmbeddingTrainer` differentiates through it;
`warm_up.InnerStepWarmUp` applies it once per warm-up batch.
"""

from __future__ import annotations

from collections.abc import Mapping

from tfrs_userlevel.backend import tf
from tfrs_userlevel.models import RankingModel


def as_new_users(model: RankingModel, ids: Mapping[str, tf.Tensor], empty_history: bool
                 ) -> dict[str, tf.Tensor]:
    """The ids with every user id at the OOV row (and, with `empty_history`, the click
    history emptied): how the base model sees a user it was not trained on."""
    ids = dict(ids)
    single = ids["ids"]
    column = tf.range(tf.shape(single)[1]) == model.user_column
    ids["ids"] = tf.where(column[None, :], tf.cast(model.user_offset, single.dtype), single)
    behavior = model.behavior_field
    if empty_history and behavior is not None:
        for key in list(ids):
            if key == behavior.name or key.startswith(behavior.name + ":"):
                ids[key] = -tf.ones_like(ids[key])
    return ids


def row_losses(model: RankingModel, ids: Mapping[str, tf.Tensor], labels: tf.Tensor,
               embeddings: tf.Tensor) -> tf.Tensor:
    """float32 [N]: the cross-entropy of each row with UDG embeddings [N, d] (labels
    [N, 1])."""
    logits = model.score(ids, training=False, udg_embedding=embeddings)["logit"]
    return tf.nn.sigmoid_cross_entropy_with_logits(labels, logits)[:, 0]


def inner_step(model: RankingModel, ids: Mapping[str, tf.Tensor], labels: tf.Tensor,
               embeddings: tf.Tensor, slots: tf.Tensor, alpha: float
               ) -> tuple[tf.Tensor, tf.Tensor]:
    """One step of size `alpha` on each user's mean row loss.

    Args:
      ids: Looked-up rows (already `as_new_users`).
      labels: float32 [N, 1].
      embeddings: float32 [U, d], one UDG embedding per user.
      slots: int32 [N], the user (row of `embeddings`) of each row; every user
        has at least one row.
      alpha: Step size.

    Returns:
      (updated embeddings [U, d], row losses [N] before the step). Gradients flow
      through the update to whatever made `embeddings` (second order).
    """
    users = tf.shape(embeddings)[0]
    counts = tf.math.unsorted_segment_sum(tf.ones_like(slots, tf.float32), slots, users)
    with tf.GradientTape() as tape:
        tape.watch(embeddings)
        losses = row_losses(model, ids, labels, tf.gather(embeddings, slots))
        per_user_mean = tf.reduce_sum(losses / tf.gather(counts, slots))
    gradient = tf.convert_to_tensor(tape.gradient(per_user_mean, embeddings))
    return embeddings - alpha * gradient, losses
