"""Experiment tables with the paper's significance protocol (N seeds, one-sided t-test).

  python experiments.py compare --a "--user-level none" --b "--user-level gprec" \\
      --seeds 2024 2025 2026 2027 2028               # any two train.py configurations
  python experiments.py ml1m_gprec                    # GPRec(MLP), 3 strategies vs MLP
  python experiments.py ml1m_gprec_ablation           # GPRec-1..5 vs GPRec
  python experiments.py ml1m_gprec_hparams            # curves over G and τ (PNG + table)
  python experiments.py ml1m_backbones                # every backbone, GPRec on four (3 seeds)
  python experiments.py ml1m_gprec_backbones          # GPRec (detached ensemble) on those four
  python experiments.py ml1m_baselines                # MMoE ... DGPM vs MLP and GPRec (3 seeds)
  python experiments.py diversity --model-dir DIR     # RQ5 heatmap of the group embeddings
  python experiments.py by_activity --a ... --b ...   # test AUC of A and B by user activity
  python experiments.py gprec_scales --model-dir DIR  # scale of what GPRec reads and makes
  python experiments.py ensemble_heads --model-dir DIR  # val AUC of each ensemble head

Every run lands in --runs-dir/<configuration>/seed_<seed>/ (train.py's
outputs). A run whose metrics.json exists with the identical config is
reused, so an interrupted table resumes where it stopped. Tables are written
to results/STUDY/NAME.md and NAME.json (one row per model; `STUDIES`).

p-values: Welch's one-sided two-sample t-test (scipy.stats.ttest_ind,
equal_var=False, alternative="greater") of the candidate's per-seed test AUCs
against the reference's: H1 = the candidate's mean AUC is higher.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shlex
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

import tfrs_userlevel  # noqa: F401  (selects Keras 2 before anything imports TensorFlow)
import tfrs_userlevel.cli.train as train
from tfrs_userlevel import datasets
from tfrs_userlevel.monitoring import cosine_similarity
from tfrs_userlevel.significance import one_sided_ttest, paired_one_sided_ttest
from tfrs_userlevel.training import GPREC_OPTIONS, TrainConfig, run, write_json_atomic

REPO = Path(__file__).resolve().parent
RESULTS = REPO / "results"
# Each result table belongs to one study, a folder of results/ (the first study with a
# prefix of the table's name; a name of no study is a study of its own).
STUDIES = {
    "mlp": ("ml1m_mlp",),
    "gprec_backbones": ("ml1m_gprec_backbones", "ml1m_gprec_dcn_", "ml1m_gprec_destine_",
                        "ml1m_gprec_finalmlp_"),
    "gprec_ablation": ("ml1m_gprec_ablation",),
    "gprec_hparams": ("ml1m_gprec_hparams",),
    "gprec_diversity": ("ml1m_gprec_diversity", "ml1m_gprec1_diversity"),
    "gprec_by_activity": ("ml1m_gprec_by_activity",),
    "gprec": ("ml1m_gprec",),
    "backbones": ("ml1m_backbones",),
    "baselines": ("ml1m_baselines", "ml1m_dgpm_kernel", "ml1m_mmoe_one_expert"),
    "udg_cold_start": ("udg_cold_start",),
    "udg": ("udg",),
}


def study_of(name: str) -> str:
    return next((study for study, prefixes in STUDIES.items()
                 if name.startswith(prefixes)), name)


def result_path(name: str, suffix: str) -> Path:
    """results/STUDY/NAME.SUFFIX, its folder created."""
    folder = RESULTS / study_of(name)
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{name}{suffix}"
FIVE_SEEDS = [2024, 2025, 2026, 2027, 2028]
GROUPS = [3, 7, 20, 40, 60, 80, 100, 1000]
TEMPERATURES = [0.1, 0.2, 0.4, 0.5, 0.6, 0.8, 1.0]


# Run folders are named by what differs from this fixed configuration (train.py's defaults
# when the first tables were made; GPRec's strategy default was "input" then).
# Frozen at those values: GPRec's input strategy with the 64-32-16 MLP_pred and the embeddings
# trained by every loss (train.py's GPRec defaults differ now).
# Frozen too: the per-group 4-unit classifier (train.py's default is the shared one).
FOLDER_BASELINE = {**TrainConfig().to_dict(), "strategy": "input",
                   "prediction_units": [64, 32, 16], "stop_embedding_gradient": False,
                   "classifier_shared": False, "classifier_units": [4],
                   "head_units": [64, 32, 16], "individual_units": [64],
                   "ensemble_weights": "equal", "ensemble_backbone_gradient": True,
                   "gprec_dropout": 0.0, "schedule_monitor": "auc"}
# The ensemble strategy as the paper averages it (equal weights, the average trains the
# backbone), without dropout in GPRec's MLPs and with an MLP_p head as wide as the
# backbone's MLP: the earlier defaults of train.py's ensemble, pinned in the tables made
# with them (each with the default --hidden-units 64 32 16).
PAPER_ENSEMBLE = ["--ensemble-weights", "equal", "--ensemble-backbone-gradient",
                  "--gprec-dropout", "0", "--prediction-units", "64", "32", "16"]
# The paper's per-group classifier MLPs (eq. 2), pinned in the tables made with it.
PER_GROUP_CLASSIFIER = ["--no-classifier-shared"]
# The group head as wide as the backbone's MLP and a 64-unit MLP_p, pinned in every table
# made with them (train.py's defaults are one 16-unit layer each).
WIDE_HEADS = ["--head-units", "64", "32", "16", "--individual-units", "64"]
# The paper's form of GPRec that the ml1m_gprec, ablation and hyper-parameter tables use,
# written out so that they do not follow train.py's defaults.
PAPER_GPREC = ["--no-stop-embedding-gradient", *PER_GROUP_CLASSIFIER, *WIDE_HEADS,
               *PAPER_ENSEMBLE]
PAPER_INPUT_MLP = ["--prediction-units", "64", "32", "16"]


SLUG_LIMIT = 255  # longest run folder name (a file system limit); longer ones end in a hash

# Options added after runs were cached, with the value those runs had.
LATER_OPTIONS = {"backbone_options": {}, "baseline": None, "baseline_options": {},
                 "deterministic": False, "distribute": "default", "history_length": 0,
                 "udg_dim": None, "udg_units": [64, 32], "gate_scale": 1.0, "udg_l2": 0.0,
                 "udg_stop_item_gradient": False, "udg_layers": None, "meta": False,
                 "meta_steps": 300,
                 "classifier_shared": False, "residual": False,
                 "stop_embedding_gradient": False, "head_units": None,
                 "individual_units": [64], "gprec_base": "hidden",
                 "group_init_stddev": None, "noisy_prediction": True,
                 "ensemble_weights": "equal", "ensemble_backbone_gradient": True,
                 "schedule_monitor": "auc"}


def effective(config: dict) -> dict:
    """The options that shape the run: GPRec's are dropped when it is off."""
    config = {**LATER_OPTIONS, **config}
    if "gprec" not in config.get("user_level", "none"):
        return {k: v for k, v in config.items() if k not in GPREC_OPTIONS}
    for name in ("prediction_units", "head_units"):  # None: hidden_units (as recorded
        if config.get(name) is None:                  # by the earliest runs)
            config[name] = list(config["hidden_units"])
    return config


class Runner:
    """Trains (or reuses) one train.py configuration per seed."""

    def __init__(self, runs_dir: Path, data_dir: str | None, common: Sequence[str] = ()):
        self.runs_dir = Path(runs_dir)
        self.data_dir = data_dir
        self.common = list(common)
        self._splits: dict[str, dict] = {}

    @staticmethod
    def _slug(config: dict, seed: int) -> str:
        """Folder name from the options that differ from `FOLDER_BASELINE`, so that two
        spellings of one configuration share their runs, and a later change of
        train.py's defaults does not move finished runs."""
        changed = [f"{k}={v}" for k, v in sorted(effective(config).items())
                   if k != "seed" and v != FOLDER_BASELINE.get(k)]
        text = "_".join(changed) or "defaults"
        slug = re.sub(r"[^A-Za-z0-9.=_+-]+", "_", text.replace(" ", ""))
        if len(slug) > SLUG_LIMIT:  # file systems cap a name at 255 bytes
            digest = hashlib.sha1(slug.encode()).hexdigest()[:16]
            slug = f"{slug[:SLUG_LIMIT - 17]}_{digest}"
        return slug

    def _resolve(self, args: Sequence[str], seed: int):
        """(parsed train.py args, TrainConfig, run folder) of one configuration and seed."""
        parsed = train.parse_args(self.common + list(args) + ["--model-dir", "unused"])
        config = train.config_from_args(parsed, seed)
        return parsed, config, self.runs_dir / self._slug(config.to_dict(), seed) / f"seed_{seed}"

    def run_dir(self, args: Sequence[str], seed: int) -> Path:
        """The folder of one configuration's run for `seed`."""
        return self._resolve(args, seed)[2]

    def metrics(self, args: Sequence[str], seed: int) -> dict:
        argv = self.common + list(args)
        parsed, config, model_dir = self._resolve(args, seed)
        done = model_dir / "metrics.json"
        if done.exists():
            metrics = json.loads(done.read_text())
            if effective(metrics.get("config", {})) == effective(config.to_dict()):
                return metrics
        key = (parsed.dataset, parsed.split, parsed.history_length)
        if key not in self._splits:
            self._splits.clear()  # one dataset in memory at a time
            self._splits[key] = datasets.load_splits(
                parsed.dataset, parsed.split, self.data_dir,
                history_length=parsed.history_length)
        print(f"[train] {' '.join(argv)} --seed {seed} -> {model_dir}", flush=True)
        return run(config, self._splits[key],
                   datasets.feature_spec(parsed.dataset, history_length=parsed.history_length),
                   model_dir, verbose=0)

    def seeds(self, args: Sequence[str], seeds: Sequence[int]) -> dict[int, dict]:
        return {seed: self.metrics(args, seed) for seed in seeds}


def row(name: str, args: Sequence[str], results: dict[int, dict], command: str,
        reference: tuple[str, dict[int, dict]] | None = None) -> dict:
    """One results row, with the p-value against `reference`."""
    config = next(iter(results.values()))["config"]
    auc = [r["test"]["auc"] for r in results.values()]
    logloss = [r["test"]["logloss"] for r in results.values()]
    out = {
        "dataset": config["dataset"], "model": name, "backbone": config["backbone"],
        "user_level": config["user_level"],
        "strategy": config["strategy"] if config["user_level"] == "gprec" else None,
        "seeds": list(results), "test_auc": auc, "test_logloss": logloss,
        "auc_mean": float(np.mean(auc)), "logloss_mean": float(np.mean(logloss)),
        "auc_std": float(np.std(auc, ddof=1)) if len(auc) > 1 else 0.0,
        "val_auc": [r["val"]["auc"] for r in results.values()],
        "val_auc_mean": float(np.mean([r["val"]["auc"] for r in results.values()])),
        "epochs": [r["epochs"] for r in results.values()],
        "p_value": None, "p_value_vs": None, "args": list(args), "command": command,
    }
    if reference is not None:
        ref_name, ref_results = reference
        out["p_value"] = one_sided_ttest(auc, [r["test"]["auc"] for r in ref_results.values()])
        out["p_value_vs"] = ref_name
        if list(ref_results) == list(results):  # the same seeds: also the paired test
            out["p_value_paired"] = paired_one_sided_ttest(
                auc, [ref_results[seed]["test"]["auc"] for seed in results])
    return out


def markdown_table(rows: Sequence[dict]) -> str:
    lines = ["| model | args | seeds | val AUC | test AUC (mean ± std) | test LogLoss | "
             "p (one-sided) vs |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        p = "" if r["p_value"] is None else f"{r['p_value']:.2g} vs {r['p_value_vs']}"
        if r.get("p_value_paired") is not None:
            p += f" (paired by seed: {r['p_value_paired']:.2g})"
        model = r["model"] + (f", {r['phase']}" if r.get("phase") else "")
        val = "" if r.get("val_auc_mean") is None else f"{r['val_auc_mean']:.4f}"
        lines.append(
            f"| {model} | `{' '.join(r.get('args', [])) or '(defaults)'}` | {len(r['seeds'])} | "
            f"{val} | {r['auc_mean']:.4f} ± {r['auc_std']:.4f} | "
            f"{r['logloss_mean']:.4f} | {p} |")
    return "\n".join(lines)


READING = "\n## Reading\n"


def write_table(name: str, title: str, rows: list[dict], command: str,
                extra: str = "") -> None:
    """Writes results/STUDY/NAME.json and NAME.md (with `extra` markdown after the table); a
    hand-written "## Reading" section at the end of an existing NAME.md is kept."""
    write_json_atomic(result_path(name, ".json"), rows)
    text = f"# {title}\n\nRegenerate: `{command}`\n\n{markdown_table(rows)}\n"
    if extra:
        text += f"\n{extra}\n"
    write_keeping_reading(result_path(name, ".md"), text)
    print(text)


def write_keeping_reading(path: Path, text: str) -> None:
    """Writes `text` to `path`, keeping the hand-written "## Reading" section at the end of
    the file it replaces."""
    old = path.read_text() if path.exists() else ""
    path.write_text(text + (old[old.index(READING):] if READING in old else ""))


# -- tables ------------------------------------------------------------------

ML1M = ["--dataset", "movielens_1m"]


def ml1m_gprec(runner: Runner, seeds: Sequence[int], command: str) -> Iterator[dict]:
    mlp_args = ["--user-level", "none"]
    mlp = runner.seeds(mlp_args, seeds)
    yield row("MLP", mlp_args, mlp, command)
    for strategy in ("input", "dp", "ensemble"):
        args = (["--user-level", "gprec", "--strategy", strategy, *PAPER_GPREC]
                + (PAPER_INPUT_MLP if strategy == "input" else []))
        yield row(f"GPRec(MLP) {strategy}", args, runner.seeds(args, seeds), command,
                  reference=("MLP", mlp))


def ml1m_gprec_ablation(runner: Runner, seeds: Sequence[int], command: str) -> Iterator[dict]:
    full_args = ["--user-level", "gprec", "--strategy", "input", *PAPER_GPREC, *PAPER_INPUT_MLP]
    full = runner.seeds(full_args, seeds)
    yield row("GPRec(MLP)", full_args, full, command)
    for variant in ("gprec-1", "gprec-2", "gprec-3", "gprec-4", "gprec-5"):
        args = full_args + ["--ablation", variant]
        # Reverse test: is the full model better than the variant?
        results = runner.seeds(args, seeds)
        r = row(variant.upper(), args, results, command)
        r["p_value"] = one_sided_ttest([m["test"]["auc"] for m in full.values()],
                                       r["test_auc"])
        r["p_value_vs"] = "GPRec(MLP) (H1: GPRec better)"
        yield r


def ml1m_gprec_hparams(runner: Runner, seeds: Sequence[int], command: str) -> Iterator[dict]:
    mlp_args = ["--user-level", "none"]
    yield row("MLP", mlp_args, runner.seeds(mlp_args, seeds), command)
    # τ first, then G: G = 1000 is by far the slowest run and comes last.
    for temperature in TEMPERATURES:
        args = ["--user-level", "gprec", "--strategy", "input", *PAPER_GPREC,
                *PAPER_INPUT_MLP, "--temperature", str(temperature)]
        yield row(f"GPRec τ={temperature}", args, runner.seeds(args, seeds), command)
    for groups in GROUPS:
        args = ["--user-level", "gprec", "--strategy", "input", *PAPER_GPREC,
                *PAPER_INPUT_MLP, "--groups", str(groups)]
        yield row(f"GPRec G={groups}", args, runner.seeds(args, seeds), command)


# Best test AUC an established library reaches on this split with the same
# hyper-parameters (docs/reproducing.md); the bar is mean >= target - 0.001.
LIBRARY_AUC = {"mlp": 0.8180, "deepfm": 0.8197, "dcn": 0.8191, "dcnv2": 0.8192,
               "gdcn": 0.8191, "finalmlp": 0.8183, "destine": 0.8172}
ZOO = ["mlp", "wd", "deepfm", "ipnn", "opnn", "dcn", "dcnv2", "gdcn", "finalmlp", "destine"]
ZOO_WITH_GPREC = ["gdcn", "dcn", "finalmlp", "destine"]  # the paper's Table III
# GPRec's configuration on these backbones: the best validation AUC of six tried on GDCN,
# seed 2024 (results/backbones/ml1m_backbones.md, "Choosing GPRec's configuration").
ZOO_GPREC_ARGS = ["--strategy", "ensemble", "--stop-embedding-gradient", *PER_GROUP_CLASSIFIER,
                  *WIDE_HEADS, *PAPER_ENSEMBLE]
BACKBONE_NAMES = {"mlp": "MLP", "wd": "W&D", "deepfm": "DeepFM", "ipnn": "IPNN",
                  "opnn": "OPNN", "dcn": "DCN", "dcnv2": "DCNv2", "gdcn": "GDCN",
                  "finalmlp": "FinalMLP", "destine": "DESTINE", "din": "DIN", "dien": "DIEN"}


def backbone_rows(runner: Runner, seeds: Sequence[int], command: str,
                  backbones: Sequence[str], gprec_args: Sequence[str],
                  with_gprec: Sequence[str]) -> Iterator[dict]:
    """Each backbone alone, each of `with_gprec` followed by GPRec on it with
    `gprec_args` (its p-value against the backbone alone)."""
    for backbone in backbones:
        args = ["--backbone", backbone, "--user-level", "none"]
        name = BACKBONE_NAMES[backbone]
        plain = runner.seeds(args, seeds)
        r = row(name, args, plain, command)
        r["library_auc"] = LIBRARY_AUC.get(backbone)
        yield r
        if backbone in with_gprec:
            args = ["--backbone", backbone, "--user-level", "gprec", *gprec_args]
            yield row(f"GPRec({name})", args, runner.seeds(args, seeds), command,
                      reference=(name, plain))


def ml1m_backbones(runner: Runner, seeds: Sequence[int], command: str) -> Iterator[dict]:
    # Each Table III backbone is followed by GPRec on it, so that a partial table
    # already answers "does GPRec improve it"; the other backbones come last.
    order = ZOO_WITH_GPREC + [b for b in ZOO if b not in ZOO_WITH_GPREC]
    yield from backbone_rows(runner, seeds, command, order, ZOO_GPREC_ARGS, ZOO_WITH_GPREC)


# GPRec on the Table III backbones: the zoo's setting with learned ensemble
# weights and no gradient from the average into the backbone (chosen on DCN validation,
# seed 2024; results/backbones/ml1m_backbones.md).
DETACHED_ENSEMBLE_ARGS = [*ZOO_GPREC_ARGS, "--ensemble-weights", "learned",
                          "--no-ensemble-backbone-gradient", "--schedule-monitor", "auc"]


def ml1m_gprec_backbones(runner: Runner, seeds: Sequence[int], command: str
                         ) -> Iterator[dict]:
    """Each Table III backbone alone, then GPRec on it with `DETACHED_ENSEMBLE_ARGS`."""
    yield from backbone_rows(runner, seeds, command, ZOO_WITH_GPREC, DETACHED_ENSEMBLE_ARGS,
                             ZOO_WITH_GPREC)


# The lower half of the GPRec paper's Table II: each user-modeling baseline on the MLP,
# in the order the paper lists them, plus PPNet alone (the form an established library
# ships). PAPER_AUC: the paper's ML-1M numbers (docs/reproducing.md).
BASELINE_ROWS = [
    ("MMoE", ["--baseline", "mmoe"]),
    ("PLE", ["--baseline", "ple"]),
    ("STAR", ["--baseline", "star"]),
    # Self-wise condition: the best of five APG settings on validation (seed 2024).
    ("APG", ["--baseline", "apg", "--baseline-options", '{"condition": "self"}']),
    ("PEPNet", ["--baseline", "pepnet"]),
    ("PPNet", ["--baseline", "pepnet", "--baseline-options", '{"epnet": false}']),
    # Key strength 1 and a weight matrix per group: the best of eight DGPM settings on
    # validation (seed 2024; results/baselines/ml1m_baselines.md).
    ("DGPM", ["--baseline", "dgpm", "--baseline-options",
              '{"initial_strength": 1.0, "group_parameters": "kernel"}']),
]
PAPER_AUC = {"MLP": 0.8081, "MMoE": 0.8081, "PLE": 0.8088, "STAR": 0.8095, "APG": 0.8090,
             "PEPNet": 0.8082, "DGPM": 0.8086, "GPRec(MLP)": 0.8141}
BASELINE_LIBRARY_AUC = {"MLP": 0.8180, "APG": 0.8198, "PPNet": 0.8172}


def network_parameters(model_dir: Path) -> int:
    """Trainable parameters of a finished run's model outside the embedding tables."""
    from tfrs_userlevel import keras

    model = keras.layers.deserialize(json.loads((model_dir / "model.json").read_text()))
    model(model.example_features())
    tables = [model.embedding] + ([model.first_order] if model.first_order is not None else [])
    skip = {id(v) for layer in tables for v in layer.trainable_variables}
    return int(sum(np.prod(v.shape) for v in model.trainable_variables if id(v) not in skip))


def all_parameters(model_dir: Path) -> int:
    """Every trainable parameter of a finished run's model, embedding tables included
    (the count of the UDG paper's Table 3)."""
    from tfrs_userlevel import keras

    model = keras.layers.deserialize(json.loads((model_dir / "model.json").read_text()))
    model(model.example_features())
    return int(sum(np.prod(v.shape) for v in model.trainable_variables))


# The UDG paper's five base models (PNN = IPNN), and the data each is compared on:
# ML-100K with the time split and the last 20 clicks as behavior feature (batch 4096: the
# best validation AUC of IPNN among 4096, 1024 and 256, seed 2024), then ML-1M's canonical
# random split, where a click history cannot be used (datasets/behavior.py): UDG there
# gates with the item and the user only, and DIN/DIEN, which need the history, are left out.
UDG_BACKBONES = ["ipnn", "deepfm", "wd", "din", "dien"]
UDG_DATASETS = [
    ("ML-100K", ["--dataset", "movielens_100k", "--split", "time", "--history-length", "20"],
     UDG_BACKBONES),
    ("ML-1M", ["--dataset", "movielens_1m"], ["ipnn", "deepfm", "wd"]),
]
UDG_PAPER_NAMES = {"ipnn": "PNN"}


def udg(runner: Runner, seeds: Sequence[int], command: str) -> Iterator[dict]:
    for label, data_args, backbones in UDG_DATASETS:
        for backbone in backbones:
            name = f"{UDG_PAPER_NAMES.get(backbone, BACKBONE_NAMES[backbone])} ({label})"
            base_args = [*data_args, "--backbone", backbone, "--user-level", "none"]
            base = runner.seeds(base_args, seeds)
            rows = [(name, base_args, base, None)]
            doubled = [*base_args, "--embedding-dim", "32"]
            rows.append((f"{name}, embedding 32", doubled, runner.seeds(doubled, seeds),
                         (name, base)))
            gated = [*data_args, "--backbone", backbone, "--user-level", "udg"]
            rows.append((f"{name} + UDG", gated, runner.seeds(gated, seeds), (name, base)))
            for row_name, args, results, reference in rows:
                r = row(row_name, args, results, command, reference=reference)
                r["parameters"] = all_parameters(runner.run_dir(args, seeds[0]))
                yield r


def udg_parameters(rows: Sequence[dict]) -> str:
    """The UDG paper's Table 3 layout: parameters and AUC of base, doubled embedding, UDG."""
    lines = ["## Equal-parameter comparison (UDG paper Table 3)", "",
             "| model | parameters | test AUC | vs base |", "|---|---:|---:|---:|"]
    base = None
    for r in rows:
        if r["p_value_vs"] is None:
            base = r
        delta = "" if base is None or r is base else f"{r['auc_mean'] - base['auc_mean']:+.4f}"
        lines.append(f"| {r['model']} | {r.get('parameters', 0):,} | {r['auc_mean']:.4f} | "
                     f"{delta} |")
    return "\n".join(lines)


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


def _cold_start_seed(runner: Runner, seed: int, data: dict) -> dict:
    """One seed of the cold-start protocol.

    Returns {"random": {part: {phase: {"auc", "logloss"}}}, "meta": {generator name:
    {part: {phase: ...}}}} with part "validation" or "test" (the two halves of the new
    users).
    """
    from tfrs_userlevel import data as data_lib
    from tfrs_userlevel.cold_start import warm_up
    from tfrs_userlevel.cold_start.meta_training import MetaEmbeddingTrainer
    from tfrs_userlevel.features import FeatureSpec
    from tfrs_userlevel.metrics import evaluate_ids
    from tfrs_userlevel.training import load_trained

    columns, batches, new_users, histories = (data["columns"], data["batches"],
                                              data["new_users"], data["histories"])
    user, timestamp, label = columns["user_id"], columns["timestamp"], columns["label"]
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
        print(f"[train] cold-start base model, seed {seed} -> {model_dir}", flush=True)
        run(config, splits, spec, model_dir, verbose=0, vocabularies=vocabularies)

    def generator_weights(setting: dict) -> list[np.ndarray]:
        """Algorithm 1 with `setting` on the frozen base model (cached per setting)."""
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
            trainer.fit(ids, splits[rows]["label"], splits[rows]["timestamp"],
                        setting["steps"])
            np.savez(path, *model.gating.generator.get_weights())
        with np.load(path) as saved:
            return [saved[f"arr_{i}"] for i in range(len(saved.files))]

    active_users = np.unique(user[train_rows])
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
        weights = generator_weights(setting)
        results["meta"][_generator_name(setting)] = {p: protocol(users[p], weights)
                                                     for p in users}
    return results


def udg_cold_start(runner: Runner, seeds: Sequence[int], command: str) -> Iterator[dict]:
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

    data = {"columns": columns, "batches": batches, "new_users": new_users,
            "user_parts": user_parts, "histories": click_histories(timestamp),
            "click_histories": click_histories}
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


# GPRec(MLP) in the baselines table: train.py's GPRec defaults, spelled
# out so that a later change of the defaults does not move the row: the detached,
# learned ensemble with the schedule on the backbone's own AUC, GPRec dropout and a
# linear MLP_p head (results/gprec/ml1m_gprec_tuning.md). An earlier row had
# the wide heads without dropout: [*DETACHED_ENSEMBLE_ARGS, "--schedule-monitor",
# "backbone_auc"].
BASELINE_GPREC_ARGS = ["--strategy", "ensemble", "--ensemble-weights", "learned",
                       "--no-ensemble-backbone-gradient", "--schedule-monitor",
                       "backbone_auc", "--gprec-dropout", "0.2", "--prediction-units"]


def ml1m_baselines(runner: Runner, seeds: Sequence[int], command: str) -> Iterator[dict]:
    mlp_args = ["--user-level", "none"]
    mlp = runner.seeds(mlp_args, seeds)
    gprec_args = ["--user-level", "gprec", *BASELINE_GPREC_ARGS]
    for name, args in [("MLP", mlp_args), *BASELINE_ROWS, ("GPRec(MLP)", gprec_args)]:
        results = mlp if name == "MLP" else runner.seeds(args, seeds)
        r = row(name, args, results, command,
                reference=None if name == "MLP" else ("MLP", mlp))
        r["network_parameters"] = network_parameters(runner.run_dir(args, seeds[0]))
        yield r


def baseline_comparison(rows: Sequence[dict]) -> str:
    """Markdown: each baseline against our MLP, the paper, the library, and GPRec(MLP)."""
    by_name = {r["model"]: r for r in rows}
    mlp, gprec = by_name.get("MLP"), by_name.get("GPRec(MLP)")
    lines = ["| model | parameters outside the embeddings | ours (mean test AUC) | − our MLP | "
             "paper | established library | GPRec(MLP) − model | "
             "p (GPRec better) |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if r["model"] in ("MLP", "GPRec(MLP)"):
            continue
        library = BASELINE_LIBRARY_AUC.get(r["model"])
        paper = PAPER_AUC.get(r["model"])
        cells = [r["model"], f"{r.get('network_parameters', 0):,}", f"{r['auc_mean']:.4f}",
                 f"{r['auc_mean'] - mlp['auc_mean']:+.4f}" if mlp else "",
                 f"{paper:.4f}" if paper else "", f"{library:.4f}" if library else "",
                 f"{gprec['auc_mean'] - r['auc_mean']:+.4f}" if gprec else "",
                 f"{one_sided_ttest(gprec['test_auc'], r['test_auc']):.2g}" if gprec else ""]
        lines.append("| " + " | ".join(cells) + " |")
    for r in rows:
        if r["model"] in ("MLP", "GPRec(MLP)"):
            lines.append(f"\n{r['model']}: {r.get('network_parameters', 0):,} parameters "
                         f"outside the embeddings, mean test AUC {r['auc_mean']:.4f}.")
    return "\n".join(lines)


def library_comparison(rows: Sequence[dict]) -> str:
    """Markdown: each backbone's mean test AUC against the established library's."""
    lines = ["| backbone | ours (mean test AUC) | established library | "
             "ours − library | bar (≥ −0.001) |", "|---|---|---|---|---|"]
    for r in rows:
        if r.get("library_auc") is None:
            continue
        gap = r["auc_mean"] - r["library_auc"]
        lines.append(f"| {r['model']} | {r['auc_mean']:.4f} | {r['library_auc']:.4f} | "
                     f"{gap:+.4f} | {'met' if gap >= -0.001 else 'NOT met'} |")
    return "\n".join(lines)


def plot_hparams(rows: list[dict], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mlp = rows[0]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, key, values, label, log in (
            (axes[0], "G=", GROUPS, "number of groups G", True),
            (axes[1], "τ=", TEMPERATURES, "temperature τ", False)):
        chosen = [r for r in rows if key in r["model"]]
        values = values[:len(chosen)]
        for metric, style in (("auc_mean", "o-"), ("val_auc_mean", "s--")):
            ax.plot(values, [r[metric] for r in chosen], style,
                    label="GPRec " + ("test" if metric == "auc_mean" else "validation"))
        ax.axhline(mlp["auc_mean"], color="gray", ls=":", label="MLP test")
        ax.set_xlabel(label)
        ax.set_ylabel("AUC")
        if log:
            ax.set_xscale("log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"GPRec(MLP) on ML-1M, mean of seeds {mlp['seeds']}")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# -- RQ5 ---------------------------------------------------------------------

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


# -- test AUC by user activity -------------------------------------------------

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


def by_activity(runner: Runner, a: Sequence[str], b: Sequence[str], seeds: Sequence[int],
                name: str | None, command: str) -> list[dict]:
    """Test AUC of configurations A and B within each user-activity bucket, per seed
    (both trained or reused through `runner`), with B − A and Welch's one-sided p."""
    parsed = train.parse_args(runner.common + list(a) + ["--model-dir", "unused"])
    splits = datasets.load_splits(parsed.dataset, parsed.split, runner.data_dir,
                                  history_length=parsed.history_length)
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
    lines = [f"# Test AUC by user activity: B = `{' '.join(b)}` against A = "
             f"`{' '.join(a)}`", "", f"Regenerate: `{command}`", "",
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
        write_json_atomic(result_path(name, ".json"), {"a": list(a), "b": list(b),
                                                     "seeds": list(seeds), "rows": rows,
                                                     "command": command})
        write_keeping_reading(result_path(name, ".md"), text)
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


# -- CLI ---------------------------------------------------------------------

TABLES = {
    "ml1m_gprec": ("GPRec(MLP) on ML-1M: three construction strategies vs MLP", ml1m_gprec),
    "ml1m_gprec_ablation": ("GPRec ablations on ML-1M (paper §IV-C)", ml1m_gprec_ablation),
    "ml1m_gprec_hparams": ("GPRec hyper-parameters on ML-1M (paper §IV-D)", ml1m_gprec_hparams),
    "ml1m_backbones": ("Backbone zoo on ML-1M, and GPRec on DCN, GDCN, DESTINE, FinalMLP "
                       "(paper Table III)", ml1m_backbones),
    "ml1m_gprec_backbones": ("GPRec with learned ensemble weights and no gradient from the "
                             "average into the backbone, on DCN, GDCN, DESTINE, FinalMLP",
                             ml1m_gprec_backbones),
    "udg": ("UDG on five base models (UDG paper Tables 2 and 3): base, doubled embedding, "
            "with UDG", udg),
    "udg_cold_start": ("Meta-learned UDG embeddings for new users on ML-100K (UDG paper "
                       "Table 5 protocol)", udg_cold_start),
    "ml1m_baselines": ("User-modeling baselines on ML-1M (paper Table II, lower half) "
                       "against our MLP and GPRec(MLP)", ml1m_baselines),
}
THREE_SEEDS = [2024, 2025, 2026]


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n", 2)[2])
    p.add_argument("what", choices=["compare", "by_activity", "diversity", "gprec_scales",
                                    "ensemble_heads", *TABLES])
    p.add_argument("--seeds", type=int, nargs="+", default=None,
                   help="default: 5 seeds (2024-2028); ml1m_gprec_hparams: 2024; "
                        "ml1m_backbones, ml1m_gprec_backbones and ml1m_baselines: 2024-2026")
    p.add_argument("--runs-dir", default="runs/experiments")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--a", default="--user-level none",
                   help="compare, by_activity: reference train.py args")
    p.add_argument("--b", default="--user-level gprec",
                   help="compare, by_activity: candidate train.py args")
    p.add_argument("--name", default=None,
                   help="compare, by_activity: also write results/NAME.md/.json; "
                        "gprec_scales, ensemble_heads: results/NAME.json")
    p.add_argument("--train-args", default="",
                   help="extra train.py args for every run of a table (e.g. '--epochs 2')")
    p.add_argument("--model-dir", default=None,
                   help="diversity, gprec_scales, ensemble_heads: a finished GPRec run")
    p.add_argument("--out", default="results/gprec_diversity/ml1m_gprec_diversity",
                   help="diversity: output path without suffix (.png and .json)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    data = os.environ.get(datasets.ENV_VAR)
    command = (f"{datasets.ENV_VAR}={data} " if data and not args.data_dir else "") + (
        "python experiments.py " + " ".join(
            shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv)))
    if args.what == "diversity":
        if not args.model_dir:
            print("error: diversity needs --model-dir", file=sys.stderr)
            return 2
        diversity(Path(args.model_dir), Path(args.out))
        return 0
    probes = {"gprec_scales": gprec_scales, "ensemble_heads": ensemble_heads}
    if args.what in probes:  # read one finished run; print, and write JSON with --name
        if not args.model_dir:
            print(f"error: {args.what} needs --model-dir", file=sys.stderr)
            return 2
        stats = probes[args.what](Path(args.model_dir), args.data_dir)
        if args.name:
            write_json_atomic(result_path(args.name, ".json"), {**stats, "command": command})
        return 0
    runner = Runner(Path(args.runs_dir), args.data_dir, ML1M + shlex.split(args.train_args))
    if args.what == "by_activity":
        by_activity(runner, shlex.split(args.a), shlex.split(args.b), args.seeds or FIVE_SEEDS,
                    args.name, command)
        return 0
    if args.what == "compare":
        seeds = args.seeds or FIVE_SEEDS
        a, b = shlex.split(args.a), shlex.split(args.b)
        ref = runner.seeds(a, seeds)
        rows = [row("A", a, ref, command), row("B", b, runner.seeds(b, seeds), command,
                                                  reference=("A", ref))]
        if args.name:
            write_table(args.name, f"{args.b} vs {args.a}", rows, command)
        else:
            print(markdown_table(rows))
        return 0
    title, build = TABLES[args.what]
    seeds = args.seeds or {"ml1m_gprec_hparams": [2024],
                           "ml1m_backbones": THREE_SEEDS,
                           "ml1m_gprec_backbones": THREE_SEEDS,
                           "ml1m_baselines": THREE_SEEDS}.get(args.what, FIVE_SEEDS)
    rows = []

    def extra():
        return {"ml1m_backbones": library_comparison,
                "ml1m_baselines": baseline_comparison,
                "udg": udg_parameters,
                "udg_cold_start": cold_start_table}.get(args.what, lambda _: "")(rows)

    # The table is rewritten after every row, so an interrupted command leaves the rows it
    # finished (marked partial); rerunning it reuses every finished run.
    for r in build(runner, seeds, command):
        rows.append(r)
        write_table(args.what, title + " (partial: rows still to come)", rows, command,
                    extra())
    write_table(args.what, title, rows, command, extra())
    if args.what == "ml1m_gprec_hparams":
        plot_hparams(rows, result_path(args.what, ".png"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
