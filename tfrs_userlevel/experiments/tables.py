"""The result tables as configurations: a base, one row of overrides per model, seeds.

Every row is `TrainConfig` fields on top of its table's base. A row may be
tested against an earlier row of its table (Welch's one-sided test of "higher
test AUC"; `reverse` tests "the reference is higher", as an ablation asks),
carry constants shown beside it (`notes`), and have quantities measured on its
first seed's finished run (`measures`). `build_rows` turns a table into result
rows through a `Runner`, which reuses every finished run.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from tfrs_userlevel.experiments import analyses, capacity, planted_worlds, sections
from tfrs_userlevel.experiments.report import row
from tfrs_userlevel.experiments.runner import Runner
from tfrs_userlevel.significance import one_sided_ttest

FIVE_SEEDS = (2024, 2025, 2026, 2027, 2028)
THREE_SEEDS = (2024, 2025, 2026)
ML1M = {"dataset": "movielens_1m"}

# The paper's forms of GPRec's parts, spelled out so that the tables do not follow the
# library's defaults: the ensemble as the paper averages it (equal weights, the average
# trains the backbone, no dropout in GPRec's MLPs, an MLP_p head as wide as the backbone's
# MLP), the per-group classifier MLPs (eq. 2), the group head as wide as the backbone's
# MLP and a 64-unit MLP_p, and the embeddings trained by every loss.
PAPER_ENSEMBLE = {"ensemble_weights": "equal", "ensemble_backbone_gradient": True,
                  "gprec_dropout": 0.0, "prediction_units": (64, 32, 16)}
PER_GROUP_CLASSIFIER = {"classifier_shared": False}
WIDE_HEADS = {"head_units": (64, 32, 16), "individual_units": (64,)}
PAPER_GPREC = {"stop_embedding_gradient": False, **PER_GROUP_CLASSIFIER, **WIDE_HEADS,
               **PAPER_ENSEMBLE}
PAPER_INPUT = {"user_level": "gprec", "strategy": "input", **PAPER_GPREC,
               "prediction_units": (64, 32, 16)}
MLP = {"user_level": "none"}
GROUPS = (3, 7, 20, 40, 60, 80, 100, 1000)
TEMPERATURES = (0.1, 0.2, 0.4, 0.5, 0.6, 0.8, 1.0)

ZOO = ("mlp", "wd", "deepfm", "ipnn", "opnn", "dcn", "dcnv2", "gdcn", "finalmlp", "destine")
ZOO_WITH_GPREC = ("gdcn", "dcn", "finalmlp", "destine")  # the paper's Table III
# GPRec on the zoo: the best validation AUC of six settings tried on GDCN, seed 2024
# (results/backbones/ml1m_backbones.md, "Choosing GPRec's configuration").
ZOO_GPREC = {"strategy": "ensemble", "stop_embedding_gradient": True, **PER_GROUP_CLASSIFIER,
             **WIDE_HEADS, **PAPER_ENSEMBLE}
# The zoo's setting with learned ensemble weights and no gradient from the average into
# the backbone (chosen on DCN validation, seed 2024).
DETACHED_ENSEMBLE = {**ZOO_GPREC, "ensemble_weights": "learned",
                     "ensemble_backbone_gradient": False, "schedule_monitor": "auc"}
BACKBONE_NAMES = {"mlp": "MLP", "wd": "W&D", "deepfm": "DeepFM", "ipnn": "IPNN",
                  "opnn": "OPNN", "dcn": "DCN", "dcnv2": "DCNv2", "gdcn": "GDCN",
                  "finalmlp": "FinalMLP", "destine": "DESTINE", "din": "DIN", "dien": "DIEN"}

# The lower half of the GPRec paper's Table II, in its order, plus PPNet alone (the form
# an established library ships); APG and DGPM in the best of five and eight settings on
# validation (seed 2024; results/baselines/ml1m_baselines.md).
BASELINES = (
    ("MMoE", {"baseline": "mmoe"}),
    ("PLE", {"baseline": "ple"}),
    ("STAR", {"baseline": "star"}),
    ("APG", {"baseline": "apg", "baseline_options": {"condition": "self"}}),
    ("PEPNet", {"baseline": "pepnet"}),
    ("PPNet", {"baseline": "pepnet", "baseline_options": {"epnet": False}}),
    ("DGPM", {"baseline": "dgpm", "baseline_options": {"initial_strength": 1.0,
                                                       "group_parameters": "kernel"}}),
)
# GPRec(MLP) beside the baselines: the library's GPRec defaults, spelled out.
BASELINE_GPREC = {"user_level": "gprec", "strategy": "ensemble", "ensemble_weights": "learned",
                  "ensemble_backbone_gradient": False, "schedule_monitor": "backbone_auc",
                  "gprec_dropout": 0.2, "prediction_units": ()}

# The UDG paper's five base models (PNN = IPNN) and the data each is compared on: ML-100K
# with the time split and the last 20 clicks as behavior feature, then ML-1M's canonical
# random split, where a click history cannot be used (DIN and DIEN need it).
UDG_DATASETS = (
    ("ML-100K", {"dataset": "movielens_100k", "split": "time", "history_length": 20},
     ("ipnn", "deepfm", "wd", "din", "dien")),
    ("ML-1M", ML1M, ("ipnn", "deepfm", "wd")),
)
UDG_PAPER_NAMES = {"ipnn": "PNN"}


@dataclasses.dataclass(frozen=True)
class Row:
    """One model of a table: its name and its `TrainConfig` overrides."""

    name: str
    overrides: Mapping[str, Any]
    reference: str | None = None
    reverse: bool = False
    notes: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    measures: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class Table:
    """A result table: rows on a common base, run over `seeds` by default."""

    title: str
    base: Mapping[str, Any]
    rows: tuple[Row, ...]
    seeds: tuple[int, ...] = FIVE_SEEDS
    section: Callable[[Sequence[dict]], str] | None = None  # Markdown after the table
    loader: Callable | None = None  # the data of a table that is no built-in dataset


# Quantities measured on a row's first finished run.
MEASURES = {"parameters": analyses.all_parameters,
            "network_parameters": analyses.network_parameters}


def build_rows(runner: Runner, table: Table, seeds: Sequence[int], command: str
               ) -> Iterator[dict]:
    """The result rows of `table`, one per model, in order (each as soon as its runs
    are finished)."""
    done: dict[str, dict[int, dict]] = {}
    for spec in table.rows:
        results = runner.seeds(spec.overrides, seeds)
        done[spec.name] = results
        reference = None
        if spec.reference is not None and not spec.reverse:
            reference = (spec.reference, done[spec.reference])
        out = row(spec.name, spec.overrides, results, command, reference=reference)
        if spec.reverse and len(seeds) >= 2:
            out["p_value"] = one_sided_ttest(
                [m["test"]["auc"] for m in done[spec.reference].values()], out["test_auc"])
            out["p_value_vs"] = f"{spec.reference} (H1: {spec.reference} better)"
        out.update(spec.notes)
        for measure in spec.measures:
            out[measure] = MEASURES[measure](runner.run_dir(spec.overrides, seeds[0]))
        yield out


def _strategies() -> tuple[Row, ...]:
    return (Row("MLP", MLP), *(
        Row(f"GPRec(MLP) {s}", {**PAPER_INPUT, "strategy": s}
            if s == "input" else {"user_level": "gprec", "strategy": s, **PAPER_GPREC},
            reference="MLP") for s in ("input", "dp", "ensemble")))


def _ablations() -> tuple[Row, ...]:
    return (Row("GPRec(MLP)", PAPER_INPUT), *(
        Row(v.upper(), {**PAPER_INPUT, "ablation": v}, reference="GPRec(MLP)", reverse=True)
        for v in ("gprec-1", "gprec-2", "gprec-3", "gprec-4", "gprec-5")))


def _hparams() -> tuple[Row, ...]:
    # τ first, then G: G = 1000 is by far the slowest run and comes last.
    return (Row("MLP", MLP),
            *(Row(f"GPRec τ={t}", {**PAPER_INPUT, "temperature": t}, notes={"temperature": t})
              for t in TEMPERATURES),
            *(Row(f"GPRec G={g}", {**PAPER_INPUT, "groups": g}, notes={"groups": g})
              for g in GROUPS))


def _backbones(backbones: Sequence[str], gprec: Mapping[str, Any],
               with_gprec: Sequence[str]) -> tuple[Row, ...]:
    """Each backbone alone, each of `with_gprec` followed by GPRec on it."""
    rows = []
    for backbone in backbones:
        name = BACKBONE_NAMES[backbone]
        rows.append(Row(name, {"backbone": backbone, "user_level": "none"},
                        notes={"library_auc": sections.LIBRARY_AUC.get(backbone)}))
        if backbone in with_gprec:
            rows.append(Row(f"GPRec({name})", {"backbone": backbone, "user_level": "gprec",
                                               **gprec}, reference=name))
    return tuple(rows)


def _baselines() -> tuple[Row, ...]:
    measured = ("network_parameters",)
    return (Row("MLP", MLP, measures=measured),
            *(Row(name, o, reference="MLP", measures=measured) for name, o in BASELINES),
            Row("GPRec(MLP)", BASELINE_GPREC, reference="MLP", measures=measured))


def _equal_capacity() -> tuple[Row, ...]:
    return tuple(
        Row(capacity.row_name(model, budget), overrides,
            reference=None if model == "MLP" else capacity.row_name("MLP", budget),
            measures=("network_parameters",))
        for model, budget, overrides in capacity.capacity_rows(dict(BASELINES),
                                                               BASELINE_GPREC))


def _planted_udg(title: str, world: str, names: tuple[str, ...] | None) -> Table:
    """A table of the UDG world `world`: the `planted_worlds.UDG_ROWS` in `names` (None:
    all), each against the MLP."""
    return Table(title, {"dataset": world},
                 tuple(Row(name, o, reference=None if name == "MLP" else "MLP",
                           measures=("parameters",))
                       for name, o in planted_worlds.UDG_ROWS if names is None or name in names),
                 section=planted_worlds.udg_section, loader=planted_worlds.udg_world_data)


def _udg() -> tuple[Row, ...]:
    rows = []
    for label, data, backbones in UDG_DATASETS:
        for backbone in backbones:
            name = f"{UDG_PAPER_NAMES.get(backbone, BACKBONE_NAMES[backbone])} ({label})"
            base = {**data, "backbone": backbone, "user_level": "none"}
            rows += [Row(name, base, measures=("parameters",)),
                     Row(f"{name}, embedding 32", {**base, "embedding_dim": 32},
                         reference=name, measures=("parameters",)),
                     Row(f"{name} + UDG", {**base, "user_level": "udg"}, reference=name,
                         measures=("parameters",))]
    return tuple(rows)


TABLES = {
    "ml1m_gprec": Table("GPRec(MLP) on ML-1M: three construction strategies vs MLP", ML1M,
                        _strategies()),
    "ml1m_gprec_ablation": Table("GPRec ablations on ML-1M (paper §IV-C)", ML1M,
                                 _ablations()),
    "ml1m_gprec_hparams": Table("GPRec hyper-parameters on ML-1M (paper §IV-D)", ML1M,
                                _hparams(), seeds=(2024,)),
    # Each Table III backbone is followed by GPRec on it, so that a partial table already
    # answers "does GPRec improve it"; the other backbones come last.
    "ml1m_backbones": Table(
        "Backbone zoo on ML-1M, and GPRec on DCN, GDCN, DESTINE, FinalMLP (paper Table III)",
        ML1M, _backbones([*ZOO_WITH_GPREC, *(b for b in ZOO if b not in ZOO_WITH_GPREC)],
                         ZOO_GPREC, ZOO_WITH_GPREC),
        seeds=THREE_SEEDS, section=sections.library_comparison),
    "ml1m_gprec_backbones": Table(
        "GPRec with learned ensemble weights and no gradient from the average into the "
        "backbone, on DCN, GDCN, DESTINE, FinalMLP", ML1M,
        _backbones(ZOO_WITH_GPREC, DETACHED_ENSEMBLE, ZOO_WITH_GPREC), seeds=THREE_SEEDS),
    "udg": Table("UDG on five base models (UDG paper Tables 2 and 3): base, doubled "
                 "embedding, with UDG", {}, _udg(), section=sections.udg_parameters),
    # SYNTHETIC: the planted UDG world (datasets/planted.py), declared before its results.
    "planted_udg": _planted_udg(
        "SYNTHETIC planted world with a user-specific weighting of item attributes: the MLP "
        "with and without UDG, and at more parameters", "planted_udg", None),
    "planted_udg_positive": _planted_udg(
        "SYNTHETIC planted world as planted_udg, every user's weights positive: the MLP "
        "with and without UDG", "planted_udg_positive", planted_worlds.FOLLOW_UP_ROWS),
    "ml1m_equal_capacity": Table(
        "Equal capacity on ML-1M: the MLP, GPRec, UDG and the user-modeling baselines at "
        "two budgets of parameters outside the embeddings", ML1M, _equal_capacity(),
        section=capacity.capacity_section),
    "planted_udg_search": Table(
        "SYNTHETIC planted world planted_udg: embedding L2 and dropout of the MLP and of UDG, "
        "chosen on validation", {"dataset": "planted_udg"},
        tuple(Row(name, o, measures=("parameters",)) for name, o in planted_worlds.SEARCH_ROWS),
        seeds=(2024,), loader=planted_worlds.udg_world_data),
    "planted_udg_dense": _planted_udg(
        "SYNTHETIC planted world as planted_udg with 200 users (about 1,200 training rows "
        "each): the MLP with and without UDG", "planted_udg_dense",
        planted_worlds.FOLLOW_UP_ROWS),
    "ml1m_baselines": Table("User-modeling baselines on ML-1M (paper Table II, lower half) "
                            "against our MLP and GPRec(MLP)", ML1M, _baselines(),
                            seeds=THREE_SEEDS, section=sections.baseline_comparison),
}
