"""Training-step throughput, models interleaved every few seconds (one process).

  TFRS_USERLEVEL_DATA=/path/to/data python benchmarks/step_throughput.py \
      --user-levels none gprec --rounds 9

Builds each model as `train.py` does (its defaults, plus `--gprec-options`),
compiles it with the same optimizer and `steps_per_execution`, and warms it
up on ML-1M's training batches. Then, round by round, it runs `--steps`
training steps of every model in turn and records examples/s and the CPU
seconds the process used per step. Unlike `training_throughput.py`, which
times whole epochs of one full `train.py` run per model and round (a minute
apart), the models here are measured within seconds of each other, so a slow
spell of this noisy machine lands on every model of a round; evaluation,
callbacks and the epoch's input start-up are left out. The share of the
first model is the median of the rounds' own shares. Results go to
results/speed/step_throughput.json (rows of the same model are replaced).
"""

from __future__ import annotations

import argparse
import json
import resource
import shlex
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tfrs_userlevel import datasets  # noqa: E402, I001
from tfrs_userlevel import keras  # noqa: E402
from tfrs_userlevel import data as data_lib  # noqa: E402
from tfrs_userlevel.features import FeatureSpec  # noqa: E402
from tfrs_userlevel.training import TrainConfig, build_model, write_json_atomic  # noqa: E402


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="movielens_1m")
    parser.add_argument("--user-levels", nargs="+", default=["none", "gprec"],
                        choices=["none", "gprec"])
    parser.add_argument("--gprec-options", type=json.loads, action="append", default=None,
                        help="TrainConfig fields of a GPRec row, as JSON; repeat the flag to "
                             "measure several variants")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--steps", type=int, default=100, help="training steps per measurement")
    parser.add_argument("--output",
                        default=str(REPO / "results" / "speed" / "step_throughput.json"))
    args = parser.parse_args()
    if args.rounds < 1 or args.steps < 1:
        parser.error("--rounds and --steps must be >= 1")

    splits = datasets.load_splits(args.dataset)
    spec = FeatureSpec.from_config(datasets.feature_spec(args.dataset))
    vocabularies = spec.build_vocabularies(splits["train"])
    positive_rate = float(np.mean(splits["train"]["label"]))
    variants = []
    if "none" in args.user_levels:
        variants.append(("mlp", {"user_level": "none"}))
    if "gprec" in args.user_levels:
        for options in args.gprec_options or [{}]:
            name = "gprec(mlp)" + (" " + json.dumps(options, sort_keys=True) if options else "")
            variants.append((name, {"user_level": "gprec", **options}))

    models = {}
    for name, options in variants:
        config = TrainConfig(dataset=args.dataset, **options)
        keras.utils.set_random_seed(config.seed)
        model = build_model(config, spec, vocabularies, positive_rate)
        model(model.example_features())
        model.compile(optimizer=keras.optimizers.Adam(config.learning_rate),
                      steps_per_execution=config.steps_per_execution)
        ids = data_lib.lookup_columns(model.lookup, splits["train"])
        train = data_lib.training_dataset(ids, splits["train"]["label"], config.batch_size,
                                          seed=config.seed).repeat()
        model.fit(train, epochs=1, steps_per_epoch=2 * config.steps_per_execution, verbose=0)
        models[name] = (model, train, config.batch_size)

    speeds = {name: [] for name in models}
    cpu_ms = {name: [] for name in models}
    for round_index in range(args.rounds):
        order = list(models) if round_index % 2 == 0 else list(models)[::-1]
        for name in order:
            model, train, batch_size = models[name]
            wall, cpu = time.perf_counter(), _cpu_seconds()
            model.fit(train, epochs=1, steps_per_epoch=args.steps, verbose=0)
            wall, cpu = time.perf_counter() - wall, _cpu_seconds() - cpu
            speeds[name].append(args.steps * batch_size / wall)
            cpu_ms[name].append(1e3 * cpu / args.steps)
        print(f"round {round_index + 1}/{args.rounds}: " + ", ".join(
            f"{name} {speeds[name][-1]:,.0f}" for name in models), flush=True)

    output = Path(args.output)
    rows = json.loads(output.read_text()) if output.exists() else []
    command = ("TFRS_USERLEVEL_DATA=../shared/data python benchmarks/step_throughput.py "
               + shlex.join(sys.argv[1:]))
    reference = next(iter(models))
    for name in models:
        ratios = [a / b for a, b in zip(speeds[name], speeds[reference], strict=True)]
        row = {"model": name, "examples_per_second": round(float(np.median(speeds[name]))),
               "rounds": [round(x) for x in speeds[name]],
               "cpu_ms_per_step": round(float(np.median(cpu_ms[name])), 2),
               f"ratio_vs_{reference}": round(float(np.median(ratios)), 3),
               f"ratio_vs_{reference}_rounds": [round(x, 3) for x in ratios],
               "steps": args.steps, "dataset": args.dataset, "command": command}
        print(f"{name}: {row['examples_per_second']:,} examples/s, "
              f"{row[f'ratio_vs_{reference}']:.0%} of {reference}, "
              f"{row['cpu_ms_per_step']} CPU ms per step", flush=True)
        rows = [r for r in rows if r["model"] != name] + [row]
    write_json_atomic(output, rows)


if __name__ == "__main__":
    main()
