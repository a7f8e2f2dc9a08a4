"""The SYNTHETIC cold-start world for UDG's meta-embedding, declared before its run.

The world: `AttributeWeightingWorld(**WORLD)`, the UDG world with every user's
weights positive (where UDG's gates beat the MLP) and a user's taste
predictable from its profile up to individual noise: 8 segments, segment
weights of std 1, individual noise of std 0.3. The profile is the segment.

`NEW_USERS` users, drawn once, never appear in base or generator training.
The base model (MLP + UDG with the meta generator, otherwise `TrainConfig`'s
defaults) trains on the other users' rows. Each new user has rows of its
own, in order: warm-up batches a, b, c of `K` rows each, then
`HELD_OUT_ROWS` held-out rows. Half of the new users choose α, the other
half report (`matched_cold_start`).

What would show the meta-embedding works: the generator above random
initialisation with p < 0.05 (one-sided, 5 seeds) at cold start and after
each of warm-ups a, b, c. The active-user mean and the profile mean are the
initialisations that learn nothing; the generator can at best find the
profile mean's information, so it is not expected to beat the profile mean.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from tfrs_userlevel.datasets.planted import SEGMENT, AttributeWeightingWorld
from tfrs_userlevel.experiments import matched_cold_start as matched
from tfrs_userlevel.experiments.runner import MissingRunError

WORLD = {"seed": 1, "segments": 8, "individual": 0.3, "signed": False}
NEW_USERS = 300
K = 10
HELD_OUT_ROWS = 40
TRAIN_ROWS, VALIDATION_ROWS = 240_000, 30_000
BASE = {"dataset": "planted_cold_start", "user_level": "udg", "meta": True, "meta_steps": 0}
NAME = "planted_cold_start"


def cold_start_world() -> dict:
    """The world, its active users' splits, and the new users' rows (0-based users)."""
    world = AttributeWeightingWorld(**WORLD)
    rng = np.random.default_rng([WORLD["seed"], 3])
    new = np.sort(rng.choice(world.users, NEW_USERS, replace=False))
    active = np.setdiff1d(np.arange(world.users), new)
    train = world.columns(TRAIN_ROWS, 0, active)
    validation = world.columns(VALIDATION_ROWS, 1, active)
    per_user = 3 * K + HELD_OUT_ROWS
    rows = world.rows_for(np.repeat(new, per_user), part=5)
    rank = np.tile(np.arange(per_user), len(new))
    batch = np.where(rank < K, "a", np.where(rank < 2 * K, "b",
                                             np.where(rank < 3 * K, "c", "held_out")))
    parts = np.random.default_rng([WORLD["seed"], 4]).permutation(new + 1)
    return {"world": world, "splits": {"train": train, "validation": validation,
                                       "test": validation},
            "new_rows": rows, "batch": batch, "new_users": new + 1,
            "parts": {"validation": np.sort(parts[:len(parts) // 2]),
                      "test": np.sort(parts[len(parts) // 2:])}}


def _seed_results(runs_dir: Path, seed: int, data: dict, train: bool) -> dict:
    """{α: `matched.evaluate_inits` output, "norms": {...}} of one seed (cached as JSON)."""
    from tfrs_userlevel import data as data_lib
    from tfrs_userlevel.cold_start.meta_training import MetaEmbeddingTrainer
    from tfrs_userlevel.cold_start.warm_up import mean_rows_by_key
    from tfrs_userlevel.training import TrainConfig, load_trained, run

    folder = runs_dir / NAME / f"seed_{seed}"
    saved = folder / "results.json"
    if saved.exists():
        loaded = json.loads(saved.read_text())
        return {**{float(a): v for a, v in loaded.items() if a != "norms"},
                "norms": loaded["norms"]}
    if not train:
        raise MissingRunError(f"no finished planted cold-start run (seed {seed}) in {folder}; "
                              "run without --from-runs to train it")
    model_dir = folder / "model"
    if not (model_dir / "metrics.json").exists():
        print(f"[train] planted cold-start base model, seed {seed} -> {model_dir}", flush=True)
        run(TrainConfig(**BASE, seed=seed), data["splits"], data["world"].feature_spec,
            model_dir, verbose=0)
    train_rows = data["splits"]["train"]
    new_rows, batch, users = data["new_rows"], data["batch"], data["new_users"]
    model = load_trained(model_dir)
    train_ids = data_lib.lookup_columns(model.lookup, train_rows)
    new_ids = data_lib.lookup_columns(model.lookup, new_rows)
    first_new = np.searchsorted(new_rows["user_id"], users)   # rows are grouped by user
    profile = new_ids["ids"][first_new][:, model.profile_columns]
    active, first_active = np.unique(train_rows["user_id"], return_index=True)
    active_index = train_ids["ids"][first_active, model.user_column] - model.user_offset
    trained = model.gating.user_table.embeddings.numpy()[active_index]
    width = trained.shape[1]
    inits = {"random": np.random.default_rng(seed).normal(0.0, 0.01, (len(users), width)),
             "active-user mean": np.repeat(trained.mean(0, keepdims=True), len(users), 0),
             "profile mean": mean_rows_by_key(trained, train_rows[SEGMENT][first_active],
                                              new_rows[SEGMENT][first_new])}

    def rows_of(selected):
        keep = np.flatnonzero(selected)
        return ({k: v[keep] for k, v in new_ids.items()}, new_rows["label"][keep],
                new_rows["user_id"][keep])

    warm_ups = {p: rows_of(batch == p) for p in ("a", "b", "c")}
    held = rows_of(batch == "held_out")
    out: dict = {"norms": {"trained": float(np.linalg.norm(trained, axis=1).mean())}}
    for alpha in matched.ALPHAS:
        model = load_trained(model_dir)
        MetaEmbeddingTrainer(model, alpha=alpha, beta=matched.META_BETA, seed=seed).fit(
            train_ids, train_rows["label"], np.arange(len(train_rows["label"])),
            matched.META_STEPS)
        generated = model.gating.generator(profile).numpy()
        out["norms"][f"generated, α {alpha:g}"] = float(np.linalg.norm(generated, axis=1).mean())
        out[alpha] = matched.evaluate_inits(model, users, {"meta": generated, **inits}, alpha,
                                            warm_ups, lambda phase: held, data["parts"])
    folder.mkdir(parents=True, exist_ok=True)
    saved.write_text(json.dumps({str(k): v for k, v in out.items()}, indent=1))
    return out


def planted_cold_start(runs_dir: Path, seeds: Sequence[int], command: str, train: bool = True
                       ) -> Iterator[dict]:
    """The rows of the planted cold-start table (`matched.matched_rows`)."""
    data = cold_start_world()
    per_seed = {s: _seed_results(Path(runs_dir), s, data, train) for s in seeds}
    yield from matched.matched_rows(*matched.split_norms(per_seed), NAME, "MLP+UDG", command,
                                    extra={"world": WORLD, "new_users": NEW_USERS, "k": K})
