"""Significance stars on the report's figures, from ``model_tests.tsv``, and Fig. S8.

The paper marks Fig. 3's between-model comparisons with "**** = adjusted p-value < 1e-4, ** <
1e-2, ns". :func:`pair_brackets` draws those marks (a bracket between two models' bars or boxes,
the ``stars`` of their row above it); :func:`chromatin_marks` does it for Fig. 3a's grouped bars.
Fig. S8 (the functional analyses after removing HSVs with MAF < 1% or < 5%) is drawn by
:func:`maf_filtered_motif_rates` and :func:`maf_filtered_chromatin`. Functions take DataFrames
only (the tables ``variformer analyze`` writes).
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

__all__ = [
    "chromatin_marks",
    "maf_filtered_chromatin",
    "maf_filtered_motif_rates",
    "pair_brackets",
    "test_rows",
]

WINDOW_SNVS = "window_snvs"  # model_b of a model-against-its-windows chromatin row
_KEYS = ["gene", "chrom", "pos", "ref", "alt"]
STARS_NOTE = "BH-adjusted p: **** < 1e-4, *** < 1e-3, ** < 1e-2, * < 0.05, ns"


def _filter_label(f: float) -> str:
    return "all HSVs" if f <= 0 else f"HSVs with MAF >= {f:g}"


def test_rows(
    tests: pd.DataFrame | None,
    analysis: str,
    *,
    variants: str = "hsv",
    maf_filter: float = 0.0,
    state: str | None = None,
) -> pd.DataFrame:
    """The rows of ``model_tests.tsv`` for one analysis, variant group, filter (and state)."""
    if tests is None or tests.empty:
        return pd.DataFrame(columns=["model_a", "model_b", "stars"])
    t = tests[
        (tests["analysis"] == analysis)
        & (tests["variants"] == variants)
        & np.isclose(tests["maf_filter"].astype(float), maf_filter)
    ]
    if state is not None:
        t = t[t["state"].astype(str) == state]
    return t[t["stars"].notna() & (t["stars"].astype(str) != "")]


def pair_brackets(
    ax, rows: pd.DataFrame, x_of: dict, base: float, step: float, *, significant_only=False
) -> float:
    """A bracket with its stars between the two models of each row, stacked from ``base`` up
    in steps of ``step`` (narrow pairs lowest, overlapping pairs on separate levels).

    ``rows``: ``model_a, model_b, stars``; pairs whose models are not in ``x_of`` (model ->
    x position) are left out, as are ``ns`` rows with ``significant_only``. Returns the
    highest y used (``base`` if none).
    """
    pairs = []
    for r in rows.itertuples():
        if r.model_a in x_of and r.model_b in x_of and not (significant_only and r.stars == "ns"):
            lo, hi = sorted((x_of[r.model_a], x_of[r.model_b]))
            pairs.append((hi - lo, lo, hi, str(r.stars)))
    levels: list[list[tuple[float, float]]] = []
    top = base
    for _, lo, hi, stars in sorted(pairs):
        level = next(
            (i for i, used in enumerate(levels) if all(hi < a or lo > b for a, b in used)),
            len(levels),
        )
        if level == len(levels):
            levels.append([])
        levels[level].append((lo, hi))
        y = base + level * step
        ax.plot([lo, lo, hi, hi], [y, y + 0.25 * step, y + 0.25 * step, y], color="0.2", lw=0.8)
        ax.text((lo + hi) / 2, y + 0.25 * step, stars, ha="center", va="bottom", fontsize=7)
        top = max(top, y + step)
    return top


def chromatin_marks(
    ax, tests: pd.DataFrame | None, states, models, x, width: float, heights, *, maf_filter=0.0
) -> float:
    """Stars on grouped chromatin bars (bar ``i`` of state ``j`` at x[j] + offset_i, height
    ``heights[j, i]``): above (below, for a depletion) each bar, its model's permutation test
    against random SNVs of the same windows; over each state, brackets for the pairs of models
    that differ (``ns`` pairs left out). Only significant marks are drawn. Returns the top y."""
    offsets = {m: (i - (len(models) - 1) / 2) * width for i, m in enumerate(models)}
    span = np.nanmax(np.abs(heights)) if np.isfinite(heights).any() else 1.0
    pad, top = 0.04 * max(span, 0.1), 0.0
    for j, state in enumerate(states):
        rows = test_rows(tests, "chromatin", maf_filter=maf_filter, state=state)
        alone = rows[rows["model_b"] == WINDOW_SNVS]
        for r in alone.itertuples():
            if r.model_a in offsets and r.stars != "ns":
                h = heights[j, list(models).index(r.model_a)]
                h = 0.0 if not np.isfinite(h) else h
                ax.text(x[j] + offsets[r.model_a], h + (pad if h >= 0 else -pad), r.stars,
                        ha="center", va="bottom" if h >= 0 else "top", fontsize=6)  # fmt: skip
        group_top = max(0.0, np.nanmax(heights[j])) + 5 * pad
        x_of = {m: x[j] + o for m, o in offsets.items()}
        pairs = rows[rows["model_b"] != WINDOW_SNVS]
        top = max(top, pair_brackets(ax, pairs, x_of, group_top, 3 * pad, significant_only=True))
    return top


def _rates(hsvs: pd.DataFrame, motifs: pd.DataFrame | None, maf_filter: float) -> pd.DataFrame:
    """Per model: HSVs with MAF >= the filter, how many have a motif hit, their share."""
    h = hsvs if maf_filter <= 0 else hsvs[hsvs["maf"] >= maf_filter]
    h = h.drop_duplicates(["model", *_KEYS])
    hit = set()
    if motifs is not None and len(motifs):
        hit = set(zip(*(motifs[c].astype(str) for c in _KEYS)))
    flag = [k in hit for k in zip(*(h[c].astype(str) for c in _KEYS))]
    g = h.assign(hit=flag).groupby("model")["hit"].agg(["sum", "size"])
    return g.assign(rate=g["sum"] / g["size"])


def maf_filtered_motif_rates(
    hsvs: pd.DataFrame | None, motifs: pd.DataFrame | None, tests: pd.DataFrame | None
) -> Figure | None:
    """Fig. S8 (motifs): share of HSVs with a motif hit per model, with all HSVs and after
    removing those with MAF below each filter of ``model_tests.tsv``; brackets: Fisher's exact
    test between models on their matched genes (BH within each filter)."""
    if hsvs is None or hsvs.empty or motifs is None or tests is None:
        return None
    from variformer.report.analysis_figures import _ordered, model_colors

    t = tests[tests["analysis"] == "motif_rate"]
    filters = sorted(set(t["maf_filter"].astype(float))) or [0.0]
    models = _ordered(hsvs["model"].unique())
    colors = model_colors(models)
    fig, axes = plt.subplots(1, len(filters), figsize=(1.1 * len(models) * len(filters) + 2, 4.2),
                             squeeze=False, sharey=True)  # fmt: skip
    for ax, f in zip(axes[0], filters):
        r = _rates(hsvs, motifs, f).reindex(models)
        rate = r["rate"].fillna(0).to_numpy(float)
        x = np.arange(len(models))
        ax.bar(x, rate, color=[colors[m] for m in models], alpha=0.8)
        for i, m in enumerate(models):
            if pd.notna(r.loc[m, "size"]):
                ax.text(i, rate[i], f"{int(r.loc[m, 'sum'])}/{int(r.loc[m, 'size'])}",
                        ha="center", va="bottom", fontsize=7)  # fmt: skip
        top = pair_brackets(ax, test_rows(tests, "motif_rate", maf_filter=f),
                            dict(zip(models, x)), 1.1 * max(rate.max(), 0.05) + 0.02, 0.09)  # fmt: skip
        ax.set_ylim(0, max(top, 1.1 * max(rate.max(), 0.05)))
        ax.set_xticks(x, models, rotation=25, fontsize=8)
        ax.set_title(_filter_label(f), fontsize=10)
    axes[0, 0].set_ylabel("fraction of HSVs with a motif hit")
    fig.suptitle(f"Motif-disrupting HSVs after removing rare HSVs ({STARS_NOTE})", fontsize=10)
    fig.tight_layout()
    return fig


def maf_filtered_chromatin(tests: pd.DataFrame | None) -> Figure | None:
    """Fig. S8 (chromatin): per state and model, log2 (observed + 0.5) / (expected + 0.5) HSVs,
    expected = the mean of the permutation null (random SNVs of the same windows passing the
    same MAF filter), one panel per filter; stars as in Fig. 3a."""
    if tests is None or tests.empty:
        return None
    t = tests[(tests["analysis"] == "chromatin") & (tests["model_b"] == WINDOW_SNVS)]
    if t.empty:
        return None
    from variformer.report.analysis_figures import _ordered, model_colors

    states = list(dict.fromkeys(t["state"].astype(str)))
    models = _ordered(t["model_a"].unique())
    colors = model_colors(models)
    filters = sorted(set(t["maf_filter"].astype(float)))
    fig, axes = plt.subplots(len(filters), 1, figsize=(max(8.0, 0.7 * len(states) + 2), 3.4 * len(filters)),
                             squeeze=False, sharex=True)  # fmt: skip
    width, x = 0.8 / len(models), np.arange(len(states))
    for ax, f in zip(axes[:, 0], filters):
        tf = t[np.isclose(t["maf_filter"].astype(float), f)]
        ratio = np.log2((tf["value_a"] + 0.5) / (tf["value_b"] + 0.5))
        table = tf.assign(r=ratio.to_numpy()).pivot(index="state", columns="model_a", values="r")
        heights = table.reindex(index=states, columns=models).to_numpy(float)
        for i, m in enumerate(models):
            ax.bar(x + (i - (len(models) - 1) / 2) * width, heights[:, i], width,
                   color=colors[m], label=m)  # fmt: skip
        top = chromatin_marks(ax, tests, states, models, x, width, heights, maf_filter=f)
        low = np.nanmin(heights) if np.isfinite(heights).any() else 0.0
        ax.set_ylim(min(0.0, low) - 0.3, max(top, 0.5) + 0.1)
        ax.axhline(0, color="0.3", lw=0.8)
        ax.set_ylabel("log$_2$ obs / exp", fontsize=9)
        ax.set_title(_filter_label(f), fontsize=10)
    axes[-1, 0].set_xticks(x, states, rotation=45, ha="right", fontsize=8)
    axes[0, 0].legend(fontsize=8, frameon=False, ncol=min(4, len(models)))
    fig.suptitle(
        "HSVs in ChromHMM states vs random SNVs of the same windows, rare HSVs removed\n"
        f"(permutation tests; {STARS_NOTE}; only significant marks drawn)",
        fontsize=10,
    )
    fig.tight_layout()
    return fig
