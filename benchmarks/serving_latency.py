"""Serving latency and throughput through the exported SavedModel (TF Serving's graph).

  TFRS_USERLEVEL_DATA=/path/to/data python benchmarks/serving_latency.py

For each model: train a few steps on ML-1M (latency does not depend on how
well it is trained, only on its graph and table sizes), export it with
`python -m export`'s code, load it back with `tf.saved_model.load` and call
its `serving_default` signature on real test rows:

* batch 1: p50 and p99 latency in milliseconds over --calls calls;
* batch 512: examples per second over --calls // 4 calls.

All models are measured in one process, interleaved call by call so that any
drift of the machine hits every model alike. GPRec's rows carry
`cost_vs_backbone` = its p50 latency at batch 1 over the MLP's, and
`throughput_vs_backbone` = its batch-512 throughput over the MLP's (target:
the cost within 1.3×); so do UDG's (its gates on the MLP's layers, and
with the meta generator that serves unseen users). Writes results/speed/serving_latency.json.

  python benchmarks/serving_latency.py --gprec-options '{"prediction_units": []}'

adds a row per GPRec strategy with those TrainConfig fields (JSON; the flag
may be repeated; a "strategies" list limits the strategies), in the same
interleaved run.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import tfrs_userlevel  # noqa: E402, F401, I001
from tfrs_userlevel import datasets  # noqa: E402
from tfrs_userlevel.serving import export_run  # noqa: E402
from tfrs_userlevel.backend import tf  # noqa: E402
from tfrs_userlevel.training import TrainConfig, run, write_json_atomic  # noqa: E402

MODELS = {
    "mlp": {},
    "gprec(mlp) input": {"user_level": "gprec", "strategy": "input"},
    "gprec(mlp) dp": {"user_level": "gprec", "strategy": "dp"},
    "gprec(mlp) ensemble": {"user_level": "gprec", "strategy": "ensemble",
                            "stop_embedding_gradient": True},
    "udg(mlp)": {"user_level": "udg"},
    "udg(mlp) meta": {"user_level": "udg", "meta": True},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="movielens_1m")
    parser.add_argument("--calls", type=int, default=2000, help="batch-1 calls per model")
    parser.add_argument("--gprec-options", type=json.loads, action="append", default=[],
                        help="TrainConfig fields for extra GPRec rows, as JSON (repeatable)")
    parser.add_argument("--output",
                        default=str(REPO / "results" / "speed" / "serving_latency.json"))
    args = parser.parse_args()

    models = dict(MODELS)
    for options in args.gprec_options:
        options = dict(options)
        for strategy in options.pop("strategies", ["input", "dp", "ensemble"]):
            models[f"gprec(mlp) {strategy} {json.dumps(options, sort_keys=True)}"] = {
                "user_level": "gprec", "strategy": strategy, **options}
    splits = datasets.load_splits(args.dataset)
    spec = datasets.feature_spec(args.dataset)
    test = splits["test"]
    names = [f["name"] for f in spec]
    rng = np.random.default_rng(0)
    rows = rng.choice(len(test["label"]), size=args.calls + 512, replace=False)
    singles = [{n: tf.constant(test[n][[i]]) for n in names} for i in rows[:args.calls]]
    big = {n: tf.constant(test[n][rows[-512:]]) for n in names}

    serving = {}
    with tempfile.TemporaryDirectory() as tmp:
        for number, (model, options) in enumerate(models.items()):
            config = TrainConfig(dataset=args.dataset, epochs=1, max_steps=20, **options)
            # Numbered folders: a model name may hold JSON, whose brackets TF's checkpoint
            # reader would take for a glob pattern.
            run_dir = Path(tmp) / "runs" / f"model_{number}"
            run(config, splits, spec, run_dir, verbose=0)
            version = export_run(run_dir, Path(tmp) / "serving" / f"model_{number}")
            serving[model] = tf.saved_model.load(str(version)).signatures["serving_default"]
            for _ in range(20):  # warm up: first calls trace and allocate
                serving[model](**singles[0])
                serving[model](**big)

        latencies = {m: [] for m in serving}
        for features in singles:
            for model, serve in serving.items():
                start = time.perf_counter()
                serve(**features)["probability"].numpy()
                latencies[model].append(time.perf_counter() - start)
        batch_seconds = {m: [] for m in serving}
        for _ in range(max(args.calls // 4, 10)):
            for model, serve in serving.items():
                start = time.perf_counter()
                serve(**big)["probability"].numpy()
                batch_seconds[model].append(time.perf_counter() - start)

    command = ("TFRS_USERLEVEL_DATA=../shared/data python benchmarks/serving_latency.py "
               + shlex.join(sys.argv[1:])).strip()
    results = []
    for model in serving:
        ms = np.array(latencies[model]) * 1e3
        row = {"model": model, "backbone": "mlp",
               "user_level": models[model].get("user_level", "none"),
               "strategy": models[model].get("strategy"),
               "options": {k: v for k, v in models[model].items()
                           if k not in ("user_level", "strategy")},
               "p50_ms_batch_1": round(float(np.percentile(ms, 50)), 4),
               "p99_ms_batch_1": round(float(np.percentile(ms, 99)), 4),
               "examples_per_second_batch_512": round(512 / float(np.median(
                   batch_seconds[model]))),
               "calls_batch_1": len(ms), "calls_batch_512": len(batch_seconds[model]),
               "dataset": args.dataset, "command": command}
        results.append(row)
    base = results[0]
    for row in results[1:]:
        row["cost_vs_backbone"] = round(row["p50_ms_batch_1"] / base["p50_ms_batch_1"], 3)
        row["throughput_vs_backbone"] = round(
            row["examples_per_second_batch_512"] / base["examples_per_second_batch_512"], 3)
    for row in results:
        print(f"{row['model']:<22} p50 {row['p50_ms_batch_1']:.3f} ms  p99 "
              f"{row['p99_ms_batch_1']:.3f} ms  batch 512: "
              f"{row['examples_per_second_batch_512']:,} ex/s"
              + (f"  cost {row['cost_vs_backbone']:.2f}x, throughput "
                 f"{row['throughput_vs_backbone']:.2f}x of the MLP"
                 if "cost_vs_backbone" in row else ""), flush=True)
    write_json_atomic(Path(args.output), results)


if __name__ == "__main__":
    main()
