"""High-scoring variants (HSVs): per gene and model, the top-k SNVs by |weight|.

As in the paper (Methods, "Selection of HSVs"): k is the gene's number of non-zero elastic-net
coefficients, so every model contributes the same number of SNVs per gene, and "Variformer and
elastic net HSVs come from those trained on the first cross-validation split": k and the weights
are those of one fold (``analyze --hsv-fold``, default 0); ``--hsv-fold mean`` averages the
weights over folds and rounds the mean ``n_nonzero`` instead (labelled ``mean``). Weights are ISM scores
(ALT - REF prediction) for neural models and coefficients for linear ones (see
:func:`variformer.analysis.weights.model_weights`). Models are then compared by the TSS distance
and MAF of their HSVs (Mann-Whitney U and Kolmogorov-Smirnov, ``scipy.stats``; the paper's Figs.
2b and 3d) and by the Jaccard index of their HSV sets.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
from scipy import stats

from core.errors import InputError
from data_prep.keys import KEY_COLUMNS

__all__ = ["compare_hsvs", "hsv_counts", "hsv_jaccard", "select_hsvs"]

HSV_COLUMNS = (
    "model", "gene", "rank", "chrom", "pos", "id", "ref", "alt", "maf", "tss_distance", "weight",
)  # fmt: skip


def hsv_counts(summary: pd.DataFrame, *, model: str = "elastic_net", fold=None) -> pd.Series:
    """k per gene: ``model``'s ``n_nonzero`` in ``fold``, or (``fold`` None) averaged over folds
    and rounded half up.

    Parameters
    ----------
    summary : pd.DataFrame
        Baseline summaries (``model, gene, fold, n_nonzero``).
    fold : int, optional
        The fold whose count is used (the paper: 0); genes without that fold get none.

    Returns
    -------
    pd.Series
        int k indexed by gene.
    """
    rows = summary[summary["model"] == model]
    if rows.empty:
        have = ", ".join(sorted(summary["model"].astype(str).unique())) or "none"
        raise InputError(
            f"the baselines have no {model} summary (they have: {have}); HSV counts come from "
            f"its n_nonzero: run `variformer baselines --model {model}`"
        )
    if fold is not None:
        rows = rows[rows["fold"].astype(int) == int(fold)]
        return rows.groupby("gene")["n_nonzero"].first().astype(int)
    mean = rows.groupby("gene")["n_nonzero"].mean()
    return np.floor(mean + 0.5).astype(int)


def select_hsvs(weights: pd.DataFrame, k: pd.Series) -> pd.DataFrame:
    """Top-``k[gene]`` SNVs by |weight| per gene and model (ties: lower position first).

    Parameters
    ----------
    weights : pd.DataFrame
        ``model, gene, chrom, pos, id, ref, alt, maf, tss_distance, weight``.
    k : pd.Series
        Number of HSVs per gene; genes missing from it get none.

    Returns
    -------
    pd.DataFrame
        :data:`HSV_COLUMNS`; ``rank`` 1 = largest |weight|. Zero weights are never HSVs.
    """
    w = weights[weights["gene"].isin(k.index) & (weights["weight"].abs() > 0)].copy()
    w["_abs"] = w["weight"].abs()
    w = w.sort_values(["model", "gene", "_abs", "pos"], ascending=[True, True, False, True])
    w["rank"] = w.groupby(["model", "gene"], sort=False).cumcount() + 1
    w = w[w["rank"] <= w["gene"].map(k).astype(int)]
    return w[list(HSV_COLUMNS)].reset_index(drop=True)


def _common_genes(hsvs: pd.DataFrame, a: str, b: str) -> list[str]:
    """The genes where both models have HSVs: the only ones a comparison of the two may use."""
    ga = set(hsvs.loc[hsvs["model"] == a, "gene"])
    return sorted(ga & set(hsvs.loc[hsvs["model"] == b, "gene"]))


def compare_hsvs(hsvs: pd.DataFrame) -> pd.DataFrame:
    """Between every two models: |TSS distance| and MAF of their HSVs, with two tests each.

    Each pair is compared on the genes where both have HSVs (``n_genes``), so a model that is
    missing or screened out for a gene does not move the other's distribution.

    Returns
    -------
    pd.DataFrame
        ``feature`` (``abs_tss_distance`` or ``maf``), ``model_a, model_b, n_genes, n_a, n_b,
        median_a, median_b, mannwhitney_u, mannwhitney_p`` (two-sided
        ``scipy.stats.mannwhitneyu``), ``ks_stat, ks_p`` (two-sided ``scipy.stats.ks_2samp``).
    """
    values = hsvs.assign(abs_tss_distance=hsvs["tss_distance"].abs())
    models = sorted(values["model"].unique())
    rows = []
    for feature in ("abs_tss_distance", "maf"):
        for a, b in itertools.combinations(models, 2):
            common = values["gene"].isin(_common_genes(hsvs, a, b))
            x = values.loc[common & (values["model"] == a), feature].to_numpy(float)
            y = values.loc[common & (values["model"] == b), feature].to_numpy(float)
            row = {"feature": feature, "model_a": a, "model_b": b}
            row |= {"n_genes": len(_common_genes(hsvs, a, b)), "n_a": len(x), "n_b": len(y)}
            row["median_a"] = float(np.median(x)) if len(x) else math.nan
            row["median_b"] = float(np.median(y)) if len(y) else math.nan
            if len(x) and len(y):
                mw = stats.mannwhitneyu(x, y, alternative="two-sided")
                ks = stats.ks_2samp(x, y)
                row |= {"mannwhitney_u": float(mw.statistic), "mannwhitney_p": float(mw.pvalue)}
                row |= {"ks_stat": float(ks.statistic), "ks_p": float(ks.pvalue)}
            rows.append(row)
    cols = ["feature", "model_a", "model_b", "n_genes", "n_a", "n_b", "median_a", "median_b"]
    cols += ["mannwhitney_u", "mannwhitney_p", "ks_stat", "ks_p"]
    return pd.DataFrame(rows, columns=cols)


def hsv_jaccard(hsvs: pd.DataFrame) -> pd.DataFrame:
    """Jaccard index of the HSV sets of every two models, per gene and over all genes.

    Returns
    -------
    pd.DataFrame
        ``model_a, model_b, gene, n_a, n_b, n_shared, jaccard`` over the genes where both
        models have HSVs; ``gene == "all"`` rows pool the (gene, SNV) pairs of those genes.
        Jaccard of two empty sets is NaN.
    """
    sets = {
        (m, g): set(zip(*(d[c] for c in KEY_COLUMNS)))
        for (m, g), d in hsvs.groupby(["model", "gene"], sort=True)
    }
    models = sorted(hsvs["model"].unique())
    rows = []
    for a, b in itertools.combinations(models, 2):
        pooled_a, pooled_b = set(), set()
        for gene in [*_common_genes(hsvs, a, b), "all"]:
            if gene == "all":
                sa, sb = pooled_a, pooled_b
            else:
                sa, sb = sets.get((a, gene), set()), sets.get((b, gene), set())
                pooled_a |= {(gene, *s) for s in sa}
                pooled_b |= {(gene, *s) for s in sb}
            union = len(sa | sb)
            rows.append(
                {
                    "model_a": a,
                    "model_b": b,
                    "gene": gene,
                    "n_a": len(sa),
                    "n_b": len(sb),
                    "n_shared": len(sa & sb),
                    "jaccard": len(sa & sb) / union if union else math.nan,
                }
            )
    return pd.DataFrame(
        rows, columns=["model_a", "model_b", "gene", "n_a", "n_b", "n_shared", "jaccard"]
    )
