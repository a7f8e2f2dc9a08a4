"""Deterministic runs at two commits must give the same metrics (to 1e-6).

Checks that a restructuring of the code changed no behaviour: each commit is
checked out into a temporary git worktree, and its own `train.py` trains five
models with --deterministic and seed 2024 on ML-100K (time split, a 20-click
history): the MLP, GPRec's default, GPRec on DCN, DeepFM with UDG, and MMoE.
A commit's metrics are kept in the JSON by commit hash (a commit never
changes), so a rerun trains only commits it has not seen. About 5 minutes per
commit on 2 cores. Writes results/reliability/commit_parity.{json,md}.

  TFRS_USERLEVEL_DATA=/path/to/data python benchmarks/commit_parity.py OLD NEW
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "results" / "reliability" / "commit_parity"
COMMON = ["--dataset", "movielens_100k", "--split", "time", "--history-length", "20",
          "--epochs", "3", "--seed", "2024", "--deterministic"]
MODELS = {
    "mlp": ["--backbone", "mlp"],
    "gprec_default": ["--user-level", "gprec"],
    "gprec_dcn": ["--backbone", "dcn", "--user-level", "gprec"],
    "deepfm_udg": ["--backbone", "deepfm", "--user-level", "udg"],
    "mmoe": ["--baseline", "mmoe"],
}
TOLERANCE = 1e-6


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=REPO, check=True, capture_output=True,
                          text=True).stdout.strip()


def train_at(commit: str, data_dir: str) -> dict:
    """{model: {"val": {...}, "test": {...}, "epochs": n}} from `commit`'s own code."""
    rows = {}
    with tempfile.TemporaryDirectory() as scratch:
        tree = Path(scratch) / "tree"
        git("worktree", "add", "--detach", str(tree), commit)
        try:
            env = {**os.environ, "PYTHONPATH": str(tree), "TFRS_USERLEVEL_DATA": data_dir}
            imported = subprocess.run(
                [sys.executable, "-c", "import tfrs_userlevel; print(tfrs_userlevel.__file__)"],
                cwd=tree, env=env, check=True, capture_output=True, text=True).stdout.strip()
            if not Path(imported).resolve().is_relative_to(tree.resolve()):
                raise SystemExit(f"{commit[:10]}: Python imports tfrs_userlevel from {imported}, "
                                 f"not from the worktree {tree}")
            for name, flags in MODELS.items():
                model_dir = Path(scratch) / name
                command = [sys.executable, "train.py", *COMMON, *flags,
                           "--model-dir", str(model_dir)]
                subprocess.run(command, cwd=tree, env=env, check=True,
                               stdout=subprocess.DEVNULL)
                metrics = json.loads((model_dir / "metrics.json").read_text())
                rows[name] = {"val": metrics["val"], "test": metrics["test"],
                              "epochs": metrics["epochs"]}
                print(f"{commit[:10]} {name:<14} val AUC {metrics['val']['auc']:.6f} "
                      f"test AUC {metrics['test']['auc']:.6f}", flush=True)
        finally:
            git("worktree", "remove", "--force", str(tree))
    return rows


def largest_gap(a: dict, b: dict) -> float:
    return max(abs(a[s][m] - b[s][m]) for s in ("val", "test") for m in a[s])


def table(old: str, new: str, runs: dict) -> str:
    lines = [f"Deterministic runs (seed 2024, ML-100K time split, 20-click history, 3 epochs) "
             f"at commit `{old[:10]}` and at commit `{new[:10]}`.",
             "", "Regenerate with:", "",
             f"    TFRS_USERLEVEL_DATA=../shared/data python benchmarks/commit_parity.py "
             f"{old[:10]} {new[:10]}", "",
             "| model | val AUC (old) | val AUC (new) | test AUC (old) | test AUC (new) "
             "| test LogLoss (old) | test LogLoss (new) | largest gap | equal to 1e-6 |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name in MODELS:
        a, b = runs[old][name], runs[new][name]
        gap = largest_gap(a, b)
        lines.append(f"| {name} | {a['val']['auc']:.6f} | {b['val']['auc']:.6f} "
                     f"| {a['test']['auc']:.6f} | {b['test']['auc']:.6f} "
                     f"| {a['test']['logloss']:.6f} | {b['test']['logloss']:.6f} "
                     f"| {gap:.1e} | {'yes' if gap <= TOLERANCE else 'NO'} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("old", help="a commit (hash, tag or branch)")
    p.add_argument("new", nargs="?", default="HEAD", help="a commit (default HEAD)")
    p.add_argument("--data-dir", default=os.environ.get("TFRS_USERLEVEL_DATA",
                                                        str(REPO.parent / "shared" / "data")))
    p.add_argument("--output", default=str(OUT))
    args = p.parse_args(argv)
    data_dir = str(Path(args.data_dir).resolve())
    out = Path(args.output)
    store = out.with_suffix(".json")
    runs = json.loads(store.read_text())["runs"] if store.exists() else {}
    commits = [git("rev-parse", f"{ref}^{{commit}}") for ref in (args.old, args.new)]
    for commit in commits:
        if commit not in runs:
            runs[commit] = train_at(commit, data_dir)
            staging = store.with_suffix(".tmp")
            staging.write_text(json.dumps({"models": MODELS, "common": COMMON,
                                           "runs": runs}, indent=2) + "\n")
            staging.replace(store)
    old, new = commits
    text = table(old, new, runs)
    out.with_suffix(".md").write_text(text)
    print(text)
    return 0 if all(largest_gap(runs[old][m], runs[new][m]) <= TOLERANCE for m in MODELS) else 1


if __name__ == "__main__":
    sys.exit(main())
