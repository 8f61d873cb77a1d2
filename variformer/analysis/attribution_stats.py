"""Fig. S10's statistics: the genes drawn for it, the mean over replicates, bootstrap intervals.

Paper (Methods, "Input sequence attribution"): "From this pool of genes [Variformer R2 > 0.2]
we selected 15 genes at random"; "any driver SNP, HSV, and control may have up to three
standardized gradient attributions, and we averaged these for each model class. Error bars
[...] represent 95% confidence intervals [...] by performing 1000 bootstraps of SNPs from the
driver/HSV and control groups after averaging" (seaborn's percentile bootstrap of the mean).

:func:`summarize_attributions` turns ``attributions.tsv`` into ``attribution_summary.tsv``::

    model, background, group, offset, n_snvs, mean, ci_low, ci_high
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from core.errors import InputError

__all__ = [
    "SNV_KEY",
    "SUMMARY_COLUMNS",
    "bootstrap_ci",
    "per_snv_attributions",
    "pick_genes",
    "summarize_attributions",
]

SNV_KEY = ["gene", "chrom", "pos", "ref", "alt"]
SUMMARY_COLUMNS = [
    "model", "background", "group", "offset", "n_snvs", "mean", "ci_low", "ci_high",
]  # fmt: skip
_CELL = ["model", "background", "group", "offset"]


def pick_genes(genes: Iterable[str], n: int | None = 15, *, seed: int = 0) -> list[str]:
    """``n`` genes drawn at random (seeded) from ``genes``, in sorted order.

    Parameters
    ----------
    genes : iterable of str
        The pool (the genes passing the R2 filter); duplicates count once, order is ignored.
    n : int or None, default 15
        How many; every gene when None or when the pool is smaller.
    seed : int, default 0
        ``np.random.default_rng(seed).choice(len(pool), size=n, replace=False)`` on the sorted
        pool.

    Returns
    -------
    list of str
    """
    pool = sorted(set(map(str, genes)))
    if n is None or n >= len(pool):
        return pool
    if n < 1:
        raise InputError(f"the number of attribution genes must be >= 1, got {n}")
    picked = np.random.default_rng(seed).choice(len(pool), size=int(n), replace=False)
    return [pool[i] for i in sorted(picked)]


def per_snv_attributions(attr: pd.DataFrame) -> pd.DataFrame:
    """The mean over replicates (folds) of each SNV's attribution at each offset.

    Parameters
    ----------
    attr : pd.DataFrame
        ``attributions.tsv``: ``model, group, offset, attribution`` and optionally
        ``background``, ``fold`` and the SNV key ``gene, chrom, pos, ref, alt`` (without a key
        each row is its own SNV).

    Returns
    -------
    pd.DataFrame
        ``model, background, group, [SNV key], offset, attribution, n_folds``, sorted.
    """
    attr = attr.assign(offset=0) if "offset" not in attr.columns else attr
    attr = attr.assign(background="") if "background" not in attr.columns else attr
    key = [c for c in SNV_KEY if c in attr.columns]
    if not key:  # one observation per row
        attr, key = attr.assign(row=np.arange(len(attr))), ["row"]
    by = ["model", "background", "group", *key, "offset"]
    out = attr.groupby(by, sort=True, dropna=False)["attribution"].agg(["mean", "size"])
    return out.rename(columns={"mean": "attribution", "size": "n_folds"}).reset_index()


def _resample_weights(n: int, n_boot: int, seed: int) -> np.ndarray:
    """(n_boot, n) weights whose row b averages resample b of ``n`` values (the indices
    ``default_rng(seed).integers(0, n, size=(n_boot, n))``)."""
    idx = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))
    flat = (np.arange(n_boot)[:, None] * n + idx).ravel()
    return np.bincount(flat, minlength=n_boot * n).reshape(n_boot, n) / n


def bootstrap_ci(
    values: np.ndarray, *, n_boot: int = 1000, level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values``.

    Parameters
    ----------
    values : np.ndarray, shape=(n,)
    n_boot : int, default 1000
        Resamples; resample ``b`` is ``values[idx[b]]`` with
        ``idx = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))``.
    level : float, default 0.95
    seed : int, default 0

    Returns
    -------
    (float, float)
        The ``(1 - level) / 2`` and ``(1 + level) / 2`` percentiles (numpy's linear method) of
        the resample means.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1 or len(values) == 0:
        raise InputError(f"values must be a non-empty 1-d array, got shape {values.shape}")
    means = _resample_weights(len(values), n_boot, seed) @ values
    lo, hi = np.percentile(means, [50 * (1 - level), 50 * (1 + level)])
    return float(lo), float(hi)


def summarize_attributions(
    attr: pd.DataFrame, *, n_boot: int = 1000, level: float = 0.95, seed: int = 0
) -> pd.DataFrame:
    """Fig. S10's lines: per model, background, group and offset, the mean over SNVs (each
    first averaged over replicates) and its bootstrap interval.

    Parameters
    ----------
    attr : pd.DataFrame
        ``attributions.tsv`` (see :func:`per_snv_attributions`).
    n_boot, level, seed
        As for :func:`bootstrap_ci`, applied to each (model, background, group, offset) cell
        with the cell's per-SNV values sorted by ``gene, chrom, pos, ref, alt`` and a fresh
        ``default_rng(seed)`` per cell.

    Returns
    -------
    pd.DataFrame
        :data:`SUMMARY_COLUMNS`, sorted by model, background, group, offset.
    """
    if n_boot < 1 or not 0 < level < 1:
        raise InputError(f"need n_boot >= 1 and 0 < level < 1, got {n_boot} and {level}")
    if attr is None or attr.empty:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    per_snv = per_snv_attributions(attr)
    q = [50 * (1 - level), 50 * (1 + level)]
    rows, cache = [], {}
    for cell, sub in per_snv.groupby(_CELL[:3], sort=True, dropna=False):
        snv = [c for c in sub.columns if c not in (*_CELL, "attribution", "n_folds")]
        wide = sub.pivot(index=snv, columns="offset", values="attribution")  # SNVs sorted
        columns = {int(o): wide[o].dropna().to_numpy(dtype=np.float64) for o in wide.columns}
        by_n: dict[int, list[int]] = {}
        for offset, v in columns.items():  # offsets with the same n share the resamples
            by_n.setdefault(len(v), []).append(offset)
        for n, offsets in by_n.items():
            if n not in cache:
                cache[n] = _resample_weights(n, n_boot, seed)
            values = np.column_stack([columns[o] for o in offsets])  # (n SNVs, offsets)
            lo, hi = np.percentile(cache[n] @ values, q, axis=0)
            for j, offset in enumerate(offsets):
                rows.append((*cell, offset, n, values[:, j].mean(), lo[j], hi[j]))
    out = pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
    return out.sort_values(_CELL, kind="stable").reset_index(drop=True)
