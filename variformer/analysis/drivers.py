"""Driver SNVs: a few SNVs whose weighted dosages linearly approximate a model's predictions.

Forward selection as in Sasse et al. 2023 and the paper (Methods, "Driver analysis and in silico
mutagenesis"), on the test people of a fold: SNVs are visited in order of decreasing |weight|;
SNV ``j`` is tried by adding ``weight_j * dosage_j`` to a running sum that holds the drivers
found so far (the paper's deviation from Sasse et al.: only drivers enter the sum). It becomes a
driver when, with ``r`` the Pearson correlation of the new sum with the model's predictions,

- the explained fraction ``r**2`` rises by more than ``min_gain`` (0.05),
- ``r > 0``, and
- the one-sided p-value of ``r`` (``scipy.stats.pearsonr(..., alternative="greater")``) is
  below ``alpha / n_snvs`` (0.01 / number of SNVs of the window).

Models need per-person predictions for this: fine-tuning runs and baselines write them
(``predictions.tsv``); a model without them (pre-trained Enformer unless its predictions are
given) gets no drivers and is listed in :func:`driver_summary` with ``status = "no predictions"``.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from data_prep.genome import tss_distance
from data_prep.keys import KEY_COLUMNS, normalize_keys

__all__ = ["dataset_drivers", "forward_drivers"]

DRIVER_COLUMNS = (
    "model", "gene", "fold", "driver_rank", "order", "chrom", "pos", "id", "ref", "alt", "maf",
    "tss_distance", "weight", "r", "explained", "gain", "p",
)  # fmt: skip
SUMMARY_COLUMNS = (
    "model", "gene", "fold", "status", "n_test", "n_snvs", "n_drivers", "explained",
)  # fmt: skip


def forward_drivers(
    dosages: np.ndarray,
    predictions: np.ndarray,
    weights: np.ndarray,
    *,
    min_gain: float = 0.05,
    alpha: float = 0.01,
) -> pd.DataFrame:
    """Forward selection of driver SNVs for one gene, model and group of people.

    Parameters
    ----------
    dosages : np.ndarray, shape=(n_people, n_snvs)
        ALT dosages 0/1/2.
    predictions : np.ndarray, shape=(n_people,)
        The model's predictions for the same people.
    weights : np.ndarray, shape=(n_snvs,)
        Per-SNV weights (ISM ALT - REF, or a coefficient); visited by decreasing |weight|.
    min_gain : float
        A driver must raise the explained fraction ``r**2`` by more than this.
    alpha : float
        Family-wise level: the one-sided p-value must be below ``alpha / n_snvs``.

    Returns
    -------
    pd.DataFrame
        One row per driver, in the order found: ``snv`` (column of ``dosages``), ``order``
        (1-based rank by |weight|), ``r``, ``explained`` (``r**2`` after adding it), ``gain``,
        ``p`` (one-sided).
    """
    dosages = np.asarray(dosages, dtype=np.float64)
    predictions = np.asarray(predictions, dtype=np.float64)
    weights = np.asarray(weights, dtype=np.float64)
    n, v = dosages.shape
    cols = ["snv", "order", "r", "explained", "gain", "p"]
    if n < 3 or v == 0 or np.ptp(predictions) == 0:
        return pd.DataFrame({c: pd.Series(dtype=float) for c in cols})
    threshold = alpha / v
    order = np.argsort(-np.abs(weights), kind="stable")
    running = np.zeros(n)
    explained = 0.0
    rows = []
    for rank, j in enumerate(order, 1):
        if weights[j] == 0:
            break  # the rest are zero too: adding them changes nothing
        candidate = running + weights[j] * dosages[:, j]
        if np.ptp(candidate) == 0:
            continue
        res = stats.pearsonr(candidate, predictions, alternative="greater")
        r, p = float(res.statistic), float(res.pvalue)
        gain = r * r - explained
        if r > 0 and gain > min_gain and p < threshold:
            running, explained = candidate, r * r
            rows.append((int(j), rank, r, explained, gain, p))
    return pd.DataFrame(rows, columns=cols)


def _fold_scores(weights: pd.DataFrame, model: str, gene: str, fold: int) -> pd.DataFrame:
    """The model's weights for ``fold``: that fold's rows, else fold -1 (no folds), else the mean."""
    w = weights[(weights["model"] == model) & (weights["gene"] == gene)]
    if (w["fold"] == fold).any():
        w = w[w["fold"] == fold]
    elif (w["fold"] == -1).any():
        w = w[w["fold"] == -1]
    return w.groupby(list(KEY_COLUMNS), sort=False)["weight"].mean().reset_index()


def dataset_drivers(
    fold_weights: pd.DataFrame,
    predictions: pd.DataFrame,
    dataset,
    *,
    folds=None,
    min_gain: float = 0.05,
    alpha: float = 0.01,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Drivers for every model, gene and fold that has both weights and test-people predictions.

    A model is looked at on the folds it has weights for (all folds when its weights have
    ``fold`` -1).

    Parameters
    ----------
    fold_weights : pd.DataFrame
        ``model, gene, fold, chrom, pos, ref, alt, weight`` (``fold`` -1: one set for all folds).
    predictions : pd.DataFrame
        ``model, fold, sample, gene, split, predicted``; rows with ``split == "test"`` are used.
    dataset : data_prep.GeneDataset
    folds : list of int, optional
        Folds to use (default: every fold of the dataset).

    Returns
    -------
    (drivers, summary) : tuple of pd.DataFrame
        ``drivers`` has :data:`DRIVER_COLUMNS` (``weight`` is the fold's weight); ``summary``
        has :data:`SUMMARY_COLUMNS`, one row per model, gene and fold, with ``status`` "ok",
        "no predictions" or "too few test people" (fewer than 3).
    """
    folds = list(range(dataset.n_folds)) if folds is None else list(folds)
    test = predictions[predictions["split"] == "test"]
    drivers, summary = [], []
    genes = [g for g in dataset.genes if g in set(fold_weights["gene"])]
    known = set(dataset.samples)
    for gene in genes:
        variants = normalize_keys(dataset.variants(gene))
        variants["tss_distance"] = tss_distance(variants["pos"], dataset.window(gene))
        variants["_col"] = np.arange(len(variants))
        gene_weights = fold_weights[fold_weights["gene"] == gene]
        for model in sorted(gene_weights["model"].unique()):
            weighted = set(gene_weights.loc[gene_weights["model"] == model, "fold"].astype(int))
            # a model scored on some folds only (e.g. fine-tuned on fold 0) has no rows for the rest
            model_folds = folds if -1 in weighted else [f for f in folds if f in weighted]
            for fold in model_folds:
                row = {"model": model, "gene": gene, "fold": fold, "n_snvs": len(variants)}
                pred = test[
                    (test["model"] == model) & (test["gene"] == gene) & (test["fold"] == fold)
                ]
                samples = [s for s in pred["sample"].astype(str) if s in known]
                if pred.empty:
                    summary.append(row | {"status": "no predictions", "n_test": 0, "n_drivers": 0})
                    continue
                if len(samples) < 3:
                    summary.append(
                        row
                        | {"status": "too few test people", "n_test": len(samples), "n_drivers": 0}
                    )
                    continue
                y = (
                    pred.set_index(pred["sample"].astype(str))
                    .loc[samples, "predicted"]
                    .to_numpy(float)
                )
                scores = _fold_scores(fold_weights, model, gene, fold)
                v = variants.merge(scores, on=list(KEY_COLUMNS), how="left")
                w = v["weight"].fillna(0.0).to_numpy(float)
                x = dataset.dosages(gene, samples)
                found = forward_drivers(x, y, w, min_gain=min_gain, alpha=alpha)
                sel = v.iloc[found["snv"].astype(int).to_numpy()].reset_index(drop=True)
                found = found.drop(columns="snv").reset_index(drop=True)
                d = pd.concat([sel.drop(columns="_col"), found], axis=1)
                d = d.assign(
                    model=model, gene=gene, fold=fold, driver_rank=np.arange(1, len(d) + 1)
                )
                drivers.append(d[list(DRIVER_COLUMNS)])
                final = float(found["explained"].iloc[-1]) if len(found) else 0.0
                summary.append(
                    row
                    | {
                        "status": "ok",
                        "n_test": len(samples),
                        "n_drivers": len(found),
                        "explained": final,
                    }
                )
    out = (
        pd.concat(drivers, ignore_index=True)
        if drivers
        else pd.DataFrame(columns=list(DRIVER_COLUMNS))
    )
    summ = pd.DataFrame(summary, columns=list(SUMMARY_COLUMNS))
    summ["explained"] = summ["explained"].astype(float).where(summ["status"] == "ok", math.nan)
    return out, summ
