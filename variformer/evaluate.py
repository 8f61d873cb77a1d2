"""``variformer evaluate``: every model on the same genes, folds and people, in one tidy table.

Sources (each read from the predictions file it wrote, so every metric can be recomputed):

- fine-tuning runs under ``--runs`` (:mod:`variformer.runs`, kind ``finetune``): a
  single-gene run is model ``variformer``, a multi-gene run ``variformer_multi`` (with the
  run name appended, ``variformer_multi:<name>``, when several multi-gene runs exist); genes a
  multi-gene run held out of training (``summary.json`` ``heldout_genes``) are setting
  ``hogp``, its other genes ``hop``; runs on a downsampled train set keep their
  ``train_fraction`` (learning curves);
- linear baselines under ``--baselines`` (kind ``baseline``): model ``elastic_net``, ``lasso``
  or ``ridge``, setting ``hop``;
- pre-trained Enformer (``--enformer``), scored here through the one inference path
  (:func:`variformer.predict.predict_people`) on each fold's tune and test people: the CAGE
  track (4950 blood, 4980 brain) of the human head summed over the 3 centre bins
  (:class:`variformer.predict.CenterBins`); model ``enformer``, setting ``hop`` (Enformer was
  never trained on people);
- ``--test-dataset DS2``: baselines (their coefficients applied to DS2's dosages, matched by
  chrom/pos/ref/alt; an SNV DS2 lacks counts as dosage 0), fine-tuned runs and Enformer
  predicting every DS2 person with expression; setting ``cross_cohort``, split ``test``.

``metrics.tsv`` is long: ``gene, fold, model, setting, split, r2, pcc, n`` (R2 by
``sklearn.metrics.r2_score``, PCC by ``scipy.stats.pearsonr``), then ``train_fraction``,
``status`` (``ok`` or ``missing``) and ``source`` (the predictions file). A model that has some
gene-folds of the evaluated grid but not others gets ``missing`` rows (NaN metrics, n = 0) for
the ones it lacks: reported, never guessed.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from variformer.metrics import gene_metrics, nanmean
from variformer.runs import find_runs

__all__ = [
    "METRICS_COLUMNS",
    "SUMMARY_COLUMNS",
    "Evaluation",
    "Source",
    "collect",
    "evaluate",
    "summarize",
    "write_evaluation",
]

#: columns of ``EVAL/metrics.tsv``: the pinned ones, then provenance
METRICS_COLUMNS = ("gene", "fold", "model", "setting", "split", "r2", "pcc", "n")
METRICS_COLUMNS += ("train_fraction", "status", "source")
#: columns of ``EVAL/summary.tsv``
SUMMARY_COLUMNS = ("gene", "model", "setting", "r2", "pcc", "n_folds")
SUMMARY_COLUMNS += ("elastic_net_r2", "elastic_net_pcc")
#: columns of ``EVAL/predictions.tsv``: model, setting, fold, train_fraction + the schema
PREDICTIONS_COLUMNS = ("model", "setting", "fold", "train_fraction")
PREDICTIONS_COLUMNS += ("sample", "gene", "split", "observed", "predicted")
SETTINGS = ("hop", "hogp", "cross_cohort")


class Evaluation(NamedTuple):
    """Result of :func:`evaluate`."""

    metrics: pd.DataFrame  # METRICS_COLUMNS, one row per gene x fold x model x setting x split
    summary: pd.DataFrame  # SUMMARY_COLUMNS
    predictions: pd.DataFrame  # PREDICTIONS_COLUMNS, every person's prediction behind metrics
    missing: pd.DataFrame  # gene, fold, model, setting: the gene-folds a model lacks


class Source(NamedTuple):
    model: str
    setting: str
    fold: int
    train_fraction: float
    predictions: pd.DataFrame  # schema columns
    source: str  # path of the predictions file (or a description)


# ---------------------------------------------------------------- reading sources


def _train_fraction(run) -> float:
    data = (run.config or {}).get("data") or (run.summary.get("config") or {}).get("data") or {}
    value = data.get("train_fraction", 1.0)
    return float(1.0 if value is None else value)


def _finetune_sources(runs: str | os.PathLike) -> list[Source]:
    found = list(find_runs(runs, kind="finetune"))
    multi_names = sorted({r.name for r in found if len(r.summary.get("genes", [])) > 1})
    sources = []
    for run in found:
        genes = list(run.summary.get("genes", []))
        heldout = set(run.summary.get("heldout_genes", []) or [])
        if len(genes) > 1:
            model = "variformer_multi"
            if len(multi_names) > 1:
                model += f":{run.name}"
        else:
            model = "variformer"
        fraction = _train_fraction(run)
        in_heldout = run.predictions["gene"].isin(heldout)
        for setting, mask in (("hop", ~in_heldout), ("hogp", in_heldout)):
            rows = run.predictions[mask]
            if len(rows):
                path = str(run.path / "predictions.tsv")
                sources.append(Source(model, setting, int(run.fold), fraction, rows, path))
    return sources


def _baseline_sources(baselines: str | os.PathLike) -> list[Source]:
    sources = []
    for run in find_runs(baselines, kind="baseline"):
        model = str(run.summary.get("model", Path(run.path).parents[1].name))
        path = str(run.path / "predictions.tsv")
        sources.append(Source(model, "hop", int(run.fold), 1.0, run.predictions, path))
    return sources


def collect(
    *, runs: str | os.PathLike | None = None, baselines: str | os.PathLike | None = None
) -> list[Source]:
    """Every predictions table under ``runs`` (fine-tuning) and ``baselines``."""
    sources = []
    if runs is not None:
        sources += _finetune_sources(runs)
    if baselines is not None:
        sources += _baseline_sources(baselines)
    return sources


# ---------------------------------------------------------------- assembling the tables


def _metrics_rows(source: Source, genes: set | None) -> list[dict]:
    preds = source.predictions
    if genes is not None:
        preds = preds[preds["gene"].isin(genes)]
    rows = []
    for rec in gene_metrics(preds).itertuples(index=False):
        rows.append(
            {
                "gene": rec.gene,
                "fold": source.fold,
                "model": source.model,
                "setting": source.setting,
                "split": rec.split,
                "r2": rec.r2,
                "pcc": rec.pcc,
                "n": int(rec.n),
                "train_fraction": source.train_fraction,
                "status": "ok",
                "source": source.source,
            }
        )
    return rows


def _missing(metrics: pd.DataFrame, folds: Sequence[int] | None) -> pd.DataFrame:
    """Gene-folds a model lacks within the grid it is expected to cover.

    The grid of a single-gene model (everything but ``variformer_multi*``) is the genes seen
    in any ``hop`` source x the folds; a multi-gene model's grid is its own genes x folds.
    """
    ok = metrics[
        (metrics["status"] == "ok")
        & (metrics["train_fraction"] == 1.0)
        & (metrics["setting"] != "cross_cohort")
    ]
    if ok.empty:
        return pd.DataFrame(columns=["gene", "fold", "model", "setting"])
    fold_list = sorted(set(ok["fold"])) if folds is None else list(folds)
    hop_genes = sorted(set(ok.loc[ok["setting"] == "hop", "gene"]))
    rows = []
    for model, part in ok.groupby("model", sort=True):
        multi = str(model).startswith("variformer_multi")
        for setting in ("hop", "hogp"):
            if setting == "hogp" and not multi:
                continue
            have = set(zip(part.loc[part["setting"] == setting, "gene"], part["fold"]))
            genes = (
                sorted(set(part.loc[part["setting"] == setting, "gene"]))
                if multi
                else (hop_genes if setting == "hop" else [])
            )
            for gene in genes:
                for fold in fold_list:
                    if (gene, fold) not in have:
                        rows.append(
                            {"gene": gene, "fold": fold, "model": model, "setting": setting}
                        )
    return pd.DataFrame(rows, columns=["gene", "fold", "model", "setting"])


def summarize(metrics: pd.DataFrame) -> pd.DataFrame:
    """Per gene, model and setting: mean test R2 and PCC over folds, beside elastic net's.

    Only ``status == ok`` rows of the ``test`` split with ``train_fraction == 1`` count.

    Returns
    -------
    pd.DataFrame
        Columns :data:`SUMMARY_COLUMNS`; ``elastic_net_*`` is the gene's elastic-net
        (``hop``) mean over folds, NaN without one.
    """
    test = metrics[
        (metrics["status"] == "ok")
        & (metrics["split"] == "test")
        & (metrics["train_fraction"] == 1.0)
    ]
    if test.empty:
        return pd.DataFrame(columns=list(SUMMARY_COLUMNS))
    grouped = test.groupby(["gene", "model", "setting"], sort=True)
    table = grouped.agg(
        r2=("r2", nanmean), pcc=("pcc", nanmean), n_folds=("fold", "nunique")
    ).reset_index()
    en = test[(test["model"] == "elastic_net") & (test["setting"] == "hop")]
    en = en.groupby("gene").agg(elastic_net_r2=("r2", nanmean), elastic_net_pcc=("pcc", nanmean))
    table = table.merge(en, left_on="gene", right_index=True, how="left")
    return table[list(SUMMARY_COLUMNS)].reset_index(drop=True)


def evaluate(
    sources: Sequence[Source],
    *,
    folds: Sequence[int] | None = None,
    genes: Sequence[str] | None = None,
) -> Evaluation:
    """Metrics of every source, the missing gene-folds, and the per-gene summary.

    Parameters
    ----------
    sources : sequence
        From :func:`collect` (plus Enformer / cross-cohort sources built by the command).
    folds : sequence of int, optional
        Keep these folds (cross-cohort sources are kept whatever their fold).
    genes : sequence of str, optional
        Keep these genes.

    Returns
    -------
    Evaluation
    """
    fold_set = None if folds is None else {int(k) for k in folds}
    gene_set = None if genes is None else set(genes)
    rows: list[dict[str, Any]] = []
    frames = []
    for source in sources:
        if (
            fold_set is not None
            and source.setting != "cross_cohort"
            and source.fold not in fold_set
        ):
            continue
        rows += _metrics_rows(source, gene_set)
        preds = source.predictions
        if gene_set is not None:
            preds = preds[preds["gene"].isin(gene_set)]
        frames.append(
            preds.assign(
                model=source.model,
                setting=source.setting,
                fold=source.fold,
                train_fraction=source.train_fraction,
            )[list(PREDICTIONS_COLUMNS)]
        )
    metrics = pd.DataFrame(rows, columns=list(METRICS_COLUMNS))
    missing = _missing(metrics, folds)
    if len(missing):
        gap = missing.assign(
            split="test",
            r2=np.nan,
            pcc=np.nan,
            n=0,
            train_fraction=1.0,
            status="missing",
            source="",
        )
        metrics = pd.concat([metrics, gap[list(METRICS_COLUMNS)]], ignore_index=True)
    if len(metrics):
        metrics["_s"] = metrics["setting"].map({s: i for i, s in enumerate(SETTINGS)})
        metrics = metrics.sort_values(
            ["_s", "gene", "fold", "model", "train_fraction", "split"], kind="stable"
        )
        metrics = metrics.drop(columns="_s").reset_index(drop=True)
    metrics = metrics.astype({"fold": np.int64, "n": np.int64})
    predictions = (
        pd.concat(frames, ignore_index=True)
        if frames
        else pd.DataFrame(columns=list(PREDICTIONS_COLUMNS))
    )
    return Evaluation(
        metrics=metrics, summary=summarize(metrics), predictions=predictions, missing=missing
    )


def write_evaluation(
    result: Evaluation, directory: str | os.PathLike, *, figure_gene: str | None = None
) -> list[str]:
    """Write the tables and figures of ``result`` into ``directory`` (which exists).

    Writes ``metrics.tsv``, ``summary.tsv``, ``predictions.tsv``, ``missing.tsv`` and
    ``figures/*.png`` (:mod:`variformer.report.figures`); returns the figure file names.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from variformer.report import figures

    directory = Path(directory)
    tsv = {"sep": "\t", "index": False, "na_rep": "NA"}
    result.metrics.to_csv(directory / "metrics.tsv", **tsv)
    result.summary.to_csv(directory / "summary.tsv", **tsv)
    result.predictions.to_csv(directory / "predictions.tsv", **tsv)
    result.missing.to_csv(directory / "missing.tsv", **tsv)
    (directory / "figures").mkdir(exist_ok=True)
    made = []
    for name, fig in figures.evaluation_figures(
        result.metrics, result.summary, result.predictions, gene=figure_gene
    ).items():
        fig.savefig(directory / "figures" / f"{name}.png", dpi=120, bbox_inches="tight")
        plt.close(fig)
        made.append(f"{name}.png")
    return made
