"""python -m export --model-dir DIR --export-dir BASE: write a TF Serving version."""

from __future__ import annotations

import argparse
import sys

from export.serving import ExportError, export_run


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m export", description=__doc__)
    p.add_argument("--model-dir", required=True, help="a finished train.py run")
    p.add_argument("--export-dir", required=True,
                   help="TF Serving's model base path; the version goes in BASE/<version>/")
    p.add_argument("--version", type=int, default=None,
                   help="version number (default: one more than the largest in BASE); an "
                        "existing version is never overwritten")
    p.add_argument("--model-name", default="tfrs_userlevel",
                   help="model name written into the warmup requests (TF Serving's "
                        "--model_name)")
    args = p.parse_args(argv)
    try:
        path = export_run(args.model_dir, args.export_dir, args.version, args.model_name)
    except (ExportError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"exported {args.model_dir} -> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
