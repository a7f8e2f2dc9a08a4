"""Result tables: rows with the significance protocol, written as Markdown and JSON.

Each table belongs to a study, a folder of the results directory (`STUDIES`).
A row holds a configuration's per-seed test metrics and, against a reference
row, Welch's one-sided p-value (and the paired one when both ran the same
seeds; `significance`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from tfrs_userlevel.experiments.runner import Overrides, format_overrides
from tfrs_userlevel.significance import one_sided_ttest, paired_one_sided_ttest
from tfrs_userlevel.training import write_json_atomic

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
    "capacity": ("ml1m_equal_capacity",),
    "baselines": ("ml1m_baselines", "ml1m_dgpm_kernel", "ml1m_mmoe_one_expert"),
    "udg_cold_start": ("udg_cold_start",),
    "udg": ("udg",),
    "planted": ("planted_",),
}
READING = "\n## Reading\n"


def study_of(name: str) -> str:
    """The study (results folder) of table `name`."""
    return next((study for study, prefixes in STUDIES.items()
                 if name.startswith(prefixes)), name)


def result_path(results_dir: str | Path, name: str, suffix: str) -> Path:
    """RESULTS_DIR/STUDY/NAME.SUFFIX, its folder created."""
    folder = Path(results_dir) / study_of(name)
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{name}{suffix}"


def row(name: str, overrides: Overrides, results: Mapping[int, dict], command: str,
        reference: tuple[str, Mapping[int, dict]] | None = None) -> dict:
    """One results row of `results` ({seed: metrics.json}), with the p-value of "higher
    test AUC than `reference`" (its name and results) when given and both ran at least
    two seeds (a single run has no spread to test against)."""
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
        "p_value": None, "p_value_vs": None, "args": format_overrides(overrides),
        "command": command,
    }
    if reference is not None and min(len(results), len(reference[1])) >= 2:
        ref_name, ref_results = reference
        out["p_value"] = one_sided_ttest(auc, [r["test"]["auc"] for r in ref_results.values()])
        out["p_value_vs"] = ref_name
        if list(ref_results) == list(results):  # the same seeds: also the paired test
            out["p_value_paired"] = paired_one_sided_ttest(
                auc, [ref_results[seed]["test"]["auc"] for seed in results])
    return out


def markdown_table(rows: Sequence[dict]) -> str:
    lines = ["| model | configuration | seeds | val AUC | test AUC (mean ± std) | "
             "test LogLoss | p (one-sided) vs |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        p = "" if r["p_value"] is None else f"{r['p_value']:.2g} vs {r['p_value_vs']}"
        if r.get("p_value_paired") is not None:
            p += f" (paired by seed: {r['p_value_paired']:.2g})"
        model = r["model"] + (f", {r['phase']}" if r.get("phase") else "")
        val = "" if r.get("val_auc_mean") is None else f"{r['val_auc_mean']:.4f}"
        lines.append(
            f"| {model} | `{r.get('args') or '(base)'}` | {len(r['seeds'])} | "
            f"{val} | {r['auc_mean']:.4f} ± {r['auc_std']:.4f} | "
            f"{r['logloss_mean']:.4f} | {p} |")
    return "\n".join(lines)


def write_table(results_dir: str | Path, name: str, title: str, rows: list[dict],
                command: str, extra: str = "", base: Overrides | None = None) -> None:
    """Writes RESULTS_DIR/STUDY/NAME.json and NAME.md (with `extra` markdown after the
    table); a hand-written "## Reading" section at the end of an existing NAME.md is
    kept."""
    write_json_atomic(result_path(results_dir, name, ".json"), rows)
    text = f"# {title}\n\nRegenerate: `{command}`\n\n"
    if base:
        text += f"Every row: `{format_overrides(base)}`, then its own configuration.\n\n"
    text += f"{markdown_table(rows)}\n"
    if extra:
        text += f"\n{extra}\n"
    write_keeping_reading(result_path(results_dir, name, ".md"), text)
    print(text)


def write_keeping_reading(path: Path, text: str) -> None:
    """Writes `text` to `path`, keeping the hand-written "## Reading" section at the end of
    the file it replaces."""
    old = path.read_text() if path.exists() else ""
    path.write_text(text + (old[old.index(READING):] if READING in old else ""))
