"""The UDG paper's cold-start protocol (§4, Table 5) on ML-100K, as an experiment.

A base PNN+UDG model with the meta generator is trained on the active users;
for the new users, the held-out rows are scored at cold start and after each
warm-up phase, with the generator's embeddings (every setting of
`COLD_START_GENERATORS`, the one with the best validation new users'
mean AUC reported), with random rows, and with the active users' mean rows.
`udg_cold_start` yields the table's rows; `cold_start_table` lays them out.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from tfrs_userlevel import datasets
from tfrs_userlevel.experiments.runner import MissingRunError, Runner
from tfrs_userlevel.significance import one_sided_ttest
from tfrs_userlevel.training import TrainConfig, run

# The cold-start protocol (UDG paper §4, Table 5) on ML-100K. The paper (Alimama) calls
# users with more than 100 training rows active and those with 80-100 new, K = 20. ML-100K
# users have 20-737 ratings, so here: new users have 40-60 ratings (151 users), K = 10
# (so each keeps at least 10 held-out rows), and every other user is active.
COLD_START_NEW_USERS = (40, 60)
COLD_START_K = 10
COLD_START_HISTORY = 20
COLD_START_META_STEPS = 300
COLD_START_BACKBONE = "ipnn"  # the paper's Figure 4: PNN+UDG
COLD_START_WARMUP_LR = 1e-3  # Adam step of the new users' rows in each warm-up phase
# Algorithm 1 settings tried (inner step α, generator steps, generator Adam step β); the one
# with the best mean held-out AUC over the four phases on the VALIDATION new users (half of
# the new users, drawn once) is reported on the other half.
COLD_START_GENERATORS = [
    # The profile ids as they are (MetaEmbeddingTrainer's default).
    {"alpha": 0.1, "steps": 300, "beta": 1e-3},   # train.py --meta's defaults
    {"alpha": 0.1, "steps": 2000, "beta": 1e-3},
    {"alpha": 1.0, "steps": 2000, "beta": 1e-3},
    {"alpha": 0.01, "steps": 2000, "beta": 1e-3},
    {"alpha": 0.1, "steps": 2000, "beta": 1e-2},
    # Algorithm 1 on the active users' validation rows, which the base model did not fit
    # (on its training rows the base is right whatever the user embedding).
    {"alpha": 0.1, "steps": 2000, "beta": 1e-3, "rows": "validation"},
    {"alpha": 1.0, "steps": 2000, "beta": 1e-3, "rows": "validation"},
    # A profile value no other user holds is read as unseen (its OOV id), as it
    # is for a new user (MetaEmbeddingTrainer(unshared_profile_as_oov=True)). Most ML-100K
    # zip codes belong to one user: as is, the generator can learn a row per user and
    # leave the zip OOV row that new users read as initialised.
    {"alpha": 0.1, "steps": 300, "beta": 1e-3, "profile": "unshared as OOV"},
    {"alpha": 0.1, "steps": 2000, "beta": 1e-3, "profile": "unshared as OOV"},
    {"alpha": 1.0, "steps": 2000, "beta": 1e-3, "profile": "unshared as OOV"},
    {"alpha": 0.1, "steps": 2000, "beta": 1e-3, "rows": "validation",
     "profile": "unshared as OOV"},
    # Fewer steps, following the grid's trend (300 steps beat 2,000 for every α).
    {"alpha": 0.1, "steps": 30, "beta": 1e-3},
    {"alpha": 0.1, "steps": 100, "beta": 1e-3},
]


# Initialisations that learn nothing, shown for reference: a new user gets the
# mean trained UDG row of the active users, overall or of those with the same values of
# these profile fields. If the profile told the UDG row apart, the second would beat the
# first; random rows (N(0, 0.01²)) are near the zero vector.
COLD_START_REFERENCE_INITS = {"active-user mean": (),
                              "active-user mean by gender and age": ("gender", "age")}


def _generator_name(setting: dict) -> str:
    rows = setting.get("rows", "train")
    return (f"α {setting['alpha']:g}, {setting['steps']} steps, β {setting['beta']:g}"
            + ("" if rows == "train" else f", on the {rows} rows")
            + (", unshared profile values as OOV" if _unshared_as_oov(setting) else ""))


def _unshared_as_oov(setting: dict) -> bool:
    return setting.get("profile") == "unshared as OOV"


def base_model(runner: Runner, seed: int, data: dict) -> tuple:
    """The seed's base PNN+UDG model, trained on the active users (once; both protocols
    read it): (model_dir, splits, part, vocabularies), `part(rows, histories=None)`
    giving the columns of `rows` with their click histories."""
    from tfrs_userlevel.features import FeatureSpec

    columns, batches, new_users, histories = (data["columns"], data["batches"],
                                              data["new_users"], data["histories"])
    user = columns["user_id"]
    history = datasets.history_column("movielens_100k")
    active = np.flatnonzero(batches == "")
    validation = np.zeros(len(user), bool)
    validation[np.random.default_rng(2024).choice(active, len(active) // 10, replace=False)] = True
    train_rows = np.setdiff1d(active, np.flatnonzero(validation))

    def part(rows, history_rows=None):
        out = {k: v[rows] for k, v in columns.items()}
        out[history] = (histories if history_rows is None else history_rows)[rows]
        return out

    spec = FeatureSpec.from_config(datasets.feature_spec("movielens_100k", COLD_START_HISTORY))
    splits = {"train": part(train_rows), "validation": part(np.flatnonzero(validation))}
    splits["test"] = splits["validation"]  # the held-out batch is read by the protocol only
    vocabularies = spec.build_vocabularies(splits["train"])
    vocabularies["user_id"] = sorted(set(vocabularies["user_id"]) | set(new_users.tolist()))
    config = TrainConfig(dataset="movielens_100k", split="time", backbone=COLD_START_BACKBONE,
                         user_level="udg", meta=True, meta_steps=COLD_START_META_STEPS,
                         history_length=COLD_START_HISTORY, seed=seed)
    model_dir = runner.runs_dir / "cold_start" / f"seed_{seed}"
    if not (model_dir / "metrics.json").exists():
        if not runner.train:
            raise MissingRunError(f"no finished cold-start base model (seed {seed}) in "
                                  f"{model_dir}; run without --from-runs to train it")
        print(f"[train] cold-start base model, seed {seed} -> {model_dir}", flush=True)
        run(config, splits, spec, model_dir, verbose=0, vocabularies=vocabularies)
    return model_dir, splits, part, vocabularies


def generator_weights_of(model_dir, splits: dict, setting: dict, seed: int) -> list[np.ndarray]:
    """Algorithm 1 with `setting` on the frozen base model of `model_dir` (cached there per
    setting)."""
    from tfrs_userlevel import data as data_lib
    from tfrs_userlevel.cold_start.meta_training import MetaEmbeddingTrainer
    from tfrs_userlevel.training import load_trained

    rows = setting.get("rows", "train")
    as_oov = _unshared_as_oov(setting)
    path = model_dir / ("generator_a{alpha:g}_s{steps}_b{beta:g}".format(**setting)
                        + ("" if rows == "train" else f"_{rows}")
                        + ("_unshared_oov" if as_oov else "") + ".npz")
    if not path.exists():
        model = load_trained(model_dir)
        ids = data_lib.lookup_columns(model.lookup, splits[rows])
        trainer = MetaEmbeddingTrainer(model, alpha=setting["alpha"], beta=setting["beta"],
                                       unshared_profile_as_oov=as_oov, seed=seed)
        trainer.fit(ids, splits[rows]["label"], splits[rows]["timestamp"], setting["steps"])
        np.savez(path, *model.gating.generator.get_weights())
    with np.load(path) as saved:
        return [saved[f"arr_{i}"] for i in range(len(saved.files))]


def _cold_start_seed(runner: Runner, seed: int, data: dict) -> dict:
    """One seed of the cold-start protocol.

    Returns {"random": {part: {phase: {"auc", "logloss"}}}, "meta": {generator name:
    {part: {phase: ...}}}} with part "validation" or "test" (the two halves of the new
    users).
    """
    from tfrs_userlevel import data as data_lib
    from tfrs_userlevel.cold_start import warm_up
    from tfrs_userlevel.metrics import evaluate_ids
    from tfrs_userlevel.training import load_trained

    columns, batches = data["columns"], data["batches"]
    user, timestamp, label = columns["user_id"], columns["timestamp"], columns["label"]
    model_dir, splits, part, vocabularies = base_model(runner, seed, data)
    train_rows_users = splits["train"]["user_id"]

    active_users = np.unique(train_rows_users)
    vocabulary = np.asarray(vocabularies["user_id"])
    first_row = {u: r for r, u in reversed(list(enumerate(user)))}

    def profile_keys(users: np.ndarray, fields: Sequence[str]) -> list[tuple]:
        return [tuple(columns[f][first_row[u]] for f in fields) for u in users]

    active_index = np.searchsorted(vocabulary, active_users) + 1

    def reference_rows(fields: Sequence[str]):
        """The `COLD_START_REFERENCE_INITS` rows for a model and its new users."""
        def rows(model, users):
            return warm_up.mean_user_rows(model, active_index,
                                             profile_keys(active_users, fields),
                                             profile_keys(users, fields))
        return rows

    def protocol(users: np.ndarray, generator: list[np.ndarray] | None,
                 reference=None) -> dict:
        """Cold start and warm-up a-c for `users`: random init when `generator` and
        `reference` (a function of the model and the users) are None."""
        mine = np.where(np.isin(user, users), batches, "")
        index = np.searchsorted(vocabulary, users) + 1
        first_rows = np.array([first_row[u] for u in users])
        held = np.flatnonzero(mine == warm_up.HELD_OUT)
        model = load_trained(model_dir)
        if generator is not None:
            model.gating.generator.set_weights(generator)
        profile = data_lib.lookup_columns(model.lookup, part(first_rows))["ids"][
            :, model.profile_columns]
        if reference is not None:
            warm_up.set_user_rows(model, index, reference(model, users))
        else:
            warm_up.initialise_new_users(model, index, profile, generator is not None, seed)
        warming = warm_up.WarmUp(model, index, learning_rate=COLD_START_WARMUP_LR)
        phases = {}
        for phase in (None, *warm_up.PHASES):
            if phase is not None:
                rows = np.flatnonzero(mine == phase)
                warming.fit(data_lib.lookup_columns(model.lookup, part(rows)), label[rows],
                            seed=seed)
            cutoff = warm_up.phase_cutoffs(user, timestamp, mine, phase)
            ids = data_lib.lookup_columns(model.lookup,
                                          part(held, data["click_histories"](cutoff)))
            phases[phase or "cold"] = evaluate_ids(model, ids, label[held])
        return phases

    users = data["user_parts"]
    results = {"random": {p: protocol(users[p], None) for p in users}, "meta": {},
               "reference": {name: {p: protocol(users[p], None, reference_rows(fields))
                                    for p in users}
                             for name, fields in COLD_START_REFERENCE_INITS.items()}}
    for setting in COLD_START_GENERATORS:
        weights = generator_weights_of(model_dir, splits, setting, seed)
        results["meta"][_generator_name(setting)] = {p: protocol(users[p], weights)
                                                     for p in users}
    return results


def protocol_data(runner: Runner) -> dict:
    """ML-100K's rows, the new users, their batches, and the click histories."""
    from tfrs_userlevel.cold_start import warm_up
    from tfrs_userlevel.datasets import behavior

    loaded = datasets.load_splits("movielens_100k", "time", runner.data_dir)
    columns = {k: np.concatenate([loaded[s][k] for s in loaded]) for k in loaded["train"]}
    user, timestamp, item = columns["user_id"], columns["timestamp"], columns["item_id"]
    counts = np.bincount(user)
    low, high = COLD_START_NEW_USERS
    new_users = np.flatnonzero((counts >= low) & (counts <= high))
    batches = warm_up.new_user_batches(user, timestamp, item, new_users, COLD_START_K)
    # Half of the new users choose the generator setting, the other half report it.
    shuffled = np.random.default_rng(7).permutation(new_users)
    user_parts = {"validation": np.sort(shuffled[:len(shuffled) // 2]),
                  "test": np.sort(shuffled[len(shuffled) // 2:])}

    def click_histories(cutoff):
        return behavior.click_histories(user, item, columns["label"], timestamp, cutoff,
                                        COLD_START_HISTORY)

    return {"columns": columns, "batches": batches, "new_users": new_users,
            "user_parts": user_parts, "histories": click_histories(timestamp),
            "click_histories": click_histories}


def udg_cold_start(runner: Runner, seeds: Sequence[int], command: str) -> Iterator[dict]:
    from tfrs_userlevel.cold_start import warm_up

    data = protocol_data(runner)
    columns, batches, user_parts = data["columns"], data["batches"], data["user_parts"]
    user = columns["user_id"]
    per_seed = {seed: _cold_start_seed(runner, seed, data) for seed in seeds}
    phases = ("cold", *warm_up.PHASES)

    def mean_auc(results_of, part, phase=None):
        return float(np.mean([results_of(s)[part][p]["auc"] for s in seeds
                              for p in ([phase] if phase else phases)]))

    selection = []
    for setting in COLD_START_GENERATORS:
        name = _generator_name(setting)
        selection.append({"generator": name, "rows": "train", **setting,
                          "validation_auc": {p: mean_auc(
                              lambda s, n=name: per_seed[s]["meta"][n], "validation", p)
                              for p in phases},
                          "validation_auc_mean": mean_auc(
                              lambda s, n=name: per_seed[s]["meta"][n], "validation")})
    random_validation = {p: mean_auc(lambda s: per_seed[s]["random"], "validation", p)
                         for p in phases}
    chosen = max(selection, key=lambda r: r["validation_auc_mean"])["generator"]
    held_rows = {p: int(np.isin(user[batches == warm_up.HELD_OUT], user_parts[p]).sum())
                 for p in user_parts}
    reference_validation = {name: {p: mean_auc(lambda s, n=name: per_seed[s]["reference"][n],
                                               "validation", p) for p in phases}
                            for name in COLD_START_REFERENCE_INITS}
    for condition in ("random", "meta", *COLD_START_REFERENCE_INITS):
        def results_of(s, c=condition):
            if c in ("random", "meta"):
                return per_seed[s]["random"] if c == "random" else per_seed[s]["meta"][chosen]
            return per_seed[s]["reference"][c]
        for phase in phases:
            auc = [results_of(s)["test"][phase]["auc"] for s in seeds]
            logloss = [results_of(s)["test"][phase]["logloss"] for s in seeds]
            r = {"dataset": "movielens_100k", "model": f"PNN+UDG, {condition} init",
                 "init": condition,
                 "backbone": COLD_START_BACKBONE, "user_level": "udg", "strategy": None,
                 "phase": phase, "seeds": list(seeds), "test_auc": auc, "test_logloss": logloss,
                 "auc_mean": float(np.mean(auc)), "logloss_mean": float(np.mean(logloss)),
                 "auc_std": float(np.std(auc, ddof=1)) if len(auc) > 1 else 0.0,
                 "p_value": None, "p_value_vs": None, "command": command,
                 "new_users": int(len(user_parts["test"])),
                 "held_out_rows": held_rows["test"]}
            if condition == "meta":
                r["generator"] = chosen
                r["generator_selection"] = selection
                r["random_validation_auc"] = random_validation
                r["reference_validation_auc"] = reference_validation
                r["validation_new_users"] = int(len(user_parts["validation"]))
                r["validation_held_out_rows"] = held_rows["validation"]
            if condition != "random" and len(seeds) > 1:
                random_auc = [per_seed[s]["random"]["test"][phase]["auc"] for s in seeds]
                r["p_value"] = one_sided_ttest(auc, random_auc)
                r["p_value_vs"] = "random init"
            yield r


def cold_start_table(rows: Sequence[dict]) -> str:
    """The UDG paper's Table 5 layout: AUC / LogLoss per phase, with and without meta, on
    the test new users; then the generator settings on the validation new users."""
    phases = ["cold", "a", "b", "c"]
    lines = ["Test new users:", "",
             "| init | " + " | ".join(f"{p if p == 'cold' else 'warm-up ' + p} AUC (LogLoss)"
                                      for p in phases) + " |", "|---" * 5 + "|"]
    for condition in ("random", "meta", *COLD_START_REFERENCE_INITS):
        cells = []
        for p in phases:
            r = next((x for x in rows if x["phase"] == p and x.get("init") == condition), None)
            cells.append("" if r is None else f"{r['auc_mean']:.4f} ({r['logloss_mean']:.4f})"
                         + (f", p={r['p_value']:.2g}" if r["p_value"] is not None else ""))
        lines.append(f"| {condition} | " + " | ".join(cells) + " |")
    meta = next((x for x in rows if x.get("generator_selection")), None)
    if meta is not None:
        lines += ["", f"Generator settings on the validation new users (mean AUC over "
                  f"seeds; chosen: {meta['generator']}):", "",
                  "| init | " + " | ".join(phases) + " | mean |", "|---" * 6 + "|"]
        random = meta["random_validation_auc"]
        lines.append("| random | " + " | ".join(f"{random[p]:.4f}" for p in phases)
                     + f" | {np.mean(list(random.values())):.4f} |")
        for name, values in meta.get("reference_validation_auc", {}).items():
            lines.append(f"| {name} | " + " | ".join(f"{values[p]:.4f}" for p in phases)
                         + f" | {np.mean(list(values.values())):.4f} |")
        for r in meta["generator_selection"]:
            lines.append(f"| meta, {r['generator']} | "
                         + " | ".join(f"{r['validation_auc'][p]:.4f}" for p in phases)
                         + f" | {r['validation_auc_mean']:.4f} |")
    return "\n".join(lines)
