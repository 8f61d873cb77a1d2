"""TMM normalization factors (trimmed mean of M values), as ``edgeR::calcNormFactors``.

Robinson & Oshlack (2010), Genome Biology 11:R25; used by :mod:`data_prep.normalize` as the
GTEx eQTL pipeline does. Matrices are genes x samples (the GCT orientation).
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from core.errors import InputError

__all__ = ["tmm_factors"]


def _upper_quartile_factors(counts: np.ndarray) -> np.ndarray:
    # R's quantile(type=7) == numpy's default linear interpolation
    return np.percentile(counts, 75, axis=0) / counts.sum(axis=0)


def _tmm_factor(
    obs: np.ndarray, ref: np.ndarray, *, logratio_trim: float, sum_trim: float
) -> float:
    """One sample's un-scaled TMM factor against the reference (edgeR ``.calcFactorTMM``)."""
    n_obs, n_ref = obs.sum(), ref.sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        log_r = np.log2((obs / n_obs) / (ref / n_ref))
        abs_e = (np.log2(obs / n_obs) + np.log2(ref / n_ref)) / 2
        var = (n_obs - obs) / n_obs / obs + (n_ref - ref) / n_ref / ref
    finite = np.isfinite(log_r) & np.isfinite(abs_e)
    log_r, abs_e, var = log_r[finite], abs_e[finite], var[finite]
    if log_r.size == 0 or np.max(np.abs(log_r)) < 1e-6:
        return 1.0
    n = log_r.size
    lo_l = np.floor(n * logratio_trim) + 1
    hi_l = n + 1 - lo_l
    lo_s = np.floor(n * sum_trim) + 1
    hi_s = n + 1 - lo_s
    rank_r = stats.rankdata(log_r)
    rank_e = stats.rankdata(abs_e)
    keep = (rank_r >= lo_l) & (rank_r <= hi_l) & (rank_e >= lo_s) & (rank_e <= hi_s)
    # precision weights: 1 / asymptotic variance of the log ratio (edgeR divides by v)
    f = np.sum(log_r[keep] / var[keep]) / np.sum(1 / var[keep])
    return float(2**f) if np.isfinite(f) else 1.0


def tmm_factors(counts, *, logratio_trim: float = 0.3, sum_trim: float = 0.05) -> np.ndarray:
    """TMM normalization factors, as ``edgeR::calcNormFactors(method="TMM")``.

    The reference sample is the one whose upper-quartile factor is closest to the mean
    upper-quartile factor; each sample's log ratios against it are trimmed (``logratio_trim``
    each side by M value, ``sum_trim`` each side by A value) and averaged with precision weights.
    Factors are scaled to a geometric mean of 1.

    Parameters
    ----------
    counts : np.ndarray or pd.DataFrame, shape=(n_genes, n_samples)
        Non-negative read counts, genes in rows (the GCT orientation).
    logratio_trim, sum_trim : float
        Fractions trimmed from each end of the M and A value distributions.

    Returns
    -------
    np.ndarray, shape=(n_samples,)
        Normalization factors; effective library size = column sum x factor.

    Raises
    ------
    InputError
        If a count is negative or not finite, or a sample has no reads.

    References
    ----------
    Robinson & Oshlack (2010), Genome Biology 11:R25.
    """
    y = np.asarray(counts, dtype=np.float64)
    if y.ndim != 2:
        raise InputError(f"counts must be a genes x samples matrix, got {y.ndim} dimensions")
    if not np.all(np.isfinite(y)) or np.any(y < 0):
        raise InputError("read counts must be finite and non-negative")
    lib_size = y.sum(axis=0)
    if np.any(lib_size <= 0):
        raise InputError(f"{int(np.sum(lib_size <= 0))} sample(s) have no reads; remove them")
    y = y[(y > 0).any(axis=1)]  # edgeR drops genes with zero counts in every sample
    f75 = _upper_quartile_factors(y)
    if np.median(f75) < 1e-20:
        # edgeR >= 3.38: with mostly-zero upper quartiles pick the sample with most sqrt-counts
        ref_index = int(np.argmax(np.sqrt(y).sum(axis=0)))
    else:
        ref_index = int(np.argmin(np.abs(f75 - f75.mean())))
    ref = y[:, ref_index]
    f = np.array(
        [
            _tmm_factor(y[:, j], ref, logratio_trim=logratio_trim, sum_trim=sum_trim)
            for j in range(y.shape[1])
        ]
    )
    return f / np.exp(np.mean(np.log(f)))
