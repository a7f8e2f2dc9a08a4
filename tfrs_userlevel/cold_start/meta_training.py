"""Training the meta-embedding generator (UDG paper Algorithm 1, eq. 10; docs/udg.md).

The base model (embeddings, backbone, gates, UDG table) is frozen; only the
generator f_meta learns. Each step takes U users and, for each, k rows of
D^A and k rows of D^B, two disjoint halves of that user's training rows
(here: the earlier and the later half by time, so that both halves "cover
the same users" as the paper asks and the one-step update on A is judged on
B, as in Meta-Embedding, Pan et al. 2019):

1. ê_u = f_meta(x_u^prof); the user is treated as new: its base user-id
   embedding is the OOV row and, on D^A, its click history is empty
   ("cold-start: a new user without any behavior feature");
2. L_A = CE on the D^A rows with ê_u;
3. e_u = ê_u − α·∂L_A/∂ê_u, L_A averaged over each user's rows and summed over
   users, so that α does not depend on U (`inner_step.inner_step`, the update
   the matched warm-up applies too);
4. L_B = CE on the D^B rows with e_u (their histories as they are: the
   warm-up has seen a few clicks);
5. L_meta = γ·L_A + (1 − γ)·L_B, and one Adam step of size β on the
   generator, through the inner step (second order).

`unshared_profile_as_oov=True` extends "treated as new" to the profile: a
new user's profile value that no trained user shares (most ML zip codes)
is outside the vocabulary and looks up its field's OOV row, in the base
model and in the generator. With it, a profile value held by only one user
in the rows is replaced by its field's OOV id (leave that user out, and
the value is unseen), so the generator cannot fit one row per such value
(a per-user memory) and does train the OOV rows new users read. It is off
by default: on ML-100K's cold-start protocol it lowered the new users'
validation AUC (results/udg_cold_start/udg_cold_start.md).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from tfrs_userlevel.backend import keras, tf
from tfrs_userlevel.cold_start.inner_step import as_new_users, inner_step, row_losses
from tfrs_userlevel.models import RankingModel


def rank_within_user(user: np.ndarray, *keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rank, count) per row: its 0-based position among its user's rows ordered by
    `keys` (the first key sorts first), and how many rows that user has."""
    order = np.lexsort((*reversed(keys), user))
    users = np.asarray(user)[order]
    starts = np.r_[0, np.flatnonzero(np.diff(users)) + 1]
    counts = np.diff(np.r_[starts, len(users)])
    rank, count = np.empty(len(users), np.int64), np.empty(len(users), np.int64)
    rank[order] = np.arange(len(users)) - np.repeat(starts, counts)
    count[order] = np.repeat(counts, counts)
    return rank, count


def split_halves(user_index: np.ndarray, timestamp: np.ndarray) -> np.ndarray:
    """bool [N]: True for the rows in the later half (D^B) of each user's rows by time."""
    rank, count = rank_within_user(user_index, timestamp)
    return rank >= (count + 1) // 2


class MetaEmbeddingTrainer:
    """Algorithm 1 on a trained `RankingModel` with UDG `meta=True`.

    Args:
      model: The trained model; its gating layer must have a generator.
      alpha: Step size of the inner (cold-start) update.
      beta: Adam learning rate of the generator.
      gamma: Weight of L_A in L_meta (0.1 in the paper).
      users_per_step: U.
      rows_per_user: k rows of D^A and k of D^B per user and step.
      unshared_profile_as_oov: Replace profile values that only one user holds
        by their field's OOV id, as they are for a new user (see the module
        docstring). False (the default) trains on the profile ids as they are.
    """

    def __init__(self, model: RankingModel, alpha: float = 0.1, beta: float = 1e-3,
                 gamma: float = 0.1, users_per_step: int = 128, rows_per_user: int = 8,
                 unshared_profile_as_oov: bool = False, seed: int = 0):
        gating = getattr(model, "gating", None)
        if gating is None or gating.generator is None:
            raise ValueError("MetaEmbeddingTrainer: the model needs UDG with meta=True "
                             "(train.py --user-level udg --meta)")
        if not 0.0 <= gamma <= 1.0:
            raise ValueError(f"MetaEmbeddingTrainer: gamma must lie in [0, 1], got {gamma}")
        self.model = model
        self.generator = gating.generator
        self.alpha, self.gamma = float(alpha), float(gamma)
        self.users_per_step, self.rows_per_user = int(users_per_step), int(rows_per_user)
        self.unshared_profile_as_oov = bool(unshared_profile_as_oov)
        self.optimizer = keras.optimizers.Adam(beta)
        self.rng = np.random.default_rng(seed)
        self._user_column, self._user_oov = model.user_column, model.user_offset
        self._step = tf.function(self._meta_step, reduce_retracing=True)

    def _profile_oov(self) -> list[int]:
        """Fused OOV id of each profile column."""
        lookup = self.model.lookup
        return [lookup.oov_id(lookup.single_fields[c]) for c in self.model.profile_columns]

    def _meta_step(self, profile, slots, ids_a, labels_a, ids_b, labels_b):
        """`slots` [U·k]: the user (row of `profile`) of each row of both batches."""
        with tf.GradientTape() as outer:
            outer.watch(self.generator.trainable_weights + self.generator.non_trainable_weights)
            generated = self.generator(profile)                              # [U, d]
            updated, rows_a = inner_step(self.model, ids_a, labels_a, generated, slots,
                                         self.alpha)
            rows_b = row_losses(self.model, ids_b, labels_b, tf.gather(updated, slots))
            loss_a, loss_b = tf.reduce_mean(rows_a), tf.reduce_mean(rows_b)
            loss = self.gamma * loss_a + (1.0 - self.gamma) * loss_b
        variables = self.generator.weights
        gradients = outer.gradient(loss, variables)
        self.optimizer.apply_gradients(zip(gradients, variables, strict=True))
        return {"meta_loss": loss, "loss_a": loss_a, "loss_b": loss_b}

    def fit(self, ids: Mapping[str, np.ndarray], labels: np.ndarray, timestamp: np.ndarray,
            steps: int) -> list[dict[str, float]]:
        """Runs `steps` meta steps on the training rows.

        Args:
          ids: Looked-up ids of the training rows (`data.lookup_columns`).
          labels: 0/1 [N].
          timestamp: [N], to split each user's rows into D^A (earlier) and D^B.
          steps: Number of generator updates.

        Returns:
          The losses of every step.
        """
        ids = {k: np.asarray(v) for k, v in ids.items()}
        users = ids["ids"][:, self._user_column] - self._user_oov
        if self.unshared_profile_as_oov:
            ids["ids"] = unshared_as_oov(ids["ids"], users, self.model.profile_columns,
                                         self._profile_oov())
        later = split_halves(users, np.asarray(timestamp))
        rows_a = _rows_by_user(users, ~later)
        rows_b = _rows_by_user(users, later)
        candidates = np.array(sorted(set(rows_a) & set(rows_b)))
        if len(candidates) == 0:
            raise ValueError("MetaEmbeddingTrainer: no user has rows in both halves")
        profile_columns = self.model.profile_columns
        history = []
        for _ in range(steps):
            chosen = self.rng.choice(candidates, size=min(self.users_per_step, len(candidates)),
                                     replace=False)
            pick_a = np.concatenate([self.rng.choice(rows_a[u], self.rows_per_user)
                                     for u in chosen])
            pick_b = np.concatenate([self.rng.choice(rows_b[u], self.rows_per_user)
                                     for u in chosen])
            slots = np.repeat(np.arange(len(chosen), dtype=np.int32), self.rows_per_user)
            first = np.array([rows_a[u][0] for u in chosen])
            profile = ids["ids"][first][:, profile_columns]
            batch_a = as_new_users(self.model, {k: v[pick_a] for k, v in ids.items()}, True)
            batch_b = as_new_users(self.model, {k: v[pick_b] for k, v in ids.items()}, False)
            labels_of = np.asarray(labels, np.float32)
            losses = self._step(
                tf.constant(profile), tf.constant(slots),
                batch_a, tf.constant(labels_of[pick_a, None]),
                batch_b, tf.constant(labels_of[pick_b, None]))
            history.append({k: float(v) for k, v in losses.items()})
        return history


def unshared_as_oov(single_ids: np.ndarray, users: np.ndarray, columns: list[int],
                    oov: list[int]) -> np.ndarray:
    """int [N, F] copy of `single_ids` where, in each of `columns`, an id held by only
    one distinct user (in these rows) is replaced by that column's `oov` id."""
    out = np.array(single_ids, copy=True)
    for column, oov_id in zip(columns, oov, strict=True):
        values = out[:, column]
        pairs = np.unique(np.stack([values, users], axis=1), axis=0)
        ids, holders = np.unique(pairs[:, 0], return_counts=True)
        out[np.isin(values, ids[holders == 1]), column] = oov_id
    return out


def _rows_by_user(users: np.ndarray, keep: np.ndarray) -> dict[int, np.ndarray]:
    rows = np.flatnonzero(keep)
    order = np.argsort(users[rows], kind="stable")
    rows = rows[order]
    values, starts = np.unique(users[rows], return_index=True)
    return {int(u): part for u, part in zip(values, np.split(rows, starts[1:]), strict=True)}
