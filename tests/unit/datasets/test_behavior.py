"""Click histories: never the current or a later interaction, label-blind where timestamps miss."""


from __future__ import annotations

import numpy as np

from tfrs_userlevel.datasets import behavior


def test_click_histories_rule():
    user = np.array([1, 1, 1, 1, 2, 2])
    item = np.array([10, 11, 12, 13, 10, 14])
    label = np.array([1, 1, 0, 1, 1, 1])
    time = np.array([100, 100, 200, 300, 50, 60])
    out = behavior.click_histories(user, item, label, time, time, max_length=2)
    np.testing.assert_array_equal(out, [
        [-1, -1],       # nothing before t=100 (the other click at t=100 is not "before")
        [-1, -1],
        [10, 11],       # both clicks at t=100
        [10, 11],       # the non-click at 200 is not listed
        [-1, -1],
        [10, -1],       # user 2's own earlier click, not user 1's
    ])
    # max_length keeps the most recent clicks.
    late = behavior.click_histories(user, item, label, time, np.full(6, 1000), max_length=1)
    assert late[0, 0] == 13 and late[4, 0] == 14
    # A period with a missing timestamp: every row of it gets "start of the period".
    period = np.array(["train", "train", "validation", "validation", "train", "validation"])
    stamped = np.array([100, -1, 200, 300, 50, 60])
    cutoff = behavior.history_cutoffs(stamped, period)
    np.testing.assert_array_equal(cutoff, [-1, -1, 200, 300, -1, 60])
