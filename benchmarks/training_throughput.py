"""End-to-end training throughput (whole epochs, input included, evaluation excluded).

  TFRS_USERLEVEL_DATA=/path/to/data python benchmarks/training_throughput.py

Trains each requested model on ML-1M for a few epochs with `train.py`'s
defaults and records the median examples/s over the epochs after the first
(the first includes graph tracing) in results/speed/training_throughput.json,
replacing earlier rows of the same model. The target for the MLP is
>= 320,000 examples/s on this 2-core machine.

  python benchmarks/training_throughput.py --user-levels none gprec \
      --strategies input dp ensemble

measures GPRec on each backbone in the same run as the plain backbone and
adds `ratio_vs_backbone` (GPRec's examples/s over the backbone's, same run;
target: >= 0.6).

  python benchmarks/training_throughput.py --backbones mlp wd deepfm ipnn opnn dcn \
      dcnv2 gdcn finalmlp destine

records every backbone, with `ratio_vs_library` against the fastest
established library's examples/s for that model on this machine (docs/reproducing.md;
target: >= 1).

  python benchmarks/training_throughput.py --backbones mlp \
      --baselines mmoe ple star apg pepnet dgpm

adds the user-modeling baselines, each with `ratio_vs_backbone`
against the MLP of the same run (and `ratio_vs_library` for APG).

  python benchmarks/training_throughput.py --user-levels none gprec \
      --strategies input ensemble --gprec-options '{"stop_embedding_gradient": true}' \
      --gprec-options '{"classifier_shared": true, "classifier_units": [16]}'

measures each GPRec strategy once per `--gprec-options` (TrainConfig fields,
as JSON; the row's model name lists them; a "strategies" list there limits
the strategies), all in the same run as the MLP.

  python benchmarks/training_throughput.py --user-levels none gprec --rounds 3

measures every model 3 times, round by round (MLP, GPRec, then GPRec, MLP, ...):
the row keeps the median examples/s and each round's, and `ratio_vs_backbone`
is the median of the ratios within each round, so that a slow spell of the
machine does not land on one model alone.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import tfrs_userlevel  # noqa: E402, F401, I001
from tfrs_userlevel import datasets  # noqa: E402
from tfrs_userlevel.training import TrainConfig, run, write_json_atomic  # noqa: E402


# Fastest established library for the same model on this 2-core machine, examples/s end
# to end (docs/benchmarks.md): a Keras library on this TensorFlow for MLP, DeepFM and DCN, a PyTorch
# library for the others. Target: no backbone slower than its entry here.
LIBRARY_EXAMPLES_PER_SECOND = {"mlp": 307_000, "deepfm": 318_000, "dcn": 235_000,
                               "dcnv2": 101_000, "gdcn": 71_000, "finalmlp": 87_000,
                               "destine": 51_000, "apg": 71_000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="movielens_1m")
    parser.add_argument("--backbones", nargs="+", default=["mlp"])
    parser.add_argument("--user-levels", nargs="+", default=["none"], choices=["none", "gprec"])
    parser.add_argument("--strategies", nargs="+", default=["input"],
                        help="GPRec construction strategies to measure")
    parser.add_argument("--baselines", nargs="*", default=[],
                        help="user-modeling baselines to measure after the backbones")
    parser.add_argument("--gprec-options", type=json.loads, action="append", default=None,
                        help="TrainConfig fields for the GPRec rows, as JSON; repeat the "
                             "flag to measure several variants")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=1,
                        help="measure every model this many times, round by round; rows "
                             "keep the median, and ratios are the median of each round's")
    parser.add_argument("--output",
                        default=str(REPO / "results" / "speed" / "training_throughput.json"))
    args = parser.parse_args()

    splits = datasets.load_splits(args.dataset)
    spec = datasets.feature_spec(args.dataset)
    output = Path(args.output)
    rows = json.loads(output.read_text()) if output.exists() else []
    command = ("TFRS_USERLEVEL_DATA=../shared/data python benchmarks/training_throughput.py "
               + shlex.join(sys.argv[1:]))
    # Per model: (name, the model its ratio is against or None, row fields, TrainConfig
    # fields, its LIBRARY_EXAMPLES_PER_SECOND key or None).
    jobs = []
    for backbone in args.backbones:
        variants = [("none", None, {})] if "none" in args.user_levels else []
        if "gprec" in args.user_levels:
            for options in args.gprec_options or [{}]:
                options = dict(options)
                variants += [("gprec", strategy, options)
                             for strategy in options.pop("strategies", args.strategies)]
        for user_level, strategy, options in variants:
            model = backbone if user_level == "none" else f"gprec({backbone}) {strategy}"
            if options:
                model += " " + json.dumps(options, sort_keys=True)
            fields = {"model": model, "backbone": backbone, "user_level": user_level,
                      "strategy": strategy, **({"options": options} if options else {})}
            config = {"backbone": backbone, "user_level": user_level,
                      **({"strategy": strategy} if strategy else {}), **options}
            jobs.append((model, None if user_level == "none" else backbone, fields, config,
                         backbone if user_level == "none" else None))
    for baseline in args.baselines:
        fields = {"model": f"baseline {baseline}", "backbone": "mlp", "user_level": "none",
                  "baseline": baseline}
        jobs.append((fields["model"], "mlp", fields, {"baseline": baseline}, baseline))
    # Every round measures every model once: a slow spell of the machine lands on one
    # round's models together, not on one model. Odd rounds run the models in reverse
    # order (A B, B A, ...), so that a drift of the machine's speed within rounds does not
    # favour the model that always runs first.
    speeds: dict[str, list[float]] = {model: [] for model, *_ in jobs}
    for round_index in range(args.rounds):
        for model, _, _, options, _ in (jobs if round_index % 2 == 0 else jobs[::-1]):
            # patience > epochs: every epoch runs, whatever the validation AUC does.
            config = TrainConfig(dataset=args.dataset, epochs=args.epochs,
                                 patience=args.epochs + 1, **options)
            with tempfile.TemporaryDirectory() as model_dir:
                metrics = run(config, splits, spec, model_dir, verbose=0)
            speeds[model].append(metrics["train_examples_per_second"])
            print(f"round {round_index + 1}/{args.rounds} {model}: "
                  f"{speeds[model][-1]:,.0f} examples/s", flush=True)
    for model, reference, fields, _, library_key in jobs:
        row = {**fields, "examples_per_second": round(float(np.median(speeds[model]))),
               "rounds": [round(x) for x in speeds[model]],
               "batch_size": TrainConfig().batch_size, "dataset": args.dataset,
               "epochs": args.epochs, "command": command}
        if reference is not None and speeds.get(reference):
            # The median over rounds of the ratio within each round.
            ratios = [a / b for a, b in zip(speeds[model], speeds[reference], strict=True)]
            row["ratio_vs_backbone"] = round(float(np.median(ratios)), 3)
            row["ratio_vs_backbone_rounds"] = [round(x, 3) for x in ratios]
            row["backbone_examples_per_second"] = round(float(np.median(speeds[reference])))
        if library_key in LIBRARY_EXAMPLES_PER_SECOND:
            row["library_examples_per_second"] = LIBRARY_EXAMPLES_PER_SECOND[library_key]
            row["ratio_vs_library"] = round(
                row["examples_per_second"] / LIBRARY_EXAMPLES_PER_SECOND[library_key], 3)
        print(f"{model}: {row['examples_per_second']:,} examples/s"
              + (f" ({row['ratio_vs_backbone']:.0%} of {reference})"
                 if "ratio_vs_backbone" in row else "")
              + (f" ({row['ratio_vs_library']:.2f}x the fastest library's "
                 f"{row['library_examples_per_second']:,})"
                 if "ratio_vs_library" in row else ""), flush=True)
        rows = [r for r in rows if r["model"] != row["model"]] + [row]
    write_json_atomic(output, rows)


if __name__ == "__main__":
    main()
