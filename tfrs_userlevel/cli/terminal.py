"""What the command line shows: TensorFlow's start-up noise silenced, user errors as one
`error:` line.

TensorFlow writes C++ log lines when it loads (CUDA not found, CPU features) and when
it first looks for a device (`failed call to cuInit`). `quiet_start` raises the C++
log level before TensorFlow loads and holds stderr back while it imports; with
`--verbose` everything is shown.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import tempfile
import warnings


class UsageError(Exception):
    """A mistake in what the user asked for (an option, a path): one `error:` line, exit 2."""


def quiet_start(verbose: bool) -> None:
    """Loads TensorFlow (and Keras 2) with its start-up lines hidden unless `verbose`."""
    if verbose:
        import tfrs_userlevel.backend  # noqa: F401
        return
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    with _held_stderr():
        import tfrs_userlevel.backend  # noqa: F401
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    import absl.logging

    absl.logging.set_verbosity(absl.logging.ERROR)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module="tf_keras")


@contextlib.contextmanager
def _held_stderr():
    """Sends file descriptor 2 to a temporary file; shows it only if the block fails."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            sink.seek(0)
            sys.stderr.write(sink.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def one_line(error: BaseException | str) -> str:
    """The error's message on one line (several problems joined with '; ')."""
    text = str(error).strip() or type(error).__name__
    if isinstance(error, OSError) and error.filename is not None and error.strerror:
        text = f"{error.filename}: {error.strerror}"
    return "; ".join(line.strip() for line in text.splitlines() if line.strip())


class ArgumentParser(argparse.ArgumentParser):
    """argparse whose mistakes raise `UsageError` (one `error:` line) instead of
    printing the usage and exiting."""

    def error(self, message):
        raise UsageError(f"{message} (see {self.prog} --help)")


def command_main(name: str):
    """`main(argv=None) -> exit code` of command `name`, as `tfrs-userlevel name ARGV`
    runs it (errors printed as the command prints them)."""

    def main(argv=None) -> int:
        from tfrs_userlevel.cli import main as run

        return run([name, *(sys.argv[1:] if argv is None else argv)])

    main.__doc__ = f"`tfrs-userlevel {name} ARGV`: returns the exit code."
    return main
