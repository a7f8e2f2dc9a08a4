"""Dataset location errors and the TFDS builder path."""


from pathlib import Path

import numpy as np
import pytest

from tfrs_userlevel import datasets
from tfrs_userlevel.datasets import sources
from tfrs_userlevel.tables.errors import DataError


def test_environment_variable_is_a_data_root(data_dir, monkeypatch):
    monkeypatch.setenv(datasets.ENV_VAR, str(data_dir))
    assert sources.data_root() == data_dir
    found = sources.find_raw_dir("x", ["movielens-100k"], lambda p: None, None)
    assert found == data_dir / "movielens-100k"


def test_bad_rows_name_the_file_and_line(tmp_path, data_dir):
    folder = tmp_path / "movielens-100k"
    folder.mkdir()
    for name in ("u.user", "u.item", "u.genre"):
        (folder / name).write_bytes((data_dir / "movielens-100k" / name).read_bytes())
    (folder / "u.data").write_text("1\t1\t5\t881250949\n1\t2\tfive\t881250950\n")
    with pytest.raises(DataError, match=r"u\.data, line 2: column 'rating' must be an integer"):
        datasets.load_splits("movielens_100k", data_dir=tmp_path)


def test_a_line_cut_short_is_refused_with_its_line(tmp_path, data_dir):
    """`11|39|F` (occupation and zip missing) would read as empty strings: refused."""
    folder = tmp_path / "movielens-100k"
    folder.mkdir()
    for name in ("u.data", "u.item", "u.genre"):
        (folder / name).write_bytes((data_dir / "movielens-100k" / name).read_bytes())
    users = (data_dir / "movielens-100k" / "u.user").read_text(encoding="latin-1").splitlines()
    users[10] = "11|39|F"
    (folder / "u.user").write_text("\n".join(users) + "\n", encoding="latin-1")
    with pytest.raises(DataError, match=r"u\.user, line 11: 3 of the 5 columns .*'occupation' "
                       "and later are missing"):
        datasets.load_splits("movielens_100k", data_dir=tmp_path)
    users[10] = "11|39|F|other|30329"  # the whole line again: read as before
    (folder / "u.user").write_text("\n".join(users) + "\n", encoding="latin-1")
    assert len(datasets.load_splits("movielens_100k", data_dir=tmp_path)["train"]["label"]) \
        == 80_000


@pytest.mark.parametrize("name, line, damage, message", [
    ("u.data", 5, "196\t242\t3", r"u\.data, line 5: 3 of the 4 columns"),
    ("u.item", 3, "3|Four Rooms (1995)|01-Jan-1995||http://x|0|0",
     r"u\.item, line 3: 7 of the 24 columns"),
    ("u.item", 4, None, r"u\.item, line 4: column 'Action' must be an integer, got 'x'"),
    ("u.genre", 2, "Action|one", r"u\.genre, line 2: column 'index' must be an integer"),
    ("u.user", 7, "7|57|M||91344", r"u\.user, line 7: column 'occupation' is empty"),
])
def test_one_corrupted_row_of_each_ml100k_file_names_file_and_line(tmp_path, data_dir, name,
                                                                    line, damage, message):
    folder = tmp_path / "movielens-100k"
    folder.mkdir()
    for other in ("u.data", "u.user", "u.item", "u.genre"):
        (folder / other).write_bytes((data_dir / "movielens-100k" / other).read_bytes())
    lines = (folder / name).read_text(encoding="latin-1").splitlines()
    if damage is None:  # a genre flag that is not a number
        parts = lines[line - 1].split("|")
        parts[6] = "x"
        damage = "|".join(parts)
    lines[line - 1] = damage
    (folder / name).write_text("\n".join(lines) + "\n", encoding="latin-1")
    with pytest.raises(DataError, match=message):
        datasets.load_splits("movielens_100k", data_dir=tmp_path)


def test_tfds_builder_gives_the_same_rows_as_the_raw_reader(data_dir, tmp_path, ml100k):
    via_tfds = datasets.load_splits("movielens_100k", "random", data_dir, source="tfds",
                                    tfds_dir=tmp_path)
    builder = datasets.builder("movielens_100k", "random", data_dir, tmp_path)
    assert builder.info.splits["train"].num_examples == 80_000
    for split in ("train", "validation", "test"):
        order_tfds = np.lexsort((via_tfds[split]["item_id"], via_tfds[split]["user_id"]))
        for column, raw in ml100k[split].items():
            np.testing.assert_array_equal(via_tfds[split][column][order_tfds], raw, err_msg=column)
    # The builder's "history" feature: the same click lists as datasets.behavior builds.
    timed = datasets.load_splits("movielens_100k", "time", data_dir, history_length=50)
    expected = {(u, i): h[h >= 0].tolist() for split in timed.values()
                for u, i, h in zip(split["user_id"], split["item_id"],
                                   split["history_item_id"], strict=True)}
    for example in builder.as_dataset(split="test").take(200):
        key = (int(example["user_id"]), int(example["item_id"]))
        assert example["history"].numpy().tolist() == expected[key], key


def _ml1m_copy(tmp_path, data_dir, **replace):
    """A copy of the ML-1M folder with some files replaced by bytes (or removed: None)."""
    folder = tmp_path / "movielens-1m"
    folder.mkdir()
    for name in ("movies.dat", "users.dat", "ratings.csv.gz"):
        content = replace.get(name, (data_dir / "movielens-1m" / name).read_bytes())
        if content is not None:
            (folder / name).write_bytes(content)
    return folder


def _gzip(text: str) -> bytes:
    import gzip
    return gzip.compress(text.encode())


@pytest.mark.parametrize("case, replace, message", [
    ("truncated gzip", lambda d: {"ratings.csv.gz": (d / "ratings.csv.gz").read_bytes()[:50000]},
     r"ratings\.csv\.gz: cannot be read as CSV"),
    ("missing column", lambda d: {"ratings.csv.gz": _gzip(
        "user_id,movie_id,rating,timestamp\n1,1,5,978824268\n")},
     r"ratings\.csv\.gz: expected columns \[.*'split'\], found"),
    ("wrong type", lambda d: {"users.dat": b"1::F::one::10::48067\n"},
     r"users\.dat, line 1: column 'age' must be an integer, got 'one'"),
    ("empty file", lambda d: {"movies.dat": b""}, r"movies\.dat: the file is empty"),
    ("short line", lambda d: {"users.dat": b"1::F::1::10::48067\n2::M::56\n"},
     r"users\.dat, line 2: 3 of the 5 columns"),
    ("movie without a year", lambda d: {"movies.dat": (d / "movies.dat").read_bytes().replace(
        b"2::Jumanji (1995)::", b"2::Jumanji::", 1)},
     r"movies\.dat, line 2: no \(year\) at the end"),
    ("bad split value", lambda d: {"ratings.csv.gz": _gzip(
        "user_id,movie_id,rating,timestamp,split\n1,1,5,978824268,tset\n")},
     r"ratings\.csv\.gz, row 2: split must be train/val/test, got 'tset'"),
    ("missing file", lambda d: {"users.dat": None}, r"users\.dat"),
])
def test_bad_ml1m_files_name_the_file_row_and_expectation(tmp_path, data_dir, case, replace,
                                                          message):
    _ml1m_copy(tmp_path, data_dir, **replace(data_dir / "movielens-1m"))
    with pytest.raises(DataError if case != "missing file" else FileNotFoundError,
                       match=message):
        datasets.load_splits("movielens_1m", data_dir=tmp_path)


def test_an_unreadable_data_folder_is_named_as_such(tmp_path, data_dir, monkeypatch):
    """chmod 000 does not stop root (the CI user), so the OS answer is simulated: the
    folder exists but os.access says it cannot be read."""
    folder = _ml1m_copy(tmp_path, data_dir)
    real_access = sources.os.access
    monkeypatch.setattr(sources.os, "access",
                        lambda path, mode: False if Path(path) == folder
                        else real_access(path, mode))
    with pytest.raises(sources.DataNotFoundError, match=r"movielens-1m \(not readable\)"):
        datasets.load_splits("movielens_1m", data_dir=tmp_path)
