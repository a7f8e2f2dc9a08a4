"""The matched cold-start protocol: the warm-up is the update the meta-objective trains for.

Algorithm 1 trains the generator for one thing: a new user, read with its
base user-id row at OOV, whose generated UDG embedding then takes one plain
gradient step of size α on a few of its rows. The matched protocol evaluates
exactly that. For every way of initialising the new users' UDG embeddings
(`INITS`), the embeddings are held outside the model
(`cold_start.warm_up.InnerStepWarmUp`) and:

* cold start: the held-out rows are scored with the initial embeddings;
* warm-up a, b, c: one inner step (`cold_start.inner_step.inner_step`, the
  code Algorithm 1 differentiates through) on that batch's rows, at the α the
  generator was trained with, then the held-out rows are scored again.

Every initialisation gets the same warm-up. The generator is trained with
each α of `ALPHAS` (`META_STEPS` steps, Adam step `META_BETA`); the α whose
generator has the best mean AUC over the four phases on the validation half
of the new users is reported on the other half. Reported per phase: row-level
AUC and LogLoss, and GAUC (`monitoring.user_averaged_auc`), each against
random initialisation by Welch's one-sided test over the seeds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence

import numpy as np

from tfrs_userlevel.experiments import cold_start_protocol
from tfrs_userlevel.significance import one_sided_ttest

ALPHAS = (0.1, 1.0)
META_STEPS = 300
META_BETA = 1e-3
PHASES = ("cold", "a", "b", "c")
# The initialisations, in the tables' order: the generator, random rows from the UDG
# table's own initialiser N(0, 0.01²), the mean trained row of the active users, and that
# mean over the active users with the new user's profile.
INITS = ("meta", "random", "active-user mean", "profile mean")
MEASURES = ("auc", "gauc", "logloss", "mean_probability")

# (ids, labels, row users) of some rows, ids as `data.lookup_columns` gives them.
Rows = tuple[Mapping[str, np.ndarray], np.ndarray, np.ndarray]


def evaluate_inits(model, users: np.ndarray, inits: Mapping[str, np.ndarray], alpha: float,
                   warm_ups: Mapping[str, Rows], held_out: Callable[[str], Rows],
                   parts: Mapping[str, np.ndarray]) -> dict:
    """{init: {part: {phase: `InnerStepWarmUp.evaluate`}}} for every initialisation.

    Args:
      model: The trained base model (UDG with a generator).
      users: int [U] the new users' ids, sorted.
      inits: {name: float [U, udg_dim]} starting embeddings.
      alpha: The warm-up's inner-step size.
      warm_ups: {"a"|"b"|"c": rows} of the warm-up batches.
      held_out: phase -> the held-out rows as they are read after that phase (their
        click histories may grow).
      parts: {part: user ids}: the held-out rows are scored per part of the users.
    """
    from tfrs_userlevel.cold_start.warm_up import InnerStepWarmUp

    out = {}
    for name, initial in inits.items():
        warm = InnerStepWarmUp(model, users, initial, alpha)
        results = {part: {} for part in parts}
        for phase in PHASES:
            if phase != "cold":
                warm.fit(*warm_ups[phase])
            ids, labels, row_users = held_out(phase)
            for part, members in parts.items():
                keep = np.isin(row_users, members)
                results[part][phase] = warm.evaluate({k: v[keep] for k, v in ids.items()},
                                                     labels[keep], row_users[keep])
        out[name] = results
    return out


def chosen_alpha(per_seed: Mapping[int, Mapping[float, dict]]) -> float:
    """The α whose generator has the best mean validation AUC over phases and seeds."""
    def validation_auc(alpha):
        return np.mean([per_seed[s][alpha]["meta"]["validation"][p]["auc"]
                        for s in per_seed for p in PHASES])
    return max(ALPHAS, key=validation_auc)


def matched_rows(per_seed: Mapping[int, Mapping[float, dict]], extra_norms: Mapping,
                 dataset: str, model: str, command: str, extra: Mapping | None = None
                 ) -> Iterator[dict]:
    """The table rows (one per initialisation and phase) on the test half of the new
    users, at the chosen α; `per_seed` is {seed: {α: `evaluate_inits` output}};
    `extra_norms` ({"norms": ...}, `split_norms`) goes into every row."""
    alpha = chosen_alpha(per_seed)
    seeds = list(per_seed)
    validation_auc = {f"{a:g}": {i: float(np.mean(
        [per_seed[s][a][i]["validation"][p]["auc"] for s in seeds for p in PHASES]))
        for i in INITS} for a in ALPHAS}
    for init in INITS:
        for phase in PHASES:
            values = {m: [per_seed[s][alpha][init]["test"][phase][m] for s in seeds]
                      for m in MEASURES}
            r = {"dataset": dataset, "model": f"{model}, {init} init", "init": init,
                 "phase": phase, "seeds": seeds, "alpha": alpha,
                 "test_auc": values["auc"], "test_gauc": values["gauc"],
                 "test_logloss": values["logloss"],
                 "auc_mean": float(np.mean(values["auc"])),
                 "gauc_mean": float(np.mean(values["gauc"])),
                 "logloss_mean": float(np.mean(values["logloss"])),
                 "mean_probability_mean": float(np.mean(values["mean_probability"])),
                 "click_rate": float(np.mean([per_seed[s][alpha][init]["test"][phase]
                                              ["click_rate"] for s in seeds])),
                 "auc_std": float(np.std(values["auc"], ddof=1)) if len(seeds) > 1 else 0.0,
                 "p_value": None, "p_value_vs": None, "command": command,
                 "validation_auc": validation_auc,
                 **extra_norms, **(extra or {})}
            if init != "random" and len(seeds) > 1:
                random = {m: [per_seed[s][alpha]["random"]["test"][phase][m] for s in seeds]
                          for m in MEASURES}
                r["p_value"] = one_sided_ttest(values["auc"], random["auc"])
                r["p_value_gauc"] = one_sided_ttest(values["gauc"], random["gauc"])
                r["p_value_vs"] = "random init"
            yield r


def matched_table(rows: Sequence[dict]) -> str:
    """Per initialisation: AUC, GAUC and LogLoss in each phase on the test new users, with
    the one-sided p against random initialisation; then the α selection on validation."""
    if not rows:
        return ""
    lines = ["Test new users, matched warm-up (one inner step of size "
             f"α = {rows[0]['alpha']:g} per batch). Each cell: mean over seeds, with p "
             "(one-sided, against random init):", "",
             "| init | measure | cold | warm-up a | warm-up b | warm-up c |",
             "|---|---|---:|---:|---:|---:|"]
    for init in INITS:
        for measure, p_key in (("auc", "p_value"), ("gauc", "p_value_gauc"),
                               ("logloss", None), ("mean_probability", None)):
            cells = []
            for phase in PHASES:
                r = next((x for x in rows if x["init"] == init and x["phase"] == phase), None)
                if r is None:
                    cells.append("")
                    continue
                cell = f"{r[f'{measure}_mean']:.4f}"
                if p_key and r.get(p_key) is not None:
                    cell += f" (p {r[p_key]:.2g})"
                cells.append(cell)
            label = {"auc": "AUC", "gauc": "GAUC", "logloss": "LogLoss",
                     "mean_probability": "mean p̂"}[measure]
            lines.append(f"| {init} | {label} | " + " | ".join(cells) + " |")
    if "click_rate" in rows[0]:
        lines += ["", f"Click rate of the held-out rows: {rows[0]['click_rate']:.4f} (mean p̂ "
                  "above: the mean predicted probability, for calibration)."]
    selection = rows[0]["validation_auc"]
    lines += ["", "Mean AUC over the four phases on the validation new users, per α of the "
              "inner step (the generator is trained with it and every init is warmed up "
              "with it):", "", "| α | " + " | ".join(INITS) + " |",
              "|---" * (len(INITS) + 1) + "|"]
    for alpha, by_init in selection.items():
        lines.append(f"| {alpha} | " + " | ".join(f"{by_init[i]:.4f}" for i in INITS) + " |")
    norms = rows[0].get("norms")
    if norms:
        lines += ["", "Scale of the UDG embeddings (mean L2 norm, mean over seeds): "
                  + ", ".join(f"{k} {v:.3f}" for k, v in norms.items()) + "."]
    return "\n".join(lines)


# ML-100K: the cold-start protocol's base models, new users and batches
# (`cold_start_protocol`); the profile mean is its reference mean over active users of the
# same gender and age.
ML100K_PROFILE = cold_start_protocol.COLD_START_REFERENCE_INITS[
    "active-user mean by gender and age"]


def _ml100k_seed(runner, seed: int, data: dict) -> dict:
    """{α: `evaluate_inits` output} of one seed on ML-100K (cached in the base model's
    folder)."""
    import json

    from tfrs_userlevel import data as data_lib
    from tfrs_userlevel.cold_start.warm_up import HELD_OUT, mean_rows_by_key, phase_cutoffs
    from tfrs_userlevel.training import load_trained

    model_dir, splits, part, vocabularies = cold_start_protocol.base_model(runner, seed, data)
    saved = model_dir / "matched.json"
    if saved.exists():
        return {(a if a == "norms" else float(a)): v
                for a, v in json.loads(saved.read_text()).items()}
    columns, batches = data["columns"], data["batches"]
    user, timestamp, label = columns["user_id"], columns["timestamp"], columns["label"]
    users = np.sort(data["new_users"])
    model = load_trained(model_dir)
    first_row = {u: r for r, u in reversed(list(enumerate(user)))}
    first_new = np.array([first_row[u] for u in users])
    profile = data_lib.lookup_columns(model.lookup, part(first_new))["ids"][
        :, model.profile_columns]
    active = np.unique(splits["train"]["user_id"])
    vocabulary = np.asarray(vocabularies["user_id"])
    trained = model.gating.user_table.embeddings.numpy()[np.searchsorted(vocabulary, active) + 1]

    def keys(of_users):
        return [tuple(columns[f][first_row[u]] for f in ML100K_PROFILE) for u in of_users]

    inits = {"random": np.random.default_rng(seed).normal(0.0, 0.01,
                                                          (len(users), trained.shape[1])),
             "active-user mean": np.repeat(trained.mean(0, keepdims=True), len(users), 0),
             "profile mean": mean_rows_by_key(trained, keys(active), keys(users))}

    def rows_of(rows, histories=None):
        return (data_lib.lookup_columns(model.lookup, part(rows, histories)), label[rows],
                user[rows])

    warm_ups = {p: rows_of(np.flatnonzero(batches == p)) for p in ("a", "b", "c")}
    held = np.flatnonzero(batches == HELD_OUT)
    held_out = {phase: rows_of(held, data["click_histories"](phase_cutoffs(
        user, timestamp, batches, None if phase == "cold" else phase))) for phase in PHASES}
    out: dict = {"norms": {"trained": float(np.linalg.norm(trained, axis=1).mean())}}
    for alpha in ALPHAS:
        setting = {"alpha": alpha, "steps": META_STEPS, "beta": META_BETA}
        model.gating.generator.set_weights(
            cold_start_protocol.generator_weights_of(model_dir, splits, setting, seed))
        generated = model.gating.generator(profile).numpy()
        out["norms"][f"generated, α {alpha:g}"] = float(
            np.linalg.norm(generated, axis=1).mean())
        out[alpha] = evaluate_inits(model, users, {"meta": generated, **inits}, alpha,
                                    warm_ups, held_out.__getitem__, data["user_parts"])
    saved.write_text(json.dumps({k if k == "norms" else f"{k:g}": v for k, v in out.items()},
                                indent=1))
    return out


def udg_cold_start_matched(runner, seeds: Sequence[int], command: str) -> Iterator[dict]:
    """The matched protocol's rows on ML-100K's new users (`cold_start_protocol`'s)."""
    data = cold_start_protocol.protocol_data(runner)
    per_seed = {s: _ml100k_seed(runner, s, data) for s in seeds}
    yield from matched_rows(*split_norms(per_seed), "movielens_100k", "PNN+UDG", command,
                            extra={"new_users": int(len(data["user_parts"]["test"]))})


def split_norms(per_seed: Mapping[int, dict]) -> tuple[dict, dict]:
    """({seed: {α: results}}, {"norms": mean over seeds of each norm}) of per-seed results
    that hold their embeddings' norms under "norms"."""
    seeds = list(per_seed)
    norms = {k: float(np.mean([per_seed[s]["norms"][k] for s in seeds]))
             for k in per_seed[seeds[0]]["norms"]}
    return ({s: {a: v for a, v in r.items() if a != "norms"} for s, r in per_seed.items()},
            {"norms": norms})
