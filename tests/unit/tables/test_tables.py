"""Reading configured click logs: formats, split rules, labels, and every bad-data error.

Unit tests on files the tests write; no data set is needed."""


import gzip

import numpy as np
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest

from tfrs_userlevel import tf
from tfrs_userlevel.config import load_run_config
from tfrs_userlevel.tables import DataError, read_splits

HEADER = "uid,age,video,genres,ts,click,part"


ROWS = [f"u{i % 7},{20 + i % 3},v{i % 5},a|b{i % 2},{1000 + i},{i % 2},{'trvt'[i % 4]}"
        for i in range(40)]


def data_section(tmp_path, lines=None, **changes):
    path = tmp_path / "clicks.csv"
    path.write_text("\n".join([HEADER, *(ROWS if lines is None else lines)]) + "\n")
    data = {"format": "csv", "files": str(path), "split": {"by": "ratio", "seed": 1},
            "label": {"column": "click"},
            "fields": [{"name": "uid", "role": "user_personal"},
                       {"name": "age", "role": "user_other"},
                       {"name": "video", "role": "item"},
                       {"name": "genres", "role": "item", "separator": "|"}]}
    data.update(changes)
    return load_run_config({"data": data}).data


def test_csv_columns_types_and_a_seeded_ratio_split(tmp_path):
    spec, splits = read_splits(data_section(tmp_path))
    assert [(f.name, f.dtype, f.multivalued) for f in spec.fields] == [
        ("uid", "string", False), ("age", "int64", False), ("video", "string", False),
        ("genres", "string", True)]
    assert {s: len(c["label"]) for s, c in splits.items()} == {
        "train": 32, "validation": 4, "test": 4}
    rows = np.concatenate([c["age"] for c in splits.values()])
    assert sorted(rows.tolist()) == sorted(20 + i % 3 for i in range(40))  # every row once
    again = read_splits(data_section(tmp_path))[1]
    np.testing.assert_array_equal(again["test"]["uid"], splits["test"]["uid"])
    other = read_splits(data_section(tmp_path, split={"by": "ratio", "seed": 2}))[1]
    assert not np.array_equal(other["test"]["uid"], splits["test"]["uid"])


def test_column_and_time_splits(tmp_path):
    _, by_column = read_splits(data_section(
        tmp_path, split={"by": "column", "column": "part", "train": "t", "validation": "r",
                         "test": "v"}, lines=[r for r in ROWS if not r.endswith(",t")]
        + [r for r in ROWS if r.endswith(",t")]))
    assert {s: len(c["label"]) for s, c in by_column.items()} == {
        "train": 20, "validation": 10, "test": 10}
    _, by_time = read_splits(data_section(
        tmp_path, split={"by": "time", "column": "ts", "train": 0.5, "validation": 0.25,
                         "test": 0.25}, lines=list(reversed(ROWS))))
    ages = {s: c["age"] for s, c in by_time.items()}
    assert len(ages["train"]) == 20 and len(ages["test"]) == 10
    # The oldest half trains: rows 0..19 by ts, whatever the file order.
    np.testing.assert_array_equal(np.sort(ages["train"]),
                                  np.sort([20 + i % 3 for i in range(20)]))


def test_label_threshold_defaults_and_hashing(tmp_path):
    lines = [r.replace(",0,", ",2,").replace(",1,", ",5,") for r in ROWS]
    data = data_section(tmp_path, lines=lines, label={"column": "click", "positive_above": 3})
    _, splits = read_splits(data)
    labels = np.concatenate([c["label"] for c in splits.values()])
    assert sorted(set(labels.tolist())) == [0, 1] and labels.sum() == 20
    lines = ROWS[:10] + [ROWS[10].replace("v0", "")] + ROWS[11:]
    data = data_section(tmp_path, lines=lines, fields=[
        {"name": "uid", "role": "user_personal", "hash_buckets": 3},
        {"name": "video", "role": "item", "default": "none"}])
    spec, splits = read_splits(data)
    assert "none" in np.concatenate([c["video"] for c in splits.values()]).tolist()
    assert spec["uid"].hash_buckets == 3 and "uid" not in spec.build_vocabularies(
        splits["train"])


def test_parquet_and_tfrecord_give_the_rows_of_the_csv(tmp_path):
    reference = read_splits(data_section(tmp_path))[1]
    table = pa_csv.read_csv(tmp_path / "clicks.csv")
    pq.write_table(table, tmp_path / "clicks.parquet")
    with tf.io.TFRecordWriter(str(tmp_path / "clicks.tfrecord")) as writer:
        for row in table.to_pylist():
            feature = {k: (tf.train.Feature(bytes_list=tf.train.BytesList(value=[v.encode()]))
                           if isinstance(v, str) else
                           tf.train.Feature(int64_list=tf.train.Int64List(value=[v])))
                       for k, v in row.items()}
            writer.write(tf.train.Example(features=tf.train.Features(feature=feature))
                         .SerializeToString())
    for fmt, name in (("parquet", "clicks.parquet"), ("tfrecord", "clicks.tfrecord")):
        _, splits = read_splits(data_section(tmp_path, format=fmt,
                                             files=str(tmp_path / name)))
        for split, columns in reference.items():
            for column, values in columns.items():
                np.testing.assert_array_equal(splits[split][column], values, err_msg=fmt)


def test_files_per_split_and_gzip(tmp_path):
    for split, rows in (("train", ROWS[:30]), ("validation", ROWS[30:35]),
                        ("test", ROWS[35:])):
        with gzip.open(tmp_path / f"{split}.csv.gz", "wt") as f:
            f.write("\n".join([HEADER, *rows]) + "\n")
    data = data_section(tmp_path, split=None, files={
        s: str(tmp_path / f"{s}.csv.gz") for s in ("train", "validation", "test")})
    _, splits = read_splits(data)
    assert [len(splits[s]["label"]) for s in ("train", "validation", "test")] == [30, 5, 5]


@pytest.mark.parametrize("case, message", [
    ("missing column", r"clicks\.csv: no column 'genres'; the file's columns are"),
    ("short row", r"clicks\.csv: line 5: expected 7 columns, found 5"),
    ("wrong type", r"clicks\.csv, line 4: column 'age' holds 'twenty', expected int64"),
    ("empty value", r"clicks\.csv, line 7: field 'video' is empty; give the field a default"),
    ("label not 0/1", r"clicks\.csv, line 9: label column 'click' holds 2.0; expected 0 or 1"),
    ("label NaN", r"clicks\.csv, line 3: label column .click. is empty \(or NaN\)"),
    ("label text", r"clicks\.csv, line 6: label column 'click' holds 'yes', expected a number"),
    ("empty split", r"the validation split is empty"),
    ("no file", r"data\.files: '.*nothing-\*\.csv' matches no file"),
    ("float field", r"column 'age' holds double values; .*declare dtype: string"),
    ("unknown split value", r"clicks\.csv, line 2: split column 'part' holds 't', which is "
                            r"none of \['train', 'validation', 'test'\]"),
])
def test_bad_data_gives_one_clear_error(tmp_path, case, message):
    rows = list(ROWS)
    changes = {}
    if case == "missing column":
        rows = [",".join(r.split(",")[:3] + r.split(",")[4:]) for r in rows]
        path = tmp_path / "clicks.csv"
        path.write_text("uid,age,video,ts,click,part\n" + "\n".join(rows) + "\n")
        with pytest.raises(DataError, match=message):
            read_splits(load_run_config({"data": {
                "format": "csv", "files": str(path), "split": {"by": "ratio"},
                "label": {"column": "click"},
                "fields": [{"name": "video", "role": "item"},
                           {"name": "genres", "role": "item"}]}}).data)
        return
    if case == "short row":
        rows[3] = "u1,20,v1,a,0"
    if case == "wrong type":  # declared int64; without dtype the column would be text
        rows[2] = rows[2].replace(",20,", ",twenty,").replace(",21,", ",twenty,").replace(
            ",22,", ",twenty,")
        changes["fields"] = [{"name": "age", "role": "user_other", "dtype": "int64"},
                             {"name": "video", "role": "item"}]
    if case == "empty value":
        rows[5] = rows[5].replace(",v0,", ",,").replace(",v1,", ",,").replace(",v2,", ",,"
                                                                             ).replace(
            ",v3,", ",,").replace(",v4,", ",,")
    if case == "label not 0/1":
        parts = rows[7].split(",")
        rows[7] = ",".join(parts[:5] + ["2"] + parts[6:])
    if case == "label NaN":
        parts = rows[1].split(",")
        rows[1] = ",".join(parts[:5] + ["NaN"] + parts[6:])
    if case == "label text":
        parts = rows[4].split(",")
        rows[4] = ",".join(parts[:5] + ["yes"] + parts[6:])
    if case == "empty split":
        changes["split"] = {"by": "column", "column": "part", "train": ["t", "r", "v"],
                            "validation": "none", "test": "vt"}
    if case == "no file":
        changes["files"] = str(tmp_path / "nothing-*.csv")
    if case == "float field":
        rows = [r.replace(",20,", ",20.5,") for r in rows]
    if case == "unknown split value":
        changes["split"] = {"by": "column", "column": "part"}
    with pytest.raises(DataError, match=message):
        read_splits(data_section(tmp_path, lines=rows, **changes))


def test_a_stream_writes_the_rows_and_vocabularies_of_the_table(tmp_path, monkeypatch):
    """data.stream: batches of a Parquet file become TFRecord shards holding the same rows
    per split, and the manifest's vocabularies are those of the training rows."""
    from tfrs_userlevel import streaming, tables

    monkeypatch.setattr(tables.readers, "STREAM_BATCH_ROWS", 7)  # several batches per file
    split = {"by": "column", "column": "part", "train": ["t", "r"], "validation": "v",
             "test": "t2"}
    lines = [r[:-1] + ("t2" if r.endswith("t") and i % 8 == 3 else r[-1])
             for i, r in enumerate(ROWS)]
    spec, splits = read_splits(data_section(tmp_path, lines=lines, split=split))
    pq.write_table(pa_csv.read_csv(tmp_path / "clicks.csv"), tmp_path / "clicks.parquet")
    data = data_section(tmp_path, lines=lines, split=split, format="parquet", stream=True,
                        files=str(tmp_path / "clicks.parquet"))
    streamed = tables.stream_to_shards(data, None, tmp_path / "shards")
    assert streamed.get_config() == spec.get_config()
    manifest = streaming.read_manifest(tmp_path / "shards")
    assert manifest["vocabularies"] == spec.build_vocabularies(splits["train"])
    for name in ("train", "validation", "test"):
        records = tf.data.TFRecordDataset([str(tmp_path / "shards" / f) for f in
                                           streaming.read_manifest(tmp_path / "shards",
                                                                   name)["shards"]])
        rows = []
        for record in records:
            feature = tf.train.Example.FromString(record.numpy()).features.feature
            ages = feature["age"].int64_list.value
            videos = [v.decode() for v in feature["video"].bytes_list.value]
            rows += list(zip(ages, videos, feature["label"].int64_list.value, strict=True))
        expected = list(zip(splits[name]["age"].tolist(), splits[name]["video"].tolist(),
                            splits[name]["label"].tolist(), strict=True))
        assert rows == expected, name


def test_a_bad_row_in_a_later_batch_of_a_stream_names_its_own_row(tmp_path, monkeypatch):
    from tfrs_userlevel import tables

    monkeypatch.setattr(tables.readers, "STREAM_BATCH_ROWS", 10)
    lines = list(ROWS)
    parts = lines[26].split(",")
    lines[26] = ",".join(parts[:5] + ["7"] + parts[6:])
    data_section(tmp_path, lines=lines)
    pq.write_table(pa_csv.read_csv(tmp_path / "clicks.csv"), tmp_path / "clicks.parquet")
    data = data_section(tmp_path, lines=lines, format="parquet", stream=True,
                        files=str(tmp_path / "clicks.parquet"))
    with pytest.raises(DataError, match=r"clicks\.parquet, row 27: label column 'click' "
                                        r"holds 7.0"):
        tables.stream_to_shards(data, None, tmp_path / "shards")
    assert not list((tmp_path / "shards").glob("*.manifest.json"))
