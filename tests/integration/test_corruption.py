"""Property tests: real click logs corrupted at random give a clean error or the right rows.

A CSV and a Parquet file are cut from MovieLens-100K (user, item, zip code, time, and
the 0/1 label last). Hypothesis corrupts them — truncation at any byte, another
delimiter, invalid UTF-8, labels that are NaN or out of range, a repeated header, blank
lines, flipped bytes — and the configured reader must either raise `DataError` naming the
file, or return exactly the rows the damaged file still holds whole. Never another
exception, never a silently wrong row."""


from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tfrs_userlevel.config import load_run_config
from tfrs_userlevel.tables import DataError, read_splits

ROWS = 300


COLUMNS = ["user_id", "item_id", "zip", "ts", "label"]


SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def clicks(data_dir) -> pd.DataFrame:
    folder = data_dir / "movielens-100k"
    ratings = pd.read_csv(folder / "u.data", sep="\t", names=["user_id", "item_id", "rating",
                                                              "ts"], nrows=ROWS)
    users = pd.read_csv(folder / "u.user", sep="|", names=["user_id", "age", "gender", "job",
                                                           "zip"], dtype={"zip": str})
    frame = ratings.merge(users[["user_id", "zip"]], on="user_id", how="left")
    frame["label"] = (frame["rating"] > 3).astype(int)
    return frame[COLUMNS]


def _config(path, fmt="csv"):
    return load_run_config({"data": {
        "format": fmt, "files": str(path), "split": {"by": "ratio", "seed": 3},
        "label": {"column": "label"},
        "fields": [{"name": "user_id", "role": "user_personal", "dtype": "int64"},
                   {"name": "item_id", "role": "item", "dtype": "int64"},
                   {"name": "zip", "role": "user_other", "dtype": "string"}]}}).data


def _rows(splits) -> list[tuple]:
    found = []
    for columns in splits.values():
        found += zip(columns["user_id"].tolist(), columns["item_id"].tolist(),
                     [str(z) for z in columns["zip"]], columns["label"].tolist(), strict=True)
    return sorted(found)


def _expected(frame: pd.DataFrame) -> list[tuple]:
    return sorted(zip(frame["user_id"].tolist(), frame["item_id"].tolist(),
                      frame["zip"].tolist(), frame["label"].tolist(), strict=True))


def _read_or_error(path, fmt="csv"):
    """The rows read, or None after a DataError that names the file."""
    try:
        return _rows(read_splits(_config(path, fmt))[1])
    except DataError as error:
        assert path.name in str(error) or "split is empty" in str(error), str(error)
        return None


def test_the_clean_files_read_whole(clicks, tmp_path):
    clicks.to_csv(tmp_path / "clicks.csv", index=False)
    clicks.to_parquet(tmp_path / "clicks.parquet")
    assert _read_or_error(tmp_path / "clicks.csv") == _expected(clicks)
    assert _read_or_error(tmp_path / "clicks.parquet", "parquet") == _expected(clicks)


@SETTINGS
@given(cut=st.integers(min_value=1, max_value=10**6))
def test_a_truncated_csv_gives_an_error_or_the_whole_lines_before_the_cut(clicks, tmp_path,
                                                                           cut):
    text = clicks.to_csv(index=False).encode()
    cut = cut % len(text)
    path = tmp_path / "clicks.csv"
    path.write_bytes(text[:cut])
    found = _read_or_error(path)
    if found is not None:
        whole = text[:cut].decode().count("\n") - 1  # full data lines kept
        # A last line cut inside its label leaves no label (error); cut right after the
        # label, the row is whole.
        assert found in (_expected(clicks.head(whole)), _expected(clicks.head(whole + 1)))


@SETTINGS
@given(row=st.integers(0, ROWS - 1),
       damage=st.sampled_from(["NaN", "2", "-1", "0.5", "", "yes", "1e9"]))
def test_a_bad_label_is_refused_with_its_line(clicks, tmp_path, row, damage):
    lines = clicks.to_csv(index=False).splitlines()
    parts = lines[row + 1].split(",")
    lines[row + 1] = ",".join(parts[:-1] + [damage])
    path = tmp_path / "clicks.csv"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=rf"clicks\.csv, line {row + 2}: label column 'label'"):
        read_splits(_config(path))


@SETTINGS
@given(kind=st.sampled_from(["delimiter", "utf8", "header", "blank", "flip"]),
       where=st.integers(0, ROWS - 1), byte=st.integers(0, 255), count=st.integers(1, 5))
def test_damaged_lines_give_an_error_or_the_rows_left_whole(clicks, tmp_path, kind, where,
                                                            byte, count):
    lines = clicks.to_csv(index=False).encode().splitlines()
    expected = clicks
    if kind == "delimiter":  # the whole file written with another delimiter
        lines = [line.replace(b",", b";") for line in lines]
    elif kind == "utf8":  # invalid UTF-8 inside a zip code
        parts = lines[where + 1].split(b",")
        parts[2] = parts[2][:1] + bytes([0xC3, 0x28]) + parts[2][1:]
        lines[where + 1] = b",".join(parts)
    elif kind == "header":  # the header again, inside the data
        lines.insert(where + 1, lines[0])
    elif kind == "blank":  # blank lines hold no row
        for _ in range(count):
            lines.insert(1 + (where * 7 + byte) % (len(lines) - 1), b"")
    else:  # one byte of a data line replaced
        line = bytearray(lines[where + 1])
        line[byte % len(line)] = byte
        lines[where + 1] = bytes(line)
        original = clicks.to_csv(index=False).encode().splitlines()[where + 1]
        if lines[where + 1] != original:
            expected = None  # the reader must refuse it, or read the line as it now is
    path = tmp_path / "clicks.csv"
    path.write_bytes(b"\n".join(lines) + b"\n")
    found = _read_or_error(path)
    if kind in ("delimiter", "utf8", "header"):
        assert found is None
    elif kind == "blank":
        assert found == _expected(clicks)
    elif found is not None and expected is None:
        # A flipped byte that still parses: every other row is intact, and the changed
        # line reads as exactly what it now says.
        changed = lines[where + 1].decode("utf-8", "replace").split(",")
        others = clicks.drop(index=where)
        row = (int(changed[0]), int(changed[1]), changed[2], int(float(changed[4])))
        assert found == sorted(_expected(others) + [row])
    elif found is not None:
        assert found == _expected(expected)


@SETTINGS
@given(cut=st.integers(min_value=0, max_value=10**6), flip=st.booleans(),
       byte=st.integers(0, 255))
def test_a_damaged_parquet_file_gives_an_error_or_its_rows(clicks, tmp_path, cut, flip,
                                                           byte):
    path = tmp_path / "clicks.parquet"
    clicks.to_parquet(path, write_page_checksum=True)  # pages carry a CRC, which is checked
    data = bytearray(path.read_bytes())
    if flip:
        data[cut % len(data)] = byte
    else:
        data = data[:cut % len(data)]
    path.write_bytes(bytes(data))
    found = _read_or_error(path, "parquet")
    if not flip:
        assert found is None, "a truncated Parquet file was read"
    elif found is not None:
        # The byte fell outside the data pages (the footer's statistics, say): the rows
        # are the file's own.
        assert found == _expected(clicks)
