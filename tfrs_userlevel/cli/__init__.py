"""The `tfrs-userlevel` command (also `python -m tfrs_userlevel`).

    tfrs-userlevel train --dataset movielens_1m --model-dir runs/mlp
    tfrs-userlevel train --config clicks.yaml --model-dir runs/own
    tfrs-userlevel evaluate --model-dir runs/own --input more_clicks.csv
    tfrs-userlevel export --model-dir runs/own --export-dir serving/own
    tfrs-userlevel predict --model-dir runs/own --input today.parquet --output scores.csv
    tfrs-userlevel datasets list
    tfrs-userlevel compare runs/mlp runs/own

Options for every command: --verbose shows TensorFlow's own log lines, --debug shows
the traceback of an error. A user error (an option, the configuration, the data, a
path) prints one `error: ...` line and exits with 2; a training run that diverges exits
with 3; a failure inside TensorFlow exits with 1 and its message.
"""

from __future__ import annotations

import importlib
import sys
import traceback

from tfrs_userlevel import __version__
from tfrs_userlevel.cli.terminal import UsageError, one_line, quiet_start

COMMANDS = {
    "train": "train a model: a run configuration or a built-in dataset -> a model directory",
    "evaluate": "metrics of a trained model on a split of its data or on a file with labels",
    "export": "write a trained model as a TF Serving model version",
    "predict": "score a CSV or Parquet file with a trained or exported model",
    "datasets": "list the built-in datasets, show a configuration's data, prepare TFDS",
    "compare": "the validation and test metrics of finished runs, side by side",
}
GLOBAL_FLAGS = ("--verbose", "--debug")
USAGE = "usage: tfrs-userlevel [--version] COMMAND [--verbose] [--debug] [options]"


def _help() -> str:
    lines = [USAGE, "", "commands:"]
    lines += [f"  {name:<10}{text}" for name, text in COMMANDS.items()]
    lines += ["", "tfrs-userlevel COMMAND --help describes a command's options.",
              "--verbose shows TensorFlow's log lines; --debug the traceback of an error."]
    return "\n".join(lines)


def _user_errors() -> tuple[type[BaseException], ...]:
    from tfrs_userlevel.config.errors import ConfigError
    from tfrs_userlevel.features import FeatureSpecError
    from tfrs_userlevel.serving import ExportError
    from tfrs_userlevel.tables.errors import DataError
    from tfrs_userlevel.writer_lock import ModelDirBusyError

    return (UsageError, ConfigError, DataError, FeatureSpecError, ExportError,
            ModelDirBusyError, OSError)


def main(argv=None) -> int:
    """Runs one command; returns its exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    verbose, debug = (flag in argv for flag in GLOBAL_FLAGS)
    argv = [a for a in argv if a not in GLOBAL_FLAGS]
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_help())
        return 0 if argv else 2
    if argv[0] == "--version":
        print(f"tfrs-userlevel {__version__}")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"error: unknown command {name!r}; the commands are {', '.join(COMMANDS)} "
              "(tfrs-userlevel --help)", file=sys.stderr)
        return 2
    quiet_start(verbose)
    from tfrs_userlevel.backend import tf
    from tfrs_userlevel.training.callbacks import NonFiniteLossError

    user_errors = _user_errors()
    command = importlib.import_module(f"tfrs_userlevel.cli.{name}")
    try:
        return command.command(rest, prog=f"tfrs-userlevel {name}")
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except (NonFiniteLossError, tf.errors.OpError, *user_errors) as error:
        if debug:
            traceback.print_exc()
        if isinstance(error, tf.errors.OpError):
            print(f"error: TensorFlow failed: {one_line(error.message)}", file=sys.stderr)
            return 1
        print(f"error: {one_line(error)}", file=sys.stderr)
        return 3 if isinstance(error, NonFiniteLossError) else 2


def entry_point() -> None:
    """The console script `tfrs-userlevel`."""
    sys.exit(main())
