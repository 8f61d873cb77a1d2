"""Independent transcriptions of the paper's quantities, for tests to check the toolkit against.

Each function is written from the definition (the paper's Methods or the authors' public code),
with numpy/scipy only, and never calls the code under test.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import stats


def authors_drivers(dosages, predictions, weights, min_gain=0.05, alpha=0.01):
    """A literal transcription of ``forward_selection_with_only_drivers`` and the ``peartot``
    line of ``select_and_evaluate_drivers`` (shirondru/enformer_fine_tuning,
    code/select_drivers_performer.py), on numpy arrays; returns (drivers, forward, snp_r, snp_p)."""
    order = np.argsort(-np.abs(weights), kind="stable")
    axg = dosages * weights  # attr_x_genotype, people x SNVs
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # constant input -> NaN, as pandas/scipy give there
        peartot = stats.pearsonr(axg.sum(axis=1), predictions)[0]
        old, chosen, rec = 0, [], {}
        for variant in order:
            forward_sum = axg[:, [*chosen, variant]].sum(axis=1)
            pearson_forward = stats.pearsonr(forward_sum, predictions)[0]
            forward_contribution = pearson_forward / peartot
            snp = stats.pearsonr(axg[:, variant], predictions, alternative="greater")
            if (
                (forward_contribution - old) > min_gain
                and snp[0] > 0
                and snp[1] < alpha / len(order)
            ):
                chosen.append(variant)
                old = forward_contribution
                rec[variant] = (forward_contribution, snp[0], snp[1])
    return chosen, rec


def bh_adjust(p):
    """Benjamini-Hochberg adjusted p-values by hand: sort, p * m / rank, the running minimum
    from the largest p down, capped at 1, back in input order (NaN stays NaN, not counted)."""
    p = np.asarray(p, dtype=float)
    out = np.full(len(p), np.nan)
    have = np.flatnonzero(~np.isnan(p))
    m = len(have)
    order = have[np.argsort(p[have], kind="stable")]
    running = 1.0
    for rank in range(m, 0, -1):
        i = order[rank - 1]
        running = min(running, p[i] * m / rank)
        out[i] = running
    return out
