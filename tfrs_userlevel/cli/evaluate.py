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

from tfrs_userlevel import metrics as metrics_lib
from tfrs_userlevel.backend import tf
from tfrs_userlevel.cli.terminal import ArgumentParser, UsageError
from tfrs_userlevel.scoring import Scorer, feature_batches, file_format
from tfrs_userlevel.tables.errors import DataError, place
from tfrs_userlevel.training import write_json_atomic

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
    scorer = Scorer.from_run(model_dir)
    if args.input is not None:
        labels, probabilities = _score_input(scorer, Path(args.input), args)
        where = args.input
    else:
        labels, probabilities = _score_split(scorer, model_dir, SPLIT_NAMES[args.split],
                                             args.data_dir, args.batch_size)
        where = f"the {SPLIT_NAMES[args.split]} split"
    result = metrics_of(labels, probabilities, scorer.positive_rate)
    seconds = time.perf_counter() - started
    print(f"{len(labels):,} rows of {where}: "
          + "  ".join(f"{name} {value:.4f}" for name, value in result.items()))
    if args.output is not None:
        write_json_atomic(Path(args.output), {"rows": len(labels), "source": where, **result,
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
        labels.append(_labels(extra[args.label], path, fmt, start, args.label))
        probabilities.append(scorer(features))
    if not labels:
        raise DataError(f"--input {path}: holds no rows")
    return np.concatenate(labels), np.concatenate(probabilities)


def _labels(column, path: Path, fmt: str, start: int, name: str) -> np.ndarray:
    values = column.to_numpy(zero_copy_only=False)
    try:
        numbers = values.astype(np.float64)
    except (TypeError, ValueError):
        numbers = np.full(len(values), np.nan)
    bad = ~np.isin(numbers, (0.0, 1.0))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(f"{place(path, fmt, start + row)}: label column {name!r} holds "
                        f"{values[row]!r}; labels are 0 or 1")
    return numbers.astype(np.int64)


def _score_split(scorer: Scorer, model_dir: Path, split: str, data_dir: str | None,
                 batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    columns = _split_columns(model_dir, split, data_dir)
    labels = np.asarray(columns.pop("label"), np.int64)
    probabilities = []
    for start in range(0, len(labels), batch_size):
        batch = {i.name: _stacked(columns[i.name][start:start + batch_size])
                 for i in scorer.inputs}
        probabilities.append(scorer(batch))
    return labels, np.concatenate(probabilities) if probabilities else np.zeros(0)


def _stacked(values: np.ndarray) -> np.ndarray:
    """A column of per-row id lists (a history) as one 2-D array; others unchanged."""
    if values.dtype == object and len(values) and isinstance(values[0], np.ndarray):
        return np.stack(values)
    return values


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


def main(argv=None) -> int:
    """`tfrs-userlevel evaluate ARGV`: returns the exit code."""
    import sys

    from tfrs_userlevel.cli import main as cli_main

    return cli_main(["evaluate", *(sys.argv[1:] if argv is None else argv)])
