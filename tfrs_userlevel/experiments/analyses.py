"""Analyses over finished runs: they read model directories and train nothing
(`by_activity` asks its runner for the runs it compares).

* `network_parameters`, `all_parameters`: a run's trainable parameters;
* `diversity`: the cosine similarities of GPRec's group embeddings (paper Fig. 4);
* `by_activity`: two configurations' test AUC within user-activity buckets;
* `gprec_scales`: the scale of what a trained GPRec layer reads and makes;
* `ensemble_heads`: each prediction a GPRec ensemble averages, scored alone.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tfrs_userlevel import datasets
from tfrs_userlevel.experiments.report import result_path, write_keeping_reading
from tfrs_userlevel.experiments.runner import Overrides, Runner, format_overrides
from tfrs_userlevel.monitoring import cosine_similarity
from tfrs_userlevel.parameter_counts import parameter_counts
from tfrs_userlevel.significance import one_sided_ttest
from tfrs_userlevel.training import write_json_atomic


def network_parameters(model_dir: Path) -> int:
    """Trainable parameters of a finished run's model outside the embedding tables."""
    return _parameter_counts(model_dir)["outside_embeddings"]


def all_parameters(model_dir: Path) -> int:
    """Every trainable parameter of a finished run's model, embedding tables included
    (the count of the UDG paper's Table 3)."""
    return _parameter_counts(model_dir)["all"]


def _parameter_counts(model_dir: Path) -> dict[str, int]:
    """`parameter_counts` as the run's metrics.json records it, or, for a
    run that does not record it, of the model rebuilt from model.json."""
    from tfrs_userlevel import keras

    metrics = model_dir / "metrics.json"
    recorded = json.loads(metrics.read_text()).get("parameters") if metrics.exists() else None
    if recorded is not None:
        return recorded
    model = keras.layers.deserialize(json.loads((model_dir / "model.json").read_text()))
    return parameter_counts(model)


def diversity(model_dir: Path, out: Path, shown_groups: int = 5, seed: int = 0) -> dict:
    """Cosine-similarity heatmap of the dual group embeddings (paper Fig. 4)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from tfrs_userlevel.training import load_trained

    model = load_trained(model_dir)
    if model.user_level is None or not hasattr(model.user_level, "group_embeddings"):
        raise SystemExit(f"error: {model_dir} holds no GPRec model")
    tables = model.user_level.group_embeddings()

    # [P+; P-] (dual) or P (single) against itself, the matrix TensorBoard's image shows.
    similarity = cosine_similarity(tables)
    dual = "positive" in tables
    groups = len(tables["positive"] if dual else tables["table"])
    stats = {"model_dir": str(model_dir), "groups": groups,
             "embeddings": "dual" if dual else "single"}
    if dual:
        off = ~np.eye(groups, dtype=bool)
        positive_vs_negative = similarity[:groups, groups:]
        stats.update({
            "mean_cos_positive_vs_own_negative": float(np.mean(np.diag(positive_vs_negative))),
            "mean_cos_positive_vs_positive": float(np.mean(similarity[:groups, :groups][off])),
            "mean_cos_negative_vs_negative": float(np.mean(similarity[groups:, groups:][off])),
            "mean_cos_positive_vs_other_negative": float(np.mean(positive_vs_negative[off])),
        })
    # (GPRec-1 has one embedding per group, the DGPM-like form.)
    pairs = ~np.eye(len(similarity), dtype=bool)
    stats["mean_cos_all_pairs"] = float(np.mean(similarity[pairs]))
    stats["mean_abs_cos_all_pairs"] = float(np.mean(np.abs(similarity)[pairs]))
    picked = np.sort(np.random.default_rng(seed).choice(groups, min(shown_groups, groups),
                                                        replace=False))
    if dual:
        rows = np.concatenate([picked, picked + groups])
        labels = [f"P+{g}" for g in picked] + [f"P-{g}" for g in picked]
    else:
        rows = picked
        labels = [f"P{g}" for g in picked]
    sims = similarity[np.ix_(rows, rows)]
    fig, ax = plt.subplots(figsize=(6, 5))
    image = ax.imshow(sims, cmap="viridis", vmin=-1, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=90)
    ax.set_yticks(range(len(labels)), labels)
    for i in range(len(labels)):
        for j in range(len(labels)):
            ax.text(j, i, f"{sims[i, j]:.2f}", ha="center", va="center", fontsize=6,
                    color="white" if sims[i, j] < 0.3 else "black")
    fig.colorbar(image, ax=ax)
    ax.set_title("cosine similarity of group embeddings")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out.with_suffix(".png"), dpi=120)
    plt.close(fig)
    stats["shown_groups"] = picked.tolist()
    write_json_atomic(out.with_suffix(".json"), stats)
    print(json.dumps(stats, indent=2))
    return stats


ACTIVITY_BUCKETS = 4  # users split into quartiles of their number of training rows


def bucket_auc(labels: np.ndarray, scores: np.ndarray, where: str) -> float:
    """Exact test AUC of one group of rows (`monitoring.exact_auc_logloss`), refusing a
    group with one class only, whose AUC is undefined; `where` names the group."""
    from tfrs_userlevel.monitoring import exact_auc_logloss

    positives = int(np.sum(labels == 1))
    negatives = len(labels) - positives
    if positives == 0 or negatives == 0:
        raise ValueError(f"AUC of {where}: needs both classes, got {positives} positive and "
                         f"{negatives} negative rows")
    return exact_auc_logloss(labels, scores)[0]


def test_probabilities(model_dir: Path, test: dict[str, np.ndarray],
                       batch_size: int = 16384) -> np.ndarray:
    """The best checkpoint's probabilities on every row of `test`, in order: [N]."""
    from tfrs_userlevel.backend import tf
    from tfrs_userlevel.training import load_trained

    model = load_trained(model_dir)
    names = model.feature_spec.names
    rows = tf.data.Dataset.from_tensor_slices({n: test[n] for n in names}).batch(batch_size)
    return np.concatenate([model(batch).numpy().ravel() for batch in rows])


def activity_buckets(train_users: np.ndarray, test_users: np.ndarray,
                     buckets: int = ACTIVITY_BUCKETS) -> tuple[np.ndarray, list[str]]:
    """Each test row's bucket (0 = least active users) by its user's training-row count,
    the users cut into `buckets` quantiles; and a label per bucket ("16–43 rows")."""
    users, counts = np.unique(train_users, return_counts=True)
    edges = np.quantile(counts, np.linspace(0, 1, buckets + 1))
    user_bucket = np.clip(np.searchsorted(edges, counts, side="right") - 1, 0, buckets - 1)
    labels = []
    for b in range(buckets):
        inside = counts[user_bucket == b]
        labels.append(f"{inside.min()}–{inside.max()} rows, {len(inside)} users")
    position = np.searchsorted(users, test_users)
    known = (position < len(users)) & (users[np.minimum(position, len(users) - 1)]
                                       == test_users)
    if not known.all():
        raise ValueError(f"activity_buckets: {int((~known).sum())} test rows belong to users "
                         "with no training row")
    return user_bucket[position], labels


def by_activity(runner: Runner, a: Overrides, b: Overrides, seeds: Sequence[int],
                command: str, results_dir: str | Path | None = None,
                name: str | None = None) -> list[dict]:
    """Test AUC of configurations A and B within each user-activity bucket, per seed
    (both trained or reused through `runner`), with B − A and Welch's one-sided p; with
    `name`, also written to RESULTS_DIR/STUDY/NAME.json and .md."""
    splits, _ = runner.data(runner.config(a, seeds[0]))
    test = splits["test"]
    bucket, labels = activity_buckets(splits["train"]["user_id"], test["user_id"])
    per_seed = {"A": [], "B": []}
    for side, args in (("A", a), ("B", b)):
        for seed in seeds:
            runner.metrics(args, seed)  # trains it if it is not cached
            scores = test_probabilities(runner.run_dir(args, seed), test)
            per_seed[side].append(
                [bucket_auc(test["label"], scores, "all test rows")]
                + [bucket_auc(test["label"][bucket == k], scores[bucket == k],
                              f"the users with {labels[k]}") for k in range(len(labels))])
    rows = []
    for k, label in enumerate(["all users", *labels]):
        auc_a = [s[k] for s in per_seed["A"]]
        auc_b = [s[k] for s in per_seed["B"]]
        rows.append({"bucket": label,
                     "test_rows": int(len(bucket) if k == 0 else (bucket == k - 1).sum()),
                     "auc_a": auc_a, "auc_b": auc_b,
                     "auc_a_mean": float(np.mean(auc_a)), "auc_b_mean": float(np.mean(auc_b)),
                     "difference": float(np.mean(auc_b) - np.mean(auc_a)),
                     "p_value": one_sided_ttest(auc_b, auc_a)})
    lines = [f"# Test AUC by user activity: B = `{format_overrides(b)}` against A = "
             f"`{format_overrides(a)}`", "", f"Regenerate: `{command}`", "",
             f"Seeds {', '.join(map(str, seeds))}. Users are cut into {ACTIVITY_BUCKETS} "
             "quantiles of their number of training rows; each AUC is computed exactly "
             "(from ranks) on the test rows of that bucket's users; p is Welch's one-sided "
             "test of \"B higher\".", "",
             "| users | test rows | A | B | B − A | p (B better) |",
             "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['bucket']} | {r['test_rows']:,} | {r['auc_a_mean']:.4f} | "
                     f"{r['auc_b_mean']:.4f} | {r['difference']:+.4f} | {r['p_value']:.2g} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if name:
        write_json_atomic(result_path(results_dir, name, ".json"),
                          {"a": dict(a), "b": dict(b), "seeds": list(seeds), "rows": rows,
                           "command": command})
        write_keeping_reading(result_path(results_dir, name, ".md"), text)
    return rows


def load_run_rows(model_dir: Path, data_dir: str | None, split: str = "validation",
                  rows: int | None = None):
    """(model, labels [N], looked-up ids {field: [N, ...]}) of a finished run, on the first
    `rows` rows (None: all) of `split` of the data it was trained on."""
    from tfrs_userlevel import data
    from tfrs_userlevel.training import load_trained

    config = json.loads((model_dir / "config.json").read_text())["config"]
    model = load_trained(model_dir)
    splits = datasets.load_splits(config["dataset"], config["split"], data_dir,
                                  history_length=config.get("history_length", 0))
    columns = {k: v[:rows] for k, v in splits[split].items()
               if k in model.lookup.spec.names or k == "label"}
    labels = columns.pop("label")
    return model, labels, data.lookup_columns(model.lookup, columns)


def gprec_scales(model_dir: Path, data_dir: str | None, rows: int = 4096) -> dict:
    """Scale of what a trained GPRec layer reads and makes, on the first `rows` validation
    rows: the root mean square of each tensor and its std across the batch (mean over
    columns), at inference and with Gumbel noise (training=True), and the rms of r_g's
    change from the noise alone (the user embeddings that drive the masks take no dropout)."""
    from tfrs_userlevel import keras, tf

    model, _, ids = load_run_rows(model_dir, data_dir, rows=rows)
    layer = model.user_level
    if layer is None or not hasattr(layer, "group_embeddings"):
        raise SystemExit(f"error: {model_dir} holds no GPRec model")
    ids = {k: tf.constant(v) for k, v in ids.items()}
    seen: dict[bool, tuple[dict, dict]] = {}
    call = layer.call

    def recording(inputs, training=False):
        output = call(inputs, training=training)
        seen[bool(training)] = (inputs, output)
        return output

    layer.call = recording
    keras.utils.set_random_seed(0)  # the same Gumbel and dropout draws on every rerun
    try:
        for training in (False, True):
            model.score(ids, training=training)
    finally:
        layer.call = call

    def scale(x) -> dict:
        x = tf.reshape(tf.cast(x, tf.float32), [tf.shape(x)[0], -1])
        return {"rms": float(tf.sqrt(tf.reduce_mean(tf.square(x)))),
                "std_across_batch": float(tf.reduce_mean(tf.math.reduce_std(x, axis=0)))}

    stats = {"model_dir": str(model_dir), "rows": rows}
    for training, (inputs, output) in seen.items():
        mode = "training" if training else "inference"
        parts = {k: inputs[k] for k in ("embeddings", "user", "item", "hidden") if k in inputs}
        parts["r_g"] = output["group"]
        if output["individual"] is not None:
            parts["r_p"] = output["individual"]
        stats[mode] = {k: scale(v) for k, v in parts.items()}
    noise = seen[True][1]["group"] - seen[False][1]["group"]
    stats["r_g_gumbel_noise_rms"] = scale(noise)["rms"]
    lines = [f"{'tensor':12s} {'rms (inference)':>16s} {'std across batch':>17s} "
             f"{'rms (training)':>15s}"]
    for k, v in stats["inference"].items():
        lines.append(f"{k:12s} {v['rms']:16.4f} {v['std_across_batch']:17.4f} "
                     f"{stats['training'][k]['rms']:15.4f}")
    lines.append(f"r_g with Gumbel noise minus without: rms {stats['r_g_gumbel_noise_rms']:.4f}")
    print("\n".join(lines))
    return stats


def ensemble_heads(model_dir: Path, data_dir: str | None, split: str = "validation") -> dict:
    """AUC and LogLoss, on a whole split, of each prediction a trained GPRec ensemble
    averages (the backbone's head, the group head MLP_g, MLP_p's head) and of the average
    itself, with the ensemble's weights (1/n each, or the learned ones)."""
    from tfrs_userlevel import tf
    from tfrs_userlevel.monitoring import exact_auc_logloss

    model, labels, ids = load_run_rows(model_dir, data_dir, split)
    layer = model.user_level
    if layer is None or getattr(layer, "strategy", None) != "ensemble":
        raise SystemExit(f"error: {model_dir} holds no GPRec model with the ensemble strategy")
    seen: dict[str, list] = {}
    for start in range(0, len(labels), 16384):
        output = model.score({k: tf.constant(v[start:start + 16384]) for k, v in ids.items()},
                             training=False)
        predictions = {**output["user_level"]["heads"], "ensemble": output["logit"]}
        for head, logit in predictions.items():
            seen.setdefault(head, []).append(logit.numpy())
    heads = list(seen)
    weights = tf.exp(layer.combiner.log_weights(len(heads) - 1)).numpy().tolist()
    stats = {"model_dir": str(model_dir), "split": split, "rows": len(labels),
             "weights": dict(zip(heads[:-1], weights, strict=True))}
    lines = [f"{'prediction':12s} {'weight':>7s} {'AUC':>7s} {'LogLoss':>8s}"]
    for head in heads:
        auc, logloss = exact_auc_logloss(labels, np.concatenate(seen[head]))
        stats[head] = {"auc": auc, "logloss": logloss}
        weight = f"{stats['weights'][head]:7.3f}" if head in stats["weights"] else " " * 7
        lines.append(f"{head:12s} {weight} {auc:7.4f} {logloss:8.4f}")
    print(f"{model_dir} ({split}, {stats['rows']:,} rows)\n" + "\n".join(lines))
    return stats
