"""Sign agreement between a model's weights and elastic-net coefficients (the paper's Fig. 2c).

For the SNVs whose elastic-net coefficient has ``|coef| > threshold`` (0.05, as in the paper)
and whose model weight is non-zero, count how often the signs agree, and test the association
of the two signs with Fisher's exact test (``scipy.stats.fisher_exact``, two-sided) on the 2x2
table rows = elastic-net sign (+, -), columns = model sign (+, -).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from data_prep.keys import KEY_COLUMNS

__all__ = ["sign_agreement"]

COLUMNS = (
    "model", "reference", "gene", "n", "n_agree", "fraction", "odds_ratio", "fisher_p",
    "n_pos_pos", "n_pos_neg", "n_neg_pos", "n_neg_neg",
)  # fmt: skip


def _row(model: str, reference: str, gene: str, ref_w: np.ndarray, w: np.ndarray) -> dict:
    pp = int(((ref_w > 0) & (w > 0)).sum())
    pn = int(((ref_w > 0) & (w < 0)).sum())
    np_ = int(((ref_w < 0) & (w > 0)).sum())
    nn = int(((ref_w < 0) & (w < 0)).sum())
    n = pp + pn + np_ + nn
    row = {"model": model, "reference": reference, "gene": gene, "n": n, "n_agree": pp + nn}
    row["fraction"] = (pp + nn) / n if n else math.nan
    if n:
        res = stats.fisher_exact([[pp, pn], [np_, nn]])
        row |= {"odds_ratio": float(res.statistic), "fisher_p": float(res.pvalue)}
    else:
        row |= {"odds_ratio": math.nan, "fisher_p": math.nan}
    return row | {"n_pos_pos": pp, "n_pos_neg": pn, "n_neg_pos": np_, "n_neg_neg": nn}


def sign_agreement(
    weights: pd.DataFrame, *, reference: str = "elastic_net", threshold: float = 0.05
) -> pd.DataFrame:
    """Per model (every model but ``reference``) and gene, plus ``gene == "all"`` pooled.

    Parameters
    ----------
    weights : pd.DataFrame
        ``model, gene, chrom, pos, ref, alt, weight`` (fold-averaged weights).
    reference : str
        The model whose coefficients define the SNV set and the reference sign.
    threshold : float
        Keep SNVs with ``|reference weight| > threshold``.

    Returns
    -------
    pd.DataFrame
        :data:`COLUMNS`; ``fraction = n_agree / n``; empty when ``reference`` is absent.
    """
    keys = ["gene", *KEY_COLUMNS]
    ref = weights[(weights["model"] == reference) & (weights["weight"].abs() > threshold)]
    ref = ref[[*keys, "weight"]].rename(columns={"weight": "ref_weight"})
    rows = []
    for model in sorted(m for m in weights["model"].unique() if m != reference):
        mine = weights.loc[weights["model"] == model, [*keys, "weight"]]
        joined = ref.merge(mine, on=keys, how="inner")
        joined = joined[joined["weight"] != 0]
        for gene, g in joined.groupby("gene", sort=True):
            rows.append(
                _row(model, reference, gene, g["ref_weight"].to_numpy(), g["weight"].to_numpy())
            )
        rows.append(
            _row(
                model,
                reference,
                "all",
                joined["ref_weight"].to_numpy(),
                joined["weight"].to_numpy(),
            )
        )
    return pd.DataFrame(rows, columns=list(COLUMNS))
