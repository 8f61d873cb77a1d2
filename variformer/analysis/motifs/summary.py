"""Per-model summary of motif hits at HSVs: disruption rate, increase / decrease split."""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.errors import InputError
from variformer.analysis.motifs.scan import KEYS

__all__ = ["summarize_disruption"]


def summarize_disruption(hits: pd.DataFrame, hsvs: pd.DataFrame) -> pd.DataFrame:
    """Per model: how many HSVs disrupt a motif, and whether they raise or lower the score.

    Parameters
    ----------
    hits : pd.DataFrame
        :func:`motif_disruption` output for (at least) the HSVs.
    hsvs : pd.DataFrame
        ``model, gene, chrom, pos, ref, alt`` (``AN/hsvs.tsv``); one row per HSV and model.

    Returns
    -------
    pd.DataFrame
        One row per model: ``n_hsvs``; ``n_disrupting`` (HSVs with at least one hit) and
        ``rate = n_disrupting / n_hsvs``; ``n_hits``, ``n_increase``, ``n_decrease``,
        ``n_strong`` over their hits; ``frac_decrease = n_decrease / (n_increase + n_decrease)``.
    """
    missing = [c for c in ("model", *KEYS) if c not in hsvs.columns]
    if missing:
        raise InputError(f"the HSV table lacks column(s) {', '.join(missing)}")
    keys = hsvs[["model", *KEYS]].drop_duplicates().copy()
    h = hits[[*KEYS, "direction", "effect"]].copy()
    for df in (keys, h):
        df["chrom"] = df["chrom"].astype(str)
        df["gene"] = df["gene"].astype(str)
        df["pos"] = df["pos"].astype(np.int64)
    joined = keys.merge(h, on=KEYS, how="left")
    rows = []
    for model, g in joined.groupby("model", sort=True):
        has = g["direction"].notna()
        n_hsvs = len(g.drop_duplicates(KEYS))
        n_dis = len(g[has].drop_duplicates(KEYS))
        inc = int((g["direction"] == "increase").sum())
        dec = int((g["direction"] == "decrease").sum())
        rows.append(
            {
                "model": model,
                "n_hsvs": n_hsvs,
                "n_disrupting": n_dis,
                "rate": n_dis / n_hsvs if n_hsvs else float("nan"),
                "n_hits": int(has.sum()),
                "n_increase": inc,
                "n_decrease": dec,
                "n_strong": int((g["effect"] == "strong").sum()),
                "frac_decrease": dec / (inc + dec) if inc + dec else float("nan"),
            }
        )
    cols = ["model", "n_hsvs", "n_disrupting", "rate", "n_hits", "n_increase", "n_decrease"]
    return pd.DataFrame(rows, columns=[*cols, "n_strong", "frac_decrease"])
