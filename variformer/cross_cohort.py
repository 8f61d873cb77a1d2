"""Models trained on one cohort predicting another, for ``variformer evaluate --test-dataset``.

A baseline's linear model is matched to the other cohort's SNVs (:func:`cross_cohort_baseline`);
a fine-tuned run predicts in the mode it was trained in (:func:`cross_cohort_run`; a
haplotype-mode run needs a haplotype dataset: :func:`run_input_mode`); the pre-trained Enformer
goes through :func:`variformer.evaluation_sources.score_enformer`. :func:`score_cross_cohort`
writes each model-fold's predictions inside the evaluation directory.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from core.errors import InputError
from core.runs import find_runs
from core.tables import predictions_table
from variformer.config import recorded_haplotypes
from variformer.evaluation_sources import (
    Source,
    multi_gene_names,
    run_label,
    score_enformer,
    train_fraction,
    write_scored_run,
)

__all__ = ["cross_cohort_baseline", "cross_cohort_run", "run_input_mode", "score_cross_cohort"]


def cross_cohort_baseline(run, ds2) -> pd.DataFrame:
    """A baseline gene-fold's linear model applied to every person of ``ds2`` with expression.

    The coefficients (``coefficients.tsv``) are matched to ``ds2``'s SNVs by chrom, 1-based pos,
    ref and alt; an SNV ``ds2`` lacks contributes dosage 0 (the reference allele).

    Returns
    -------
    pd.DataFrame
        The predictions schema, split ``test``.
    """
    from baselines.run import COEFFICIENTS_TSV
    from core.tables import read_coefficients

    gene = str(run.summary["gene"])
    coef = read_coefficients(run.path / COEFFICIENTS_TSV)
    intercept = float(run.summary["intercept"])
    expression = ds2.expression(gene)
    people = list(expression.index)
    variants = ds2.variants(gene)
    key = ["chrom", "pos", "ref", "alt"]
    joined = variants[key].reset_index().merge(coef[[*key, "coef"]], on=key, how="inner")
    predicted = np.full(len(people), intercept)
    if len(joined):
        dosages = np.asarray(ds2.dosages(gene, samples=people), dtype=np.float64)
        predicted = predicted + dosages[:, joined["index"].to_numpy()] @ joined["coef"].to_numpy()
    return predictions_table(
        people,
        gene=gene,
        split="test",
        observed=expression.to_numpy(np.float64),
        predicted=predicted,
    )


def run_input_mode(run, ds2) -> bool:
    """Whether ``run`` predicts from haplotypes (:func:`~variformer.config.recorded_haplotypes`),
    checked against the dataset ``ds2`` it is to predict.

    Raises
    ------
    InputError
        A run trained in haplotype mode and a ``ds2`` prepared without ``--haplotypes``.
    """
    haplotypes = recorded_haplotypes(run)
    if haplotypes and not getattr(ds2, "haplotype_mode", False):
        raise InputError(
            f"{run.path} was trained in haplotype mode, but the test dataset "
            f"{getattr(ds2, 'path', '')} holds averaged SNV sequences; prepare it with "
            "`variformer prep --haplotypes` (phased VCF)"
        )
    return haplotypes


def cross_cohort_run(run, ds2, *, batch_size: int = 4, device=None) -> pd.DataFrame:
    """A fine-tuned run's model predicting every person of ``ds2`` with expression (its genes),
    in the mode it was trained in (a haplotype-mode run: the mean over each person's two
    haplotypes).

    Returns
    -------
    pd.DataFrame
        The predictions schema, split ``test``.

    Raises
    ------
    InputError
        A run trained in haplotype mode and a ``ds2`` prepared without ``--haplotypes``.
    """
    from variformer.model import Variformer
    from variformer.predict import predict_people

    haplotypes = run_input_mode(run, ds2)
    model = Variformer.load(run.path)
    seq_len = ((run.config or {}).get("data") or {}).get("seq_len")  # the crop it trained on
    frames = []
    for gene in run.summary.get("genes", []):
        if gene not in ds2.genes:
            continue
        expression = ds2.expression(gene)
        people = list(expression.index)
        scored = predict_people(
            model, ds2, gene, people, seq_len=seq_len, batch_size=batch_size, device=device,
            haplotypes=haplotypes,
        )  # fmt: skip
        values = scored.set_index("sample")["predicted"].loc[people].to_numpy()
        frames.append(
            predictions_table(
                people,
                gene=gene,
                split="test",
                observed=expression.to_numpy(np.float64),
                predicted=values,
            )
        )
    return (
        pd.concat(frames, ignore_index=True)
        if frames
        else predictions_table([], gene=[], split=[], observed=[], predicted=[])
    )


def score_cross_cohort(
    *, ds2, directory, runs, baselines, model, fold_list, genes, batch_size, device, say
) -> list[Source]:
    """Every asked model-fold scored on ``ds2`` (another cohort), written under
    ``directory/cross_cohort/<model>/fold<k>[_train<f>]/`` and returned as sources."""
    # (model, fold, train_fraction) -> predictions; a downsampled run is its own model-fold
    tables: dict[tuple[str, int, float], list[pd.DataFrame]] = {}
    wanted = set(genes)
    if baselines is not None:
        for run in find_runs(baselines, kind="baseline"):
            gene = str(run.summary["gene"])
            if run.fold in fold_list and gene in wanted and gene in set(ds2.genes):
                tables.setdefault((str(run.summary["model"]), run.fold, 1.0), []).append(
                    cross_cohort_baseline(run, ds2)
                )
    if runs is not None:
        finetuned = list(find_runs(runs, kind="finetune"))
        multi = multi_gene_names(finetuned)
        for run in finetuned:
            if run.fold not in fold_list:
                continue
            label = run_label(run, multi)
            fraction = train_fraction(run)
            frame = cross_cohort_run(run, ds2, batch_size=batch_size, device=device)
            tables.setdefault((label, run.fold, fraction), []).append(
                frame[frame["gene"].isin(wanted)]
            )
    if model is not None:
        scored = score_enformer(
            model,
            ds2,
            genes=[g for g in genes if g in set(ds2.genes)],
            folds=None,
            batch_size=batch_size,
            device=device,
        )
        for fold in fold_list:
            tables.setdefault(("enformer", fold, 1.0), []).append(scored.drop(columns="fold"))
    sources = []
    for (label, fold, fraction), frames in sorted(tables.items()):
        part = pd.concat(frames, ignore_index=True)
        leaf = f"fold{fold}" if fraction == 1.0 else f"fold{fold}_train{fraction:g}"
        rel = Path("cross_cohort") / label.replace(":", "_") / leaf
        summary = {
            "kind": "cross_cohort",
            "name": label,
            "fold": fold,
            "train_fraction": fraction,
            "test_dataset": str(getattr(ds2, "path", "")),
        }
        write_scored_run(directory / rel, part, summary)
        sources.append(
            Source(label, "cross_cohort", fold, fraction, part, str(rel / "predictions.tsv"))
        )
    say(
        f"cross-cohort: {len(sources)} model-folds scored on {getattr(ds2, 'path', 'the test dataset')}"
    )
    return sources
