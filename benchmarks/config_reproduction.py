"""Full ML-1M runs through `--config movielens_1m` and through `--dataset movielens_1m`.

With --deterministic and seed 2024, both paths must give the same validation
and test metrics (to 1e-6) for the MLP and for GPRec's default (the
recommended preset). Trains four models (about 10 minutes on 2 cores) and
writes results/reliability/config_reproduction.json.

  TFRS_USERLEVEL_DATA=/path/to/data python benchmarks/config_reproduction.py
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MODELS = {
    "mlp": ([], []),
    "gprec_default": (["--user-level", "gprec"], ["--set", "model.user_level={name: gprec}"]),
}


def train(args: list[str], model_dir: Path) -> dict:
    command = [sys.executable, "train.py", *args, "--deterministic", "--model-dir",
               str(model_dir)]
    subprocess.run(command, cwd=REPO, check=True, stdout=subprocess.DEVNULL)
    return json.loads((model_dir / "metrics.json").read_text())


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--output",
                        default=str(REPO / "results" / "reliability" / "config_reproduction.json"))
    args = p.parse_args(argv)
    rows = {}
    with tempfile.TemporaryDirectory() as scratch:
        for name, (flags, sets) in MODELS.items():
            built_in = train(["--dataset", "movielens_1m", *flags], Path(scratch) / f"{name}_a")
            configured = train(["--config", "movielens_1m", *sets], Path(scratch) / f"{name}_b")
            gap = max(abs(built_in[s][m] - configured[s][m])
                      for s in ("val", "test") for m in built_in[s])
            rows[name] = {"built_in": {s: built_in[s] for s in ("val", "test")},
                          "configured": {s: configured[s] for s in ("val", "test")},
                          "epochs": [built_in["epochs"], configured["epochs"]],
                          "largest_gap": gap, "within_1e-6": gap <= 1e-6,
                          "commands": [f"python train.py --dataset movielens_1m {' '.join(flags)}"
                                       " --deterministic --model-dir A",
                                       "python train.py --config movielens_1m "
                                       + " ".join(f"'{a}'" if " " in a else a for a in sets)
                                       + " --deterministic --model-dir B"]}
            print(f"{name:<14} test AUC {built_in['test']['auc']:.6f} / "
                  f"{configured['test']['auc']:.6f}  largest gap {gap:.2e}  "
                  f"epochs {built_in['epochs']} / {configured['epochs']}", flush=True)
    out = Path(args.output)
    payload = {"command": "TFRS_USERLEVEL_DATA=../shared/data python "
                          "benchmarks/config_reproduction.py", "models": rows}
    staging = out.with_suffix(".tmp")
    staging.write_text(json.dumps(payload, indent=2) + "\n")
    staging.replace(out)
    return 0 if all(r["within_1e-6"] for r in rows.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
