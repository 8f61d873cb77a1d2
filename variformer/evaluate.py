"""``variformer evaluate``: every model on the same genes, folds and people, in one tidy table.

Sources (each read from the predictions file it wrote, so every metric can be recomputed):

- fine-tuning runs under ``--runs`` (:mod:`core.runs`, kind ``finetune``): a
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
``status`` (``ok`` or ``missing``), ``source`` (the predictions file), ``learned`` and
``learned_reason`` (False, and why, for a model whose test predictions of a gene are flat). A
model that has some gene-folds of the evaluated grid but not others gets ``missing`` rows (NaN
metrics, n = 0) for the ones it lacks: reported, never guessed.

``summary.tsv`` (:mod:`variformer.evaluation_summary`) sets models side by side only on
matched folds: per gene, the folds every model has, named in its ``folds`` column; the test
people of a gene and fold must be the same for every model, else the evaluation is refused.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from core.errors import InputError
from core.fileio import atomic_dir, check_writable_parent
from core.manifest import dataset_fingerprints
from core.metrics import flat_predictions, gene_metrics, ism_at_rounding_level
from data_prep.keys import normalize_keys
from variformer.config import ENFORMER_BLOOD_TRACK
from variformer.evaluation_sources import Source, gather_sources
from variformer.evaluation_summary import SUMMARY_COLUMNS, check_same_people, summarize

__all__ = [
    "METRICS_COLUMNS",
    "SUMMARY_COLUMNS",
    "Evaluation",
    "check_cohorts_apart",
    "evaluate",
    "evaluate_to_directory",
    "summarize",
    "write_evaluation",
]

#: ``EVAL/evaluation.json``: the dataset (path, fingerprints) the evaluation was made on
EVALUATION_RECORD = "evaluation.json"
#: columns of ``EVAL/metrics.tsv``: the pinned ones, then provenance
METRICS_COLUMNS = ("gene", "fold", "model", "setting", "split", "r2", "pcc", "n")
METRICS_COLUMNS += ("train_fraction", "status", "source", "learned", "learned_reason")
#: columns of ``EVAL/predictions.tsv``: model, setting, fold, train_fraction + the schema
PREDICTIONS_COLUMNS = ("model", "setting", "fold", "train_fraction")
PREDICTIONS_COLUMNS += ("sample", "gene", "split", "observed", "predicted")
SETTINGS = ("hop", "hogp", "cross_cohort")


class Evaluation(NamedTuple):
    """Result of :func:`evaluate`."""

    metrics: pd.DataFrame  # METRICS_COLUMNS, one row per gene x fold x model x setting x split
    summary: pd.DataFrame  # SUMMARY_COLUMNS: matched folds only (evaluation_summary)
    predictions: pd.DataFrame  # PREDICTIONS_COLUMNS, every person's prediction behind metrics
    missing: pd.DataFrame  # gene, fold, model, setting: the gene-folds a model lacks


# ---------------------------------------------------------------- assembling the tables


def _metrics_rows(source: Source, genes: set | None) -> list[dict]:
    preds = source.predictions
    if genes is not None:
        preds = preds[preds["gene"].isin(genes)]
    rows = []
    verdict = _learned(preds)
    for rec in gene_metrics(preds).itertuples(index=False):
        learned, reason = verdict.get(rec.gene, (True, ""))
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
                "learned": learned,
                "learned_reason": reason,
            }
        )
    return rows


def _learned(preds: pd.DataFrame) -> dict[str, tuple[bool, str]]:
    """gene -> (False, reason) for the genes whose test predictions are flat
    (:func:`core.metrics.flat_predictions`): such a model learned nothing about the people,
    and its weights must not be read as findings."""
    verdict = {}
    for gene, part in preds[preds["split"] == "test"].groupby("gene", sort=False):
        reason = flat_predictions(part["predicted"], part["observed"])
        if reason:
            verdict[gene] = (False, reason)
    return verdict


def screen_ism(metrics: pd.DataFrame, predictions: pd.DataFrame, ism_dir) -> pd.DataFrame:
    """``metrics`` with ``learned`` False (and the reason added) where the model's ISM scores
    of the gene and fold (table ``ism_dir/<model>.tsv``; fold -1 = every fold) are at
    float-rounding level of its output scale (its largest |test prediction|)."""
    from variformer.analysis.weights import collect_ism

    scores = collect_ism(ism_dir)
    metrics = metrics.copy()
    for (model, gene, fold), w in scores.groupby(["model", "gene", "fold"], sort=False):
        rows = (metrics["model"] == model) & (metrics["gene"] == gene)
        if fold != -1:
            rows &= metrics["fold"] == fold
        if not rows.any():
            continue
        p = predictions[(predictions["model"] == model) & (predictions["gene"] == gene)]
        if fold != -1:
            p = p[p["fold"] == fold]
        scale = float(p["predicted"].abs().max()) if len(p) else 1.0
        why = ism_at_rounding_level(w["score"], scale)
        if why:
            old = metrics.loc[rows, "learned_reason"].fillna("").astype(str)
            metrics.loc[rows, "learned"] = False
            metrics.loc[rows, "learned_reason"] = [f"{o}; {why}" if o else why for o in old]
    return metrics


def _refuse_duplicates(metrics: pd.DataFrame) -> None:
    """Two predictions tables for one model, setting, gene, fold and train fraction would be
    averaged or mixed downstream: refuse them, naming both files."""
    key = ["model", "setting", "gene", "fold", "train_fraction", "split"]
    dup = metrics.duplicated(key, keep=False)
    if dup.any():
        rows = metrics[dup].sort_values(key, kind="stable")
        first = rows.iloc[0]
        files = sorted(set(rows.loc[(rows[key] == first[key]).all(axis=1), "source"]))
        raise InputError(
            f"{first['model']} has two results for {first['gene']} fold {first['fold']} "
            f"({' and '.join(files)}); keep one of them (move the other out of --runs/--baselines)"
        )


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


def evaluate(
    sources: Sequence[Source],
    *,
    folds: Sequence[int] | None = None,
    genes: Sequence[str] | None = None,
) -> Evaluation:
    """Metrics of every source, the missing gene-folds, and the per-gene matched summary.

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
        ``summary`` from :func:`variformer.evaluation_summary.summarize` (matched folds).

    Raises
    ------
    InputError
        Two results for one model, gene and fold; or two models tested on other people in one
        gene and fold (:func:`variformer.evaluation_summary.check_same_people`).
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
    _refuse_duplicates(metrics)
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
            learned=pd.NA,
            learned_reason="",
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
    check_same_people(predictions)
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


def evaluate_to_directory(
    dataset,
    out: str | os.PathLike,
    *,
    runs: str | os.PathLike | None = None,
    baselines: str | os.PathLike | None = None,
    enformer: str | os.PathLike | None = None,
    track: int = ENFORMER_BLOOD_TRACK,
    folds: Sequence[int] | None = None,
    genes: Sequence[str] | None = None,
    test_dataset=None,
    batch_size: int = 4,
    device: Any = None,
    figure_gene: str | None = None,
    ism: str | os.PathLike | None = None,
    force: bool = False,
    log: Any = None,
) -> tuple[Evaluation, list[str]]:
    """``variformer evaluate``: gather every source, evaluate, publish ``out`` whole.

    Parameters
    ----------
    dataset : GeneDataset
        The dataset the models were trained on; ``test_dataset`` another cohort (optional).
    out : path
        The evaluation directory to create (replaced only with ``force``).
    runs, baselines, enformer, track, folds, genes, batch_size, device
        As for :func:`variformer.evaluation_sources.gather_sources`.
    figure_gene : str, optional
        Gene of the observed-vs-predicted figure.
    ism : path, optional
        Directory of ``<model>.tsv`` ISM tables (``variformer ism``): a model whose largest
        |ISM score| of a gene and fold is at float-rounding level
        (:func:`core.metrics.ism_at_rounding_level`) is marked ``learned`` False too.

    Returns
    -------
    (Evaluation, list of str)
        The tables, and the figure file names written under ``out/figures``.

    Raises
    ------
    InputError
        Nothing to evaluate, ``out`` exists without ``force``, or no predictions were found.
    """
    if not (runs or baselines or enformer):
        raise InputError("nothing to evaluate: pass --runs, --baselines and/or --enformer")
    out = Path(out)
    if out.exists() and not force:
        raise InputError(f"{out} already exists; pass --force to overwrite it")
    check_writable_parent(out)
    if test_dataset is not None:
        check_cohorts_apart(dataset, test_dataset, genes or dataset.genes, log or (lambda _: None))
    with atomic_dir(out, force=force) as tmp:
        sources = gather_sources(
            dataset, tmp, runs=runs, baselines=baselines, enformer=enformer, track=track,
            folds=folds, genes=genes, test_dataset=test_dataset, batch_size=batch_size,
            device=device, log=log,
        )  # fmt: skip
        result = evaluate(sources, folds=folds, genes=genes)
        if ism is not None:
            result = result._replace(metrics=screen_ism(result.metrics, result.predictions, ism))
        if result.metrics.empty:
            raise InputError(
                "found no predictions to evaluate (no finished runs under --runs/--baselines)"
            )
        figures = write_evaluation(result, tmp, figure_gene=figure_gene)
        # what the evaluation was made on, for the report to check against the analysis
        record = {
            "dataset": str(getattr(dataset, "path", "")),
            "dataset_fingerprints": dataset_fingerprints(dataset),
        }
        (tmp / EVALUATION_RECORD).write_text(json.dumps(record, indent=1) + "\n")
    return result, figures


def check_cohorts_apart(ds, ds2, genes: Sequence[str], say: Callable[[str], None]) -> None:
    """A cross-cohort test needs other people: refuse shared samples; warn per gene when fewer
    than half of the test cohort's SNVs are SNVs of the training cohort (the models never saw
    the rest, so the test measures little of what they learned)."""
    shared = sorted(set(ds.samples) & set(ds2.samples))
    if shared:
        raise InputError(
            f"the test cohort {getattr(ds2, 'path', '')} shares {len(shared)} people with the "
            f"training cohort {getattr(ds, 'path', '')} (e.g. {shared[0]}); a cross-cohort "
            "test needs people the models were not trained or tuned on"
        )
    keys = ["chrom", "pos", "ref", "alt"]
    for gene in (g for g in genes if g in set(ds2.genes) and g in set(ds.genes)):
        test = set(map(tuple, normalize_keys(ds2.variants(gene))[keys].itertuples(index=False)))
        train = set(map(tuple, normalize_keys(ds.variants(gene))[keys].itertuples(index=False)))
        if test and len(test & train) < 0.5 * len(test):
            say(
                f"warning: only {len(test & train) / len(test):.0%} of {gene}'s {len(test)} SNVs "
                "in the test cohort are SNVs of the training cohort"
            )
