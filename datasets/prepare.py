"""Prepare a built-in dataset's TFDS builder from a clone of the repository:
`python datasets/prepare.py ARGS` is `tfrs-userlevel datasets prepare ARGS`.

    python datasets/prepare.py movielens_1m --data-dir /path/to/data

The builders, readers and configurations are installed with the package, under
`tfrs_userlevel.datasets`; this folder holds no importable code, so the name
`datasets` stays free for Hugging Face's package.
"""

import sys

from tfrs_userlevel.cli import main

if __name__ == "__main__":
    sys.exit(main(["datasets", "prepare", *sys.argv[1:]]))
