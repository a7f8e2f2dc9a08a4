"""How much of each user's planted weighting a trained model's predictions carry, in the
SYNTHETIC UDG worlds (`datasets.planted.AttributeWeightingWorld`), declared before its
numbers were read.

The UDG tables show UDG tying an MLP of its size in the world built for it. This
measure asks where both stand on the one thing the world asks of a user-level
model: telling each user's weighting of the item attributes.

A model's *implied weights* for user u are the least-squares slopes of its logits
over every item against the planted attribute scores x_a(i) = scale·s_a(attr_a(i))/√A,
after each item's mean logit over the users and each user's mean logit over the
items are taken out. For the planted logit they are w_u − w̄ exactly: the item
biases and the average user's weighting are common to all users. *Recovery* is
the R² of the implied weights against w_u − w̄ over users and attributes. It splits
in two parts:

* the **segment** part, the mean over the user's segment, which the profile field
  carries and thousands of rows tell;
* the **individual** part, what is left, which only the user's own rows (about
  120 in `planted_udg`) tell. This is the part per-user gates are for.

Rows: the planted logit (recovery 1 by construction), the structure-known fit
(`planted_worlds.structure_known_fit`: a model of the right form fitted on the
same rows), and the MLP, UDG and the MLP of UDG's size without dropout (the
regularisation validation chose), over the seeds of the UDG table. What would
point at a defect in the gates: UDG's individual recovery below the MLP's.
What would explain the tie: both recovering the same share of the individual
part, close to the structure-known fit's.

Declared after those first rows were read (the MLP within 0.011 of the
structure-known fit's individual recovery, and still 0.0045 below it in AUC):
the same fit with each user's weights pulled to its segment's rather than to
zero (the prior the world was drawn from), which tells whether the
structure-known fit understates what the rows allow; and two measures that
place the rest of a model's gap to the planted logit: *item recovery*, the R²
of each item's mean logit over the users against the planted one
(b_i + w̄·x(i), centred), and the *off-form share*, the part of the model's
user-specific logit (both means taken out) that its implied weights do not
explain, 0 for any logit of the planted form, with the test AUC the model gets
once that part is taken out.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np

from tfrs_userlevel.datasets.planted import SEGMENT, AttributeWeightingWorld
from tfrs_userlevel.experiments import planted_worlds
from tfrs_userlevel.experiments.runner import Runner, format_overrides
from tfrs_userlevel.monitoring import exact_auc_logloss
from tfrs_userlevel.significance import one_sided_ttest

NAME = "planted_udg_recovery"
WORLDS = ("planted_udg", "planted_udg_dense")
# The rows of `planted_worlds.UDG_ROWS` measured in each world: the regularisation each
# world's table reads best (dropout 0 in `planted_udg`, after the validation search; the
# default in `planted_udg_dense`, whose table has no dropout-0 rows).
MODELS = {"planted_udg": ("MLP, dropout 0", "MLP + UDG, dropout 0",
                          f"{planted_worlds.PARAMETER_MATCHED}, dropout 0"),
          "planted_udg_dense": ("MLP", "MLP + UDG", planted_worlds.PARAMETER_MATCHED)}
PARTS = ("all", "segment", "individual", "items", "off_form", "form_auc")
USERS_PER_BATCH = 64


def attribute_scores(world: AttributeWeightingWorld) -> np.ndarray:
    """float [items, A]: the planted scores x_a(i) = scale·s_a(attr_a(i))/√A."""
    scores = world.value_score[np.arange(world.attributes), world.item_values]
    return world.scale * scores / np.sqrt(world.attributes)


def planted_logits(world: AttributeWeightingWorld) -> np.ndarray:
    """float [users, items]: the planted logit of every (user, item)."""
    return world.weights @ attribute_scores(world).T + world.item_bias[None, :]


def _doubly_centred(logits: np.ndarray) -> np.ndarray:
    """`logits` [U, I] with each item's mean over the users, then each user's mean over
    the items, taken out."""
    centred = logits - logits.mean(axis=0, keepdims=True)
    return centred - centred.mean(axis=1, keepdims=True)


def implied_weights(logits: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """float [U, A]: each user's least-squares slopes of `logits` [U, I] against
    `scores` [I, A], with each item's and each user's mean logit taken out."""
    x = scores - scores.mean(axis=0, keepdims=True)
    slopes, *_ = np.linalg.lstsq(x, _doubly_centred(logits).T, rcond=None)   # [A, U]
    return slopes.T


def _segment_means(values: np.ndarray, segment: np.ndarray) -> np.ndarray:
    """float [U, A]: each user's row replaced by the mean row of its segment."""
    _, index = np.unique(segment, return_inverse=True)
    sums = np.zeros((index.max() + 1, values.shape[1]))
    np.add.at(sums, index, values)
    return (sums / np.bincount(index)[:, None])[index]


def _r2(estimate: np.ndarray, target: np.ndarray) -> float:
    return float(1.0 - np.sum((estimate - target) ** 2) / np.sum(target ** 2))


def recovery(implied: np.ndarray, weights: np.ndarray, segment: np.ndarray
             ) -> dict[str, float]:
    """{"all", "segment", "individual"}: R² of `implied` [U, A] against the planted
    `weights` [U, A] centred over users, and of their segment and individual parts."""
    target = weights - weights.mean(axis=0, keepdims=True)
    target_segment = _segment_means(target, segment)
    implied_segment = _segment_means(implied, segment)
    return {"all": _r2(implied, target),
            "segment": _r2(implied_segment, target_segment),
            "individual": _r2(implied - implied_segment, target - target_segment)}


def measures(logits: np.ndarray, world: AttributeWeightingWorld,
             test: Mapping[str, np.ndarray] | None = None) -> dict[str, float]:
    """`PARTS` of a logit [users, items] of `world`: the `recovery` of its implied weights,
    "items" (R² of its centred item means against the planted ones), "off_form" (the
    share of its doubly centred logit that its implied weights leave unexplained) and,
    given `test` rows, "form_auc": their AUC under the logit with its off-form part taken
    out."""
    scores = attribute_scores(world)
    implied = implied_weights(logits, scores)
    centred = _doubly_centred(logits)
    off_form = centred - implied @ (scores - scores.mean(axis=0)).T

    def item_means(values):
        means = values.mean(axis=0)
        return means - means.mean()

    out = {**recovery(implied, world.weights, world.segment),
           "items": _r2(item_means(logits), item_means(planted_logits(world))),
           "off_form": float(np.sum(off_form ** 2) / np.sum(centred ** 2))}
    if test is not None:
        on_form = logits - off_form
        out["form_auc"] = exact_auc_logloss(
            test["label"], on_form[test["user_id"] - 1, test["item_id"] - 1])[0]
    return out


def model_logits(model, world: AttributeWeightingWorld) -> np.ndarray:
    """float [users, items]: a trained model's logit of every (user, item) of `world`."""
    from tfrs_userlevel import data as data_lib
    from tfrs_userlevel.backend import tf

    items = np.arange(world.items)
    out = []
    for start in range(0, world.users, USERS_PER_BATCH):
        users = np.arange(start, min(start + USERS_PER_BATCH, world.users))
        user = np.repeat(users, world.items)
        item = np.tile(items, len(users))
        columns = {"item_id": item + 1, "user_id": user + 1, SEGMENT: world.segment[user] + 1,
                   **{f"attr_{a}": world.item_values[item, a] + 1
                      for a in range(world.attributes)}}
        ids = data_lib.lookup_columns(model.lookup, columns)
        logit = model.score({k: tf.constant(v) for k, v in ids.items()})["logit"]
        out.append(logit.numpy().reshape(len(users), world.items))
    return np.concatenate(out)


def _row(world_name: str, model: str, measured: Sequence[dict[str, float]],
         seeds: Sequence[int], auc: Sequence[float], logloss: Sequence[float],
         parameters: int | None, args: str, command: str) -> dict:
    """A result row: the runner's fields (AUC, LogLoss over seeds) and the recoveries."""
    row = {"dataset": world_name, "model": model, "args": args, "seeds": list(seeds),
           "test_auc": list(auc), "auc_mean": float(np.mean(auc)),
           "auc_std": float(np.std(auc)), "logloss_mean": float(np.mean(logloss)),
           "p_value": None, "p_value_vs": None, "parameters": parameters, "command": command}
    for part in measured[0]:
        row[f"recovery_{part}"] = [m[part] for m in measured]
        row[f"recovery_{part}_mean"] = float(np.mean(row[f"recovery_{part}"]))
    return row


def _reference_row(name: str, world: AttributeWeightingWorld, test: Mapping[str, np.ndarray],
                   model: str, logits: np.ndarray, parameters: int | None, args: str,
                   command: str) -> dict:
    """The row of a logit [users, items] that is no trained model (one value, no seeds)."""
    auc, logloss = exact_auc_logloss(test["label"],
                                     logits[test["user_id"] - 1, test["item_id"] - 1])
    return _row(name, model, [measures(logits, world, test)], [], [auc], [logloss],
                parameters, args, command)


def _world_rows(name: str, runs_dir: Path, seeds: Sequence[int], command: str, train: bool,
                base: Mapping) -> Iterator[dict]:
    """The rows of world `name` (see `planted_udg_recovery`)."""
    from tfrs_userlevel.training import load_trained

    world, splits = planted_worlds.udg_world(name)
    scores, test = attribute_scores(world), splits["test"]
    yield _reference_row(name, world, test, "planted logit", planted_logits(world), None,
                         "the planted probability", command)
    for by_segment in (False, True):
        weights, item_bias, _, l2 = planted_worlds.structure_known_fit(name,
                                                                       by_segment=by_segment)
        segment_weights = (int(world.segment.max()) + 1) * world.attributes if by_segment else 0
        yield _reference_row(
            name, world, test,
            "structure-known fit" + (", users pulled to their segment" if by_segment else ""),
            weights @ scores.T + item_bias[None, :],
            weights.size + item_bias.size + segment_weights, f"logistic regression, L2 {l2:g}",
            command)
    runner = Runner(runs_dir, base={**base, "dataset": name}, train=train,
                    loader=planted_worlds.udg_world_data)
    overrides_of = dict(planted_worlds.UDG_ROWS)
    for model_name in MODELS[name]:
        overrides = overrides_of[model_name]
        metrics = runner.seeds(overrides, seeds)
        measured = [measures(model_logits(load_trained(runner.run_dir(overrides, s)), world),
                             world, test) for s in seeds]
        yield _row(name, model_name, measured, seeds,
                   [metrics[s]["test"]["auc"] for s in seeds],
                   [metrics[s]["test"]["logloss"] for s in seeds],
                   metrics[seeds[0]]["parameters"]["all"], format_overrides(overrides), command)


def planted_udg_recovery(runs_dir: Path, seeds: Sequence[int], command: str,
                         train: bool = True, base: Mapping | None = None) -> Iterator[dict]:
    """The rows of the recovery table: per world of `WORLDS`, the planted logit, the two
    structure-known fits, then each of `MODELS` over `seeds` (trained into `runs_dir` as
    the UDG tables train them, on `base` if given, or reused from there)."""
    for name in WORLDS:
        yield from _world_rows(name, Path(runs_dir), seeds, command, train, dict(base or {}))


def recovery_table(rows: Sequence[Mapping]) -> str:
    """Markdown: per world and model, test AUC and the three recoveries; UDG's
    individual recovery tested one-sided against each MLP of its world."""
    lines = ["SYNTHETIC data: `tfrs_userlevel.datasets.planted.AttributeWeightingWorld`, "
             "the worlds of `planted_worlds.UDG_WORLDS`.", "",
             "| world | model | parameters | test AUC | recovery, all | segment part | "
             "individual part | items | off-form share | test AUC on the planted form | "
             "p, UDG's individual part above it |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    udg = {r["dataset"]: r for r in rows if "UDG" in r["model"]}
    for r in rows:
        p = ""
        mine = udg.get(r["dataset"])
        if (mine is not None and mine is not r and len(r["recovery_individual"]) > 1
                and len(mine["recovery_individual"]) > 1):
            p = f"{one_sided_ttest(mine['recovery_individual'], r['recovery_individual']):.2g}"
        parameters = f"{r['parameters']:,}" if r.get("parameters") else ""
        lines.append(f"| `{r['dataset']}` | {r['model']} | {parameters} | {r['auc_mean']:.4f} | "
                     + " | ".join(f"{r[f'recovery_{part}_mean']:.{4 if part == 'form_auc' else 3}f}"
                                  for part in PARTS)
                     + f" | {p} |")
    lines += ["", "Recovery: R² of a model's implied per-user attribute weights (its logit's "
              "slopes over the items against the planted attribute scores, the item and user "
              "means taken out) against the planted weights; the segment part is the mean "
              "over the user's segment, the individual part the rest. Items: R² of each "
              "item's mean logit over the users against the planted one. Off-form share: the "
              "part of the logit, both means taken out, that the implied weights leave "
              "unexplained; the test AUC on the planted form is the model's with that part "
              "taken out. Means over seeds; p: Welch's one-sided test over the same seeds."]
    return "\n".join(lines)
