"""``variformer analyze``: every analysis for every model, written as tidy TSVs in one directory.

Reads a dataset, ISM tables, baselines and optional annotations, and writes into ``out`` (built
privately and published only when complete, :func:`core.fileio.atomic_dir`):

==========================  ============================================================
``hsvs.tsv``                top-k SNVs per gene and model, weights and k of ``hsv_fold``
                            (:mod:`~variformer.analysis.hsv`)
``hsv_tests.tsv``           TSS distance / MAF of HSVs between models (Mann-Whitney, KS)
``hsv_jaccard.tsv``         HSV overlap between models
``drivers.tsv``             the authors' forward-selected drivers (:mod:`~variformer.analysis.drivers`)
``driver_summary.tsv``      per model, gene and fold: status, number of drivers, driver fit
``sign_agreement.tsv``      signs vs elastic net (:mod:`~variformer.analysis.signs`)
``motifs.tsv``              motif hits at HSVs and drivers (:mod:`~variformer.analysis.motifs`)
``motif_summary.tsv``       per model: rate of motif-disrupting HSVs / drivers
``chromatin.tsv``           ChromHMM state enrichment (with ``chromhmm``)
``model_tests.tsv``         between-model tests with BH p and stars (:mod:`~.model_tests`)
``eqtl_auroc.tsv``          fine-mapped eQTL auROC/auPR per model (with ``finemap`` + ``eqtls``)
``truth_auroc.tsv``         the same against true causal SNVs (with ``truth``)
``weights.tsv``             the ``hsv_fold`` weight of every SNV and model, every gene (figures)
``attributions.tsv``        standardized attributions around HSVs/drivers vs controls (Fig. S10;
                            with ``runs`` / ``enformer``: loads the models), per SNV and fold
``attribution_summary.tsv`` its mean over replicates and SNVs, with bootstrap 95% intervals
``analysis.json``           inputs, the screens (models that learned nothing, the Variformer
                            R2 gene filter), what was skipped and why
==========================  ============================================================
Per-gene auROC tables sit beside the model tables (``*_auroc_genes.tsv``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import pandas as pd

from core.errors import InputError
from core.fileio import atomic_dir
from core.tables import read_predictions
from data_prep import open_dataset
from variformer.analysis import chromatin, drivers, eqtl, hsv, model_tests, screening, signs
from variformer.analysis.record import analysis_record
from variformer.analysis.weights import (
    collect_baseline_summary,
    collect_coefficients,
    collect_ism,
    collect_predictions,
    fold_weights,
    model_weights,
)

if TYPE_CHECKING:
    from data_prep.dataset import GeneDataset

__all__ = ["Analysis", "AnalysisInputs", "AnalysisOptions", "analyze"]


class Analysis(NamedTuple):
    """Every table ``analyze`` wrote (None where an input was not given) and the skip notes."""

    out: Path
    weights: pd.DataFrame
    hsvs: pd.DataFrame
    hsv_tests: pd.DataFrame
    hsv_jaccard: pd.DataFrame
    drivers: pd.DataFrame
    driver_summary: pd.DataFrame
    sign_agreement: pd.DataFrame
    motifs: pd.DataFrame | None
    motif_summary: pd.DataFrame | None
    chromatin: pd.DataFrame | None
    eqtl_auroc: pd.DataFrame | None
    truth_auroc: pd.DataFrame | None
    notes: list[str]
    attributions: pd.DataFrame | None = None
    learned: pd.DataFrame | None = None
    model_tests: pd.DataFrame | None = None
    attribution_summary: pd.DataFrame | None = None


def _write(df: pd.DataFrame, path: Path) -> None:
    df.to_csv(path, sep="\t", index=False, float_format="%.6g", na_rep="NA")


def _motif_tables(ds, genes, hsvs, drivers_df, opt: AnalysisOptions, notes: list[str]):
    """``motifs.tsv`` and ``motif_summary.tsv`` (None, None without the motifs module)."""
    try:
        from variformer.analysis import motifs
    except ImportError:
        notes.append(
            "motifs: skipped (variformer.analysis.motifs is not installed in this version)"
        )
        return None, None
    pwms = motifs.load_motifs(jaspar_release=opt.jaspar_release, meme=opt.meme)
    keys = ["gene", "chrom", "pos", "ref", "alt"]
    variants = pd.concat([hsvs[keys], drivers_df[keys]], ignore_index=True).drop_duplicates()
    hits = motifs.dataset_motif_disruption(
        ds, genes, pwms, variants=variants, pvalue=opt.motif_pvalue,
        background=opt.motif_background, method=opt.motif_method,
    )  # fmt: skip
    summary = [motifs.summarize_disruption(hits, hsvs).assign(variants="hsv")]
    if len(drivers_df):
        d = drivers_df[["model", *keys]].drop_duplicates()
        summary.append(motifs.summarize_disruption(hits, d).assign(variants="driver"))
    summary = pd.concat(summary, ignore_index=True)
    return hits, summary[["variants", *[c for c in summary.columns if c != "variants"]]]


@dataclass(frozen=True)
class AnalysisInputs:
    """What :func:`analyze` reads.

    Attributes
    ----------
    dataset : path or GeneDataset
        ``variformer prep`` output.
    ism : path
        Directory of ``<model>.tsv`` ISM tables (model = file stem).
    baselines : path
        ``variformer baselines`` output (``<model>/summary.tsv`` and per gene/fold tables).
    runs : path, optional
        Fine-tuning runs directory: its test-people predictions give Variformer's drivers
        (the model named ``variformer``), its models the attributions.
    predictions : sequence of (model, path)
        More per-person prediction tables (``sample, gene, split, observed, predicted`` and
        optionally ``fold``; without ``fold`` the rows serve every fold), e.g. pre-trained
        Enformer's.
    finemap : path, optional
        GTEx CAVIAR high-confidence table -> ``eqtl_auroc.tsv``.
    finemap_tissue : str, optional
        Keep only this ``TISSUE`` of ``finemap`` (default: every row).
    eqtls : path, optional
        GTEx ``*.signif_variant_gene_pairs.txt.gz``-style table: the pool of eQTLs whose
        non-fine-mapped members are the distance-matched negatives of ``eqtl_auroc.tsv``.
    chromhmm : sequence of path
        ChromHMM segmentation BEDs, one per annotation sample -> ``chromatin.tsv``.
    truth : path, optional
        Simulated ``truth.tsv`` -> ``truth_auroc.tsv``.
    enformer : str or path, optional
        Pre-trained Enformer (hub id or ``save_pretrained`` directory): its attributions too.
    enformer_track : int, default 4950
        Its human-head track, summed over the 3 centre bins (4950: CAGE blood).
    genes : sequence of str, optional
        Restrict to these genes (default: every gene with weights).
    """

    dataset: str | Path | GeneDataset
    ism: str | Path
    baselines: str | Path
    runs: str | Path | None = None
    predictions: Sequence[tuple[str, str | Path]] = ()
    finemap: str | Path | None = None
    finemap_tissue: str | None = None
    eqtls: str | Path | None = None
    chromhmm: Sequence[str | Path] = ()
    truth: str | Path | None = None
    genes: Sequence[str] | None = None
    enformer: str | Path | None = None
    enformer_track: int = 4950


@dataclass(frozen=True)
class AnalysisOptions:
    """How :func:`analyze` runs (the defaults are the paper's).

    Attributes
    ----------
    hsv_model : str, default "elastic_net"
        Baseline whose ``n_nonzero`` sets the HSV count per gene.
    hsv_fold : int or "mean", default 0
        The replicate whose weights and ``n_nonzero`` give the HSVs, signs, chromatin and eQTL
        tables (the paper: the first split); "mean" averages the weights over folds (labelled
        ``mean`` in every such table). Drivers always use each fold's own weights and people.
    min_r2 : float or None, default 0.2
        Keep genes whose Variformer test R2, averaged over its folds, exceeds this (the paper's
        "42/301 genes with Variformer R2 > 0.2"); None keeps every gene. Without Variformer
        predictions (``runs``) no gene can be judged and every gene is kept, with a note.
    sign_threshold : float, default 0.05
        |elastic-net coefficient| above which an SNV counts in the sign agreement.
    n_negatives : int, default 5
        Distance-matched negative SNVs per positive in the auROC tables.
    eqtl_negatives : {"eqtl", "any-snv"}, default "eqtl"
        Negatives of ``eqtl_auroc.tsv``: non-fine-mapped eQTLs of ``eqtls`` (the paper), or
        any observed SNV of the window (only when asked for; rows labelled ``any-snv``).
    motifs : bool, default True
        Scan HSVs and drivers for motif disruption -> ``motifs.tsv``, ``motif_summary.tsv``.
    motif_method : {"default", "ic", "log"}, default "default"
        motifbreakR's scoring method (the paper used ``default``).
    motif_pvalue : float, default 5e-5
        p-value of a motif hit (REF or ALT).
    motif_background : {"uniform", "window"}, default "uniform"
        PWM background: uniform, or each window's base composition.
    jaspar_release : int or str, default 2024
        JASPAR release (pyjaspar, offline).
    meme : path, optional
        MEME motif file (e.g. HOCOMOCO) instead of JASPAR.
    attributions : bool, default True
        With ``runs`` / ``enformer``: gradient x input of each run's model and of Enformer
        around their HSVs, drivers and matched controls -> ``attributions.tsv`` (Fig. S10).
    attribution_genes : int or None, default 15
        Genes drawn at random (seeded) from those passing ``min_r2`` for it; None: all.
    attribution_flank : int, default 100
        Bases either side of each SNV in ``attributions.tsv``.
    device : str, optional
        Torch device for the attributions (default: a GPU if there is one).
    permutations : int, default 20000
        Draws of each ChromHMM permutation test in ``model_tests.tsv`` (p >= 1 / (1 + this)).
    seed : int, default 0
        Seed of the negative sampling, the attribution controls and the permutation tests.
    """

    hsv_model: str = "elastic_net"
    hsv_fold: int | str = 0
    min_r2: float | None = 0.2
    sign_threshold: float = 0.05
    n_negatives: int = 5
    eqtl_negatives: str = "eqtl"
    motifs: bool = True
    motif_method: str = "default"
    motif_pvalue: float = 5e-5
    motif_background: str = "uniform"
    jaspar_release: int | str = 2024
    meme: str | Path | None = None
    attributions: bool = True
    attribution_genes: int | None = 15
    attribution_flank: int = 100
    device: str | None = None
    permutations: int = 20000
    seed: int = 0


def analyze(
    inputs: AnalysisInputs,
    *,
    out: str | Path,
    options: AnalysisOptions = AnalysisOptions(),
    force: bool = False,
) -> Analysis:
    """Run every analysis and publish the tables in ``out``.

    Parameters
    ----------
    inputs : AnalysisInputs
        The dataset, ISM tables, baselines and optional annotations.
    out : path
        New directory (replaced only with ``force``).
    options : AnalysisOptions
        HSV model, thresholds, motif and attribution settings, seed.
    force : bool, default False
        Replace ``out`` if it exists.

    Returns
    -------
    Analysis

    Raises
    ------
    InputError
        ``out`` exists without ``force``, a gene is not in the dataset, or no ISM score or
        coefficient matches a dataset gene.

    Examples
    --------
    >>> inputs = AnalysisInputs("DS", "ISM", "BL", runs="RUNS", finemap="caviar.txt")
    >>> analyze(inputs, out="AN", options=AnalysisOptions(motifs=False))  # doctest: +SKIP
    """
    inp, opt = inputs, options
    ds = open_dataset(inp.dataset) if isinstance(inp.dataset, str | Path) else inp.dataset
    out = Path(out)
    if out.exists() and not force:
        raise InputError(f"{out} already exists; pass --force to overwrite it")
    notes: list[str] = []
    fold = _hsv_fold(opt.hsv_fold, ds)
    ism_df, coefs, summary = _read_weights(inp, ds, notes)
    per_fold = fold_weights(ism_df, coefs)
    preds = _predictions(inp, ds)
    scr = screening.screen(per_fold, preds, ism_models=set(ism_df["model"]), min_r2=opt.min_r2)
    notes += scr.notes
    ism_df, coefs, per_fold = scr.keep(ism_df), scr.keep(coefs), scr.keep(per_fold)
    every_gene = model_weights(ism_df, coefs, ds, fold=fold)
    if every_gene.empty:
        raise InputError(
            "no ISM score or coefficient matches a dataset gene; check --ism, --baselines and --dataset"
        )
    absent = sorted(set(per_fold["model"]) - set(every_gene["model"]))
    if absent and fold is not None:
        notes.append(f"no fold-{fold} weights for {', '.join(absent)}: no HSVs (see --hsv-fold)")
    gene_list = [g for g in ds.genes if g in set(every_gene["gene"]) and scr.passes(g)]
    weights = every_gene[every_gene["gene"].isin(gene_list)].reset_index(drop=True)

    k = hsv.hsv_counts(summary, model=opt.hsv_model, fold=fold)
    no_k = [g for g in gene_list if g not in k.index]
    if no_k:
        where = "" if fold is None else f" in fold {fold}"
        notes.append(f"no {opt.hsv_model} n_nonzero{where} for {', '.join(no_k)}: no HSVs there")
    hsvs = hsv.select_hsvs(weights, k)
    hsv_tests = hsv.compare_hsvs(hsvs)
    jaccard = hsv.hsv_jaccard(hsvs)

    drv, drv_summary = drivers.dataset_drivers(
        per_fold[per_fold["gene"].isin(gene_list)], preds, ds, models=set(ism_df["model"])
    )
    drv_summary = scr.not_learned_rows(drv_summary, gene_list, ds.n_folds)
    missing = sorted(set(drv_summary.loc[drv_summary["status"] == "no predictions", "model"]))
    if missing:
        notes.append(
            f"drivers: no per-person predictions for {', '.join(missing)} (pass --runs or "
            "--predictions MODEL=FILE); their rows in driver_summary.tsv say 'no predictions'"
        )
    sign = signs.sign_agreement(weights, threshold=opt.sign_threshold)
    if sign.empty:
        notes.append("sign agreement: no elastic_net coefficients above the threshold")

    hits = motif_summary = None
    linear = hsvs[~hsvs["model"].isin(set(ism_df["model"]))]  # their selected variants
    selected = pd.concat([drv, linear], ignore_index=True)
    if opt.motifs:
        hits, motif_summary = _motif_tables(ds, gene_list, hsvs, selected, opt, notes)
    chrom_df, ann = None, {}
    if inp.chromhmm:
        windows = {g: ds.window(g) for g in gene_list}
        contigs = {w.chrom for w in windows.values()}
        for path in inp.chromhmm:
            seg, note = chromatin.harmonize_contigs(
                chromatin.read_chromhmm(path), contigs, name=Path(path).name
            )
            ann[Path(path).name] = seg
            notes += [note] if note else []
        chrom_df = chromatin.chromatin_enrichment(hsvs, windows, ann, notes=notes)
    else:
        notes.append("chromatin: skipped (no --chromhmm)")
    eq, eq_genes = eqtl.fm_eqtl_tables(
        weights, ds, finemap=inp.finemap, tissue=inp.finemap_tissue, eqtls=inp.eqtls,
        negatives=opt.eqtl_negatives, ism_models=set(ism_df["model"]),
        n_negatives=opt.n_negatives, seed=opt.seed, notes=notes,
    )  # fmt: skip
    tr = tr_genes = None
    if inp.truth is not None:  # a check of the simulation: every gene, not only those passing
        tr, tr_genes = eqtl.eqtl_auroc(
            every_gene, eqtl.read_truth(inp.truth), ds, n_negatives=opt.n_negatives, seed=opt.seed
        )
    from variformer.analysis.attribution_profiles import analysis_attributions  # torch: lazily

    attr, attr_sum = analysis_attributions(inp, opt, ds, hsvs, drv, gene_list, notes)
    tests = model_tests.dataset_model_tests(ds, gene_list, hsvs, selected=selected, hits=hits,
        annotations=ann, n_permutations=opt.permutations, seed=opt.seed)  # fmt: skip
    label = "mean" if fold is None else str(fold)
    weights, hsvs, sign, chrom_df, eq, eq_genes, tests = (
        None if t is None else t.assign(hsv_fold=label)
        for t in (every_gene, hsvs, sign, chrom_df, eq, eq_genes, tests)
    )

    with atomic_dir(out, force=force) as tmp:
        tables = {
            "weights": weights, "hsvs": hsvs, "hsv_tests": hsv_tests, "hsv_jaccard": jaccard,
            "drivers": drv, "driver_summary": drv_summary, "sign_agreement": sign,
            "motifs": hits, "motif_summary": motif_summary, "chromatin": chrom_df,
            "eqtl_auroc": eq, "eqtl_auroc_genes": eq_genes, "truth_auroc": tr,
            "truth_auroc_genes": tr_genes, "attributions": attr, "model_tests": tests,
            "attribution_summary": attr_sum,
        }  # fmt: skip
        for name, df in tables.items():
            if df is not None:
                _write(df, tmp / f"{name}.tsv")
        meta = analysis_record(inp, opt, ds, weights, gene_list, notes) | scr.record(label)
        (tmp / "analysis.json").write_text(json.dumps(meta, indent=1) + "\n")
    return Analysis(
        out, weights, hsvs, hsv_tests, jaccard, drv, drv_summary, sign, hits, motif_summary,
        chrom_df, eq, tr, notes, attr, scr.learned, tests, attr_sum,
    )  # fmt: skip


def _hsv_fold(value, ds) -> int | None:
    """``--hsv-fold``: a fold of the dataset, or "mean" (None)."""
    if str(value) == "mean":
        return None
    try:
        fold = int(value)
    except (TypeError, ValueError):
        raise InputError(f"--hsv-fold must be a fold number or 'mean', got {value!r}") from None
    if not 0 <= fold < ds.n_folds:
        raise InputError(f"--hsv-fold {fold}: the dataset has folds 0..{ds.n_folds - 1}")
    return fold


def _read_weights(inp: AnalysisInputs, ds, notes: list[str]):
    """The ISM tables, the baseline coefficients and summary, restricted to ``inp.genes``."""
    ism_df = collect_ism(inp.ism, dataset=ds, notes=notes)
    summary = collect_baseline_summary(inp.baselines)
    coefs = collect_coefficients(inp.baselines)
    if inp.genes is not None:
        unknown = [g for g in inp.genes if g not in set(ds.genes)]
        if unknown:
            raise InputError(f"gene(s) {', '.join(unknown)} not in the dataset {ds.path}")
        ism_df = ism_df[ism_df["gene"].isin(inp.genes)]
        coefs = coefs[coefs["gene"].isin(inp.genes)]
    not_in_ds = sorted(set(ism_df["gene"]) - set(ds.genes))
    if not_in_ds:
        notes.append(f"ISM genes not in the dataset (ignored): {', '.join(not_in_ds)}")
    return ism_df, coefs, summary


def _predictions(inp: AnalysisInputs, ds) -> pd.DataFrame:
    """Per-person predictions of the baselines, the runs (``variformer``) and ``predictions``
    (a person given twice for one model, gene and fold, e.g. Enformer's per-fold files, once)."""
    preds = [collect_predictions(inp.baselines, dataset=ds)]
    if inp.runs is not None:
        preds.append(collect_predictions(inp.runs, model="variformer", dataset=ds))
    more = [_expand_folds(read_predictions(path), model, ds) for model, path in inp.predictions]
    more = pd.concat(more).drop_duplicates(["model", "sample", "gene", "fold"]) if more else None
    return pd.concat([*preds, more], ignore_index=True)


def _expand_folds(df: pd.DataFrame, model: str, ds) -> pd.DataFrame:
    """Predictions with a model name and folds; without ``fold``, each fold's test people."""
    df = df.assign(model=model)
    if "fold" in df.columns:
        return df
    frames = []
    for fold in range(ds.n_folds):
        test = set(ds.split(fold)["test"])
        frames.append(df[df["sample"].astype(str).isin(test)].assign(fold=fold, split="test"))
    return pd.concat(frames, ignore_index=True)
