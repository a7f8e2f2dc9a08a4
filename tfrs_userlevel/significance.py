"""The paper's significance protocol: N seeds per model, one-sided t-test on test AUC."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def one_sided_ttest(candidate: Sequence[float], reference: Sequence[float]) -> float:
    """p-value of H1 "mean(candidate) > mean(reference)" (Welch's two-sample t-test).

    Runs with the same seed are not paired (different models draw different
    random streams from one seed), so the samples are treated as independent
    with unequal variances. Needs at least two values on each side.
    """
    from scipy import stats

    candidate, reference = np.asarray(candidate, float), np.asarray(reference, float)
    if len(candidate) < 2 or len(reference) < 2:
        raise ValueError("one_sided_ttest: needs at least two runs per model, got "
                         f"{len(candidate)} and {len(reference)}")
    result = stats.ttest_ind(candidate, reference, equal_var=False, alternative="greater")
    return float(result.pvalue)


def paired_one_sided_ttest(candidate: Sequence[float], reference: Sequence[float]) -> float:
    """p-value of H1 "mean(candidate − reference) > 0" over runs paired by seed.

    Not the paper's protocol (`one_sided_ttest` is), but the sharper question when
    both configurations ran on the same seeds: a seed that is hard for one (its
    data order, its split of dropout draws) tends to be hard for the other, and
    pairing removes that shared part of the spread. `candidate[i]` and
    `reference[i]` must come from the same seed.
    """
    from scipy import stats

    candidate, reference = np.asarray(candidate, float), np.asarray(reference, float)
    if len(candidate) != len(reference) or len(candidate) < 2:
        raise ValueError("paired_one_sided_ttest: needs the same number (at least two) of "
                         f"runs per model, one per seed, got {len(candidate)} and "
                         f"{len(reference)}")
    result = stats.ttest_rel(candidate, reference, alternative="greater")
    return float(result.pvalue)
