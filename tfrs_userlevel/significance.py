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
