"""Serving export from a clone of the repository: `python -m export ARGS` is
`tfrs-userlevel export ARGS`; the code is `tfrs_userlevel.serving`."""

from tfrs_userlevel.serving import (  # noqa: F401
    ExportError,
    ServingModule,
    export_model,
    export_run,
    input_specs,
    next_version,
    warmup_rows,
    write_warmup,
)
