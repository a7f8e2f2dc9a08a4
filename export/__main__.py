"""python -m export --model-dir DIR --export-dir BASE: `tfrs-userlevel export`."""

import sys

from tfrs_userlevel.cli import main

sys.exit(main(["export", *sys.argv[1:]]))
