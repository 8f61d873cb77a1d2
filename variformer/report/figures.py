"""Evaluation figures (the paper's Fig. 1), each a function from tables to a matplotlib Figure.

The tables are those of ``variformer evaluate`` (:mod:`variformer.evaluate`): ``metrics``
(long: gene, fold, model, setting, split, r2, pcc, n, train_fraction, status),
``summary`` (per gene and model: mean R2/PCC over the gene's matched folds, the folds every
model has, named in ``folds``, beside the elastic net's over the same folds) and
``predictions`` (model, setting, fold, train_fraction, sample, gene, split, observed,
predicted). Nothing here reads files or models; callers save and close the figures.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from core.metrics import pcc, r2

__all__ = [
    "MODEL_COLORS",
    "difference_from_elastic_net",
    "evaluation_figures",
    "folds_label",
    "learning_curve",
    "observed_vs_predicted",
    "versus_elastic_net",
]

MODEL_COLORS = {
    "variformer": "#d62728",
    "variformer_multi": "#9467bd",
    "enformer": "#1f77b4",
    "elastic_net": "#2ca02c",
    "lasso": "#8c564b",
    "ridge": "#7f7f7f",
}
#: elastic-net R2 groups of Fig. 1c (the paper: none <= 0, low 0.01-0.06, medium/high >= 0.06)
HERITABILITY_GROUPS = (
    ("medium/high (EN R2 >= 0.06)", 0.06, np.inf),
    ("low (0 < EN R2 < 0.06)", 0.0, 0.06),
    ("none (EN R2 <= 0)", -np.inf, 0.0),
)


def _color(model: str) -> str:
    return MODEL_COLORS.get(model.split(":")[0], "#444444")


def _order(models) -> list[str]:
    rank = {
        m: i for i, m in enumerate(["enformer", "variformer", "variformer_multi", "elastic_net"])
    }
    return sorted(set(models), key=lambda m: (rank.get(m.split(":")[0], 9), m))


def _folds_text(value) -> str:
    """A ``summary.tsv`` ``folds`` cell as written ("0,1,2"), however it was read back
    (pandas reads "0" as 0 or 0.0, and "" as NaN)."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    if isinstance(value, (int, float, np.integer, np.floating)):
        return str(int(value))
    return str(value)


def folds_label(summary: pd.DataFrame) -> str:
    """Which folds the numbers of ``summary``'s rows are means over, for captions.

    ``"fold 0"``, ``"folds 0,1,2"``, or per fold set the number of genes
    (``"folds 0 for 3 genes, 0,1,2 for 2 genes"``); "folds not recorded" for a summary written
    before the ``folds`` column existed.
    """
    if "folds" not in summary.columns:
        return "folds not recorded"
    per_gene = summary.drop_duplicates("gene")["folds"].map(_folds_text)
    counts = per_gene.value_counts().sort_index()
    if len(counts) == 1:
        folds = counts.index[0]
        return f"fold {folds}" if folds and "," not in folds else f"folds {folds or 'none'}"
    return "folds " + ", ".join(
        f"{f or 'none'} for {n} gene{'s' if n > 1 else ''}" for f, n in counts.items()
    )


def observed_vs_predicted(
    predictions: pd.DataFrame,
    gene: str,
    *,
    fold: int | None = None,
    models: Sequence[str] | None = None,
    split: str = "test",
) -> Figure:
    """Observed vs predicted expression of one gene's test people, one panel per model (Fig. 1a).

    Parameters
    ----------
    predictions : pd.DataFrame
        model, setting, fold, train_fraction + the predictions schema.
    gene : str
    fold : int, optional
        Default: the lowest fold with predictions of ``gene``.
    models : sequence of str, optional
        Default: every model with ``hop`` predictions of ``gene`` (full train set).
    split : str
    """
    rows = predictions[
        (predictions["gene"] == gene)
        & (predictions["split"] == split)
        & (predictions["setting"] == "hop")
        & (predictions["train_fraction"] == 1.0)
    ]
    if fold is None and len(rows):
        fold = int(rows["fold"].min())
    rows = rows[rows["fold"] == fold]
    models = _order(rows["model"]) if models is None else list(models)
    fig = Figure(figsize=(3.4 * max(len(models), 1), 3.4), layout="constrained")
    axes = fig.subplots(1, max(len(models), 1), squeeze=False)[0]
    for ax, model in zip(axes, models):
        part = rows[rows["model"] == model]
        obs, pred = part["observed"].to_numpy(), part["predicted"].to_numpy()
        ax.scatter(obs, pred, s=14, alpha=0.75, color=_color(model), edgecolor="none")
        if len(part) >= 2 and np.ptp(pred) > 0:
            slope, icept = np.polyfit(obs, pred, 1)
            xs = np.linspace(obs.min(), obs.max(), 2)
            ax.plot(xs, slope * xs + icept, color="black", lw=1)
        ax.set_title(f"{model}\nR2 = {r2(obs, pred):.3f}, PCC = {pcc(obs, pred):.3f}", fontsize=10)
        ax.ticklabel_format(axis="y", useOffset=False)
        if len(pred) and np.ptp(pred) < 1e-3 * max(np.ptp(obs), 1e-12):
            # (near-)constant predictions: show them on a readable scale, not an offset axis
            centre, half = float(np.mean(pred)), max(0.05 * np.ptp(obs), 1e-3)
            ax.set_ylim(centre - half, centre + half)
        ax.set_xlabel("observed expression")
        ax.set_ylabel("predicted")
    if not models:
        axes[0].text(0.5, 0.5, f"no predictions for {gene}", ha="center", va="center")
        axes[0].set_axis_off()
    fig.suptitle(f"{gene}: {split} people of fold {fold} (n = {rows['sample'].nunique()})")
    return fig


def versus_elastic_net(
    summary: pd.DataFrame,
    *,
    models: Sequence[str] | None = None,
    setting: str = "hop",
    r2_floor: float = -0.5,
) -> Figure:
    """Per-gene R2 and PCC of each model against the elastic net's (Fig. 1b).

    Each point: a gene's means over its matched folds (``summary``: the folds every model has
    for the gene, the elastic net's over the same ones), named in the legend and title; R2
    below ``r2_floor`` is drawn at the floor (the paper thresholds Enformer's at -0.5), and
    the count of such genes is given in the legend.
    """
    rows = summary[(summary["setting"] == setting) & summary["elastic_net_r2"].notna()]
    models = [m for m in _order(rows["model"]) if m != "elastic_net"] if models is None else models
    fig = Figure(figsize=(9, 4.2), layout="constrained")
    axes = fig.subplots(1, 2)
    for ax, metric in zip(axes, ("r2", "pcc")):
        x_all = rows[f"elastic_net_{metric}"]
        lo = min(float(np.nanmin(x_all)) if len(x_all) else 0.0, 0.0)
        for model in models:
            part = rows[rows["model"] == model]
            x, y = part[f"elastic_net_{metric}"].to_numpy(), part[metric].to_numpy()
            folds = folds_label(part)  # in the legend when one set, else in the title only
            label = f"{model} ({len(part)} genes{'' if ' for ' in folds else ', ' + folds})"
            if metric == "r2":
                clipped = int(np.sum(y < r2_floor))
                y = np.maximum(y, r2_floor)
                if clipped:
                    label += f", {clipped} at {r2_floor}"
            ax.scatter(x, y, s=16, alpha=0.75, color=_color(model), label=label, edgecolor="none")
            if len(y):
                lo = min(lo, float(np.nanmin(y)))
        hi = (
            max(float(np.nanmax(rows[[metric, f"elastic_net_{metric}"]].to_numpy())), 0.1)
            if len(rows)
            else 1.0
        )
        ax.plot([lo, hi], [lo, hi], color="black", lw=0.8, ls="--")
        ax.axhline(0, color="grey", lw=0.5)
        ax.axvline(0, color="grey", lw=0.5)
        name = "R2" if metric == "r2" else "PCC"
        ax.set_xlabel(f"elastic net {name} (same folds and people)")
        ax.set_ylabel(f"model {name}")
        ax.set_title(f"{name} across held-out people ({setting.upper()})")
        ax.legend(fontsize=8, loc="upper left")
    fig.suptitle(
        f"each gene: mean over the folds every model has ({folds_label(rows)})", fontsize=10
    )
    return fig


def difference_from_elastic_net(
    summary: pd.DataFrame, *, models: Sequence[str] | None = None, setting: str = "hop"
) -> Figure:
    """Histograms of (model - elastic net) per gene, by elastic-net R2 group (Fig. 1c).

    Both on the gene's matched folds (``summary``), named in the title.
    """
    rows = summary[(summary["setting"] == setting) & summary["elastic_net_r2"].notna()]
    models = [m for m in _order(rows["model"]) if m != "elastic_net"] if models is None else models
    fig = Figure(figsize=(9, 7), layout="constrained")
    axes = fig.subplots(len(HERITABILITY_GROUPS), 2, squeeze=False)
    for i, (label, lo, hi) in enumerate(HERITABILITY_GROUPS):
        in_group = rows[(rows["elastic_net_r2"] > lo) & (rows["elastic_net_r2"] <= hi)]
        if hi == 0.0:
            in_group = rows[rows["elastic_net_r2"] <= 0]
        for j, metric in enumerate(("pcc", "r2")):
            ax = axes[i, j]
            diffs = {
                m: (
                    in_group.loc[in_group["model"] == m, metric]
                    - in_group.loc[in_group["model"] == m, f"elastic_net_{metric}"]
                ).dropna()
                for m in models
            }
            values = np.concatenate([d.to_numpy() for d in diffs.values()] or [np.zeros(0)])
            if len(values):
                lo_b, hi_b = float(np.min(values)), float(np.max(values))
                if hi_b - lo_b < 1e-6:
                    lo_b, hi_b = lo_b - 0.05, hi_b + 0.05
                bins = np.linspace(lo_b, hi_b, 21)
                for m, d in diffs.items():
                    if len(d):
                        ax.hist(
                            d, bins=bins, alpha=0.55, color=_color(m), label=f"{m} (n={len(d)})"
                        )
                ax.legend(fontsize=7)
            else:
                ax.text(0.5, 0.5, "no genes", ha="center", va="center", transform=ax.transAxes)
                ax.set_xticks([])
                ax.set_yticks([])
            ax.axvline(0, color="black", lw=0.8)
            name = "PCC" if metric == "pcc" else "R2"
            ax.set_xlabel(f"{name} - elastic net {name}")
            ax.set_ylabel("genes")
            ax.set_title(label, fontsize=9)
    fig.suptitle(f"model - elastic net on the same folds ({folds_label(rows)})", fontsize=10)
    return fig


def learning_curve(metrics: pd.DataFrame, *, split: str = "test") -> Figure:
    """Mean test R2 and PCC over genes against the fraction of train people (donor downsampling).

    Each point is the mean over genes of the per-gene mean over folds; bars: standard error
    over genes. Per model only gene-folds with results at every fraction count, so each
    curve follows one set of genes and folds.
    """
    rows = metrics[(metrics["status"] == "ok") & (metrics["split"] == split)]
    rows = rows[rows["setting"] == "hop"]
    fig = Figure(figsize=(9, 4), layout="constrained")
    axes = fig.subplots(1, 2)
    for ax, metric in zip(axes, ("r2", "pcc")):
        for model in _order(rows["model"]):
            part = rows[rows["model"] == model]
            if part["train_fraction"].nunique() < 2:
                continue
            n_fractions = part["train_fraction"].nunique()
            complete = part.groupby(["gene", "fold"])["train_fraction"].nunique() == n_fractions
            keep = pd.MultiIndex.from_frame(part[["gene", "fold"]]).isin(complete[complete].index)
            part = part[keep]
            if part.empty:
                continue
            per_gene = part.groupby(["train_fraction", "gene"])[metric].mean().reset_index()
            stats = per_gene.groupby("train_fraction")[metric].agg(["mean", "sem", "count"])
            ax.errorbar(
                stats.index * 100,
                stats["mean"],
                yerr=stats["sem"].fillna(0),
                marker="o",
                color=_color(model),
                label=f"{model} (genes: {int(stats['count'].max())})",
                capsize=3,
            )
        name = "R2" if metric == "r2" else "PCC"
        ax.set_xlabel("train people used (%)")
        ax.set_ylabel(f"mean test {name}")
        ax.set_xticks([25, 50, 75, 100])
        ax.legend(fontsize=8)
    fig.suptitle("learning curve over downsampled donors")
    return fig


def _figure_gene(summary: pd.DataFrame, predictions: pd.DataFrame) -> str | None:
    """The gene with the most models and, among those, the highest elastic-net R2."""
    hop = predictions[(predictions["setting"] == "hop") & (predictions["train_fraction"] == 1.0)]
    if hop.empty:
        return None
    n_models = hop.groupby("gene")["model"].nunique()
    best = n_models[n_models == n_models.max()].index
    en = summary.drop_duplicates("gene").set_index("gene")["elastic_net_r2"].reindex(best)
    return str(en.fillna(-np.inf).idxmax()) if len(en) else str(best[0])


def evaluation_figures(
    metrics: pd.DataFrame,
    summary: pd.DataFrame,
    predictions: pd.DataFrame,
    *,
    gene: str | None = None,
) -> dict[str, Figure]:
    """The figures the tables support: name -> Figure.

    ``observed_vs_predicted`` (for ``gene``, default the best-covered, best-predicted one),
    ``versus_elastic_net`` and ``difference_from_elastic_net`` when elastic-net results and
    another model exist, ``learning_curve`` when runs on downsampled donors exist.
    """
    figures: dict[str, Figure] = {}
    gene = gene or _figure_gene(summary, predictions)
    if gene is not None:
        figures["observed_vs_predicted"] = observed_vs_predicted(predictions, gene)
    others = set(summary.loc[summary["elastic_net_r2"].notna(), "model"]) - {"elastic_net"}
    if others:
        figures["versus_elastic_net"] = versus_elastic_net(summary)
        figures["difference_from_elastic_net"] = difference_from_elastic_net(summary)
    fractions = metrics.loc[metrics["status"] == "ok", "train_fraction"]
    if fractions.nunique() > 1:
        figures["learning_curve"] = learning_curve(metrics)
    return figures
