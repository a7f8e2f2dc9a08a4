"""tfrs-userlevel train: train a CTR ranking model and report its validation and test
metrics.

  tfrs-userlevel train --dataset movielens_1m --backbone mlp --epochs 30 --model-dir runs/mlp
  tfrs-userlevel train --model-dir runs/mlp3 --seeds 2024 2025 2026   # mean ± std
  tfrs-userlevel train --config run.yaml --set model.user_level.groups=40 --model-dir runs/own

Writes metrics.json, checkpoint/ and logs/ (TensorBoard) under --model-dir
(one sub-folder per seed with --seeds, plus summary.json).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import re
import shutil
from pathlib import Path

import numpy as np

from tfrs_userlevel import datasets, streaming, tables
from tfrs_userlevel.cli.terminal import UsageError, command_main
from tfrs_userlevel.cli.train_flags import (
    DEFAULTS,
    MODULE_FLAGS,
    RUN_FLAGS,
    SHORTHANDS,
    config_from_args,
    explicit_options,
    parse_args,
)
from tfrs_userlevel.config import ConfigError, components, load_run_config
from tfrs_userlevel.config.run import read_tree
from tfrs_userlevel.features import FeatureSpec
from tfrs_userlevel.metrics import METRIC_NAMES
from tfrs_userlevel.training import (
    DERIVED_FIELDS,
    DERIVED_FROM,
    GPREC_OPTIONS,
    TrainConfig,
    run,
    write_json_atomic,
)
from tfrs_userlevel.writer_lock import WriterLock


def unused_gprec_options(config: TrainConfig) -> list[str]:
    """GPRec options set away from their defaults on a run without GPRec."""
    if "gprec" in config.user_level:
        return []
    # Options resolved from other fields (per strategy, say) are compared with the values
    # they resolve to from this run's fields.
    own_default = dataclasses.replace(
        DEFAULTS, **{name: getattr(config, name) for name in DERIVED_FROM},
        **dict.fromkeys(DERIVED_FIELDS))
    return [name for name in GPREC_OPTIONS if getattr(config, name) != getattr(
        own_default if name in DERIVED_FIELDS else DEFAULTS, name)]


def format_table(rows: list[tuple[str, dict]]) -> str:
    header = f"{'run':<12}{'split':<6}" + "".join(f"{m:>10}" for m in METRIC_NAMES)
    lines = [header, "-" * len(header)]
    for label, metrics in rows:
        for split in ("val", "test"):
            values = "".join(f"{metrics[split][m]:>10.4f}" for m in METRIC_NAMES)
            lines.append(f"{label:<12}{split:<6}{values}")
    return "\n".join(lines)


def summarize(results: dict[int, dict]) -> dict:
    summary = {"seeds": list(results)}
    for split in ("val", "test"):
        for m in METRIC_NAMES:
            values = np.array([r[split][m] for r in results.values()])
            summary[f"{split}_{m}"] = values.tolist()
            summary[f"{split}_{m}_mean"] = float(values.mean())
            summary[f"{split}_{m}_std"] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    summary["train_examples_per_second"] = [
        r["train_examples_per_second"] for r in results.values()]
    return summary


def load_data(args: argparse.Namespace):
    """(splits in memory or None when streaming from --tfrecord-dir, feature spec)."""
    from tfrs_userlevel.datasets import synthetic

    if args.dataset == "synthetic":
        world = synthetic.SyntheticClicks(seed=0)
        spec = synthetic.FEATURE_SPEC
        n_val = args.synthetic_rows // 10
        sizes = {"train": args.synthetic_rows - 2 * n_val, "validation": n_val, "test": n_val}
        if args.tfrecord_dir is None:
            return world.splits(args.synthetic_rows), spec
        if not (Path(args.tfrecord_dir) / f"train.{streaming.MANIFEST}").exists():
            for part, (prefix, rows) in enumerate(sizes.items()):
                streaming.write_tfrecords(world.chunks(rows, part=part), spec,
                                          args.tfrecord_dir, prefix=prefix)
        return None, spec
    splits = datasets.load_splits(args.dataset, args.split, args.data_dir, args.data_source,
                                  args.tfds_dir, history_length=args.history_length)
    spec = datasets.feature_spec(args.dataset, history_length=args.history_length)
    if args.tfrecord_dir is not None:
        if not (Path(args.tfrecord_dir) / f"train.{streaming.MANIFEST}").exists():
            for prefix, columns in splits.items():
                n = len(columns["label"])
                chunks = ({k: v[i:i + (1 << 18)] for k, v in columns.items()}
                          for i in range(0, n, 1 << 18))
                streaming.write_tfrecords(chunks, spec, args.tfrecord_dir, prefix=prefix)
        return None, spec
    return splits, spec


def flag_key(name: str, user_level: str) -> str | None:
    """The run-configuration key that flag `name` (its argparse dest) stands for."""
    if name in SHORTHANDS:
        return SHORTHANDS[name]
    both = user_level == "gprec+udg"
    for kind, renamed in MODULE_FLAGS.items():
        option = renamed.get(name, name if kind == "gprec" and name in GPREC_OPTIONS else None)
        if option is not None and option in components.parameters(
                components.factories(kind)[kind], kind):
            return f"model.user_level.{kind}.{option}" if both else f"model.user_level.{option}"
    return None


def configured_run(argv, args: argparse.Namespace):
    """The run configuration of `--config`, with the shorthand flags and `--set` applied."""
    source = args.config
    if not Path(source).exists() and (source in datasets.DATASETS or source == "synthetic"):
        source = datasets.config_path(source)  # a built-in dataset's configuration
    given = explicit_options(argv)
    model = read_tree(source).get("model")
    section = model.get("user_level") if isinstance(model, dict) else None
    user_level = given.get("user_level") or (
        section.get("name", "none") if isinstance(section, dict) else "none")
    keys = {name: flag_key(name, user_level) for name in given if name not in RUN_FLAGS}
    unknown = sorted(name for name, key in keys.items() if key is None)
    if unknown:
        flags = ", ".join("--" + name.replace("_", "-") for name in unknown)
        raise ConfigError(f"{flags}: no key of the run configuration; with --config set "
                          "options with --set KEY=VALUE (e.g. --set model.user_level.dp_rank=8)")
    overrides = [f"{key}={json.dumps(given[name])}" for name, key in keys.items()]
    return load_run_config(source, [*overrides, *args.set])


def stream_shards(data, base_dir, shards: Path) -> FeatureSpec:
    """Streams the configured files into `shards`, written under a temporary name and
    renamed when whole; a failure leaves nothing behind."""
    print(f"streaming the files into TFRecord shards in {shards}", flush=True)
    created = [p for p in (shards.parent, *shards.parent.parents) if not p.exists()]
    partial = shards.with_name(shards.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        spec = tables.stream_to_shards(data, base_dir, partial)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        for folder in created:  # the folders this call made, deepest first
            if folder.exists() and not any(folder.iterdir()):
                folder.rmdir()
        raise
    shutil.rmtree(shards, ignore_errors=True)
    partial.rename(shards)
    return spec


def run_configured(args: argparse.Namespace, run_config, model_dir: Path) -> dict:
    """Trains each seed of a run configuration; returns {seed: metrics}."""
    seeds = args.seeds or [run_config.train.seed]
    data, shards = run_config.data, None
    if data.stream:
        shards = Path(data.shard_dir) if data.shard_dir else model_dir / "data"
        if (shards / f"train.{streaming.MANIFEST}").exists():
            spec = FeatureSpec.from_config(streaming.read_manifest(shards)["feature_spec"])
        else:
            spec = stream_shards(data, run_config.base_dir, shards)
        splits = None
    else:
        spec, splits = tables.read_splits(data, run_config.base_dir)
    for entry in data.fields:  # config.yaml records the dtypes read from the data
        entry.dtype = spec[entry.name].dtype
    results = {}
    for seed in seeds:
        out = model_dir / f"seed_{seed}" if args.seeds else model_dir
        if args.seeds and (out / "metrics.json").exists() and not args.overwrite:
            results[seed] = json.loads((out / "metrics.json").read_text())
            continue
        if args.overwrite and (out / "backup").exists():
            shutil.rmtree(out / "backup")
        seeded = run_config.model_copy(deep=True)
        seeded.train.seed = seed
        seeded.write_yaml(out / "config.yaml")
        results[seed] = run(seeded.train_config(), splits, spec, out, tfrecord_dir=shards,
                            model_builder=seeded.build_model, record=seeded.to_dict())
    return results


def flag_message(error: ConfigError, args: argparse.Namespace) -> str:
    """A TrainConfig check's message in terms of the flags that set its fields."""
    message = str(error).removeprefix("invalid config: ")
    named = []
    for field in sorted(dataclasses.fields(TrainConfig), key=lambda f: -len(f.name)):
        flag = "--" + field.name.replace("_", "-")
        if re.search(rf"(?<![-\w]){field.name}(?!\w)", message) and hasattr(args, field.name):
            message = re.sub(rf"(?<![-\w]){field.name}(?!\w)", flag, message)
            named.append(f"{flag} {_shown(getattr(args, field.name))}")
    return message + (f" (given: {', '.join(reversed(named))})" if named else "")


def _shown(value) -> str:
    if isinstance(value, (list, tuple)):
        return " ".join(str(v) for v in value)
    return json.dumps(value) if isinstance(value, dict) else str(value)


def check_model_dir(model_dir: Path, overwrite: bool) -> None:
    """Refuses a --model-dir that is a file, or that holds results without --overwrite."""
    for folder in (model_dir, *model_dir.parents):
        if folder.exists() and not folder.is_dir():
            raise UsageError(f"--model-dir {model_dir}: {folder} is a file, not a folder")
    if ((model_dir / "metrics.json").exists() or (model_dir / "summary.json").exists()) \
            and not overwrite:
        raise UsageError(f"--model-dir {model_dir} already holds results (metrics.json/"
                         "summary.json); pass --overwrite or choose another --model-dir")


def command(argv, prog: str = "tfrs-userlevel train") -> int:
    """Runs `tfrs-userlevel train`; user errors raise (see `tfrs_userlevel.cli`)."""
    args = parse_args(argv, prog)
    model_dir = Path(args.model_dir)
    if args.config is None and args.set:
        raise UsageError("--set overrides keys of a run configuration; give --config FILE")
    check_model_dir(model_dir, args.overwrite)
    if args.config is not None:
        run_config = configured_run(argv, args).with_absolute_files()
        with _writer(model_dir):
            results = run_configured(args, run_config, model_dir)
        return report(args, results, {"config": run_config.to_dict()}, model_dir)
    seeds = args.seeds or [args.seed]
    try:
        configs = {seed: config_from_args(args, seed) for seed in seeds}  # validate all first
    except ConfigError as error:
        raise UsageError(flag_message(error, args)) from None
    unused = unused_gprec_options(configs[seeds[0]])
    if unused:
        raise UsageError(f"{', '.join('--' + o.replace('_', '-') for o in unused)} only apply "
                         "to GPRec; add --user-level gprec or drop them")
    with _writer(model_dir):
        splits, spec = load_data(args)
        results = {}
        for seed, config in configs.items():
            out = model_dir / f"seed_{seed}" if args.seeds else model_dir
            if args.seeds and (out / "metrics.json").exists() and not args.overwrite:
                results[seed] = json.loads((out / "metrics.json").read_text())
                print(f"seed {seed}: finished earlier, metrics read from "
                      f"{out / 'metrics.json'}")
                continue
            if args.overwrite and (out / "backup").exists():
                shutil.rmtree(out / "backup")
            elif (out / "backup").exists():
                print(f"resuming the interrupted run in {out}", flush=True)
            results[seed] = run(config, splits, spec, out, tfrecord_dir=args.tfrecord_dir)
    return report(args, results, {"config": configs[seeds[0]].to_dict()}, model_dir)


def _writer(model_dir: Path):
    """The writer lock of a --model-dir that exists (it may hold a live run: the lock comes
    before resuming, overwriting or reading anything of it); a new folder is locked when
    training starts."""
    return WriterLock(model_dir) if model_dir.is_dir() else contextlib.nullcontext()


main = command_main("train")  # `tfrs-userlevel train ARGV` -> the exit code


def report(args: argparse.Namespace, results: dict, described: dict, model_dir: Path) -> int:
    """Prints the metrics of every seed (and their mean ± std with --seeds)."""
    seeds = list(results)
    print()
    print(format_table([(f"seed {s}", r) for s, r in results.items()]))
    if args.seeds:
        summary = summarize(results)
        summary["config"] = described["config"] | {"seeds": seeds}
        write_json_atomic(model_dir / "summary.json", summary)
        print("\nmean ± std over seeds", seeds)
        for split in ("val", "test"):
            cells = "  ".join(f"{m} {summary[f'{split}_{m}_mean']:.4f} ± "
                              f"{summary[f'{split}_{m}_std']:.4f}" for m in METRIC_NAMES)
            print(f"  {split:<5} {cells}")
    eps = [r["train_examples_per_second"] for r in results.values()]
    print(f"\ntraining throughput: {np.median(eps):,.0f} examples/s (median over runs)")
    return 0

