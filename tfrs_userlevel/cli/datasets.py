"""tfrs-userlevel datasets: the built-in datasets, a configuration's data, the TFDS builders.

  tfrs-userlevel datasets list [--data-dir DIR]
  tfrs-userlevel datasets show movielens_100k --data-dir DIR
  tfrs-userlevel datasets show clicks.yaml --set data.min_frequency=5
  tfrs-userlevel datasets prepare movielens_1m --data-dir DIR [--tfds-dir DIR]
"""

from __future__ import annotations

import numpy as np

from tfrs_userlevel import datasets
from tfrs_userlevel.cli.terminal import ArgumentParser, UsageError, command_main
from tfrs_userlevel.datasets import sources

BUILT_IN = {
    "movielens_1m": "MovieLens-1M: 1,000,209 ratings of 3,706 movies by 6,040 users with "
                    "age, gender, occupation and zip; a click is a rating above 3",
    "movielens_100k": "MovieLens-100K: 100,000 ratings of 1,682 movies by 943 users, the "
                      "same fields",
    "synthetic": "SYNTHETIC clicks generated from a seed, with planted user groups (any "
                 "number of rows; no files)",
}


def build_parser(prog: str) -> ArgumentParser:
    p = ArgumentParser(prog=prog, description="The built-in datasets, the data a run "
                       "configuration reads, and the TFDS builders.")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True,
                               parser_class=ArgumentParser)
    listing = actions.add_parser("list", help="the built-in datasets and where their files "
                                 "are found")
    listing.add_argument("--data-dir", default=None, help=f"data root (default: "
                         f"${sources.ENV_VAR})")
    show = actions.add_parser("show", help="a configuration's fields and split sizes (the "
                              "data is read)")
    show.add_argument("config", help="a run configuration file, or a built-in dataset name")
    show.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                      help="override one key (repeatable)")
    show.add_argument("--data-dir", default=None,
                      help="a built-in dataset's data root (sets data.files)")
    prepare = actions.add_parser("prepare", help="download (or read the manual files) and "
                                 "prepare a built-in dataset's TFDS builder")
    prepare.add_argument("name", choices=sorted(datasets.DATASETS))
    prepare.add_argument("--split", default="random", choices=datasets.SPLIT_SCHEMES,
                         help="the builder's configuration")
    prepare.add_argument("--data-dir", default=None, help="the raw files' root")
    prepare.add_argument("--tfds-dir", default=None, help="TFDS's data directory")
    return p


def command(argv, prog: str = "tfrs-userlevel datasets") -> int:
    args = build_parser(prog).parse_args(argv)
    if args.action == "list":
        return _list(args.data_dir)
    if args.action == "show":
        return _show(args)
    builder = datasets.builder(args.name, args.split, args.data_dir, args.tfds_dir)
    builder.download_and_prepare()
    print(f"prepared {args.name} ({args.split} split) in {builder.data_dir}")
    return 0


def _list(data_dir: str | None) -> int:
    print(f"{'name':<16}files")
    for name, text in BUILT_IN.items():
        if name == "synthetic":
            found = "generated"
        else:
            try:
                found = str(datasets.builder(name, "random", data_dir).locate())
            except sources.DataNotFoundError:
                found = (f"not found (--data-dir, ${sources.ENV_VAR}, or prepare "
                         "downloads them)")
        print(f"{name:<16}{found}")
        print(f"{'':<16}{text}")
    print("\nTrain on one: tfrs-userlevel train --config NAME (or --dataset NAME); its "
          "configuration: tfrs-userlevel datasets show NAME")
    return 0


def _show(args) -> int:
    from pathlib import Path

    from tfrs_userlevel import tables
    from tfrs_userlevel.config import load_run_config

    source = args.config
    if not Path(source).exists() and source in BUILT_IN:
        source = datasets.config_path(source)
    elif not Path(source).exists():
        raise UsageError(f"{source}: neither a configuration file nor a built-in dataset "
                         f"({', '.join(BUILT_IN)})")
    overrides = list(args.set)
    if args.data_dir is not None:
        overrides.append(f"data.files={args.data_dir}")
    config = load_run_config(source, overrides).with_absolute_files()
    if config.data.stream:
        raise UsageError(f"{source}: data.stream reads the files batch by batch into "
                         "shards; show reads them whole (--set data.stream=false)")
    spec, splits = tables.read_splits(config.data, config.base_dir)
    vocabularies = spec.build_vocabularies(splits["train"])
    print(f"{source}: format {config.data.format}")
    print(f"\n{'field':<20}{'role':<15}{'dtype':<8}{'values in train':>16}")
    for field in spec.fields:
        owner = field.shared_vocabulary_with or field.name
        size = (f"{field.hash_buckets} buckets" if field.hash_buckets
                else f"{len(vocabularies.get(owner, [])):,}")
        print(f"{field.name:<20}{field.role:<15}{field.dtype:<8}{size:>16}")
    print(f"\n{'split':<12}{'rows':>12}{'click rate':>12}")
    for name, columns in splits.items():
        labels = np.asarray(columns["label"])
        rate = f"{labels.mean():.4f}" if len(labels) else "-"
        print(f"{name:<12}{len(labels):>12,}{rate:>12}")
    return 0


main = command_main("datasets")  # `tfrs-userlevel datasets ARGV` -> the exit code
