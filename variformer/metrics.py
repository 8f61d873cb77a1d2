"""Prediction metrics and the one predictions-table schema (no torch: baselines import this).

Every model (fine-tuned Variformer, elastic net, lasso, ridge, plain Enformer) reports its
predictions as one tidy table with the columns :data:`PREDICTION_COLUMNS`:

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

import os
import warnings
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
from scipy.stats import pearsonr
from sklearn.metrics import r2_score

from variformer.errors import InputError
from variformer.fileio import atomic_write_text

__all__ = [
    "METRIC_COLUMNS",
    "PREDICTION_COLUMNS",
    "SPLITS",
    "empty_predictions",
    "gene_metrics",
    "nanmean",
    "pcc",
    "predictions_table",
    "r2",
    "r2_pcc",
    "read_predictions",
    "validate_predictions",
    "write_predictions",
]

#: columns of every predictions table, in this order
PREDICTION_COLUMNS = ("sample", "gene", "split", "observed", "predicted")
#: the people of a fold
SPLITS = ("train", "tune", "test")
#: columns of :func:`gene_metrics`
METRIC_COLUMNS = ("gene", "split", "n", "r2", "pcc")


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


# ---------------------------------------------------------------- the predictions table


def empty_predictions() -> pd.DataFrame:
    """A predictions table with no rows (the schema's columns and dtypes)."""
    return predictions_table([], gene=[], split=[], observed=[], predicted=[])


def predictions_table(
    sample: Sequence[str],
    *,
    gene: str | Sequence[str],
    split: str | Sequence[str],
    observed: Sequence[float],
    predicted: Sequence[float],
) -> pd.DataFrame:
    """Build a predictions table (columns :data:`PREDICTION_COLUMNS`).

    Parameters
    ----------
    sample : sequence of str, length n
    gene, split : str or sequence of str
        One value for every row, or one per row.
    observed, predicted : array-like, shape=(n,)

    Returns
    -------
    pd.DataFrame
        n rows; ``observed`` and ``predicted`` float64.
    """
    n = len(sample)
    frame = pd.DataFrame(
        {
            "sample": pd.Series(list(sample), dtype=object),
            "gene": [gene] * n if isinstance(gene, str) else list(gene),
            "split": [split] * n if isinstance(split, str) else list(split),
            "observed": np.asarray(observed, dtype=np.float64).reshape(-1),
            "predicted": np.asarray(predicted, dtype=np.float64).reshape(-1),
        },
        columns=list(PREDICTION_COLUMNS),
    )
    return frame.astype({"gene": object, "split": object})


def validate_predictions(frame: pd.DataFrame, *, where: str = "predictions") -> pd.DataFrame:
    """Check that ``frame`` follows the predictions schema; returns it in column order.

    Raises
    ------
    InputError
        Missing columns, unknown split names, non-numeric observed/predicted values, or a
        (sample, gene, split) row that occurs twice.
    """
    missing = [c for c in PREDICTION_COLUMNS if c not in frame.columns]
    if missing:
        raise InputError(
            f"{where} lacks the column(s) {', '.join(missing)}; a predictions table has "
            f"{', '.join(PREDICTION_COLUMNS)}"
        )
    frame = frame[list(PREDICTION_COLUMNS)]
    bad_split = sorted(set(frame["split"].astype(str)) - set(SPLITS))
    if bad_split:
        raise InputError(f"{where}: unknown split {bad_split[0]!r}; splits are {', '.join(SPLITS)}")
    for column in ("observed", "predicted"):
        if not pd.api.types.is_numeric_dtype(frame[column]):
            raise InputError(f"{where}: column {column} is not numeric")
    dup = frame.duplicated(["sample", "gene", "split"])
    if dup.any():
        row = frame[dup].iloc[0]
        raise InputError(
            f"{where}: sample {row['sample']} of gene {row['gene']} ({row['split']}) occurs twice"
        )
    return frame.astype({"observed": np.float64, "predicted": np.float64})


def read_predictions(path: str | os.PathLike) -> pd.DataFrame:
    """Read a ``predictions.tsv`` and check its schema (see :func:`validate_predictions`)."""
    try:
        frame = pd.read_csv(
            path, sep="\t", dtype={"sample": str, "gene": str, "split": str}, keep_default_na=False
        )
    except FileNotFoundError:
        raise InputError(f"no predictions table at {path}") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise InputError(f"{path} is not a tab-separated predictions table: {err}") from None
    for column in ("observed", "predicted"):
        if column in frame.columns and frame[column].dtype == object:
            frame[column] = pd.to_numeric(frame[column].replace("", "nan"), errors="coerce")
    return validate_predictions(frame, where=str(path))


def write_predictions(frame: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write a predictions table as TSV at full precision (values round-trip exactly)."""
    frame = validate_predictions(frame)
    atomic_write_text(path, frame.to_csv(sep="\t", index=False))


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
        A predictions table (:data:`PREDICTION_COLUMNS`).
    genes : sequence of str, optional
        Genes to report, in this order (default: those in the table, in order of appearance);
        a gene without rows gets ``n = 0`` and NaN metrics.
    splits : sequence of str, optional
        Splits to report (default: those in the table, in :data:`SPLITS` order).

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
