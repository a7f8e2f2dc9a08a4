"""Training from TFRecord shards at 1M, 10M and 30M SYNTHETIC rows: throughput and peak RSS.

  python benchmarks/scale.py                      # 1M, 10M, 30M rows
  python benchmarks/scale.py --rows 1000000 3000000 --steps 200

For each size: the synthetic world (datasets/synthetic.py, planted groups) is
written once as sharded TFRecords (`tfrs_userlevel.streaming`, 1M rows per
shard) under --work-dir; then a fresh process trains the MLP from them for
--steps steps of batch 4096 (interleaved reads of 4 shards, block shuffle,
lookup in the pipeline) and reports examples/s over the steps after the first
--warmup, and its peak RSS (ru_maxrss). Every size runs the same number of
steps, so the only thing that changes is how much data sits on disk behind
the stream. The ratios (throughput and RSS growth, against the smallest
size) are the point; they come from one run of this script. Writes
results/scale/scale.json.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

CHILD = """
import json, resource, sys, time
import numpy as np
sys.path.insert(0, sys.argv[4])
import tfrs_userlevel
from tfrs_userlevel import keras, streaming
from tfrs_userlevel.models import RankingModel
from tfrs_userlevel.features import FeatureSpec
folder, steps, warmup = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
manifest = streaming.read_manifest(folder)
spec = FeatureSpec.from_config(manifest["feature_spec"])
keras.utils.set_random_seed(0)
model = RankingModel(spec, manifest["vocabularies"], backbone={"name": "mlp"},
                     positive_rate=manifest["positive_rate"])
model.compile(keras.optimizers.Adam(2e-3), steps_per_execution=25)
data = streaming.streaming_dataset(folder, model.lookup, 4096, seed=0, repeat=True)

class Clock(keras.callbacks.Callback):
    def __init__(self):
        self.times = []
    def on_train_batch_end(self, batch, logs=None):
        self.times.append(time.perf_counter())

clock = Clock()
model.fit(data, epochs=1, steps_per_epoch=steps, callbacks=[clock], verbose=0)
ends = np.array(clock.times)
# steps_per_execution=25: one callback per 25 steps.
first = warmup // 25
seconds = ends[-1] - ends[first - 1]
rate = (len(ends) - first) * 25 * 4096 / seconds
print(json.dumps({"examples_per_second": rate,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def write(folder: Path, rows: int) -> dict:
    from tfrs_userlevel import streaming
    from tfrs_userlevel.datasets import synthetic

    if (folder / "train.manifest.json").exists():
        manifest = streaming.read_manifest(folder)
        if manifest["rows"] == rows:
            return {"seconds": None, "manifest": manifest}
    world = synthetic.SyntheticClicks(seed=0)
    start = time.perf_counter()
    manifest = streaming.write_tfrecords(world.chunks(rows), synthetic.FEATURE_SPEC, folder,
                                         rows_per_shard=1_000_000)
    return {"seconds": time.perf_counter() - start, "manifest": manifest}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000,
                                                                30_000_000])
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--work-dir", default="/tmp/tfrs_userlevel_scale")
    parser.add_argument("--output", default=str(REPO / "results" / "scale" / "scale.json"))
    args = parser.parse_args()
    import tfrs_userlevel  # noqa: F401  (Keras 2 before TensorFlow)
    from tfrs_userlevel.training import write_json_atomic

    command = "python benchmarks/scale.py " + shlex.join(sys.argv[1:])
    rows_out = []
    for rows in args.rows:
        folder = Path(args.work_dir) / f"rows_{rows}"
        written = write(folder, rows)
        disk = sum(f.stat().st_size for f in folder.glob("train-*.tfrecord"))
        child = subprocess.run([sys.executable, "-c", CHILD, str(folder), str(args.steps),
                                str(args.warmup), str(REPO)],
                               capture_output=True, text=True, timeout=3600)
        if child.returncode != 0:
            raise SystemExit(child.stderr[-3000:])
        measured = json.loads(child.stdout.strip().splitlines()[-1])
        row = {"model": "mlp", "backbone": "mlp", "user_level": "none", "dataset": "synthetic",
               "rows": rows, "shards": len(written["manifest"]["shards"]),
               "disk_mb": round(disk / 2**20, 1),
               "write_seconds": (None if written["seconds"] is None
                                 else round(written["seconds"], 1)),
               "steps": args.steps, "batch_size": 4096,
               "examples_per_second": round(measured["examples_per_second"]),
               "peak_rss_mb": round(measured["peak_rss_mb"], 1), "command": command}
        rows_out.append(row)
        print(json.dumps(row), flush=True)
    base = rows_out[0]
    for row in rows_out:
        row["throughput_vs_smallest"] = round(
            row["examples_per_second"] / base["examples_per_second"], 3)
        row["rss_growth_mb_vs_smallest"] = round(row["peak_rss_mb"] - base["peak_rss_mb"], 1)
    write_json_atomic(Path(args.output), rows_out)
    for row in rows_out:
        print(f"{row['rows']:>11,} rows  {row['shards']:>3} shards  "
              f"{row['examples_per_second']:>9,} ex/s ({row['throughput_vs_smallest']:.2f}x)  "
              f"peak RSS {row['peak_rss_mb']:,.0f} MB "
              f"({row['rss_growth_mb_vs_smallest']:+.0f} MB)")


if __name__ == "__main__":
    main()
