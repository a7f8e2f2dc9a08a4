"""User click log to training-ready ids through the run configuration: rows/s, CSV and Parquet.

  TFRS_USERLEVEL_DATA=/path/to/data python benchmarks/tables_throughput.py

The MovieLens-1M click log ($TFRS_USERLEVEL_DATA/movielens-1m/ctr.csv.gz,
1,000,209 rows) is read once with pyarrow and written, untimed, into a
temporary folder as a plain CSV and a Parquet file with the same columns.
For each format a run configuration (`tfrs_userlevel.config.load_run_config`,
split by the random_split column, 8 fields: user_id, movie_id, gender, age,
occupation, zip, year, genres with "|") is loaded, and then timed end to end:

  spec, splits = tables.read_splits(config.data)       # "read_splits"
  vocabularies = spec.build_vocabularies(train)         # "vocabularies"
  ids = data.lookup_columns(FeatureLookup(...), split)  # "lookup", every split

rows/s = rows of all splits / seconds. --repeats runs per format (alternating
which format goes first), the median rows/s is reported; the bar is
>= 500,000 rows/s per format on 2 cores. Also records the process's peak RSS
(ru_maxrss). Writes results/speed/tables_throughput.json.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shlex
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import tfrs_userlevel  # noqa: E402, F401, I001  (Keras 2 before TensorFlow)
import pyarrow as pa  # noqa: E402
import pyarrow.compute as pc  # noqa: E402
import pyarrow.csv as pa_csv  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
from tfrs_userlevel import config as run_config  # noqa: E402
from tfrs_userlevel import data, tables  # noqa: E402
from tfrs_userlevel.lookup import FeatureLookup  # noqa: E402
from tfrs_userlevel.training import write_json_atomic  # noqa: E402

BAR = 500_000
FORMATS = ("csv", "parquet")
FIELDS = [{"name": "user_id", "role": "user_personal"}, {"name": "movie_id", "role": "item"},
          {"name": "gender", "role": "user_other"}, {"name": "age", "role": "user_other"},
          {"name": "occupation", "role": "user_other"},
          {"name": "zip", "role": "user_other", "dtype": "string"},
          {"name": "year", "role": "item"}, {"name": "genres", "role": "item", "separator": "|"}]


def split_values(table: pa.Table) -> dict[str, str]:
    """The random_split column's train/validation/test values ("val" in ML-1M)."""
    have = set(pc.unique(table["random_split"]).to_pylist())
    names = {"train": ["train"], "validation": ["validation", "val", "valid"],
             "test": ["test"]}
    chosen = {}
    for split, options in names.items():
        found = [o for o in options if o in have]
        if not found:
            raise SystemExit(f"random_split holds {sorted(have)}; no value for {split}")
        chosen[split] = found[0]
    if set(chosen.values()) != have:
        raise SystemExit(f"random_split holds {sorted(have)}, more than {chosen}")
    return chosen


def tree(fmt: str, path: Path, values: dict[str, str]) -> dict:
    return {"data": {"format": fmt, "files": str(path),
                     "split": {"by": "column", "column": "random_split", **values},
                     "label": {"column": "label"}, "fields": FIELDS}}


def measure(config) -> dict:
    """One end-to-end run: seconds of each phase and the rows of all splits."""
    start = time.perf_counter()
    spec, splits = tables.read_splits(config.data, None)
    read = time.perf_counter()
    vocabularies = spec.build_vocabularies(splits["train"])
    vocab = time.perf_counter()
    lookup = FeatureLookup(spec.get_config(), vocabularies)
    ids = {s: data.lookup_columns(lookup, cols) for s, cols in splits.items()}
    end = time.perf_counter()
    rows = sum(len(cols["label"]) for cols in splits.values())
    assert all(len(ids[s]["ids"]) == len(splits[s]["label"]) for s in splits)
    return {"rows": rows, "rows_per_split": {s: len(c["label"]) for s, c in splits.items()},
            "read_splits": read - start, "vocabularies": vocab - read, "lookup": end - vocab,
            "total": end - start, "rows_per_second": rows / (end - start)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output",
                        default=str(REPO / "results" / "speed" / "tables_throughput.json"))
    args = parser.parse_args()

    root = Path(os.environ.get("TFRS_USERLEVEL_DATA", "../shared/data"))
    source = root / "movielens-1m" / "ctr.csv.gz"
    convert = pa_csv.ConvertOptions(column_types={"zip": pa.string()})
    table = pa_csv.read_csv(source, convert_options=convert)
    values = split_values(table)
    command = " ".join(
        ([f"TFRS_USERLEVEL_DATA={shlex.quote(os.environ['TFRS_USERLEVEL_DATA'])}"]
         if "TFRS_USERLEVEL_DATA" in os.environ else [])
        + ["python benchmarks/tables_throughput.py"] + [shlex.join(sys.argv[1:])] * bool(
            sys.argv[1:]))

    runs: dict[str, list[dict]] = {fmt: [] for fmt in FORMATS}
    sizes = {}
    with tempfile.TemporaryDirectory() as folder:
        paths = {"csv": Path(folder) / "ctr.csv", "parquet": Path(folder) / "ctr.parquet"}
        pa_csv.write_csv(table, paths["csv"])
        pq.write_table(table, paths["parquet"])
        sizes = {fmt: round(path.stat().st_size / 2**20, 1) for fmt, path in paths.items()}
        source_rows = table.num_rows
        del table
        configs = {fmt: run_config.load_run_config(tree(fmt, paths[fmt], values))
                   for fmt in FORMATS}
        for repeat in range(args.repeats):
            order = FORMATS if repeat % 2 == 0 else FORMATS[::-1]
            for fmt in order:
                run = measure(configs[fmt])
                runs[fmt].append(run)
                print(f"repeat {repeat + 1} {fmt:>7}: {run['rows_per_second']:>10,.0f} rows/s  "
                      f"read_splits {run['read_splits']:.2f}s  "
                      f"vocabularies {run['vocabularies']:.2f}s  "
                      f"lookup {run['lookup']:.2f}s", flush=True)

    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    formats = {}
    for fmt in FORMATS:
        median = float(np.median([r["rows_per_second"] for r in runs[fmt]]))
        formats[fmt] = {
            "rows": runs[fmt][0]["rows"], "rows_per_split": runs[fmt][0]["rows_per_split"],
            "file_mb": sizes[fmt],
            "repeats": [{k: round(r[k], 3) for k in ("read_splits", "vocabularies", "lookup",
                                                     "total")} for r in runs[fmt]],
            "median_seconds": {k: round(float(np.median([r[k] for r in runs[fmt]])), 3)
                               for k in ("read_splits", "vocabularies", "lookup", "total")},
            "rows_per_second": round(median),
        }
    result = {
        "command": command,
        "source": str(source), "source_rows": source_rows,
        "split_values": values, "fields": [f["name"] for f in FIELDS],
        "repeats": args.repeats,
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version()},
        "formats": formats,
        "peak_rss_mb": round(peak_rss_mb, 1),
        "bar": {"rows_per_second_at_least": BAR,
                **{fmt: formats[fmt]["rows_per_second"] >= BAR for fmt in FORMATS}},
    }
    write_json_atomic(Path(args.output), result)

    print(f"\n{'format':>8} {'rows':>10} {'read_splits':>12} {'vocabularies':>13} "
          f"{'lookup':>8} {'total':>7} {'rows/s':>10}  bar >= {BAR:,}")
    for fmt in FORMATS:
        f, m = formats[fmt], formats[fmt]["median_seconds"]
        print(f"{fmt:>8} {f['rows']:>10,} {m['read_splits']:>11.2f}s {m['vocabularies']:>12.2f}s "
              f"{m['lookup']:>7.2f}s {m['total']:>6.2f}s {f['rows_per_second']:>10,}  "
              f"{'pass' if result['bar'][fmt] else 'FAIL'}")
    print(f"(median of {args.repeats} repeats; peak RSS {peak_rss_mb:,.0f} MB; "
          f"wrote {args.output})")


if __name__ == "__main__":
    main()
