"""Click histories: never the current or a later interaction, label-blind where timestamps miss."""


from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tfrs_userlevel import datasets


def _all_rows(name: str, length: int) -> pd.DataFrame:
    loaded = datasets.load_splits(name, "time", history_length=length)
    column = datasets.history_column(name)
    parts = []
    for split, columns in loaded.items():
        frame = pd.DataFrame({k: v for k, v in columns.items() if k != column})
        frame["history"] = list(columns[column])
        frame["period"] = split
        parts.append(frame)
    return pd.concat(parts, ignore_index=True)


def _history_entries(frame: pd.DataFrame, item: str) -> pd.DataFrame:
    """One row per (interaction, history position) with the clicked item's own row joined."""
    histories = np.stack(frame["history"].to_numpy())
    row, position = np.nonzero(histories >= 0)
    entries = pd.DataFrame({"row": row, "position": position,
                            "user_id": frame["user_id"].to_numpy()[row],
                            item: histories[row, position],
                            "row_time": frame["timestamp"].to_numpy()[row]})
    clicks = frame[["user_id", item, "label", "timestamp"]].rename(
        columns={"label": "click_label", "timestamp": "click_time"})
    return entries.merge(clicks, on=["user_id", item], how="left", validate="many_to_one")


@pytest.mark.parametrize("name, item", [("movielens_100k", "item_id"),
                                        ("movielens_1m", "movie_id")])
def test_no_history_item_is_at_or_after_its_interaction(data_dir, name, item):
    """Over the whole dataset: every listed item is a click of the same user made strictly
    before the interaction, and the list is in time order with the most recent last."""
    frame = _all_rows(name, 20)
    entries = _history_entries(frame, item)
    assert len(entries) > 10_000
    assert entries["click_label"].notna().all()          # an item the user rated ...
    assert (entries["click_label"] == 1).all()           # ... and clicked
    assert (entries["click_time"] >= 0).all()
    assert (entries["click_time"] < entries["row_time"]).all()  # strictly before (row known)
    ordered = entries.sort_values(["row", "position"])
    steps = ordered.groupby("row")["click_time"].diff().dropna()
    assert (steps >= 0).all()
    # The row's own item is never in its own history.
    own = frame[item].to_numpy()[entries["row"].to_numpy()]
    assert not np.any(own == entries[item].to_numpy())


def test_ml1m_rows_without_a_timestamp_get_the_same_rule_as_their_period(data_dir):
    """ML-1M's train period lacks the timestamps of its non-clicks: every row of that period,
    click or not, gets an empty history, so history length says nothing about the label."""
    frame = _all_rows("movielens_1m", 20)
    lengths = np.array([(h >= 0).sum() for h in frame["history"]])
    train = (frame["period"] == "train").to_numpy()
    assert (frame.loc[train, "timestamp"] < 0).any()
    assert (lengths[train] == 0).all()
    later = ~train
    assert (frame.loc[later, "timestamp"] >= 0).all()
    assert lengths[later].mean() > 15


def test_histories_need_the_time_split(data_dir):
    with pytest.raises(ValueError, match="need split 'time'"):
        datasets.load_splits("movielens_100k", "random", history_length=5)
