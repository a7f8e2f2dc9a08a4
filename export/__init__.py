"""Serving export from a clone of the repository: `python -m export ARGS` is
`tfrs-userlevel export ARGS`; the code is `tfrs_userlevel.serving`, whose names this
package also gives (loaded on first use, so the command starts quietly)."""

import importlib


def __getattr__(name: str):
    return getattr(importlib.import_module("tfrs_userlevel.serving"), name)
