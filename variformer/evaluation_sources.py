"""Scoring models that have no predictions file yet, for ``variformer evaluate``.

Pre-trained Enformer (:func:`score_enformer`, through the one inference path
:func:`variformer.predict.predict_people`) and models trained on one cohort applied to
another (:mod:`variformer.cross_cohort`). :func:`gather_sources`
reads every finished run, scores what was asked, writes those new predictions as files inside
the evaluation directory and returns everything as :class:`Source` s. :func:`collect` reads the predictions of finished runs
and baselines.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from core.manifest import check_made_from
from core.runs import find_runs, provenance, write_summary
from core.tables import predictions_table, write_predictions
from variformer.config import ENFORMER_BLOOD_TRACK, recorded_haplotypes

__all__ = [
    "Source",
    "check_sources_match",
    "collect",
    "gather_sources",
    "multi_gene_names",
    "run_label",
    "score_enformer",
    "train_fraction",
    "write_scored_run",
]


class Source(NamedTuple):
    """One predictions table to evaluate: a model's predictions in one setting and fold."""

    model: str
    setting: str
    fold: int
    train_fraction: float
    predictions: pd.DataFrame  # schema columns
    source: str  # path of the predictions file (or a description)


# ---------------------------------------------------------------- finished runs


def train_fraction(run) -> float:
    """The fraction of the fold's train people a fine-tuning run used (1.0: all of them)."""
    data = (run.config or {}).get("data") or (run.summary.get("config") or {}).get("data") or {}
    value = data.get("train_fraction", 1.0)
    return float(1.0 if value is None else value)


def run_label(run, multi_names: Sequence[str]) -> str:
    """A fine-tuning run's model name: ``variformer`` for a single-gene run,
    ``variformer_multi`` for a multi-gene one (``variformer_multi:<name>`` when ``multi_names``,
    the names of every multi-gene run evaluated together, has several); a run trained in
    haplotype mode (:func:`~variformer.config.recorded_haplotypes`) adds ``_haplotypes``
    (``variformer_haplotypes``, ``variformer_multi_haplotypes[:<name>]``), so both modes'
    runs of a gene can be evaluated side by side."""
    mode = "_haplotypes" if recorded_haplotypes(run) else ""
    if len(run.summary.get("genes", [])) <= 1:
        return "variformer" + mode
    return "variformer_multi" + mode + (f":{run.name}" if len(multi_names) > 1 else "")


def multi_gene_names(runs) -> list[str]:
    """Names of the multi-gene runs among ``runs``."""
    return sorted({r.name for r in runs if len(r.summary.get("genes", [])) > 1})


def _finetune_sources(runs: str | os.PathLike) -> list[Source]:
    found = list(find_runs(runs, kind="finetune"))
    multi_names = multi_gene_names(found)
    sources = []
    for run in found:
        heldout = set(run.summary.get("heldout_genes", []) or [])
        model = run_label(run, multi_names)
        fraction = train_fraction(run)
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


def check_sources_match(sources: Sequence[Source], ds) -> int:
    """Refuse runs and baselines made from another dataset than ``ds``
    (:func:`core.manifest.check_made_from`); returns how many record no fingerprints."""
    directories = dict.fromkeys(str(Path(s.source).parent) for s in sources)
    return sum(not check_made_from(d, ds, verb="evaluate") for d in directories)


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


# ---------------------------------------------------------------- models scored here


def _people(ds, gene: str, names: Sequence[str]) -> list[str]:
    have = set(ds.expression(gene).index)
    return [s for s in names if s in have]


def score_enformer(
    model,
    ds,
    *,
    genes: Sequence[str],
    folds: Sequence[int] | None = None,
    splits: Sequence[str] = ("tune", "test"),
    batch_size: int = 4,
    device=None,
) -> pd.DataFrame:
    """Predictions of a per-sequence model (e.g. a :class:`CenterBins`-wrapped Enformer).

    Parameters
    ----------
    model : torch.nn.Module
        Maps sequences (b, L, 4) to (b,).
    ds : GeneDataset
    genes : sequence of str
    folds : sequence of int, optional
        Each fold's ``splits`` people; None scores every person with expression once
        (``split='test'``, fold -1), as for an external test cohort.
    splits : sequence of str
    batch_size : int
    device : optional
        Default: CUDA if available.

    Returns
    -------
    pd.DataFrame
        ``fold`` plus the predictions schema (sample, gene, split, observed, predicted).
    """
    from variformer.predict import predict_people

    frames = []
    cache: dict[tuple[str, str], float] = {}
    for gene in genes:
        expression = ds.expression(gene)
        plan = (
            [(-1, "test", list(expression.index))]
            if folds is None
            else [(k, s, _people(ds, gene, ds.split(k)[s])) for k in folds for s in splits]
        )
        # a person's prediction does not depend on the fold: score each person once
        todo = [p for _, _, people in plan for p in people if (gene, p) not in cache]
        todo = list(dict.fromkeys(todo))
        if todo:
            scored = predict_people(model, ds, gene, todo, batch_size=batch_size, device=device)
            cache.update(
                {(gene, p): float(v) for p, v in zip(scored["sample"], scored["predicted"])}
            )
        for fold, split, people in plan:
            table = predictions_table(
                people,
                gene=gene,
                split=split,
                observed=expression.loc[people].to_numpy(np.float64),
                predicted=[cache[(gene, p)] for p in people],
            )
            frames.append(table.assign(fold=fold))
    if not frames:
        return pd.DataFrame(columns=["fold", "sample", "gene", "split", "observed", "predicted"])
    return pd.concat(frames, ignore_index=True)


def write_scored_run(directory: Path, predictions: pd.DataFrame, summary: dict) -> str:
    directory.mkdir(parents=True, exist_ok=True)
    write_predictions(predictions, directory / "predictions.tsv")
    write_summary(directory, summary)
    return str(directory / "predictions.tsv")


def gather_sources(
    ds,
    directory: str | os.PathLike,
    *,
    runs: str | os.PathLike | None = None,
    baselines: str | os.PathLike | None = None,
    enformer: str | os.PathLike | None = None,
    track: int = ENFORMER_BLOOD_TRACK,
    folds: Sequence[int] | None = None,
    genes: Sequence[str] | None = None,
    test_dataset=None,
    batch_size: int = 4,
    device=None,
    log: Callable[[str], None] | None = None,
) -> list[Source]:
    """Every predictions table to evaluate; new ones are written under ``directory``.

    Enformer's predictions go to ``directory/enformer/fold<k>/`` and cross-cohort predictions
    to ``directory/cross_cohort/<model>/fold<k>/`` (``predictions.tsv`` + ``summary.json``);
    their :attr:`Source.source` is relative to ``directory``.

    Parameters
    ----------
    ds : GeneDataset
        The dataset the models were trained on (Enformer is scored on its people).
    directory : str or os.PathLike
        The evaluation directory being written.
    runs, baselines : optional
        Directories of fine-tuning runs and of baselines.
    enformer : str or os.PathLike, optional
        Hub id or local directory of pre-trained Enformer weights.
    track : int
    folds, genes : optional
        Restrict what is scored (default: every fold of ``ds``; the genes of the runs and
        baselines, or every gene of ``ds`` when there are none).
    test_dataset : GeneDataset, optional
        External cohort for the ``cross_cohort`` setting.
    batch_size, device
        For the neural networks.
    log : callable, optional

    Returns
    -------
    list of Source
    """
    from variformer.cross_cohort import run_input_mode, score_cross_cohort

    directory = Path(directory)
    say = log or (lambda line: None)
    fold_list = list(range(ds.n_folds)) if folds is None else [int(k) for k in folds]
    for fold in fold_list:
        ds.split(fold)  # unknown fold -> InputError
    for gene in genes or []:
        ds.window(gene)  # unknown gene -> InputError
    sources = collect(runs=runs, baselines=baselines)
    if test_dataset is not None and runs is not None:
        for run in find_runs(runs, kind="finetune"):
            run_input_mode(run, test_dataset)  # refused before anything is scored
    unchecked = check_sources_match(sources, ds)
    if unchecked:
        say(
            f"{unchecked} run(s) record no input fingerprints (made by an older version): "
            "they could not be checked against --dataset"
        )
    say(
        f"read {len(sources)} predictions tables from {', '.join(str(p) for p in (runs, baselines) if p)}"
    )
    if genes is None:
        known = set(ds.genes)
        seen = [g for s in sources for g in s.predictions["gene"] if g in known]
        genes = list(dict.fromkeys(seen)) or list(ds.genes)
    meta = {"dataset": getattr(ds, "path", None)}

    model = None
    if enformer is not None:
        from variformer.predict import load_enformer_track

        model = load_enformer_track(enformer, track=track)
        say(
            f"scoring Enformer {enformer} (human track {track}, 3 centre bins) on {len(genes)} genes"
        )
        scored = score_enformer(
            model, ds, genes=genes, folds=fold_list, batch_size=batch_size, device=device
        )
        for fold in fold_list:
            part = scored[scored["fold"] == fold].drop(columns="fold").reset_index(drop=True)
            rel = Path("enformer") / f"fold{fold}"
            summary = {
                "kind": "enformer",
                "name": "enformer",
                "fold": fold,
                "weights": str(enformer),
                "track": track,
                "n_bins": 3,
                **provenance({k: v for k, v in meta.items() if isinstance(v, (str, os.PathLike))}),
            }
            write_scored_run(directory / rel, part, summary)
            sources.append(Source("enformer", "hop", fold, 1.0, part, str(rel / "predictions.tsv")))

    if test_dataset is not None:
        sources += score_cross_cohort(
            ds2=test_dataset,
            directory=directory,
            runs=runs,
            baselines=baselines,
            model=model,
            fold_list=fold_list,
            genes=genes,
            batch_size=batch_size,
            device=device,
            say=say,
        )
    return sources
