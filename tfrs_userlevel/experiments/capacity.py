"""The equal-capacity comparison on ML-1M: every model at two budgets of parameters outside
the embedding tables (`analyses.network_parameters`, which also leaves out UDG's user
table), so that a gain over the MLP of the same budget is not a gain from size alone.

The budgets: 44,000, the size of MMoE and PLE as the library ships them (the two
strongest user-modeling baselines on ML-1M), and four times that, 176,000. Each model
is sized to its budget (within 5 %) by the knob that sets its width, its other
hyper-parameters as chosen on validation before (`tables.BASELINES`,
`tables.BASELINE_GPREC`, the UDG defaults):

* MLP, GPRec(MLP), UDG(MLP), MMoE, PLE, STAR: the MLP's widths (w, w/2, w/4);
* APG: the rank of its generated weights;
* PEPNet: its gate network's width and the MLP's widths;
* DGPM: its number of groups and the MLP's widths.

Each row is tested against the MLP of its budget (Welch's one-sided test over the
seeds); `integration/test_capacity.py` checks every row's size against its budget.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

BUDGETS = {"44k": 44_000, "176k": 176_000}
TOLERANCE = 0.05


def _widths(w: int) -> dict[str, Any]:
    return {"hidden_units": (w, w // 2, w // 4)}


def _options(base: dict, **options) -> dict:
    return {**base, "baseline_options": {**base.get("baseline_options", {}), **options}}


def capacity_rows(baselines: dict, gprec: dict) -> list[tuple[str, str, dict]]:
    """(model, budget, overrides) of every row, model by model (the MLP first, then the
    library's own models, then the baselines), each at both budgets; `baselines`: the
    baselines' overrides by name, `gprec`: GPRec(MLP)'s."""
    mlp, udg = {"user_level": "none"}, {"user_level": "udg"}
    sized = {
        "44k": {"MLP": {**mlp, **_widths(184)}, "GPRec(MLP)": {**gprec, **_widths(160)},
                "UDG(MLP)": {**udg, **_widths(88)},
                "MMoE": {**baselines["MMoE"], **_widths(64)},
                "PLE": {**baselines["PLE"], **_widths(64)},
                "STAR": {**baselines["STAR"], **_widths(76)},
                "APG": _options(baselines["APG"], rank=24),
                "PEPNet": {**_options(baselines["PEPNet"], gate_units=32), **_widths(88)},
                "DGPM": {**_options(baselines["DGPM"], groups=3), **_widths(64)}},
        "176k": {"MLP": {**mlp, **_widths(440)}, "GPRec(MLP)": {**gprec, **_widths(424)},
                 "UDG(MLP)": {**udg, **_widths(368)},
                 "MMoE": {**baselines["MMoE"], **_widths(188)},
                 "PLE": {**baselines["PLE"], **_widths(184)},
                 "STAR": {**baselines["STAR"], **_widths(216)},
                 "APG": _options(baselines["APG"], rank=54),
                 "PEPNet": {**_options(baselines["PEPNet"], gate_units=128), **_widths(192)},
                 "DGPM": {**_options(baselines["DGPM"], groups=8), **_widths(100)}},
    }
    return [(model, budget, sized[budget][model]) for model in sized["44k"]
            for budget in BUDGETS]


def row_name(model: str, budget: str) -> str:
    return f"{model}, {budget}"


def capacity_section(rows: Sequence[dict]) -> str:
    """Per budget: each model's parameters outside the embeddings, test AUC, gain over the
    MLP of the same budget and its p-value."""
    lines = ["| budget | model | parameters outside the embeddings | test AUC | − MLP of the "
             "budget | p (one-sided) |", "|---|---|---:|---:|---:|---:|"]
    for budget in BUDGETS:
        mine = [r for r in rows if r["model"].endswith(f", {budget}")]
        mlp = next((r for r in mine if r["model"] == row_name("MLP", budget)), None)
        for r in mine:
            gain = "" if mlp is None else f"{r['auc_mean'] - mlp['auc_mean']:+.4f}"
            p = "" if r["p_value"] is None else f"{r['p_value']:.2g}"
            lines.append(f"| {budget} | {r['model'].rsplit(', ', 1)[0]} | "
                         f"{r.get('network_parameters', 0):,} | {r['auc_mean']:.4f} | "
                         f"{gain} | {p} |")
    wins = [r["model"] for r in rows if r["p_value"] is not None and r["p_value"] < 0.05
            and r["model"].rsplit(", ", 1)[0] != "MLP"]
    lines += ["", "Above the MLP of the same budget with p < 0.05: "
              + (", ".join(wins) if wins else "none") + "."]
    seeds = sorted({len(r["seeds"]) for r in rows})
    lines.append(f"Seeds per row: {', '.join(map(str, seeds))}.")
    return "\n".join(lines)
