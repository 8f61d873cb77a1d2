"""Scoring matrices of the three motifbreakR methods: ``default``, ``ic`` and ``log``.

Every method turns a count matrix into a scoring matrix ``M`` of shape (w, 4) (columns A, C, G,
T); a window's score is the sum of its bases' entries, ``F(s, M) = sum_i M[i, s_i]``.

``default`` and ``ic`` are motifbreakR's weighted sums (Coetzee et al. 2015; motifbreakR
``R/scoreMotif.R``, function ``preparePWM``, version 2.17.1). First the probabilities with
motifbreakR's pseudocount, ``P = (ppm * nsites + 0.25) / (nsites + 1)`` (``nsites`` 20 when a
matrix has no site count), then each column ``i`` weighted by ``omega_i``:

- ``default`` (motifbreakR's Equation 4.1, "weighted sum"): ``omega_i = max_b P[i, b] -
  min_b P[i, b]``, so ``M[i, b] = P[i, b] * omega_i``; scores lie in [0, w] and a column where
  every base is equally likely weighs nothing. This is motifbreakR's default method, the one
  the paper's motif analysis used.
- ``ic`` (Equation 4.2, relative entropy): ``omega_i = sum_b P[i, b] log2(P[i, b] / bg_b)``.

``log`` is this package's log-odds matrix in bits, ``log2(P / bg)`` with TFBSTools' pseudocount
``P = (count + 0.8 * bg) / (nsites + 0.8)``. motifbreakR's own ``method="log"`` is
``ln(P / bg)`` with its ``(ppm * nsites + 0.25) / (nsites + 1)`` probabilities: for a
pseudocount of 1 and a uniform background the same matrix in nats, so the same ranking and
p-values with scores scaled by ``ln 2``.
"""

from __future__ import annotations

import numpy as np

from core.errors import InputError
from variformer.analysis.motifs.matrices import MotifMatrix

__all__ = [
    "METHODS",
    "METHOD_GRANULARITY",
    "METHOD_PSEUDOCOUNT",
    "check_method",
    "log_odds",
    "motif_probabilities",
    "score_range",
    "scoring_matrix",
]

METHODS = ("default", "ic", "log")
# per method: motifbreakR's (ppm * n + 0.25) / (n + 1) for default / ic; TFBSTools' 0.8 for log
METHOD_PSEUDOCOUNT = {"default": 1.0, "ic": 1.0, "log": 0.8}
# per method, score units per step of the exact p-value tables: the weighted-sum methods score
# at most ~1 per column, log-odds ~2-10 bits, so both tables have about 100-1000 steps a column
METHOD_GRANULARITY = {"default": 0.001, "ic": 0.001, "log": 0.01}


def check_method(method) -> str:
    """``method`` if it is one of :data:`METHODS`.

    Raises
    ------
    InputError
        Any other value.
    """
    if method not in METHODS:
        raise InputError(
            f"motif scoring method must be one of {', '.join(METHODS)} (motifbreakR's "
            f"default is 'default'), not {method!r}"
        )
    return method


def _background(background) -> np.ndarray:
    return np.full(4, 0.25) if background is None else np.asarray(background, dtype=np.float64)


def motif_probabilities(
    motif: MotifMatrix, method: str = "default", background=None, *, pseudocount=None
) -> np.ndarray:
    """Base probabilities with the method's pseudocount, shape=(w, 4), rows sum to 1.

    Parameters
    ----------
    motif : MotifMatrix
    method : {"default", "ic", "log"}
    background : array-like of 4 probabilities (A, C, G, T), or None for uniform
    pseudocount : float or None
        None: :data:`METHOD_PSEUDOCOUNT` of the method. ``default`` / ``ic`` split it evenly
        over the 4 bases, ``(count + pseudocount / 4) / (nsites + pseudocount)`` (motifbreakR's
        ``preparePWM``: ``(pwm * scount + 0.25) / (scount + 1)``); ``log`` splits it by the
        background (TFBSTools' ``toPWM``).
    """
    method = check_method(method)
    pc = METHOD_PSEUDOCOUNT[method] if pseudocount is None else float(pseudocount)
    if not pc > 0:
        raise InputError("pseudocount must be > 0 (zero counts would give -inf scores)")
    counts = np.asarray(motif.counts, dtype=np.float64)
    total = counts.sum(axis=1, keepdims=True)
    split = _background(background) if method == "log" else np.full(4, 0.25)
    return (counts + pc * split) / (total + pc)


def scoring_matrix(
    motif: MotifMatrix, method: str = "default", background=None, *, pseudocount=None
) -> np.ndarray:
    """The matrix a method scores windows with, shape=(w, 4), columns A, C, G, T.

    ``default``: ``P * (max(P_i) - min(P_i))`` per column ``i``; ``ic``: ``P * sum_b P_ib
    log2(P_ib / bg_b)``; ``log``: ``log2(P / bg)`` (bits). ``P`` is
    :func:`motif_probabilities`. Transcribed from motifbreakR's ``preparePWM``
    (``R/scoreMotif.R``); see the module docstring.

    Parameters
    ----------
    motif : MotifMatrix
    method : {"default", "ic", "log"}
    background : array-like of 4 probabilities, or None for uniform
        Used by ``ic`` and ``log`` only (as in motifbreakR); the p-values of every method
        depend on it.
    pseudocount : float or None
        See :func:`motif_probabilities`.
    """
    probs = motif_probabilities(motif, method, background, pseudocount=pseudocount)
    bg = _background(background)
    if method == "log":
        return np.log2(probs / bg)
    if method == "default":
        omega = probs.max(axis=1) - probs.min(axis=1)
    else:
        omega = (probs * np.log2(probs / bg)).sum(axis=1)
    return probs * omega[:, None]


def log_odds(motif: MotifMatrix, background=None, *, pseudocount: float = 0.8) -> np.ndarray:
    """Log-odds scoring matrix in bits, ``log2(p / bg)``, shape=(w, 4), columns A, C, G, T.

    ``p = (count + pseudocount * bg) / (n_sites + pseudocount)`` per position (TFBSTools); the
    ``log`` method's :func:`scoring_matrix`.
    """
    return scoring_matrix(motif, "log", background, pseudocount=pseudocount)


def score_range(matrix: np.ndarray) -> tuple[float, float]:
    """Lowest and highest score of any window, ``(sum of column minima, sum of column maxima)``.

    motifbreakR's ``colSums(colRanges(pwm))``: its relative score is ``(score - min) / (max -
    min)`` (``pctRef`` / ``pctAlt``) and its ``alleleEffectSize`` is ``alleleDiff / max``.
    """
    m = np.asarray(matrix, dtype=np.float64)
    return float(m.min(axis=1).sum()), float(m.max(axis=1).sum())
