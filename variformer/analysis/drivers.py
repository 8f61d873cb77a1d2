"""Driver SNVs: a few SNVs whose weighted dosages linearly approximate a model's predictions.

The authors' rule, transcribed from ``forward_selection_with_only_drivers`` and
``select_and_evaluate_drivers`` in ``code/select_drivers_performer.py`` of
github.com/shirondru/enformer_fine_tuning (adapted there from Sasse et al. 2023), on the test
people of a fold (Methods, "Driver analysis and in silico mutagenesis"):

- each SNV's contribution per person is ``weight * dosage`` (ISM ALT - REF times the ALT dosage
  0/1/2; a missing genotype counts 0);
- ``peartot`` is the Pearson correlation of the sum of every SNV's contribution with the model's
  predictions;
- SNVs are visited by decreasing |weight|; candidate ``j`` is tried by adding its contribution to
  the sum of the drivers found so far, and ``forward_contribution = PCC(sum, predictions) /
  peartot``;
- ``j`` becomes a driver when all three hold: ``forward_contribution`` exceeds the value at the
  last accepted driver (0 before the first) by more than 0.05; the candidate's own
  ``PCC(weight_j * dosage_j, predictions) > 0``; and that PCC's one-sided p-value
  (``scipy.stats.pearsonr(..., alternative="greater")``) is below ``0.01 / V``, V = the number of
  SNVs of the window.

A correlation of a constant vector is NaN, and a NaN never passes a test, as in the authors'
code. Where this differs from that code: ties in |weight| are visited in window order (pandas'
unstable ``sort_values`` there), and ``driver_r2_observed`` is NaN for a gene without drivers
(the authors' code scores an all-zero sum).

Models need per-person predictions for this: fine-tuning runs and baselines write them
(``predictions.tsv``); a model without them (pre-trained Enformer unless its predictions are
given) gets no drivers and is listed in the summary with ``status = "no predictions"``.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from core.metrics import r2
from data_prep.genome import tss_distance
from data_prep.keys import KEY_COLUMNS, normalize_keys

__all__ = ["dataset_drivers", "forward_drivers"]

DRIVER_COLUMNS = (
    "model", "gene", "fold", "driver_rank", "order", "chrom", "pos", "id", "ref", "alt", "maf",
    "tss_distance", "weight", "r", "explained", "gain", "p", "forward_contribution", "snp_pcc",
    "snp_p",
)  # fmt: skip
SUMMARY_COLUMNS = (
    "model", "gene", "fold", "status", "n_test", "n_snvs", "n_drivers", "linear_pcc",
    "explained", "driver_pcc_observed", "driver_r2_observed",
)  # fmt: skip
_FOUND_COLUMNS = (
    "snv", "order", "r", "explained", "gain", "p", "forward_contribution", "snp_pcc", "snp_p",
)  # fmt: skip


def _pcc(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Pearson r and its one-sided (greater) p; NaN, NaN when either vector is constant."""
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return math.nan, math.nan
    res = stats.pearsonr(x, y, alternative="greater")
    return float(res.statistic), float(res.pvalue)


def forward_drivers(
    dosages: np.ndarray,
    predictions: np.ndarray,
    weights: np.ndarray,
    *,
    min_gain: float = 0.05,
    alpha: float = 0.01,
) -> pd.DataFrame:
    """The authors' "only drivers" forward selection for one gene, model and group of people.

    Parameters
    ----------
    dosages : np.ndarray, shape=(n_people, n_snvs)
        ALT dosages 0/1/2 (missing = 0).
    predictions : np.ndarray, shape=(n_people,)
        The model's predictions for the same people.
    weights : np.ndarray, shape=(n_snvs,)
        Per-SNV weights (ISM ALT - REF); visited by decreasing |weight|, ties in column order.
    min_gain : float
        A driver must raise ``forward_contribution`` by more than this (0.05).
    alpha : float
        The candidate's one-sided p must be below ``alpha / n_snvs`` (0.01 / V).

    Returns
    -------
    pd.DataFrame
        One row per driver, in the order found: ``snv`` (column of ``dosages``), ``order``
        (1-based rank by |weight|), ``r`` (PCC of the driver sum with the predictions after
        adding it), ``explained`` (``r**2``), ``gain`` (the rise of ``forward_contribution``),
        ``p`` (one-sided p of ``r``), ``forward_contribution`` (``r / peartot``), ``snp_pcc``
        and ``snp_p`` (the SNV's own PCC and one-sided p). ``attrs["peartot"]`` holds the PCC
        of the sum over every SNV (NaN when undefined).
    """
    dosages = np.asarray(dosages, dtype=np.float64)
    predictions = np.asarray(predictions, dtype=np.float64)
    weights = np.asarray(weights, dtype=np.float64)
    n, v = dosages.shape
    out = pd.DataFrame({c: pd.Series(dtype=float) for c in _FOUND_COLUMNS})
    out.attrs["peartot"] = math.nan
    if n < 3 or v == 0:
        return out
    contributions = dosages * weights  # (people, SNVs)
    peartot, _ = _pcc(contributions.sum(axis=1), predictions)
    out.attrs["peartot"] = peartot
    if math.isnan(peartot):
        return out
    threshold = alpha / v
    order = np.argsort(-np.abs(weights), kind="stable")
    running = np.zeros(n)
    last = 0.0  # forward_contribution at the last accepted driver
    rows = []
    for rank, j in enumerate(order, 1):
        if weights[j] == 0:
            break  # zero weights change no sum and have no PCC of their own: never drivers
        candidate = running + contributions[:, j]
        r, p = _pcc(candidate, predictions)
        forward = r / peartot
        snp_r, snp_p = _pcc(contributions[:, j], predictions)
        if (forward - last) > min_gain and snp_r > 0 and snp_p < threshold:
            rows.append((int(j), rank, r, r * r, forward - last, p, forward, snp_r, snp_p))
            running, last = candidate, forward
    found = pd.DataFrame(rows, columns=list(_FOUND_COLUMNS)) if rows else out
    found.attrs["peartot"] = peartot
    return found


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
    models=None,
    folds=None,
    min_gain: float = 0.05,
    alpha: float = 0.01,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Drivers for every model, gene and fold that has both weights and test-people predictions.

    A model is looked at on the folds it has weights for (all folds when its weights have
    ``fold`` -1, as pre-trained Enformer: one set of ISM scores, three sets of drivers from the
    three test folds, as in the paper).

    Parameters
    ----------
    fold_weights : pd.DataFrame
        ``model, gene, fold, chrom, pos, ref, alt, weight`` (``fold`` -1: one set for all folds).
    predictions : pd.DataFrame
        ``model, fold, sample, gene, split, observed, predicted``; ``split == "test"`` rows used.
    dataset : data_prep.GeneDataset
    models : collection of str, optional
        Models to select drivers for (default: every model of ``fold_weights``); the paper
        selects them for the ISM-scored models only.
    folds : list of int, optional
        Folds to use (default: every fold of the dataset).

    Returns
    -------
    (drivers, summary) : tuple of pd.DataFrame
        ``drivers`` has :data:`DRIVER_COLUMNS` (``weight`` is the fold's weight); ``summary``
        has :data:`SUMMARY_COLUMNS`, one row per model, gene and fold, with ``status`` "ok",
        "no predictions" or "too few test people" (fewer than 3); ``linear_pcc`` is
        ``peartot``, ``explained`` the driver sum's r**2 with the predictions, and
        ``driver_pcc_observed`` / ``driver_r2_observed`` the PCC and R2
        (``sklearn.metrics.r2_score(observed, driver_sum)``, the raw sum as in the authors'
        ``eval_driver_performance``) of the driver sum against observed expression.
    """
    folds = list(range(dataset.n_folds)) if folds is None else list(folds)
    test = predictions[predictions["split"] == "test"]
    wanted = set(fold_weights["model"]) if models is None else set(models)
    fold_weights = fold_weights[fold_weights["model"].isin(wanted)]
    drivers, summary = [], []
    genes = [g for g in dataset.genes if g in set(fold_weights["gene"])]
    known = set(dataset.samples)
    for gene in genes:
        variants = normalize_keys(dataset.variants(gene))
        variants["tss_distance"] = tss_distance(variants["pos"], dataset.window(gene))
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
                pred = pred[pred["sample"].astype(str).isin(known)]
                if pred.empty:
                    summary.append(row | {"status": "no predictions", "n_test": 0, "n_drivers": 0})
                    continue
                if len(pred) < 3:
                    status = "too few test people"
                    summary.append(row | {"status": status, "n_test": len(pred), "n_drivers": 0})
                    continue
                d, stats_row = _gene_fold_drivers(
                    variants,
                    gene_weights,
                    pred,
                    dataset,
                    model,
                    gene,
                    fold,
                    min_gain=min_gain,
                    alpha=alpha,
                )
                drivers.append(d)
                summary.append(row | stats_row)
    out = (
        pd.concat(drivers, ignore_index=True)
        if drivers
        else pd.DataFrame(columns=list(DRIVER_COLUMNS))
    )
    summ = pd.DataFrame(summary, columns=list(SUMMARY_COLUMNS))
    for col in ("linear_pcc", "explained", "driver_pcc_observed", "driver_r2_observed"):
        summ[col] = summ[col].astype(float).where(summ["status"] == "ok", math.nan)
    return out, summ


def _gene_fold_drivers(variants, gene_weights, pred, dataset, model, gene, fold, **rule):
    """Drivers of one model, gene and fold, and its summary numbers."""
    samples = list(pred["sample"].astype(str))
    pred = pred.set_index(pred["sample"].astype(str))
    y = pred.loc[samples, "predicted"].to_numpy(float)
    observed = pred.loc[samples, "observed"].to_numpy(float)
    scores = _fold_scores(gene_weights, model, gene, fold)
    v = variants.merge(scores, on=list(KEY_COLUMNS), how="left")
    w = v["weight"].fillna(0.0).to_numpy(float)
    x = dataset.dosages(gene, samples)
    found = forward_drivers(x, y, w, **rule)
    cols = found["snv"].astype(int).to_numpy()
    sel = v.iloc[cols].reset_index(drop=True)
    d = pd.concat([sel, found.drop(columns="snv").reset_index(drop=True)], axis=1)
    d = d.assign(model=model, gene=gene, fold=fold, driver_rank=np.arange(1, len(d) + 1))
    row = {
        "status": "ok", "n_test": len(samples), "n_drivers": len(found),
        "linear_pcc": found.attrs["peartot"],
        "explained": float(found["explained"].iloc[-1]) if len(found) else 0.0,
        "driver_pcc_observed": math.nan, "driver_r2_observed": math.nan,
    }  # fmt: skip
    if len(found):
        driver_sum = x[:, cols].astype(np.float64) @ w[cols]
        row["driver_pcc_observed"] = (
            float(stats.pearsonr(driver_sum, observed).statistic)
            if np.ptp(driver_sum) > 0 and np.ptp(observed) > 0
            else math.nan
        )
        row["driver_r2_observed"] = r2(observed, driver_sum)
    return d[list(DRIVER_COLUMNS)], row
