"""tfrs-userlevel compare: the validation and test metrics of finished runs, side by side.

  tfrs-userlevel compare runs/mlp runs/gprec

Each model directory is one run (its `metrics.json`) or a run over seeds (its
`summary.json`, shown as the mean ± standard deviation over the seeds).
"""

from __future__ import annotations

import json
from pathlib import Path

from tfrs_userlevel.cli.terminal import ArgumentParser, UsageError, command_main

METRICS = ("auc", "logloss")


def build_parser(prog: str) -> ArgumentParser:
    p = ArgumentParser(prog=prog, description="Validation and test metrics of finished runs, "
                       "side by side.")
    p.add_argument("model_dirs", nargs="+", metavar="MODEL_DIR", help="finished training runs")
    return p


def _model_name(config: dict) -> str:
    """A run's model in words: its baseline or backbone, and its user-level module."""
    model = config.get("model")
    if isinstance(model, dict):  # a run configuration
        base = (model.get("baseline") or model.get("backbone") or {}).get("name", "?")
        user_level = (model.get("user_level") or {}).get("name", "none")
    else:
        base = config.get("baseline") or config.get("backbone", "?")
        user_level = config.get("user_level", "none")
    return base if user_level == "none" else f"{user_level}({base})"


def run_row(model_dir: Path) -> tuple[str, str, dict[str, str]]:
    """(run, model, {"val auc": "0.8193", ...}) of one finished run or run over seeds."""
    if (model_dir / "summary.json").exists():
        summary = json.loads((model_dir / "summary.json").read_text())
        first = model_dir / f"seed_{summary['seeds'][0]}" / "metrics.json"
        config = json.loads(first.read_text())["config"] if first.exists() else {}
        cells = {f"{split} {m}": f"{summary[f'{split}_{m}_mean']:.4f} ± "
                                 f"{summary[f'{split}_{m}_std']:.4f}"
                 for split in ("val", "test") for m in METRICS}
        return str(model_dir), f"{_model_name(config)}, {len(summary['seeds'])} seeds", cells
    path = model_dir / "metrics.json"
    if not path.exists():
        raise UsageError(f"{model_dir} is not a finished run (no metrics.json or summary.json)")
    metrics = json.loads(path.read_text())
    cells = {f"{split} {m}": f"{metrics[split][m]:.4f}"
             for split in ("val", "test") for m in METRICS}
    return str(model_dir), _model_name(metrics.get("config", {})), cells


def format_rows(rows: list[tuple[str, str, dict[str, str]]]) -> str:
    columns = ["run", "model", *rows[0][2]]
    table = [[run, model, *cells.values()] for run, model, cells in rows]
    widths = [max(len(c), *(len(r[i]) for r in table)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in table]
    return "\n".join(lines)


def command(argv, prog: str = "tfrs-userlevel compare") -> int:
    args = build_parser(prog).parse_args(argv)
    print(format_rows([run_row(Path(d)) for d in args.model_dirs]))
    return 0


main = command_main("compare")  # `tfrs-userlevel compare ARGV` -> the exit code
