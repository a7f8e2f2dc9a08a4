"""Serving export: a finished train.py run -> a TF Serving model version (SPEC §10).

  python -m export --model-dir DIR --export-dir BASE [--version N] [--model-name NAME]

See `export.serving` for the layout and the signatures.
"""

import tfrs_userlevel  # noqa: F401, I001  (selects Keras 2 before TensorFlow is used)
from export.serving import (  # noqa: E402
    ExportError,
    ServingModule,
    export_model,
    export_run,
    input_specs,
    next_version,
    warmup_rows,
    write_warmup,
)

__all__ = ["ExportError", "ServingModule", "export_model", "export_run", "input_specs",
           "next_version", "warmup_rows", "write_warmup"]
