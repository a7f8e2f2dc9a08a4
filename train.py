"""Train a CTR ranking model: `python train.py ARGS` is `tfrs-userlevel train ARGS`.

  python train.py --dataset movielens_1m --backbone mlp --model-dir runs/mlp
  python train.py --config run.yaml --model-dir runs/own

The command lives in the installed package (`tfrs_userlevel.cli.train`);
`python train.py --help` lists its options.
"""

import sys

from tfrs_userlevel.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
