"""Experiment tables with the paper's significance protocol (N seeds, one-sided t-test).

  python experiments.py ml1m_gprec                    # GPRec(MLP), 3 strategies vs MLP
  python experiments.py ml1m_gprec_ablation           # GPRec-1..5 vs GPRec
  python experiments.py ml1m_gprec_hparams            # curves over G and τ (PNG + table)
  python experiments.py ml1m_backbones                # every backbone, GPRec on four (3 seeds)
  python experiments.py ml1m_gprec_backbones          # GPRec (detached ensemble) on those four
  python experiments.py ml1m_baselines                # MMoE ... DGPM vs MLP and GPRec (3 seeds)
  python experiments.py udg                           # UDG on five base models
  python experiments.py udg_cold_start                # the cold-start protocol on ML-100K
  python experiments.py udg_cold_start_matched        # the same, warm-up = Algorithm 1's step
  python experiments.py planted_cold_start --runs-dir runs/planted  # SYNTHETIC cold start
  python experiments.py planted_udg                   # SYNTHETIC: UDG where its structure holds
  python experiments.py planted_udg_recovery --runs-dir runs/planted  # what each model tells
  python experiments.py compare --a "user_level=none" --b "user_level=gprec groups=40"
  python experiments.py compare --a "--user-level none" --b "--user-level gprec --groups 40"
  python experiments.py by_activity --a ... --b ...   # test AUC of A and B by user activity
  python experiments.py where --row "ml1m_gprec:GPRec(MLP) input" --seeds 2024  # its run folder
  python experiments.py diversity --model-dir DIR     # RQ5 heatmap of the group embeddings
  python experiments.py gprec_scales --model-dir DIR  # scale of what GPRec reads and makes
  python experiments.py ensemble_heads --model-dir DIR  # val AUC of each ensemble head

Each table is a configuration (tfrs_userlevel/experiments/tables.py): a base
and one row of TrainConfig overrides per model. Every run lands in
--runs-dir/<hash of its resolved configuration>/seed_<seed>/ and is reused
whenever it is finished, so an interrupted table resumes where it stopped and
`--from-runs` rewrites a table from finished runs alone (a missing run is an
error, nothing trains). Tables are written to results/STUDY/NAME.md and
NAME.json. `--set KEY=VALUE` changes the base of every run (e.g. epochs=2).

p-values: Welch's one-sided two-sample t-test (scipy.stats.ttest_ind,
equal_var=False, alternative="greater") of the candidate's per-seed test AUCs
against the reference's: H1 = the candidate's mean AUC is higher.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

import yaml

import tfrs_userlevel  # noqa: F401  (selects Keras 2 before anything imports TensorFlow)
from tfrs_userlevel import datasets
from tfrs_userlevel.cli import train_flags
from tfrs_userlevel.config.errors import ConfigError
from tfrs_userlevel.experiments import (
    analyses,
    cold_start_protocol,
    matched_cold_start,
    planted_cold_start,
    planted_recovery,
    report,
    sections,
)
from tfrs_userlevel.experiments.runner import MissingRunError, Runner
from tfrs_userlevel.experiments.tables import FIVE_SEEDS, ML1M, TABLES, build_rows
from tfrs_userlevel.training import write_json_atomic

REPO = Path(__file__).resolve().parent
PROBES = {"gprec_scales": analyses.gprec_scales, "ensemble_heads": analyses.ensemble_heads}


def overrides(text: str, flag: str = "--set") -> dict:
    """"key=value key=value" -> {key: value}, each value read as YAML; or the flags of
    `tfrs-userlevel train` ("--user-level gprec --groups 40"), as the recorded commands of
    the result tables spell them."""
    items = shlex.split(text)
    if items and items[0].startswith("--"):
        return train_flags.flag_overrides(items)
    found = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"{flag}: expected KEY=VALUE pairs, got {item!r}")
        found[key] = yaml.safe_load(value)
    return found


# Protocols, which are not tables of training runs alone: their title, their rows
# (runner, seeds, command -> rows) and the Markdown after the table.
PROTOCOLS = {
    "udg_cold_start": (
        "Meta-learned UDG embeddings for new users on ML-100K (UDG paper Table 5 protocol)",
        cold_start_protocol.udg_cold_start, cold_start_protocol.cold_start_table),
    "udg_cold_start_matched": (
        "Meta-learned UDG embeddings for new users on ML-100K, warmed up by the update "
        "Algorithm 1 trains for", matched_cold_start.udg_cold_start_matched,
        matched_cold_start.matched_table),
    "planted_cold_start": (
        "SYNTHETIC cold-start world: meta-learned UDG embeddings for new users whose taste "
        "their profile predicts", lambda runner, seeds, command:
        planted_cold_start.planted_cold_start(runner.runs_dir, seeds, command, runner.train),
        matched_cold_start.matched_table),
    "planted_udg_recovery": (
        "SYNTHETIC UDG worlds: how much of each user's planted attribute weighting the MLP, "
        "UDG and the MLP of UDG's size recover", lambda runner, seeds, command:
        planted_recovery.planted_udg_recovery(runner.runs_dir, seeds, command, runner.train,
                                              runner.base),
        planted_recovery.recovery_table),
}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n", 2)[2])
    p.add_argument("what", choices=["compare", "by_activity", "where", "diversity", *PROBES,
                                    *PROTOCOLS, *TABLES])
    p.add_argument("--seeds", type=int, nargs="+", default=None,
                   help="default: the table's (5 seeds, 2024-2028, unless it says otherwise)")
    p.add_argument("--runs-dir", default="runs/experiments")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--results-dir", default=str(REPO / "results"))
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a TrainConfig field for every run of the command (repeatable)")
    p.add_argument("--from-runs", action="store_true",
                   help="write the table from finished runs only; a missing run is an error")
    p.add_argument("--a", default="user_level=none",
                   help="compare, by_activity: the reference configuration (KEY=VALUE ...)")
    p.add_argument("--b", default="user_level=gprec",
                   help="compare, by_activity: the candidate configuration (KEY=VALUE ...)")
    p.add_argument("--row", default=None, metavar="TABLE:MODEL",
                   help="where: a row of a table, e.g. 'ml1m_gprec:GPRec(MLP) input' "
                        "(default: the configuration --b)")
    p.add_argument("--name", default=None,
                   help="compare, by_activity: also write results/NAME.md/.json; "
                        "gprec_scales, ensemble_heads: results/NAME.json")
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
    try:
        return run_command(args, command)
    except (ConfigError, MissingRunError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def run_command(args: argparse.Namespace, command: str) -> int:
    if args.what in ("diversity", *PROBES) and not args.model_dir:
        raise ConfigError(f"{args.what} needs --model-dir")
    if args.what == "diversity":
        analyses.diversity(Path(args.model_dir), Path(args.out))
        return 0
    if args.what in PROBES:  # read one finished run; print, and write JSON with --name
        stats = PROBES[args.what](Path(args.model_dir), args.data_dir)
        if args.name:
            write_json_atomic(report.result_path(args.results_dir, args.name, ".json"),
                              {**stats, "command": command})
        return 0
    extra = {}
    for text in args.set:
        extra.update(overrides(text))
    if args.what == "where":  # the run folders of one configuration, one per seed
        table_name, _, model = (args.row or "").partition(":")
        if args.row and (table_name not in TABLES or not model):
            raise ConfigError(f"--row: expected TABLE:MODEL with TABLE one of "
                              f"{sorted(TABLES)}, got {args.row!r}")
        table = TABLES.get(table_name)
        found = {r.name: r.overrides for r in table.rows} if table else {}
        if args.row and model not in found:
            raise ConfigError(f"--row: {table_name} has no row {model!r}; its rows are "
                              f"{list(found)}")
        where = Runner(Path(args.runs_dir), base={**(table.base if table else ML1M), **extra})
        for seed in args.seeds or FIVE_SEEDS:
            print(where.run_dir(found[model] if args.row else overrides(args.b, "--b"), seed))
        return 0
    table = TABLES.get(args.what)
    base = {**(table.base if table else {} if args.what in PROTOCOLS else ML1M),
            **extra}
    runner = Runner(Path(args.runs_dir), args.data_dir, base, train=not args.from_runs,
                    loader=table.loader if table else None)
    if args.what in ("compare", "by_activity"):
        a, b = overrides(args.a, "--a"), overrides(args.b, "--b")
        seeds = args.seeds or FIVE_SEEDS
        if args.what == "by_activity":
            analyses.by_activity(runner, a, b, seeds, command, args.results_dir, args.name)
            return 0
        ref = runner.seeds(a, seeds)
        rows = [report.row("A", a, ref, command),
                report.row("B", b, runner.seeds(b, seeds), command, reference=("A", ref))]
        if args.name:
            report.write_table(args.results_dir, args.name, f"{args.b} vs {args.a}", rows,
                               command, base=base)
        else:
            print(report.markdown_table(rows))
        return 0
    if args.what in PROTOCOLS:
        title, protocol, section = PROTOCOLS[args.what]
        build = protocol(runner, args.seeds or FIVE_SEEDS, command)
    else:
        title, section = table.title, table.section
        build = build_rows(runner, table, args.seeds or table.seeds, command)
    rows = []
    # The table is rewritten after every row, so an interrupted command leaves the rows it
    # finished (marked partial); rerunning it reuses every finished run.
    for r in build:
        rows.append(r)
        report.write_table(args.results_dir, args.what,
                           title + " (partial: rows still to come)", rows, command,
                           section(rows) if section else "", base=base)
    report.write_table(args.results_dir, args.what, title, rows, command,
                       section(rows) if section else "", base=base)
    if args.what == "ml1m_gprec_hparams":
        sections.plot_hparams(rows, report.result_path(args.results_dir, args.what, ".png"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
