"""The experiments on SYNTHETIC planted worlds (`datasets.planted`), declared before any
result is read.

The UDG world: `AttributeWeightingWorld(seed=0)`, 300,000 rows (80/10/10). The
base model and UDG see the same fields. Rows: the MLP; the MLP with UDG; and
two MLPs with more parameters than the MLP, as the UDG paper's Table 3
compares: hidden layers 128-64-32, and embeddings of 32. Each against the MLP,
Welch's one-sided test over 5 training seeds. What would show UDG's gates
work: UDG above every MLP, with p < 0.01 against the MLP of the same widths.
"""

from __future__ import annotations

from collections.abc import Sequence

from tfrs_userlevel.datasets.planted import AttributeWeightingWorld
from tfrs_userlevel.monitoring import exact_auc_logloss

UDG_WORLD_ROWS = 300_000
UDG_BASE = {"dataset": "planted_udg"}
UDG_ROWS = (
    ("MLP", {}),
    ("MLP + UDG", {"user_level": "udg"}),
    ("MLP, hidden 128-64-32", {"hidden_units": (128, 64, 32)}),
    ("MLP, embedding 32", {"embedding_dim": 32}),
)


def udg_world(rows: int = UDG_WORLD_ROWS) -> tuple[AttributeWeightingWorld, dict]:
    """The UDG world and its splits."""
    world = AttributeWeightingWorld(seed=0)
    return world, world.splits(rows)


def udg_world_data(config) -> tuple[dict, list]:
    """(splits, feature spec) of the UDG world, for `Runner(loader=...)`."""
    world, splits = udg_world()
    return splits, world.feature_spec


def planted_auc(rows: int = UDG_WORLD_ROWS) -> float:
    """The test AUC of the planted probability itself: the ceiling of any model."""
    _, splits = udg_world(rows)
    test = splits["test"]
    return exact_auc_logloss(test["label"], test["planted_probability"])[0]


def udg_section(rows: Sequence[dict]) -> str:
    """Parameters and AUC of each row beside the planted ceiling."""
    lines = ["SYNTHETIC data: `tfrs_userlevel.datasets.planted.AttributeWeightingWorld`.", "",
             f"Test AUC of the planted probability (the ceiling): {planted_auc():.4f}.", "",
             "| model | parameters | test AUC | − MLP |", "|---|---:|---:|---:|"]
    base = rows[0]["auc_mean"] if rows else float("nan")
    for r in rows:
        lines.append(f"| {r['model']} | {r.get('parameters', 0):,} | {r['auc_mean']:.4f} | "
                     f"{r['auc_mean'] - base:+.4f} |")
    return "\n".join(lines)

