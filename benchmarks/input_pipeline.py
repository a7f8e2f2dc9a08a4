"""Input pipeline throughput alone: ML-1M training batches of looked-up ids.

  TFRS_USERLEVEL_DATA=/path/to/data python benchmarks/input_pipeline.py

Prints examples/s per epoch and writes results/speed/input_pipeline.json. The bar
is >= 1,000,000 examples/s at batch 4096 on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import tfrs_userlevel  # noqa: E402, F401, I001
from tfrs_userlevel import datasets  # noqa: E402
from tfrs_userlevel import FeatureLookup, FeatureSpec, data  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="movielens_1m")
    parser.add_argument("--batch-size", type=int, default=4096)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--output",
                        default=str(REPO / "results" / "speed" / "input_pipeline.json"))
    args = parser.parse_args()

    splits = datasets.load_splits(args.dataset)
    spec = FeatureSpec.from_config(datasets.feature_spec(args.dataset))
    lookup = FeatureLookup(spec.get_config(), spec.build_vocabularies(splits["train"]))
    start = time.perf_counter()
    ids = data.lookup_columns(lookup, splits["train"])
    lookup_seconds = time.perf_counter() - start
    labels = splits["train"]["label"]
    dataset = data.training_dataset(ids, labels, args.batch_size, seed=0)
    rates = []
    for epoch in range(args.epochs):
        start, n = time.perf_counter(), 0
        for _, y in dataset:
            n += int(y.shape[0])
        rates.append(n / (time.perf_counter() - start))
        print(f"epoch {epoch + 1}: {rates[-1]:,.0f} examples/s")
    result = {
        "dataset": args.dataset, "batch_size": args.batch_size,
        "examples_per_second_per_epoch": rates,
        "examples_per_second": float(np.median(rates[1:] or rates)),
        "lookup_seconds_once": lookup_seconds,
        "command": "TFRS_USERLEVEL_DATA=../shared/data python benchmarks/input_pipeline.py",
    }
    print(f"median over epochs after the first: {result['examples_per_second']:,.0f} examples/s "
          f"(the one-off vocabulary lookup of the split took {lookup_seconds:.2f}s)")
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
