"""tfrs-userlevel export: a trained model directory -> a TF Serving model version.

  tfrs-userlevel export --model-dir runs/own --export-dir serving/own [--version N]

The layout and the signatures are described in `tfrs_userlevel.serving`.
"""

from __future__ import annotations

from tfrs_userlevel.cli.terminal import ArgumentParser, UsageError, command_main
from tfrs_userlevel.serving import export_run


def build_parser(prog: str) -> ArgumentParser:
    p = ArgumentParser(prog=prog, description="Write a trained model as a TF Serving model "
                       "version: BASE/<version>/ with the SavedModel and warmup requests.")
    p.add_argument("--model-dir", required=True, help="a finished training run")
    p.add_argument("--export-dir", required=True,
                   help="TF Serving's model base path; the version goes in BASE/<version>/")
    p.add_argument("--version", type=int, default=None,
                   help="version number (default: one more than the largest in BASE); an "
                        "existing version is never overwritten")
    p.add_argument("--model-name", default="tfrs_userlevel",
                   help="model name written into the warmup requests (TF Serving's "
                        "--model_name)")
    return p


def command(argv, prog: str = "tfrs-userlevel export") -> int:
    args = build_parser(prog).parse_args(argv)
    if args.version is not None and args.version < 1:
        raise UsageError(f"--version must be a positive integer, got {args.version}")
    path = export_run(args.model_dir, args.export_dir, args.version, args.model_name)
    print(f"exported {args.model_dir} -> {path}")
    return 0


main = command_main("export")  # `tfrs-userlevel export ARGV` -> the exit code
