"""tfrs-userlevel evaluate: the metrics of a trained model on a split of its data or on a
file with labels.

  tfrs-userlevel evaluate --model-dir runs/own --split test
  tfrs-userlevel evaluate --model-dir runs/own --input june.parquet --label clicked

`--split` reads the run's own data again (a run configuration's files, or the
built-in dataset with --data-dir); `--input` reads a CSV or Parquet file with the
model's feature columns and a 0/1 label column, batch by batch.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from tfrs_userlevel import data as data_lib
from tfrs_userlevel import metrics as metrics_lib
from tfrs_userlevel.backend import tf
from tfrs_userlevel.cli.terminal import ArgumentParser, UsageError, command_main
from tfrs_userlevel.config.sections import Label
from tfrs_userlevel.metrics import evaluate_ids
from tfrs_userlevel.scoring import Scorer, feature_batches, file_format
from tfrs_userlevel.tables.columns import label_values
from tfrs_userlevel.tables.errors import DataError
from tfrs_userlevel.training import load_trained, write_json_atomic

SPLIT_NAMES = {"train": "train", "validation": "validation", "val": "validation",
               "test": "test"}


def build_parser(prog: str) -> ArgumentParser:
    p = ArgumentParser(prog=prog, description="Metrics (AUC, LogLoss, RMSE, RIG) of a "
                       "trained model on a split of its data or on a file with labels.")
    p.add_argument("--model-dir", required=True, help="a finished training run")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--split", choices=sorted(SPLIT_NAMES),
                        help="a split of the run's own data, read again")
    source.add_argument("--input", help="a CSV (.csv, .csv.gz) or Parquet file with the "
                        "model's feature columns and a label column")
    p.add_argument("--label", default="label",
                   help="with --input: the 0/1 label column")
    p.add_argument("--format", choices=("csv", "parquet"), default=None,
                   help="with --input: the file's format (default: from its extension)")
    p.add_argument("--delimiter", default=",", help="with --input: the CSV delimiter")
    p.add_argument("--data-dir", default=None,
                   help="with --split on a built-in dataset: the raw files' root")
    p.add_argument("--batch-size", type=int, default=1 << 16, help="rows scored at a time")
    p.add_argument("--output", default=None, help="also write the metrics to this JSON file")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --output")
    return p


def command(argv, prog: str = "tfrs-userlevel evaluate") -> int:
    args = build_parser(prog).parse_args(argv)
    if args.batch_size < 1:
        raise UsageError(f"--batch-size must be >= 1, got {args.batch_size}")
    model_dir = Path(args.model_dir)
    if args.output is not None and Path(args.output).exists() and not args.overwrite:
        raise UsageError(f"--output {args.output} exists; pass --overwrite to replace it")
    if not model_dir.is_dir():
        raise UsageError(f"--model-dir {model_dir}: no such folder")
    started = time.perf_counter()
    if args.input is not None:
        scorer = Scorer.from_run(model_dir)
        labels, probabilities = _score_input(scorer, Path(args.input), args)
        result = metrics_of(labels, probabilities, scorer.positive_rate)
        rows, where = len(labels), args.input
    else:
        # The run's own evaluation path: the model's lookup on the raw columns, then
        # `evaluate_ids`, as training scored its validation and test splits.
        split = SPLIT_NAMES[args.split]
        columns = _split_columns(model_dir, split, args.data_dir)
        model = load_trained(model_dir)
        ids = data_lib.lookup_columns(model.lookup, columns)
        result = evaluate_ids(model, ids, columns["label"], args.batch_size)
        rows, where = len(columns["label"]), f"the {split} split"
    seconds = time.perf_counter() - started
    print(f"{rows:,} rows of {where}: "
          + "  ".join(f"{name} {value:.4f}" for name, value in result.items()))
    if args.output is not None:
        write_json_atomic(Path(args.output), {"rows": rows, "source": where, **result,
                                              "model_dir": str(model_dir)})
    print(f"({seconds:.1f} s)")
    return 0


def metrics_of(labels: np.ndarray, probabilities: np.ndarray,
               positive_rate: float | None) -> dict[str, float]:
    """`metrics.ranking_metrics` (AUC, LogLoss, RMSE, RIG) of probabilities [N]."""
    if len(labels) == 0:
        raise DataError("no rows to evaluate")
    found = metrics_lib.ranking_metrics(positive_rate or float(np.mean(labels)),
                                        from_logits=False)
    y = tf.constant(labels.reshape(-1, 1), tf.float32)
    p = tf.constant(probabilities.reshape(-1, 1), tf.float32)
    for metric in found:
        metric.update_state(y, p)
    return {metric.name: float(metric.result()) for metric in found}


def _score_input(scorer: Scorer, path: Path, args) -> tuple[np.ndarray, np.ndarray]:
    if not path.is_file():
        raise DataError(f"--input {path}: no such file")
    fmt = file_format(path, args.format)
    labels, probabilities = [], []
    for start, features, extra in feature_batches(path, fmt, scorer.inputs, [args.label],
                                                  args.delimiter, args.batch_size):
        labels.append(label_values(Label(column=args.label), extra[args.label], path, fmt,
                                   start))
        probabilities.append(scorer(features))
    if not labels:
        raise DataError(f"--input {path}: holds no rows")
    return np.concatenate(labels), np.concatenate(probabilities)


def _split_columns(model_dir: Path, split: str, data_dir: str | None) -> dict:
    """The raw columns of one split of the run's data."""
    from tfrs_userlevel import datasets, tables
    from tfrs_userlevel.config import load_run_config

    if (model_dir / "config.yaml").exists():
        run_config = load_run_config(model_dir / "config.yaml")
        if run_config.data.stream:
            raise UsageError("--split reads data into memory; this run streamed its files: "
                             "evaluate a file with --input instead")
        _, splits = tables.read_splits(run_config.data, run_config.base_dir)
        return dict(splits[split])
    recorded = json.loads((model_dir / "config.json").read_text())["config"]
    if recorded.get("dataset") not in datasets.DATASETS:
        raise UsageError(f"--split: the run in {model_dir} trained on "
                         f"{recorded.get('dataset')!r}, which is generated, not read; "
                         "evaluate a file with --input")
    splits = datasets.load_splits(recorded["dataset"], recorded.get("split", "random"),
                                  data_dir, history_length=recorded.get("history_length", 0))
    return dict(splits[split])


main = command_main("evaluate")  # `tfrs-userlevel evaluate ARGV` -> the exit code
