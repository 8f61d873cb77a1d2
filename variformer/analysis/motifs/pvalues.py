"""Exact p-values of motif scoring matrices.

Sequences as integer codes, background base probabilities, and the exact null distribution of
a discretized scoring matrix (:class:`PValueTable`, by dynamic programming) of any method of
:mod:`~variformer.analysis.motifs.scoring`, cached per matrix, method and background.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np

from core.errors import InputError
from variformer.analysis.motifs.matrices import MotifMatrix
from variformer.analysis.motifs.scoring import (
    METHOD_GRANULARITY,
    METHOD_PSEUDOCOUNT,
    check_method,
    log_odds,
    motif_probabilities,
    scoring_matrix,
)

__all__ = [
    "DEFAULT_GRANULARITY",
    "N_CODE",
    "PValueTable",
    "background_probs",
    "cached_table",
    "encode_sequence",
    "log_odds",
    "prepared",
    "pvalue_table",
    "reverse_complement",
]

N_CODE = 4
DEFAULT_GRANULARITY = 0.01  # of :func:`pvalue_table`; a scan takes its method's (scoring.py)


def encode_sequence(sequence) -> np.ndarray:
    """A sequence as codes, shape=(L,), int64, A,C,G,T,N = 0..4.

    Parameters
    ----------
    sequence : str, or np.ndarray of codes shape=(L,), or one-hot shape=(L, 4)
        A one-hot row that is not a single 1 (all zeros, or a het 0.5/0.5) counts as N.
    """
    if isinstance(sequence, str):
        from data_prep.genome import encode

        return encode(sequence).astype(np.int64)
    arr = np.asarray(sequence)
    if arr.ndim == 2 and arr.shape[1] == 4:
        codes = arr.argmax(axis=1).astype(np.int64)
        codes[arr.max(axis=1) < 1] = N_CODE
        return codes
    if arr.ndim == 1 and np.issubdtype(arr.dtype, np.integer):
        return np.where((arr >= 0) & (arr < 4), arr, N_CODE).astype(np.int64)
    raise InputError("sequence must be a string, integer codes (L,) or one-hot (L, 4)")


def background_probs(background="uniform", sequence=None) -> np.ndarray:
    """Background base probabilities A, C, G, T, shape=(4,).

    Parameters
    ----------
    background : "uniform", "window" or array-like of 4 probabilities
        ``"window"``: the base composition of ``sequence`` (N ignored), strand-symmetrized
        (A and T share their mean, C and G theirs) so both strands share one null model, with
        one pseudo-count per base pair so that no base has probability 0, and rounded to a
        0.005 grid so that windows of similar composition share their p-value tables.
    """
    if isinstance(background, str):
        if background == "uniform":
            return np.full(4, 0.25)
        if background == "window":
            if sequence is None:
                raise InputError("background 'window' needs the window's sequence")
            codes = encode_sequence(sequence)
            n = np.bincount(codes[codes < 4], minlength=4).astype(np.float64)
            at = (n[0] + n[3] + 1.0) / (n.sum() + 2.0) / 2  # +1: an absent base stays possible
            # on a 0.005 grid, so windows of similar composition share p-value tables
            at = float(np.clip(np.round(at * 200) / 200, 0.005, 0.495))
            return np.array([at, 0.5 - at, 0.5 - at, at])
        raise InputError(f"background must be 'uniform' or 'window', not {background!r}")
    bg = np.asarray(background, dtype=np.float64)
    if bg.shape != (4,) or (bg <= 0).any():
        raise InputError("a background must be 4 positive probabilities (A, C, G, T)")
    return bg / bg.sum()


def reverse_complement(m: np.ndarray) -> np.ndarray:
    """Matrix that scores a window's reverse complement: rows reversed, A<->T, C<->G; N stays."""
    return m[::-1][:, [3, 2, 1, 0, *range(4, m.shape[1])]]


class PValueTable(NamedTuple):
    """The exact null distribution of a discretized scoring matrix.

    Attributes
    ----------
    granularity : float
        Score units (bits for ``log``) per integer step; the matrix used is
        ``round(lo / granularity)``.
    int_lo : np.ndarray, shape=(w, 4), int64
        The rounded matrix.
    offset : int
        The lowest integer score (sum of the column minima).
    sf : np.ndarray, shape=(max - offset + 1,)
        ``sf[k] = P(S >= offset + k)`` under the background.
    """

    granularity: float
    int_lo: np.ndarray
    offset: int
    sf: np.ndarray

    def pvalue_int(self, int_scores) -> np.ndarray:
        """P-values of integer scores (from :attr:`int_lo`); ``-inf``/NaN give 1."""
        s = np.asarray(int_scores, dtype=np.float64)
        k = np.nan_to_num(s - self.offset, nan=-1.0, neginf=-1.0, posinf=len(self.sf))
        k = np.clip(k, 0, len(self.sf)).astype(np.int64)
        return np.where(k < len(self.sf), self.sf[np.minimum(k, len(self.sf) - 1)], 0.0)

    def pvalue(self, windows) -> np.ndarray:
        """Exact p-values of motif-oriented windows, codes shape=(n, w)."""
        windows = np.asarray(windows, dtype=np.int64)
        w = self.int_lo.shape[0]
        return self.pvalue_int(self.int_lo[np.arange(w), windows].sum(axis=-1))

    def score_threshold(self, pvalue: float) -> float:
        """The lowest score (on the discretized scale) whose p-value is < ``pvalue``."""
        k = int(np.searchsorted(-self.sf, -pvalue, side="right"))
        return (self.offset + k) * self.granularity


def pvalue_table(
    lo: np.ndarray, background=None, *, granularity: float = DEFAULT_GRANULARITY
) -> PValueTable:
    """Exact score distribution of ``round(lo / granularity)`` over i.i.d. background bases.

    Dynamic programming over the columns: after column j the array holds
    ``P(sum of the first j columns = offset_j + k)``; each column shifts and adds it four
    times. Cost ``O(w * range / granularity)``.

    Parameters
    ----------
    lo : np.ndarray, shape=(w, 4)
        A scoring matrix of any method (:func:`~variformer.analysis.motifs.scoring.scoring_matrix`),
        e.g. log-odds in bits.
    background : array-like of 4 probabilities, or None for uniform
    granularity : float
        Score units per step; the scores' rounding error is at most ``w * granularity / 2``.
    """
    if not granularity > 0:
        raise InputError("granularity must be > 0")
    bg = np.full(4, 0.25) if background is None else np.asarray(background, dtype=np.float64)
    int_lo = np.rint(np.asarray(lo, dtype=np.float64) / granularity).astype(np.int64)
    dist = np.ones(1)
    offset = 0
    for col in int_lo:
        lo_c = int(col.min())
        shifts = col - lo_c
        new = np.zeros(dist.shape[0] + int(shifts.max()))
        for b in range(4):
            new[shifts[b] : shifts[b] + dist.shape[0]] += bg[b] * dist
        dist, offset = new, offset + lo_c
    sf = np.cumsum(dist[::-1])[::-1]
    return PValueTable(float(granularity), int_lo, offset, np.minimum(sf, 1.0))


@functools.lru_cache(maxsize=2048)  # two backgrounds x all JASPAR CORE vertebrates
def cached_table(key, counts_bytes, width, bg, method, pseudocount, granularity):
    """:func:`prepared` on hashable arguments, cached (``cached_table.cache_clear()`` empties it)."""
    counts = np.frombuffer(counts_bytes, dtype=np.float64).reshape(width, 4)
    bg_arr = np.asarray(bg)
    motif = MotifMatrix(key, key, counts)
    probs = motif_probabilities(motif, method, bg_arr, pseudocount=pseudocount)
    matrix = scoring_matrix(motif, method, bg_arr, pseudocount=pseudocount)
    return probs, matrix, pvalue_table(matrix, bg_arr, granularity=granularity)


def prepared(
    motif: MotifMatrix,
    bg: np.ndarray,
    *,
    method: str = "log",
    pseudocount: float | None = None,
    granularity: float | None = None,
):
    """A matrix ready to scan: ``(probs, matrix, table)``, the probabilities
    (:func:`~variformer.analysis.motifs.scoring.motif_probabilities`) and scoring matrix of
    ``method``, each shape=(w, 4), and its :class:`PValueTable`; built once per matrix,
    background, method and settings (:func:`cached_table`). ``None`` settings take the
    method's defaults (``METHOD_PSEUDOCOUNT``, ``METHOD_GRANULARITY``)."""
    method = check_method(method)
    pc = METHOD_PSEUDOCOUNT[method] if pseudocount is None else float(pseudocount)
    g = METHOD_GRANULARITY[method] if granularity is None else float(granularity)
    counts = np.ascontiguousarray(motif.counts, dtype=np.float64)
    bg_key = tuple(float(x) for x in bg)
    return cached_table(motif.matrix_id, counts.tobytes(), counts.shape[0], bg_key, method, pc, g)
