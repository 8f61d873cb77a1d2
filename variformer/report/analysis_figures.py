"""Figures of ``variformer analyze`` tables (the paper's Figs. 2-3 and S10), from DataFrames only.

Every function takes the tables ``variformer analyze`` writes and returns a
``matplotlib.figure.Figure`` (Agg backend, no display needed), or None when its table has no
rows to show; the report says so instead of drawing an empty panel.
"""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from variformer.report.significance import STARS_NOTE, chromatin_marks, pair_brackets, test_rows

__all__ = [
    "attribution_profiles",
    "auroc_distributions",
    "chromatin_enrichment",
    "hsv_maf",
    "hsv_tss_distance",
    "model_colors",
    "motif_rates",
    "r2_vs_elastic_net",
    "sign_scatter",
    "weights_along_window",
]

_PALETTE = {
    "variformer": "#d6604d",
    "enformer": "#4393c3",
    "elastic_net": "#5aae61",
    "ridge": "#9970ab",
    "lasso": "#bf812d",
}
_EXTRA = ["#e08214", "#35978f", "#762a83", "#878787", "#01665e", "#8c510a"]


def model_colors(models) -> dict[str, str]:
    """One fixed colour per model name (known models keep theirs across figures)."""
    out, extra = {}, iter(_EXTRA * 4)
    for m in sorted(set(models)):
        out[m] = _PALETTE.get(m) or next(extra)
    return out


def _ordered(models) -> list[str]:
    known = [m for m in _PALETTE if m in set(models)]
    return known + sorted(set(models) - set(known))


def _p_text(p: float) -> str:
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "p = NA"
    return f"p = {p:.2g}" if p >= 1e-300 else "p < 1e-300"


def r2_vs_elastic_net(metrics: pd.DataFrame, *, setting: str = "hop") -> Figure | None:
    """Per-gene test R2 of every model against the elastic net's (Fig. 1b), each gene on the
    folds every model has for it (:func:`variformer.evaluation_summary.summarize`).

    ``metrics``: ``gene, fold, model, setting, split, r2`` (``EVAL/metrics.tsv``).
    """
    from variformer.evaluation_summary import summarize

    m = summarize(metrics)
    per = m[m["setting"] == setting].pivot_table(index="gene", columns="model", values="r2")
    if "elastic_net" not in per.columns or per.shape[1] < 2:
        return None
    others = [c for c in _ordered(per.columns) if c != "elastic_net"]
    colors = model_colors(per.columns)
    fig, axes = plt.subplots(
        1, len(others), figsize=(max(5.5, 4.4 * len(others)), 4.6), squeeze=False
    )
    for ax, model in zip(axes[0], others):
        d = per[["elastic_net", model]].dropna()
        ax.scatter(d["elastic_net"], d[model], s=22, color=colors[model], alpha=0.8)
        lo = min(0.0, d.min().min()) if len(d) else 0.0
        hi = max(0.05, d.max().max()) if len(d) else 1.0
        ax.plot([lo, hi], [lo, hi], color="0.5", lw=0.8, ls="--")
        pad = 0.03 * (hi - lo)
        ax.set_xlim(lo - pad, hi + pad)
        ax.set_ylim(lo - pad, hi + pad)
        ax.set_aspect("equal")
        better = int((d[model] > d["elastic_net"]).sum())
        ax.set_title(f"{model}: {better}/{len(d)} genes above elastic net", fontsize=10)
        ax.set_xlabel("elastic net test R$^2$")
        ax.set_ylabel(f"{model} test R$^2$")
    fig.suptitle(f"Per-gene test R$^2$ ({setting}, mean over matched folds)", fontsize=11)
    fig.tight_layout()
    return fig


def weights_along_window(
    weights: pd.DataFrame, hsvs: pd.DataFrame, motifs: pd.DataFrame | None, gene: str
) -> Figure | None:
    """Weight of every SNV vs its distance to the TSS, one row per model (Fig. 2a).

    HSVs are drawn filled; motif hits at a model's HSVs are light vertical lines.
    """
    w = weights[weights["gene"] == gene]
    if w.empty:
        return None
    models = _ordered(w["model"].unique())
    colors = model_colors(models)
    fig, axes = plt.subplots(
        len(models), 1, figsize=(9, 1.6 * len(models) + 0.8), sharex=True, squeeze=False
    )
    hit_keys = set()
    if motifs is not None and len(motifs):
        mm = motifs[motifs["gene"] == gene]
        hit_keys = set(zip(mm["pos"].astype(int), mm["ref"], mm["alt"]))
    for ax, model in zip(axes[:, 0], models):
        d = w[w["model"] == model]
        h = hsvs[(hsvs["gene"] == gene) & (hsvs["model"] == model)]
        is_h = d.set_index(["pos", "ref", "alt"]).index.isin(
            list(zip(h["pos"], h["ref"], h["alt"]))
        )
        kb = d["tss_distance"] / 1000
        ax.axhline(0, color="0.7", lw=0.6)
        for r in h.itertuples():
            if (int(r.pos), r.ref, r.alt) in hit_keys:
                ax.axvline(r.tss_distance / 1000, color=colors[model], alpha=0.25, lw=2)
        ax.scatter(kb[~is_h], d["weight"][~is_h], s=6, color="0.65", lw=0)
        ax.scatter(kb[is_h], d["weight"][is_h], s=22, color=colors[model], lw=0)
        ax.set_ylabel(model, fontsize=9)
        ax.tick_params(labelsize=8)
    axes[-1, 0].set_xlabel("distance to TSS (kb; negative = upstream)")
    title = f"{gene}: SNV weights (ISM ALT - REF; coefficients for linear models); coloured = HSVs"
    if motifs is not None:
        title += ", shaded lines = motif hits at HSVs"
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def sign_scatter(
    weights: pd.DataFrame, signs: pd.DataFrame, *, reference: str = "elastic_net"
) -> Figure | None:
    """Elastic-net coefficients vs each model's weights for SNVs with non-zero coefficients (Fig. 2c)."""
    ref = weights[(weights["model"] == reference) & (weights["weight"] != 0)]
    if ref.empty:
        return None
    keys = ["gene", "chrom", "pos", "ref", "alt"]
    others = [m for m in _ordered(weights["model"].unique()) if m != reference]
    if not others:
        return None
    colors = model_colors(weights["model"])
    fig, axes = plt.subplots(1, len(others), figsize=(4.2 * len(others), 4.2), squeeze=False)
    pooled = signs[signs["gene"] == "all"].set_index("model") if len(signs) else pd.DataFrame()
    for ax, model in zip(axes[0], others):
        j = ref[[*keys, "weight"]].merge(
            weights.loc[weights["model"] == model, [*keys, "weight"]],
            on=keys,
            suffixes=("_ref", ""),
        )
        ax.scatter(j["weight_ref"], j["weight"], s=10, color=colors[model], alpha=0.7, lw=0)
        ax.axhline(0, color="0.6", lw=0.6)
        ax.axvline(0, color="0.6", lw=0.6)
        title = model
        if model in pooled.index and pooled.loc[model, "n"] > 0:
            r = pooled.loc[model]
            title += (
                f": {r['fraction']:.1%} agree (n = {int(r['n'])}), Fisher {_p_text(r['fisher_p'])}"
            )
        ax.set_title(title, fontsize=9)
        ax.set_xlabel(f"{reference} coefficient")
        ax.set_ylabel(f"{model} weight")
    title = "Direction of effect: SNVs with non-zero elastic-net coefficients"
    if len(others) == 1:  # one narrow panel: break the title so it fits
        title = "Direction of effect:\nSNVs with non-zero elastic-net coefficients"
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


def hsv_tss_distance(hsvs: pd.DataFrame) -> Figure | None:
    """Distribution of HSV distance to the TSS per model (Fig. 2b), as ECDFs of |distance|."""
    if hsvs.empty:
        return None
    colors = model_colors(hsvs["model"])
    fig, ax = plt.subplots(figsize=(6, 4))
    for model in _ordered(hsvs["model"].unique()):
        d = np.sort(np.abs(hsvs.loc[hsvs["model"] == model, "tss_distance"].to_numpy())) / 1000
        ax.step(
            d,
            np.arange(1, len(d) + 1) / len(d),
            where="post",
            color=colors[model],
            label=f"{model} (n = {len(d)})",
        )
    ax.set_xlabel("|distance to TSS| of HSVs (kb)")
    ax.set_ylabel("fraction of HSVs")
    ax.legend(fontsize=8, frameon=False)
    ax.set_title("HSV proximity to the TSS", fontsize=11)
    fig.tight_layout()
    return fig


def hsv_maf(
    hsvs: pd.DataFrame, tests: pd.DataFrame | None = None, model_tests: pd.DataFrame | None = None
) -> Figure | None:
    """HSV minor allele frequencies per model (Fig. 3d): brackets with the stars of
    ``model_tests`` (Mann-Whitney, BH), else the ``hsv_tests`` p-values beside the axes."""
    if hsvs.empty:
        return None
    models = _ordered(hsvs["model"].unique())
    colors = model_colors(models)
    data = [hsvs.loc[hsvs["model"] == m, "maf"].to_numpy(float) for m in models]
    fig, ax = plt.subplots(figsize=(1.5 * len(models) + 5.0, 4.2))
    parts = ax.boxplot(data, patch_artist=True, widths=0.6, showfliers=False)
    for patch, m in zip(parts["boxes"], models):
        patch.set_facecolor(colors[m])
        patch.set_alpha(0.6)
    rng = np.random.default_rng(0)
    for i, d in enumerate(data, 1):
        ax.scatter(i + rng.uniform(-0.18, 0.18, len(d)), d, s=6, color="0.25", lw=0, alpha=0.6)
    ax.set_xticks(range(1, len(models) + 1), models, rotation=20, fontsize=9)
    ax.set_ylabel("minor allele frequency of HSVs")
    lines, marks = [], test_rows(model_tests, "hsv_maf")
    if len(marks):
        top = max((d.max() for d in data if len(d)), default=0.5)
        ax.set_ylim(top=pair_brackets(ax, marks, {m: i for i, m in enumerate(models, 1)},
                                      top * 1.05, 0.07 * max(top, 0.05)))  # fmt: skip
        ax.set_title(f"HSV MAF by model (Mann-Whitney; {STARS_NOTE})", fontsize=9)
    elif tests is not None and len(tests):
        t = tests[tests["feature"] == "maf"]
        for r in t.itertuples():
            lines.append(f"{r.model_a} vs {r.model_b}: MW {_p_text(r.mannwhitney_p)}")
    if not len(marks):
        ax.set_title("HSV MAF by model", fontsize=11)
    if lines:
        ax.text(1.02, 1.0, "\n".join(lines), transform=ax.transAxes, fontsize=7, va="top")
    fig.tight_layout()
    return fig


def chromatin_enrichment(chrom: pd.DataFrame, tests: pd.DataFrame | None = None) -> Figure | None:
    """log2 observed/expected HSVs per ChromHMM state and model, pooled over genes (Fig. 3a),
    with the significant stars of ``tests`` (``model_tests.tsv``, :func:`chromatin_marks`)."""
    c = chrom[chrom["gene"] == "all"] if len(chrom) else chrom
    if c.empty:
        return None
    states = list(dict.fromkeys(c["state"]))
    models = _ordered(c["model"].unique())
    colors = model_colors(models)
    table = c.pivot(index="state", columns="model", values="log2_ratio").reindex(states)
    obs = c.pivot(index="state", columns="model", values="observed").reindex(states)
    fig, ax = plt.subplots(figsize=(max(8.0, min(12.0, 0.65 * len(states) + 2)), 4.8))
    width = 0.8 / len(models)
    x = np.arange(len(states))
    for i, m in enumerate(models):
        ax.bar(x + (i - (len(models) - 1) / 2) * width, table[m], width, color=colors[m], label=m)
    ax.axhline(0, color="0.3", lw=0.8)
    ax.set_xticks(x, states, rotation=45, ha="right", fontsize=8)
    ax.set_ylabel("log$_2$ (observed + 0.5) / (expected + 0.5)")
    n = int(obs.sum().max()) if len(obs) else 0
    title = f"HSV enrichment in ChromHMM states (all genes; up to {n} HSVs per model)"
    if tests is not None and len(test_rows(tests, "chromatin", state=states[0])):
        heights = table.reindex(columns=models).to_numpy(float)
        top = chromatin_marks(ax, tests, states, models, x, width, heights)
        ax.set_ylim(top=max(ax.get_ylim()[1], top))
        title += f"\npermutation tests, significant only: {STARS_NOTE}"
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, frameon=False, ncol=min(4, len(models)))
    fig.tight_layout()
    return fig


def motif_rates(summary: pd.DataFrame, tests: pd.DataFrame | None = None) -> Figure | None:
    """Share of HSVs (and drivers) that change a motif, split into increase / decrease (Fig. 3b),
    with brackets for the Fisher tests of ``tests`` (``model_tests.tsv``, MAF filter 0)."""
    if summary is None or summary.empty:
        return None
    groups = list(dict.fromkeys(summary.get("variants", pd.Series(["hsv"] * len(summary)))))
    fig, axes = plt.subplots(1, len(groups), figsize=(4.5 * len(groups), 4), squeeze=False)
    for ax, group in zip(axes[0], groups):
        s = summary[summary["variants"] == group] if "variants" in summary.columns else summary
        models = _ordered(s["model"].unique())
        s = s.set_index("model").loc[models]
        frac_dec = s["frac_decrease"].fillna(0).to_numpy()
        rate = s["rate"].fillna(0).to_numpy()
        x = np.arange(len(models))
        ax.bar(x, rate * frac_dec, color="#4393c3", label="decrease")
        ax.bar(x, rate * (1 - frac_dec), bottom=rate * frac_dec, color="#d6604d", label="increase")
        for i, r in enumerate(s.itertuples()):
            ax.text(
                i, rate[i], f"{r.n_disrupting}/{r.n_hsvs}", ha="center", va="bottom", fontsize=8
            )
        ax.set_xticks(x, models, rotation=20, fontsize=9)
        plural = {"hsv": "HSVs", "driver": "drivers"}.get(group, f"{group}s")
        ax.set_ylabel(f"fraction of {plural} with a motif hit")
        top = max(0.05, rate.max() * 1.2)
        marks = test_rows(tests, "motif_rate", variants=group)
        if len(marks):
            top = pair_brackets(ax, marks, dict(zip(models, x)), top, 0.08 * top)
        ax.set_ylim(0, top)
        ax.set_title(f"{plural} changing a motif (hits split by direction)", fontsize=10)
        ax.legend(fontsize=8, frameon=False, ncol=2, loc="upper center", bbox_to_anchor=(0.5, -0.2))
    if tests is not None and len(test_rows(tests, "motif_rate")):
        fig.suptitle(f"Fisher's exact test between models\n{STARS_NOTE}", fontsize=9)
    fig.tight_layout()
    return fig


def auroc_distributions(per_gene: pd.DataFrame, *, title: str) -> Figure | None:
    """Per-gene auROC and auPR per model (Fig. 3c); dots = genes, bar = mean."""
    if per_gene is None or per_gene.empty:
        return None
    models = _ordered(per_gene["model"].unique())
    colors = model_colors(models)
    fig, axes = plt.subplots(1, 2, figsize=(2.0 * len(models) + 4, 4))
    rng = np.random.default_rng(0)
    for ax, metric, label in zip(axes, ("auroc", "aupr"), ("auROC", "auPR")):
        for i, m in enumerate(models):
            v = per_gene.loc[per_gene["model"] == m, metric].to_numpy(float)
            ax.bar(i, v.mean(), color=colors[m], alpha=0.5, width=0.7)
            ax.scatter(
                i + rng.uniform(-0.15, 0.15, len(v)),
                v,
                s=14,
                color=colors[m],
                edgecolor="0.2",
                lw=0.4,
            )
            ax.text(i, 0.02, f"mean\n{v.mean():.2f}", ha="center", va="bottom", fontsize=8)
        if metric == "auroc":
            ax.axhline(0.5, color="0.5", ls="--", lw=0.8)
        else:  # a random scorer's auPR is the share of positives (1 / (1 + 5) with 5 negatives each)
            share = (per_gene["n_pos"] / (per_gene["n_pos"] + per_gene["n_neg"])).mean()
            ax.axhline(share, color="0.5", ls="--", lw=0.8)
        ax.set_xticks(range(len(models)), models, rotation=20, fontsize=9)
        ax.set_ylim(0, 1.05)
        ax.set_ylabel(f"{label} per gene")
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


def attribution_profiles(summary: pd.DataFrame) -> Figure | None:
    """Mean standardized attribution around HSV/driver SNVs vs matched controls (Fig. S10).

    ``summary``: ``attribution_summary.tsv`` (``model, background, group, offset, n_snvs,
    mean, ci_low, ci_high``; ``group`` hsv, hsv_control, driver, driver_control), i.e. the mean
    over SNVs of each SNV's value averaged over replicates, and its bootstrap 95% interval.
    One panel per model (columns) and target kind and background (rows): the targets solid in
    the model's colour, their controls dashed grey; bands (or error bars at a single offset)
    are the intervals.
    """
    if summary is None or summary.empty:
        return None
    summary = summary.assign(
        background=summary["background"].fillna(""),
        kind=summary["group"].str.removesuffix("_control"),
    )
    models = _ordered(summary["model"].unique())
    colors = model_colors(models)
    kinds = sorted(summary["kind"].unique(), key=lambda k: ({"hsv": 0, "driver": 1}.get(k, 2), k))
    backgrounds = sorted(summary["background"].unique(), key=lambda b: (b != "reference", b))
    rows = [(k, b) for k in kinds for b in backgrounds]
    fig, axes = plt.subplots(
        len(rows), len(models), figsize=(max(6.0, 4.8 * len(models)), 3.0 * len(rows) + 0.4),
        squeeze=False, sharex=True, sharey=True,
    )  # fmt: skip
    names = {"hsv": "HSVs", "driver": "drivers"}
    for i, (kind, bg) in enumerate(rows):
        for j, model in enumerate(models):
            ax = axes[i, j]
            a = summary[(summary["model"] == model) & (summary["kind"] == kind)]
            a = a[a["background"] == bg]
            for group, g in a.groupby("group", sort=True):
                g = g.sort_values("offset")
                control = group.endswith("_control")
                color = "0.45" if control else colors[model]
                label = (
                    f"{'controls' if control else names.get(kind, kind)} (n={g['n_snvs'].max()})"
                )
                x, m = g["offset"].to_numpy(), g["mean"].to_numpy()
                lo, hi = g["ci_low"].to_numpy(), g["ci_high"].to_numpy()
                if len(g) == 1:
                    ax.errorbar(x + (0.1 if control else 0), m, yerr=[m - lo, hi - m], fmt="o",
                                color=color, capsize=3, label=label)  # fmt: skip
                else:
                    ax.plot(x, m, color=color, ls="--" if control else "-", lw=1.2, label=label)
                    ax.fill_between(x, lo, hi, color=color, alpha=0.2, lw=0)
            where = f", {bg} background" if bg else ""
            ax.set_title(f"{model}: {names.get(kind, kind)}{where}", fontsize=9)
            ax.axvline(0, color="0.8", lw=0.8, zorder=0)
            if a.empty:
                ax.text(0.5, 0.5, "no SNVs", transform=ax.transAxes, ha="center", color="0.5")
            else:
                ax.legend(fontsize=7, frameon=False)
            if i == len(rows) - 1:
                ax.set_xlabel("position relative to SNV (bp)")
        axes[i, 0].set_ylabel("standardized attribution (z)", fontsize=8)
    fig.suptitle(
        "Attributions around HSVs / drivers vs matched control SNVs\n"
        "(mean over SNVs, each averaged over replicates; bootstrap 95% CI)",
        fontsize=10,
    )
    fig.tight_layout()
    return fig
