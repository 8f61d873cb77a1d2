"""The paper's choice of train and test genes from elastic-net R^2 (Methods, "Selection of
train and test genes").

Train genes: the R^2 of a gene pool (one cross-validation fold) is split into ``n_bins`` bins
of equal width between its minimum and maximum; starting from the top bin, ``per_bin``
genes are drawn at random from each bin, and a bin with fewer genes passes its shortfall on
to the next bin down. Test genes: up to ``max_test`` genes of a second pool (default: the
genes not chosen for training) whose R^2 is at least ``min_test_r2``, best first.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

from core.errors import InputError

__all__ = ["GeneSelection", "select_genes"]


class GeneSelection(NamedTuple):
    """Result of :func:`select_genes`."""

    train: list[str]  # in the order drawn (top bin first)
    test: list[str]  # highest R^2 first
    table: pd.DataFrame  # gene, r2, bin (1 = lowest; NA outside the train pool), role


def select_genes(
    r2: pd.Series,
    *,
    n_bins: int = 10,
    per_bin: int = 30,
    test_pool: pd.Series | None = None,
    min_test_r2: float = 0.1,
    max_test: int = 100,
    seed: int = 0,
) -> GeneSelection:
    """Choose train genes across the R^2 range and well-predicted test genes.

    Parameters
    ----------
    r2 : pd.Series
        Elastic-net test R^2 of the train pool, indexed by gene; NaN genes are left out.
    n_bins : int
        Equal-width R^2 bins (the paper: 10).
    per_bin : int
        Genes drawn per bin, top bin first (the paper: 30, i.e. 300 train genes).
    test_pool : pd.Series, optional
        R^2 of the genes test genes are chosen from (the paper: Enformer's validation and
        test genes); default: the train pool's genes not chosen for training.
    min_test_r2 : float
        Test genes need at least this R^2 (the paper: 0.1).
    max_test : int
        At most this many test genes, highest R^2 first (the paper: 100).
    seed : int
        Seed of the draws within bins.

    Returns
    -------
    GeneSelection
        No gene is both a train and a test gene.
    """
    if n_bins < 1 or per_bin < 0 or max_test < 0:
        raise InputError("--bins must be >= 1 and --per-bin, --max-test >= 0")
    pool = r2.dropna().astype(float)
    pool = pool[~pool.index.duplicated()]
    if pool.empty:
        raise InputError("no gene in the pool has an R2; run `variformer baselines` on it first")
    lo, hi = float(pool.min()), float(pool.max())
    edges = np.linspace(lo, hi, n_bins + 1)
    # bin 1..n_bins, the maximum in the top bin
    bins = pd.Series(np.clip(np.digitize(pool.to_numpy(), edges[1:-1], right=False) + 1, 1, n_bins))
    bins.index = pool.index
    rng = np.random.default_rng(seed)
    train: list[str] = []
    carry = 0
    for b in range(n_bins, 0, -1):
        members = sorted(bins.index[bins == b])
        want = per_bin + carry
        take = min(want, len(members))
        chosen = list(rng.choice(members, size=take, replace=False)) if take else []
        train += [str(g) for g in chosen]
        carry = want - take

    chosen_set = set(train)
    candidates = pool if test_pool is None else test_pool.dropna().astype(float)
    candidates = candidates[~candidates.index.isin(chosen_set)]
    candidates = candidates[candidates >= min_test_r2]
    order = sorted(candidates.index, key=lambda g: (-candidates[g], str(g)))
    test = [str(g) for g in order[:max_test]]

    everything = pool if test_pool is None else pd.concat([pool, test_pool.dropna().astype(float)])
    everything = everything[~everything.index.duplicated()]
    genes = list(everything.index)
    role = dict.fromkeys(train, "train") | dict.fromkeys(test, "test")
    table = pd.DataFrame(
        {
            "gene": [str(g) for g in genes],
            "r2": [float(everything[g]) for g in genes],
            "bin": pd.array([bins.get(g, pd.NA) for g in genes], dtype="Int64"),
            "role": [role.get(g, "-") for g in genes],
        }
    )
    return GeneSelection(train=train, test=test, table=table)
