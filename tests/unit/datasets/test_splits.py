"""The canonical splits: sizes, the shared random_split column, determinism, time order."""


import numpy as np

from tfrs_userlevel.datasets import splits


def test_random_split_is_deterministic_and_seed_dependent():
    a, b = splits.random_split(1000), splits.random_split(1000)
    np.testing.assert_array_equal(a, b)
    assert (splits.random_split(1000, seed=7) != a).any()
    assert splits.split_sizes(1_000_209) == (800_167, 100_021, 100_021)
