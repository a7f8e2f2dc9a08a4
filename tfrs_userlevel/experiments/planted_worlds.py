"""The experiments on SYNTHETIC planted worlds (`datasets.planted`), declared before any
result is read.

The UDG world: `AttributeWeightingWorld(seed=0)`, 300,000 rows (80/10/10). The
base model and UDG see the same fields. Rows: the MLP; the MLP with UDG; and
two MLPs with more parameters than the MLP, as the UDG paper's Table 3
compares: hidden layers 128-64-32, and embeddings of 32. Each against the MLP,
Welch's one-sided test over 5 training seeds. What would show UDG's gates
work: UDG above every MLP, with p < 0.01 against the MLP of the same widths.

Declared next, after the first rows were read (UDG tied the MLP): UDG with
signed gates (`gate_activation="tanh"`), and an MLP of about UDG's parameter
count (hidden 256-128-64). The signed gates win if they are above every
MLP with p < 0.01 against both the MLP of the same widths and the MLP of
UDG's size (`PARAMETER_MATCHED`).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from tfrs_userlevel.datasets.planted import AttributeWeightingWorld
from tfrs_userlevel.monitoring import exact_auc_logloss
from tfrs_userlevel.significance import one_sided_ttest

UDG_WORLD_ROWS = 300_000
# The worlds by dataset name: the UDG world, and the same world with every user's weights
# made positive (`signed=False`), which tells whether the sign of the weights is what
# UDG's gates, sigmoids in (0, gate_scale), cannot follow.
UDG_WORLDS = {"planted_udg": {}, "planted_udg_positive": {"signed": False}}
PARAMETER_MATCHED = "MLP, hidden 256-128-64"
UDG_ROWS = (
    ("MLP", {}),
    ("MLP + UDG", {"user_level": "udg"}),
    ("MLP, hidden 128-64-32", {"hidden_units": (128, 64, 32)}),
    ("MLP, embedding 32", {"embedding_dim": 32}),
    ("MLP + UDG, signed gates", {"user_level": "udg", "gate_activation": "tanh"}),
    (PARAMETER_MATCHED, {"hidden_units": (256, 128, 64)}),
)
# The rows of the world with positive weights.
POSITIVE_ROWS = ("MLP", "MLP + UDG", "MLP, hidden 128-64-32", "MLP + UDG, signed gates",
                 PARAMETER_MATCHED)


def udg_world(name: str = "planted_udg", rows: int = UDG_WORLD_ROWS
              ) -> tuple[AttributeWeightingWorld, dict]:
    """The UDG world `name` (`UDG_WORLDS`) and its splits."""
    world = AttributeWeightingWorld(seed=0, **UDG_WORLDS[name])
    return world, world.splits(rows)


def udg_world_data(config) -> tuple[dict, list]:
    """(splits, feature spec) of the UDG world `config.dataset`, for `Runner(loader=...)`."""
    world, splits = udg_world(config.dataset)
    return splits, world.feature_spec


@functools.cache
def planted_auc(name: str = "planted_udg", rows: int = UDG_WORLD_ROWS) -> float:
    """The test AUC of the planted probability itself: the ceiling of any model (computed
    once per world; a table's section is rewritten after every row)."""
    _, splits = udg_world(name, rows)
    test = splits["test"]
    return exact_auc_logloss(test["label"], test["planted_probability"])[0]


def udg_section(rows: Sequence[dict]) -> str:
    """Parameters and AUC of each row beside the planted ceiling."""
    name = rows[0]["dataset"] if rows else "planted_udg"
    lines = ["SYNTHETIC data: `tfrs_userlevel.datasets.planted.AttributeWeightingWorld"
             f"({', '.join(f'{k}={v}' for k, v in UDG_WORLDS[name].items())})`.", "",
             f"Test AUC of the planted probability (the ceiling): {planted_auc(name):.4f}.",
             "",
             f"| model | parameters | test AUC | − MLP | p vs {PARAMETER_MATCHED} |",
             "|---|---:|---:|---:|---:|"]
    base = rows[0]["auc_mean"] if rows else float("nan")
    matched = next((r for r in rows if r["model"] == PARAMETER_MATCHED), None)
    for r in rows:
        p = ""
        if "UDG" in r["model"] and matched is not None and len(r["test_auc"]) > 1:
            p = f"{one_sided_ttest(r['test_auc'], matched['test_auc']):.2g}"
        lines.append(f"| {r['model']} | {r.get('parameters', 0):,} | {r['auc_mean']:.4f} | "
                     f"{r['auc_mean'] - base:+.4f} | {p} |")
    lines += ["", f"p vs {PARAMETER_MATCHED}: Welch's one-sided test that the UDG row is "
              "above the MLP of about its parameter count, over the same seeds."]
    return "\n".join(lines)

