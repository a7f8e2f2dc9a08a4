"""Run configurations: one validated tree (`data`, `model`, `train`) per run.

See `sections` for the keys, `components` for how model sections are read
from the layers' constructors, and `run` for loading and `--set` overrides.
"""

from tfrs_userlevel.config.errors import ConfigError

_FROM_RUN = ("RunConfig", "apply_override", "load_run_config")


def __getattr__(name: str):
    # `run` builds on `training`, which itself uses ConfigError: import it on first use.
    if name in _FROM_RUN:
        from tfrs_userlevel.config import run

        return getattr(run, name)
    raise AttributeError(f"module 'tfrs_userlevel.config' has no attribute {name!r}")


__all__ = ["ConfigError", *_FROM_RUN]
