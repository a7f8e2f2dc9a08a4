"""tfrs-userlevel predict: score a CSV or Parquet file, any size, with a trained model
directory or an exported SavedModel.

  tfrs-userlevel predict --model-dir runs/own --input today.csv --output scores.csv
  tfrs-userlevel predict --saved-model serving/own --input today.parquet --output s.parquet

The input holds the model's feature columns (other columns are ignored); the output
holds each row's id columns (default: the model's user and item fields) and its click
`probability`, in the input's order. Values the model never saw are scored through
their field's out-of-vocabulary bucket. See `tfrs_userlevel.scoring` for the column
formats.
"""

from __future__ import annotations

import time
from pathlib import Path

from tfrs_userlevel.cli.terminal import ArgumentParser, UsageError, command_main
from tfrs_userlevel.scoring import SCORE_BATCH_ROWS, Scorer, file_format, score_file
from tfrs_userlevel.tables.errors import DataError


def build_parser(prog: str) -> ArgumentParser:
    p = ArgumentParser(prog=prog, description="Score a CSV or Parquet file with a trained "
                       "or exported model; write the rows' ids and click probabilities.")
    model = p.add_mutually_exclusive_group(required=True)
    model.add_argument("--model-dir", help="a finished training run (its best weights)")
    model.add_argument("--saved-model", help="an export: a version folder, or the base "
                       "folder (its latest version)")
    p.add_argument("--input", required=True, help="CSV (.csv, .csv.gz) or Parquet file")
    p.add_argument("--output", required=True, help="CSV or Parquet file to write (by its "
                   "extension)")
    p.add_argument("--id-columns", nargs="*", default=None,
                   help="input columns copied to the output (default: the model's user and "
                        "item fields)")
    p.add_argument("--format", choices=("csv", "parquet"), default=None,
                   help="the input's format (default: from its extension)")
    p.add_argument("--output-format", choices=("csv", "parquet"), default=None,
                   help="the output's format (default: from its extension)")
    p.add_argument("--delimiter", default=",", help="the input CSV's delimiter")
    p.add_argument("--batch-size", type=int, default=SCORE_BATCH_ROWS,
                   help="rows scored at a time (memory stays bounded by it)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --output")
    return p


def command(argv, prog: str = "tfrs-userlevel predict") -> int:
    args = build_parser(prog).parse_args(argv)
    source, output = Path(args.input), Path(args.output)
    if args.batch_size < 1:
        raise UsageError(f"--batch-size must be >= 1, got {args.batch_size}")
    if not source.is_file():
        raise DataError(f"--input {source}: no such file")
    file_format(source, args.format)
    file_format(output, args.output_format, "--output")
    if output.exists() and output.resolve() == source.resolve():
        raise UsageError(f"--output {output} is the --input file")
    if output.is_dir():
        raise UsageError(f"--output {output} is a folder; name a file")
    if output.exists() and not args.overwrite:
        raise UsageError(f"--output {output} exists; pass --overwrite to replace it")
    if args.model_dir is not None:
        if not Path(args.model_dir).is_dir():
            raise UsageError(f"--model-dir {args.model_dir}: no such folder")
        scorer = Scorer.from_run(args.model_dir)
    else:
        scorer = Scorer.from_saved_model(args.saved_model)
    ids = scorer.default_id_columns() if args.id_columns is None else args.id_columns
    if args.id_columns is None and not ids:
        raise UsageError("the model does not say which fields are ids (an export without "
                         "feature_spec.json): name them with --id-columns")
    output.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    rows = score_file(scorer, source, output, ids, args.format, args.output_format,
                      args.delimiter, args.batch_size)
    seconds = time.perf_counter() - started
    print(f"scored {rows:,} rows of {source} -> {output} "
          f"({rows / max(seconds, 1e-9):,.0f} rows/s)")
    return 0


main = command_main("predict")  # `tfrs-userlevel predict ARGV` -> the exit code
