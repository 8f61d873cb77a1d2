"""Cross-validation splits of people, shared by fine-tuning and the baselines.

Default: ``n_folds`` folds of train/tune/test people (80/10/10), seeded, the test sets of
different folds disjoint. With an external test cohort every fold tests on that cohort and
splits the rest into train/tune (the paper's ROSMAP -> GTEx design). Each fold also stores a
random order of its train people so that donor downsampling (25/50/75/100 %) is nested.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.errors import InputError


def make_splits(
    samples: list[str],
    *,
    n_folds: int = 3,
    tune_fraction: float = 0.1,
    test_fraction: float = 0.1,
    test_samples: list[str] | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """Assign people to train/tune/test in each fold.

    Parameters
    ----------
    samples : list of str
        People with genotypes (and expression, when given).
    n_folds : int
        Number of folds (the paper uses 3).
    tune_fraction, test_fraction : float
        Fractions of people in tune and test; ``n_folds * test_fraction <= 1`` keeps the test
        sets of different folds disjoint. ``test_fraction`` is ignored with ``test_samples``.
    test_samples : list of str, optional
        An external test cohort: test in every fold; the others are split train/tune.
    seed : int

    Returns
    -------
    pd.DataFrame
        Columns ``sample``, ``fold<k>`` (``train``/``tune``/``test``) and ``train_rank<k>``
        (position of the person in the fold's downsampling order, -1 if not train).
    """
    if n_folds < 1:
        raise InputError(f"--folds must be at least 1, got {n_folds}")
    rng = np.random.default_rng(seed)
    n = len(samples)
    table = pd.DataFrame({"sample": samples})
    if test_samples is not None:
        test_set = set(test_samples)
        unknown = [s for s in test_samples if s not in set(samples)]
        if unknown:
            raise InputError(
                f"{len(unknown)} test samples are not among the cohort's samples (first: {unknown[0]})"
            )
        pool = np.array([i for i, s in enumerate(samples) if s not in test_set], dtype=np.int64)
        n_tune = round(len(pool) * tune_fraction)
        if n_tune < 1 or len(pool) - n_tune < 1:
            raise InputError(
                f"--test-samples lists {len(test_set)} of the {n} people, leaving {len(pool)} for "
                f"train and tune ({tune_fraction:.0%} tune); list fewer test samples or add people"
            )
        perm = rng.permutation(pool)
        where = {s: i for i, s in reversed(list(enumerate(samples)))}  # first occurrence
        test_rows = [where[s] for s in test_samples]
        for k in range(n_folds):
            labels = np.full(n, "train", dtype=object)
            labels[test_rows] = "test"
            labels[np.roll(perm, -k * n_tune)[:n_tune]] = "tune"
            _add_fold(table, k, labels, rng)
        return table
    n_test = round(n * test_fraction)
    if n_folds * test_fraction <= 1 + 1e-9:
        n_test = min(n_test, n // n_folds)  # rounding up must not make disjoint test sets overflow
    n_tune = round(n * tune_fraction)
    if n_folds * n_test > n:
        raise InputError(
            f"{n_folds} folds x {test_fraction:.0%} test do not fit in {n} people; lower --folds or the test fraction"
        )
    if n_test + n_tune >= n or n_test < 1 or n_tune < 1:
        raise InputError(
            f"{n} people are too few for tune {tune_fraction:.0%} / test {test_fraction:.0%} splits"
        )
    perm = rng.permutation(n)
    for k in range(n_folds):
        labels = np.full(n, "train", dtype=object)
        rolled = np.roll(perm, -k * n_test)
        labels[rolled[:n_test]] = "test"
        labels[rolled[n_test : n_test + n_tune]] = "tune"
        _add_fold(table, k, labels, rng)
    return table


def _add_fold(table: pd.DataFrame, k: int, labels: np.ndarray, rng: np.random.Generator) -> None:
    table[f"fold{k}"] = labels
    train = np.flatnonzero(labels == "train")
    rank = np.full(len(labels), -1, dtype=np.int64)
    rank[rng.permutation(train)] = np.arange(len(train))
    table[f"train_rank{k}"] = rank
