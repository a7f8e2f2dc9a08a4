"""TensorBoard monitoring of what user-level modeling learns, once per epoch.

`UserLevelMonitor` is a Keras callback; `training.loop.run` adds it before Keras'
TensorBoard callback, so the values it puts into the epoch logs land in the
same train scalars. Per epoch it writes:

* into the logs (so TensorBoard's `train/` run shows them next to the loss
  terms): "auc" and "logloss" of the model in inference mode on a fixed
  sample of training rows (the training loop itself skips metrics for speed);
* under `<log_dir>/user_level/`, for a GPRec model, on a fixed sample of
  distinct training users:
  - histogram `gprec/mask_inside`: every m_{g,1} value [users × G];
  - histogram `gprec/group_share`: for each group, the share of users with
    m_{g,1} > 0.5 (one value per group);
  - scalar `gprec/groups_used`: the number of groups holding any user;
  - image `gprec/group_similarity`: the cosine-similarity heatmap of the dual
    group embeddings [P⁺; P⁻] (RQ5; blue −1, white 0, red +1);
  - with the ensemble strategy's learned weights, scalars
    `gprec/ensemble_weight_<backbone|group|individual>` (they sum to 1);
  - with UDG, histograms `udg/gates` of every gate value and
    `udg/gates_layer<l>` per MLP layer.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from tfrs_userlevel import metrics as metrics_lib
from tfrs_userlevel.backend import keras, tf


def exact_auc_logloss(labels: np.ndarray, logits: np.ndarray) -> tuple[float, float]:
    """Exact AUC (Mann-Whitney, ties counted half) and LogLoss of logits, in numpy."""
    labels = np.asarray(labels, np.float64).reshape(-1)
    logits = np.asarray(logits, np.float64).reshape(-1)
    values, inverse, counts = np.unique(logits, return_inverse=True, return_counts=True)
    upper = np.cumsum(counts)
    ranks = (upper - (counts - 1) / 2.0)[inverse]  # average 1-based rank of tied values
    positives = labels.sum()
    negatives = len(labels) - positives
    auc = ((ranks[labels == 1].sum() - positives * (positives + 1) / 2)
           / max(positives * negatives, 1.0))
    logloss = float(np.mean(np.logaddexp(0.0, logits) - labels * logits))
    return float(auc), logloss


def user_averaged_auc(users: np.ndarray, labels: np.ndarray, logits: np.ndarray) -> float:
    """GAUC: the unweighted mean, over the users with both a click and a non-click, of the
    exact AUC of each user's rows (NaN when no user has both)."""
    users = np.asarray(users).reshape(-1)
    labels = np.asarray(labels, np.float64).reshape(-1)
    logits = np.asarray(logits, np.float64).reshape(-1)
    order = np.argsort(users, kind="stable")
    values, starts = np.unique(users[order], return_index=True)
    aucs = []
    for rows in np.split(order, starts[1:]):
        if 0 < labels[rows].sum() < len(rows):
            aucs.append(exact_auc_logloss(labels[rows], logits[rows])[0])
    return float(np.mean(aucs)) if aucs else float("nan")


def cosine_similarity(tables: Mapping[str, np.ndarray]) -> np.ndarray:
    """Pairwise cosine similarity of the group embeddings: [2G, 2G] for dual tables
    ([P⁺; P⁻] stacked), [G, G] for a single table."""
    rows = (np.vstack([tables["positive"], tables["negative"]]) if "positive" in tables
            else np.asarray(tables["table"]))
    unit = rows / (np.linalg.norm(rows, axis=1, keepdims=True) + 1e-12)
    return unit @ unit.T


def similarity_image(similarity: np.ndarray, pixels_per_cell: int = 4) -> np.ndarray:
    """[N, N] values in [-1, 1] -> uint8 RGB image [1, N·p, N·p, 3] (blue-white-red)."""
    s = np.clip(similarity, -1.0, 1.0)[..., None]
    white, red, blue = np.ones(3), np.array([0.8, 0.1, 0.1]), np.array([0.1, 0.2, 0.8])
    rgb = np.where(s >= 0, white + s * (red - white), white - s * (blue - white))
    rgb = np.kron(rgb, np.ones((pixels_per_cell, pixels_per_cell, 1)))
    return (rgb * 255).round().astype(np.uint8)[None]


class UserLevelMonitor(keras.callbacks.Callback):
    """Epoch-end summaries of the user-level layer (see the module docstring).

    Args:
      log_dir: The run's TensorBoard folder (the callback writes to
        `log_dir/user_level`).
      train_ids: Looked-up ids of training rows (`data.lookup_columns` output).
      train_labels: float32 [N] labels of those rows.
      sample_size: Rows used for the train AUC/LogLoss.
      users: Distinct users probed for masks and gates.
      seed: Choice of the samples.
    """

    def __init__(self, log_dir: str | Path, train_ids: Mapping[str, np.ndarray],
                 train_labels: np.ndarray, sample_size: int = 65536, users: int = 4096,
                 seed: int = 0):
        super().__init__()
        self.log_dir = Path(log_dir)
        rng = np.random.default_rng(seed)
        n = len(train_labels)
        rows = np.sort(rng.choice(n, size=min(sample_size, n), replace=False))
        self._sample = ({k: v[rows] for k, v in train_ids.items()},
                        np.asarray(train_labels, np.float32)[rows].reshape(-1, 1))
        self._train_ids = train_ids
        self._users = users
        self._probe = None
        self._writer = None
        self._score = None

    def _probe_rows(self) -> dict[str, np.ndarray]:
        """Ids of one row per distinct user (the first rows of up to `users` users)."""
        if self._probe is None:
            model = self.model
            personal = model.feature_spec.positions("user_personal")
            ids = self._train_ids["ids"]
            key = ids[:, [model.lookup.single_fields.index(model.feature_spec.fields[p].name)
                          for p in personal]] if personal else ids
            _, first = np.unique(key, axis=0, return_index=True)
            first = np.sort(first)[:self._users]
            self._probe = {k: v[first] for k, v in self._train_ids.items()}
        return self._probe

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        model = self.model
        sample_ids, sample_labels = self._sample
        if self._score is None:
            self._score = tf.function(lambda ids: model.score(ids, training=False),
                                      reduce_retracing=True)
        logits = np.concatenate([
            self._score({k: v[i:i + 16384] for k, v in sample_ids.items()})["logit"].numpy()
            for i in range(0, len(sample_labels), 16384)])
        if tf.distribute.has_strategy():
            # Keras metrics made inside a strategy's scope cannot be updated from a
            # callback (cross-replica context): the exact values, in numpy.
            logs["auc"], logs["logloss"] = exact_auc_logloss(sample_labels, logits)
        else:
            # The validation metrics' own classes (same AUC thresholds, LogLoss on logits).
            train_metrics = {m.name: m for m in metrics_lib.ranking_metrics(model.positive_rate)}
            for name in ("auc", "logloss"):
                train_metrics[name].update_state(sample_labels, logits)
                logs[name] = float(train_metrics[name].result())
        if model.user_level is None and getattr(model, "gating", None) is None:
            return
        scored = self._score(self._probe_rows())
        output = dict(scored.get("user_level", {}))
        if scored.get("gates") is not None:
            output["gates"] = scored["gates"]
        if self._writer is None:
            self._writer = tf.summary.create_file_writer(str(self.log_dir / "user_level"))
        with self._writer.as_default(step=epoch):
            if "masks" in output and output["masks"] is not None:
                inside = output["masks"][..., 0].numpy()            # [users, G]
                share = (inside > 0.5).mean(axis=0)                 # [G]
                tf.summary.histogram("gprec/mask_inside", inside.reshape(-1))
                tf.summary.histogram("gprec/group_share", share)
                tf.summary.scalar("gprec/groups_used", float((share > 0).sum()))
            if hasattr(model.user_level, "group_embeddings"):
                similarity = cosine_similarity(model.user_level.group_embeddings())
                tf.summary.image("gprec/group_similarity", similarity_image(similarity))
            mixing = getattr(getattr(model.user_level, "combiner", None), "mixing", None)
            if mixing is not None:  # EnsembleStrategy(weights="learned")
                heads = ("backbone", "group", "individual")[:2 + model.user_level.individual]
                weights = tf.nn.softmax(mixing[:len(heads)]).numpy()
                for head, weight in zip(heads, weights, strict=True):
                    tf.summary.scalar(f"gprec/ensemble_weight_{head}", float(weight))
            if output.get("gates") is not None:
                gates = output["gates"]
                gates = list(gates) if isinstance(gates, (list, tuple)) else [gates]
                # Layers left ungated (UDG gated_layers) have None and no histogram.
                tf.summary.histogram("udg/gates", tf.concat(
                    [tf.reshape(g, [-1]) for g in gates if g is not None], axis=0))
                for i, gate in enumerate(gates):
                    if gate is not None:
                        tf.summary.histogram(f"udg/gates_layer{i}", tf.reshape(gate, [-1]))
        self._writer.flush()

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None
