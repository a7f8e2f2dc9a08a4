"""GPRec layer step time with r_g and r_p factored against built (one run, interleaved).

  python benchmarks/gprec_factored.py

Times one training step (forward, every loss term, gradients to every
weight) of the `GPRec` layer alone on random inputs shaped like ML-1M's
(B = 4096, 5 user fields, 1 personal, 2 item fields, d = 16, G = 60), for
each strategy and both reductions, with the factored representations of
`tfrs_userlevel.gprec.factored` (the default) and with r_g and r_p built as
tensors (the reference path). Rounds alternate between the two forms so
that both see the same machine load; the median of the rounds is reported
and written to results/speed/gprec_factored.json with `speedup` = built / factored.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tfrs_userlevel import keras, tf  # noqa: E402
from tfrs_userlevel.gprec import GPRec  # noqa: E402
from tfrs_userlevel.training import write_json_atomic  # noqa: E402


def _inputs(batch: int, dim: int) -> dict:
    rng = np.random.default_rng(0)
    shapes = {"user": (batch, 5, dim), "personal": (batch, 1, dim), "item": (batch, 2, dim),
              "hidden": (batch, 16), "logit": (batch, 1)}
    values = {k: tf.constant(rng.normal(size=s), tf.float32) for k, s in shapes.items()}
    values["labels"] = tf.constant(rng.integers(0, 2, (batch, 1)), tf.float32)
    return values


def _step_function(layer: GPRec, inputs: dict):
    @tf.function
    def step():
        with tf.GradientTape() as tape:
            out = layer(inputs, training=True)
            loss = tf.reduce_mean(out["logit"]) + tf.add_n(list(out["losses"].values()))
        return tape.gradient(loss, layer.trainable_variables)
    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=4096)
    parser.add_argument("--groups", type=int, default=60)
    parser.add_argument("--steps", type=int, default=20, help="steps per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--strategies", nargs="+", default=["input", "dp", "ensemble"])
    parser.add_argument("--reduces", nargs="+", default=["concat", "sum"])
    parser.add_argument("--output",
                        default=str(REPO / "results" / "speed" / "gprec_factored.json"))
    args = parser.parse_args()
    command = "python benchmarks/gprec_factored.py " + shlex.join(sys.argv[1:])
    inputs = _inputs(args.batch_size, 16)
    rows = []
    for reduce in args.reduces:
        for strategy in args.strategies:
            steps = {}
            for form in ("factored", "built"):
                keras.utils.set_random_seed(1)
                layer = GPRec(groups=args.groups, strategy=strategy, reduce=reduce,
                              classifier_units=(4,), dropout=0.0)
                layer._factored = form == "factored"
                steps[form] = _step_function(layer, inputs)
                steps[form]()  # trace
            times = {form: [] for form in steps}
            for _ in range(args.rounds):
                for form, step in steps.items():
                    start = time.perf_counter()
                    for _ in range(args.steps):
                        step()
                    times[form].append((time.perf_counter() - start) / args.steps * 1000)
            ms = {form: float(np.median(t)) for form, t in times.items()}
            row = {"strategy": strategy, "reduce": reduce, "groups": args.groups,
                   "batch_size": args.batch_size, "factored_ms": round(ms["factored"], 2),
                   "built_ms": round(ms["built"], 2),
                   "speedup": round(ms["built"] / ms["factored"], 2), "command": command}
            rows.append(row)
            print(f"{strategy:9s} reduce={reduce:6s} factored {ms['factored']:7.2f} ms  "
                  f"built {ms['built']:7.2f} ms  speedup {row['speedup']:.2f}x", flush=True)
    write_json_atomic(Path(args.output), rows)


if __name__ == "__main__":
    main()
