"""Prediction metrics (no torch: baselines import this).

Every model (fine-tuned Variformer, elastic net, lasso, ridge, plain Enformer) reports its
predictions as one tidy table, :data:`core.tables.PREDICTIONS`:

=========  ======  ==============================================================
sample     str     sample (person) id
gene       str     gene symbol
split      str     ``train``, ``tune`` or ``test`` people of the fold
observed   float   the person's expression target (float64)
predicted  float   the model's prediction (float64)
=========  ======  ==============================================================

and every metric is computed from that table: R2 by ``sklearn.metrics.r2_score`` and PCC by
``scipy.stats.pearsonr``, per gene and split (:func:`gene_metrics`). Metrics that are
undefined (fewer than 2 people; PCC of a constant vector) are NaN, never an exception.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
from scipy.stats import pearsonr
from sklearn.metrics import r2_score

from core.tables import SPLITS, validate_predictions

__all__ = [
    "FLAT_PREDICTIONS",
    "ISM_NOISE_ULPS",
    "METRIC_COLUMNS",
    "flat_predictions",
    "gene_metrics",
    "ism_at_rounding_level",
    "nanmean",
    "pcc",
    "r2",
    "r2_pcc",
]

#: columns of :func:`gene_metrics`
METRIC_COLUMNS = ("gene", "split", "n", "r2", "pcc")
#: a model "learned nothing" for a gene when its test predictions vary less than this times the
#: observed standard deviation (:func:`flat_predictions`)
FLAT_PREDICTIONS = 1e-6
#: ... or when its largest |ISM score| is below this many float32 epsilons of its output scale
#: (:func:`ism_at_rounding_level`)
ISM_NOISE_ULPS = 100


def flat_predictions(predicted: Sequence[float], observed: Sequence[float]) -> str:
    """Why a model learned nothing from its test predictions ("" when they are not flat).

    Flat means ``sd(predicted) < FLAT_PREDICTIONS * sd(observed)`` (population sd): the model
    tells the people apart no more than float rounding does.
    """
    spread = float(np.std(np.asarray(predicted, dtype=np.float64)))
    scale = float(np.std(np.asarray(observed, dtype=np.float64)))
    if spread < FLAT_PREDICTIONS * scale:
        return (
            f"test predictions are flat (sd {spread:.3g} < {FLAT_PREDICTIONS:g} x observed sd "
            f"{scale:.3g})"
        )
    return ""


def ism_at_rounding_level(scores: Sequence[float], output_scale: float) -> str:
    """Why a model's ISM scores of a gene are noise ("" when they are not).

    Noise means ``max |score| < ISM_NOISE_ULPS * eps32 * output_scale`` with ``eps32`` the
    float32 machine epsilon and ``output_scale`` the magnitude of the model's outputs (e.g. the
    largest |prediction|; at least 1): no SNV moves the prediction by more than a hundred
    rounding steps of the number it changes.
    """
    s = np.abs(np.asarray(scores, dtype=np.float64))
    top = float(s.max()) if len(s) else 0.0
    limit = ISM_NOISE_ULPS * float(np.finfo(np.float32).eps) * max(float(output_scale), 1.0)
    if top < limit:
        return (
            f"ISM scores are at float-rounding level (max |score| {top:.3g} < "
            f"{ISM_NOISE_ULPS} x float32 eps x output scale = {limit:.3g})"
        )
    return ""


def r2(observed: Sequence[float], predicted: Sequence[float]) -> float:
    """Coefficient of determination, ``sklearn.metrics.r2_score(observed, predicted)``.

    Parameters
    ----------
    observed, predicted : array-like, shape=(n,)

    Returns
    -------
    float
        NaN with fewer than 2 values (undefined). A constant ``observed`` gives sklearn's
        finite convention (1.0 for an exact fit, else 0.0).
    """
    obs, pred = _pair(observed, predicted)
    if len(obs) < 2:
        return float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn warns on constant observed values
        return float(r2_score(obs, pred))


def pcc(observed: Sequence[float], predicted: Sequence[float]) -> float:
    """Pearson correlation, ``scipy.stats.pearsonr(observed, predicted).statistic``.

    Returns
    -------
    float
        NaN with fewer than 2 values or when either vector is constant (undefined).
    """
    obs, pred = _pair(observed, predicted)
    if len(obs) < 2 or np.ptp(obs) == 0 or np.ptp(pred) == 0:
        return float("nan")
    return float(pearsonr(obs, pred).statistic)


def r2_pcc(observed: Sequence[float], predicted: Sequence[float]) -> tuple[float, float]:
    """``(r2(observed, predicted), pcc(observed, predicted))``."""
    return r2(observed, predicted), pcc(observed, predicted)


def nanmean(values: Iterable[float]) -> float:
    """Mean of the finite values; NaN if there are none (no warning)."""
    finite = [float(v) for v in values if v is not None and np.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


def _pair(observed, predicted) -> tuple[np.ndarray, np.ndarray]:
    obs = np.asarray(observed, dtype=np.float64).ravel()
    pred = np.asarray(predicted, dtype=np.float64).ravel()
    if obs.shape != pred.shape:
        raise ValueError(f"observed has {len(obs)} values but predicted has {len(pred)}")
    return obs, pred


# ---------------------------------------------------------------- metrics per gene and split


def gene_metrics(
    predictions: pd.DataFrame,
    *,
    genes: Sequence[str] | None = None,
    splits: Sequence[str] | None = None,
) -> pd.DataFrame:
    """R2 and PCC of every gene and split of a predictions table.

    Parameters
    ----------
    predictions : pd.DataFrame
        A predictions table (:data:`core.tables.PREDICTIONS`).
    genes : sequence of str, optional
        Genes to report, in this order (default: those in the table, in order of appearance);
        a gene without rows gets ``n = 0`` and NaN metrics.
    splits : sequence of str, optional
        Splits to report (default: those in the table, in :data:`core.tables.SPLITS` order).

    Returns
    -------
    pd.DataFrame
        Columns :data:`METRIC_COLUMNS` (gene, split, n, r2, pcc); one row per gene x split,
        gene-major.
    """
    predictions = validate_predictions(predictions)
    if genes is None:
        genes = list(dict.fromkeys(predictions["gene"]))
    if splits is None:
        present = set(predictions["split"])
        splits = [s for s in SPLITS if s in present]
    groups = dict(list(predictions.groupby(["gene", "split"], sort=False)))
    rows = []
    for gene in genes:
        for split in splits:
            part = groups.get((gene, split))
            if part is None:
                rows.append((gene, split, 0, float("nan"), float("nan")))
                continue
            r, p = r2_pcc(part["observed"], part["predicted"])
            rows.append((gene, split, len(part), r, p))
    return pd.DataFrame(rows, columns=list(METRIC_COLUMNS)).astype({"n": np.int64})
