"""Click histories (behavior features) built without looking at the future.

For each interaction r of user u, its history is u's clicks (label 1) made
strictly before r's *history cutoff*, most recent last, at most `max_length`
of them. The cutoff is r's own timestamp, except where r's timestamp cannot
be used without leaking (see below). A click at the same second as r is not
in r's history, and r itself never is.

Rows without a timestamp (ML-1M's reassembled ratings, PROVENANCE.md: every
1-3 star rating of the earliest 80 % by time has none, every click has one):
their place among the user's clicks is unknown, so no click can be put in
their history without risking a later one. Giving them an empty history
while their timestamped neighbours get a full one would leak the label
(only non-clicks lack a timestamp). So the rule is label-blind and works per
time period (the `time_split` column, known for every row): in a period
where some row lacks a timestamp, EVERY row (click or not) gets the cutoff
"start of the period", i.e. only clicks of earlier periods; in a period
where every row has a timestamp, the cutoff is the row's timestamp. With
the official ratings.dat (all timestamps) or ML-100K, every cutoff is the
row's own timestamp. Clicks without a timestamp (none in the shipped data)
cannot be ordered and are left out of every history.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tfrs_userlevel.datasets.splits import SPLITS

PADDING = -1
_SHIFT = np.int64(1) << 33  # > any Unix second until the year 2242


def history_cutoffs(timestamp: np.ndarray, period: np.ndarray) -> np.ndarray:
    """The history cutoff of each row (see the module docstring); -1 = empty history.

    Args:
      timestamp: int64 [N] Unix seconds, -1 where unknown.
      period: [N] time-period names in time order (`SPLITS`: train, validation, test).
    """
    timestamp = np.asarray(timestamp, dtype=np.int64)
    period = np.asarray(period)
    cutoff = timestamp.copy()
    start = 0  # the first period has no earlier clicks
    for name in SPLITS:
        rows = period == name
        if not rows.any():
            continue
        if (timestamp[rows] < 0).any():
            cutoff[rows] = start if name != SPLITS[0] else -1
        known = timestamp[rows]
        known = known[known >= 0]
        if len(known):
            # Next period's start: after every timestamp of this one.
            start = max(start, int(known.max()) + 1)
    return cutoff


def click_histories(user: np.ndarray, item: np.ndarray, label: np.ndarray,
                    timestamp: np.ndarray, cutoff: np.ndarray, max_length: int) -> np.ndarray:
    """The last `max_length` clicks of each row's user strictly before its cutoff.

    Args:
      user, item, label, timestamp: int64 [N] per interaction (timestamp -1
        where unknown).
      cutoff: int64 [N] from `history_cutoffs`; -1 gives an empty history.
      max_length: L.

    Returns:
      int64 [N, L] item ids, oldest first, padded at the end with -1.
    """
    if max_length < 1:
        raise ValueError(f"max_length must be >= 1, got {max_length}")
    user = np.asarray(user, dtype=np.int64)
    if user.min(initial=0) < 0:
        raise ValueError("click_histories: user ids must be >= 0")
    clicks = (np.asarray(label) == 1) & (np.asarray(timestamp) >= 0)
    click_user, click_time = user[clicks], np.asarray(timestamp, dtype=np.int64)[clicks]
    click_item = np.asarray(item, dtype=np.int64)[clicks]
    order = np.lexsort((click_item, click_time, click_user))
    keys = click_user[order] * _SHIFT + click_time[order]
    click_item = click_item[order]
    cutoff = np.asarray(cutoff, dtype=np.int64)
    begin = np.searchsorted(keys, user * _SHIFT, side="left")
    end = np.where(cutoff < 0, begin,
                   np.searchsorted(keys, user * _SHIFT + np.maximum(cutoff, 0), side="left"))
    count = np.minimum(end - begin, max_length)
    first = end - count
    position = np.arange(max_length)
    index = first[:, None] + position[None, :]
    valid = position[None, :] < count[:, None]
    histories = np.where(valid, click_item[np.minimum(index, max(len(click_item) - 1, 0))]
                         if len(click_item) else PADDING, PADDING)
    return histories.astype(np.int64)


def frame_histories(frame: pd.DataFrame, item_column: str, max_length: int) -> np.ndarray:
    """int64 [N, max_length]: each row's click history (`click_histories` under the
    `history_cutoffs` rule). `frame` needs user_id, label, timestamp (-1 where unknown),
    time_split and `item_column`."""
    cutoff = history_cutoffs(frame["timestamp"].to_numpy(), frame["time_split"].to_numpy())
    return click_histories(frame["user_id"].to_numpy(), frame[item_column].to_numpy(),
                           frame["label"].to_numpy(), frame["timestamp"].to_numpy(),
                           cutoff, max_length)
