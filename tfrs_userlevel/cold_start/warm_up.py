"""The cold-start protocol of the UDG paper (§4 "Meta-Learning for Cold-start", Table 5).

New users' rows, sorted by time, are cut into batch-a, batch-b, batch-c
(K rows each) and a held-out batch (the rest). The base model is trained on
the other (active) users only. Then, for each way of initialising the new
users' UDG embeddings (the meta generator, or random as the table's own
initialiser):

* cold start: the held-out batch is scored with the initial embeddings and
  no click history;
* warm-up a, b, c: the new users' embeddings (their base user-id row and
  their UDG row; nothing else) take one pass of Adam over that batch, and
  the held-out batch is scored again, its click history now holding the
  clicks of the batches seen so far.

`WarmUp` is that Adam warm-up. `InnerStepWarmUp` is the warm-up matched to
the meta-objective: the users are read as Algorithm 1 reads them (base
user-id row at OOV, UDG embeddings held outside the model) and each warm-up
batch applies Algorithm 1's inner step once (`inner_step.inner_step`, the
same code, the same α).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from tfrs_userlevel.backend import keras, tf
from tfrs_userlevel.cold_start.inner_step import as_new_users, inner_step
from tfrs_userlevel.cold_start.meta_training import rank_within_user
from tfrs_userlevel.models import RankingModel
from tfrs_userlevel.monitoring import exact_auc_logloss, user_averaged_auc

PHASES = ("a", "b", "c")
HELD_OUT = "held_out"


def new_user_batches(user: np.ndarray, timestamp: np.ndarray, item: np.ndarray,
                     new_users: Sequence[int], k: int) -> np.ndarray:
    """The batch of every row: "a", "b", "c", "held_out" for new users' rows, "" else.

    Each new user's rows are sorted by (timestamp, item); the first K are
    batch-a, the next K batch-b, the next K batch-c, the rest held-out
    (a new user needs more than 3K rows).
    """
    user = np.asarray(user)
    batches = np.full(len(user), "", dtype=object)
    rows = np.flatnonzero(np.isin(user, np.asarray(new_users)))
    rank, count = rank_within_user(user[rows], np.asarray(timestamp)[rows],
                                   np.asarray(item)[rows])
    if len(count) and count.min() <= 3 * k:
        raise ValueError(f"new_user_batches: every new user needs more than {3 * k} rows; "
                         f"one has {count.min()}")
    batches[rows] = np.where(rank < k, "a", np.where(rank < 2 * k, "b",
                                                     np.where(rank < 3 * k, "c", HELD_OUT)))
    return batches


def phase_cutoffs(user: np.ndarray, timestamp: np.ndarray, batches: np.ndarray,
                  phase: str | None) -> np.ndarray:
    """History cutoff of each held-out row after `phase` (None: cold start, no history).

    After phase p the held-out rows see the clicks made before the first
    row of the next batch (so only clicks of the batches seen so far).
    """
    cutoff = np.full(len(user), -1, dtype=np.int64)
    if phase is None:
        return cutoff
    following = {"a": "b", "b": "c", "c": HELD_OUT}[phase]
    timestamp = np.asarray(timestamp, dtype=np.int64)
    first = {}
    for u, t in zip(user[batches == following], timestamp[batches == following], strict=True):
        first[u] = min(first.get(u, t), t)
    held = batches == HELD_OUT
    cutoff[held] = np.minimum(timestamp[held], [first[u] for u in user[held]])
    return cutoff


def initialise_new_users(model: RankingModel, user_index: np.ndarray, profile: np.ndarray,
                         meta: bool, seed: int = 0) -> None:
    """Sets the UDG rows of `user_index`: the generator's output (meta) or random
    values from the table's own initialiser N(0, 0.01²)."""
    if meta:
        values = model.gating.generator(tf.constant(profile)).numpy()
    else:
        width = model.gating.user_table.embeddings.shape[1]
        values = np.random.default_rng(seed).normal(0.0, 0.01, (len(user_index), width))
    set_user_rows(model, user_index, values)


def set_user_rows(model: RankingModel, user_index: np.ndarray, values: np.ndarray) -> None:
    """Writes float [len(user_index), udg_dim] `values` into the UDG rows of `user_index`."""
    table = model.gating.user_table.embeddings
    values = np.asarray(values, np.float32)
    if values.shape != (len(user_index), table.shape[1]):
        raise ValueError(f"set_user_rows: values of shape {values.shape} for "
                         f"{len(user_index)} users of a {table.shape[1]}-wide table")
    table.scatter_update(tf.IndexedSlices(tf.constant(values),
                                          tf.constant(user_index, dtype=tf.int32)))


def mean_user_rows(model: RankingModel, active_index: np.ndarray, active_keys: Sequence,
                   new_keys: Sequence) -> np.ndarray:
    """float32 [len(new_keys), udg_dim]: an average active user's UDG row per new user.

    A new user gets the mean trained row of the active users (`active_index`) whose
    key (e.g. (gender, age)) equals its own, or the mean of all of them where none
    does: a profile-conditioned initialisation that learns nothing. With the same
    key for everyone (e.g. ()), every new user gets the overall mean.
    """
    rows = model.gating.user_table.embeddings.numpy()[np.asarray(active_index)]
    return mean_rows_by_key(rows, active_keys, new_keys)


def mean_rows_by_key(rows: np.ndarray, active_keys: Sequence, new_keys: Sequence
                     ) -> np.ndarray:
    """float32 [len(new_keys), d]: per new key, the mean of the `rows` [A, d] whose
    `active_keys` equal it, or of all of them where none does."""
    sums: dict = {}
    for key, row in zip(active_keys, rows, strict=True):
        total, count = sums.get(key, (0.0, 0))
        sums[key] = (total + row, count + 1)
    overall = rows.mean(axis=0)
    return np.stack([sums[k][0] / sums[k][1] if k in sums else overall
                     for k in new_keys]).astype(np.float32)


class WarmUp:
    """Updates only the given users' base user-id rows and UDG rows.

    Args:
      model: A trained `RankingModel` with UDG.
      user_index: Vocabulary indices (`RankingModel.user_index`) of the new users.
      learning_rate: Adam step size.
      batch_size: Rows per step.
    """

    def __init__(self, model: RankingModel, user_index: np.ndarray, learning_rate: float = 1e-2,
                 batch_size: int = 64):
        self.model = model
        self.batch_size = int(batch_size)
        offset = model.user_offset
        base_rows = np.zeros(model.embedding.table.shape[0], np.float32)
        base_rows[offset + np.asarray(user_index)] = 1.0
        udg_rows = np.zeros(model.gating.user_table.embeddings.shape[0], np.float32)
        udg_rows[np.asarray(user_index)] = 1.0
        self.variables = [model.embedding.table, model.gating.user_table.embeddings]
        self.masks = [tf.constant(base_rows[:, None]), tf.constant(udg_rows[:, None])]
        self.optimizer = keras.optimizers.Adam(learning_rate)
        self._step = tf.function(self._train_step, reduce_retracing=True)

    def _train_step(self, ids, labels):
        with tf.GradientTape() as tape:
            logits = self.model.score(ids, training=False)["logit"]
            loss = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels, logits))
        gradients = tape.gradient(loss, self.variables)
        gradients = [tf.convert_to_tensor(g) * m for g, m in
                     zip(gradients, self.masks, strict=True)]
        self.optimizer.apply_gradients(zip(gradients, self.variables, strict=True))
        return loss

    def fit(self, ids: Mapping[str, np.ndarray], labels: np.ndarray, seed: int = 0) -> float:
        """One shuffled pass over the rows; returns the mean loss."""
        order = np.random.default_rng(seed).permutation(len(labels))
        losses = []
        for start in range(0, len(order), self.batch_size):
            rows = order[start:start + self.batch_size]
            losses.append(float(self._step(
                {k: tf.constant(v[rows]) for k, v in ids.items()},
                tf.constant(np.asarray(labels, np.float32)[rows, None]))))
        return float(np.mean(losses))


class InnerStepWarmUp:
    """New users' UDG embeddings, held outside the model and warmed up by Algorithm 1's
    inner step: what the meta-objective assumes happens after the generator.

    Args:
      model: A trained `RankingModel` with UDG.
      users: int [U] the new users' ids, sorted and distinct.
      initial: float [U, udg_dim] their starting embeddings (generated, random, a mean).
      alpha: The inner step's size (the α the generator was trained with).
    """

    def __init__(self, model: RankingModel, users: np.ndarray, initial: np.ndarray,
                 alpha: float):
        self.model = model
        self.users = np.asarray(users)
        if np.any(np.diff(self.users) <= 0):
            raise ValueError("InnerStepWarmUp: users must be sorted and distinct")
        width = model.gating.user_table.embeddings.shape[1]
        if np.shape(initial) != (len(self.users), width):
            raise ValueError(f"InnerStepWarmUp: initial embeddings of shape "
                             f"{np.shape(initial)} for {len(self.users)} users of a "
                             f"{width}-wide UDG table")
        self.embeddings = tf.constant(np.asarray(initial, np.float32))
        self.alpha = float(alpha)
        # The embeddings are an argument of the traced step, never read from `self`
        # inside it: a traced function keeps the tensors it read when it was traced.
        self._step = tf.function(self._update, reduce_retracing=True)

    def slots(self, row_users: np.ndarray) -> np.ndarray:
        """int32 [N]: the position in `users` of each row's user."""
        row_users = np.asarray(row_users)
        slots = np.searchsorted(self.users, row_users)
        known = (slots < len(self.users)) & (self.users[np.minimum(slots, len(self.users) - 1)]
                                             == row_users)
        if not known.all():
            raise ValueError(f"InnerStepWarmUp: rows of users outside the warmed-up users, "
                             f"e.g. {row_users[~known][0]}")
        return slots.astype(np.int32)

    def _update(self, ids, labels, embeddings, slots):
        updated, losses = inner_step(self.model, as_new_users(self.model, ids, False), labels,
                                     embeddings, slots, self.alpha)
        return updated, tf.reduce_mean(losses)

    def fit(self, ids: Mapping[str, np.ndarray], labels: np.ndarray,
            row_users: np.ndarray) -> float:
        """One inner step on all the rows at once; returns their mean loss before it."""
        updated, loss = self._step({k: tf.constant(v) for k, v in ids.items()},
                                   tf.constant(np.asarray(labels, np.float32).reshape(-1, 1)),
                                   self.embeddings, tf.constant(self.slots(row_users)))
        self.embeddings = updated
        return float(loss)

    def logits(self, ids: Mapping[str, np.ndarray], row_users: np.ndarray,
               batch_size: int = 16384) -> np.ndarray:
        """float [N]: the rows' logits with the users read as new and their current
        embeddings."""
        slots = self.slots(row_users)
        out = []
        for start in range(0, len(slots), batch_size):
            batch = as_new_users(self.model, {k: tf.constant(v[start:start + batch_size])
                                              for k, v in ids.items()}, False)
            embedding = tf.gather(self.embeddings, slots[start:start + batch_size])
            out.append(self.model.score(batch, training=False,
                                        udg_embedding=embedding)["logit"].numpy()[:, 0])
        return np.concatenate(out) if out else np.zeros(0)

    def evaluate(self, ids: Mapping[str, np.ndarray], labels: np.ndarray,
                 row_users: np.ndarray) -> dict[str, float]:
        """{"auc", "logloss", "gauc", "mean_probability", "click_rate"} of the rows (GAUC:
        `user_averaged_auc`; the last two compare the mean predicted probability with
        the rows' click rate)."""
        logits = self.logits(ids, row_users)
        auc, logloss = exact_auc_logloss(labels, logits)
        return {"auc": auc, "logloss": logloss,
                "gauc": user_averaged_auc(row_users, labels, logits),
                "mean_probability": float(np.mean(1.0 / (1.0 + np.exp(-logits)))),
                "click_rate": float(np.mean(labels))}
