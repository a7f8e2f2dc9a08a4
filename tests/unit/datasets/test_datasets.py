"""Dataset location errors and the TFDS builder path."""


import pytest

from tfrs_userlevel import datasets


def test_missing_data_lists_every_place_looked(tmp_path, monkeypatch):
    monkeypatch.delenv(datasets.ENV_VAR, raising=False)
    (tmp_path / "movielens-1m").mkdir()
    (tmp_path / "movielens-1m" / "users.dat").write_text("1::F::1::10::48067\n")
    with pytest.raises(datasets.DataNotFoundError) as error:
        datasets.load_splits("movielens_1m", data_dir=tmp_path)
    message = str(error.value)
    assert str(tmp_path / "movielens-1m") in message
    assert "missing movies.dat, ratings.dat or ratings.csv.gz" in message
    assert str(tmp_path / "ml-1m") in message and "no such directory" in message
    assert "https://files.grouplens.org/datasets/movielens/ml-1m.zip" in message


def test_unknown_names_list_the_valid_choices():
    with pytest.raises(ValueError, match="movielens_100k"):
        datasets.load_splits("movielens_20m")
    with pytest.raises(ValueError, match="random"):
        datasets.load_splits("movielens_100k", split="by_user")


def test_a_data_dir_that_is_a_file_is_refused_by_name(tmp_path):
    target = tmp_path / "not_a_folder"
    target.write_text("x")
    with pytest.raises(datasets.DataNotFoundError,
                       match=r"not_a_folder \(a file, not a folder\)"):
        datasets.load_splits("movielens_100k", data_dir=target)
