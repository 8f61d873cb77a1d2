"""Impute expression for a genotype-only cohort with trained models (``variformer predict``).

The new people's VCFs are read onto the training dataset's windows, reference and prep options
(:func:`data_prep.genotype_dataset.build_genotype_dataset`, one genotype-only dataset per VCF),
and every model of every fold predicts every person:

- a fine-tuned Variformer through the one inference path,
  :func:`variformer.predict.predict_people` (the crop it was trained on; by default the batch
  size its own predictions were made with), from each person's sequence with every SNV of the
  VCF in the window, as prep builds it; on a haplotype-mode training dataset (``prep
  --haplotypes``) the new people's dataset is haplotype mode too (phased VCF; SNVs, MNPs and
  indels), and a run trained in haplotype mode predicts the mean of its forwards on a person's
  two haplotypes, a run trained on their mean one-hot (``data.haplotypes=false``) that mean:
  each run as it was trained, whatever mix of the two is under ``--runs``;
- a linear baseline as ``dosages @ coef + intercept`` over its SNVs with a nonzero coefficient,
  matched by chrom, 1-based pos, ref and alt; a model SNV that the new VCF lacks (or no new
  person carries) counts as dosage 0, the reference allele.

Outputs in ``DIR`` (published together, atomically)::

    predicted_expression.tsv       wide: gene rows x sample columns; each value is the mean over
                                   the folds of the models' predictions (one model kind per call:
                                   --runs or --baselines --model M)
    predicted_expression_long.tsv  model, fold, gene, sample, predicted (:data:`core.tables.IMPUTED`)
    coverage.tsv                   model, fold, gene, n_model_snvs, n_found, fraction_found
                                   (:data:`core.tables.COVERAGE`)

Coverage: the model's SNVs are a linear model's nonzero-coefficient SNVs, or a Variformer's
window's SNVs in the training dataset; one is found when every ``--vcf`` file offers it (a site
with that ALT after the FILTER and REF checks, carried by someone or not). On a haplotype-mode
training dataset the columns count alleles: a Variformer's are the training dataset's applied
alleles (SNVs, MNPs, indels) whose REF overlaps the window, matched by chrom, pos, ref, alt.

Resumable: each finished (model, fold, gene) piece and each VCF's genotype-only dataset is kept
in the hidden ``.DIR.partial/`` beside ``DIR``, keyed by the model checksum, the VCF fingerprints
and the training windows; a rerun reuses them, ``force`` redoes everything.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from core.errors import InputError
from core.fileio import atomic_dir, atomic_write_text, check_writable_parent, output_lock
from core.manifest import digest_value, file_digest
from core.tables import COVERAGE, IMPUTED, read_coefficients, read_table, write_table
from variformer.impute_models import ImputeModel, find_models, training_dataset

__all__ = [
    "COVERAGE_TSV",
    "LONG_TSV",
    "MIN_COVERAGE",
    "WIDE_TSV",
    "ImputeResult",
    "coverage_table",
    "impute_expression",
    "wide_table",
]

WIDE_TSV = "predicted_expression.tsv"
LONG_TSV = "predicted_expression_long.tsv"
COVERAGE_TSV = "coverage.tsv"
#: below this share of a model's SNVs found in the new VCFs, a gene is warned about
MIN_COVERAGE = 0.8


class ImputeResult(NamedTuple):
    """What :func:`impute_expression` published."""

    out: Path
    long: pd.DataFrame  # IMPUTED rows
    wide: pd.DataFrame  # genes x samples, index "gene"
    coverage: pd.DataFrame  # COVERAGE rows
    low_coverage: list  # genes with a model below MIN_COVERAGE
    computed: int  # (model, fold, gene) pieces predicted by this call
    reused: int  # pieces reused from an interrupted call


class _Cohort(NamedTuple):
    """One --vcf file's people as a genotype-only dataset."""

    vcf: Path
    key: str  # fingerprint of the VCF's bytes, the training windows and prep config, the genes
    ds: Any  # data_prep.dataset.GeneDataset
    sites: pd.DataFrame  # data_prep.genotype_dataset.read_sites


def impute_expression(
    *,
    vcfs: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    runs: str | os.PathLike | None = None,
    baselines: str | os.PathLike | None = None,
    model: str = "elastic_net",
    dataset: str | os.PathLike | None = None,
    fold: int | None = None,
    genes: Sequence[str] | None = None,
    batch_size: int | None = None,
    device=None,
    force: bool = False,
    progress: bool | None = None,
    log: Callable[[str], None] | None = None,
) -> ImputeResult:
    """Predict every person of ``vcfs`` with the models under ``runs`` or ``baselines``.

    Parameters
    ----------
    vcfs : sequence of path
        bgzipped + indexed VCF/BCF files of the new people (different people in each; each
        file covers the windows' contigs itself).
    out : path
        The output directory ``DIR`` (new unless ``force``).
    runs, baselines : path
        A fine-tuning runs root, or a baselines directory ``BL`` (its ``BL/<model>/``); one.
    model : {"elastic_net", "lasso", "ridge"}
        With ``baselines``.
    dataset : path, optional
        The training dataset; default the one the models record (it must match them).
    fold : int, optional
        Only the models of this fold; default every fold available.
    genes : sequence of str, optional
        Default every gene of the models.
    batch_size : int, optional
        Variformer batch size; default each run's own evaluation batch size.
    device : optional
        Torch device; default CUDA if available.
    force : bool
        Replace ``out`` and recompute every piece.
    progress : bool, optional
        A progress bar; default only when stderr is a terminal (else one line per piece).
    log : callable, optional
        Receives the progress lines and warnings (e.g. print to stderr).

    Returns
    -------
    ImputeResult

    Raises
    ------
    InputError
        No finished model; genes not in the models; a dataset that does not match them; a VCF
        without samples, on another build, or sharing a sample id with another ``--vcf``;
        ``out`` exists without ``force``.
    """
    say = log or (lambda line: None)
    out = Path(out).expanduser()
    if (out.exists() or out.is_symlink()) and not force:
        raise InputError(f"{out} already exists; pass --force to overwrite it")
    if batch_size is not None and batch_size < 1:
        raise InputError(f"--batch-size must be >= 1, got {batch_size}")
    check_writable_parent(out)
    models = find_models(runs=runs, baselines=baselines, model=model, fold=fold, log=say)
    wanted = _genes(models, genes)
    models = [m for m in models if set(m.genes) & set(wanted)]
    training = training_dataset(models, dataset, log=say)
    unknown = [g for g in wanted if g not in set(training.genes)]
    if unknown:
        raise InputError(
            f"gene(s) {', '.join(unknown[:5])} of the models are not in {training.path}"
        )
    opened = _open_vcfs(vcfs)
    partial = out.with_name(f".{out.name}.partial")
    with output_lock(partial):  # one writer: a second process on the same DIR is refused
        if force and partial.exists():
            shutil.rmtree(partial)
        partial.mkdir(exist_ok=True)
        try:
            cohorts = [
                _genotype_dataset(training, path, cohort, wanted, partial, log=say)
                for path, cohort in opened
            ]
        except InputError:
            with contextlib.suppress(OSError):
                partial.rmdir()  # refused before any work was kept: leave nothing behind
            raise
        pieces, computed, reused = _predict_pieces(
            models, wanted, cohorts, partial, batch_size=batch_size,
            device=device, progress=progress, say=say,
        )  # fmt: skip
        long = pd.concat(pieces, ignore_index=True) if pieces else _empty_long()
        coverage = coverage_table(models, wanted, training, cohorts)
        wide = wide_table(long, genes=wanted, samples=[s for c in cohorts for s in c.ds.samples])
        with atomic_dir(out, force=force) as tmp:
            atomic_write_text(tmp / WIDE_TSV, wide.to_csv(sep="\t"))
            write_table(long, tmp / LONG_TSV, IMPUTED)
            write_table(coverage, tmp / COVERAGE_TSV, COVERAGE)
        shutil.rmtree(partial, ignore_errors=True)
    low = _low_coverage(coverage)
    if low:
        say(
            f"warning: {len(low)} gene(s) have a model with under {MIN_COVERAGE:.0%} of its "
            f"variants in the VCF(s): {', '.join(low)} (their predictions treat the absent ones "
            f"as reference; see {out / COVERAGE_TSV})"
        )
    return ImputeResult(out, long, wide, coverage, low, computed, reused)


# ---------------------------------------------------------------- inputs


def _genes(models: Sequence[ImputeModel], genes: Sequence[str] | None) -> list[str]:
    have = list(dict.fromkeys(g for m in models for g in m.genes))
    if not genes:
        return have
    asked = list(dict.fromkeys(genes))
    foreign = [g for g in asked if g not in set(have)]
    if foreign:
        raise InputError(
            f"gene(s) {', '.join(foreign[:5])} are not in the models (they have "
            f"{', '.join(have[:8])}{' ...' if len(have) > 8 else ''})"
        )
    return asked


def _open_vcfs(vcfs: Sequence[str | os.PathLike]) -> list[tuple[Path, Any]]:
    """Each --vcf opened and checked (:class:`data_prep.cohort.Cohort`); no sample in two."""
    from data_prep.cohort import Cohort

    if not vcfs:
        raise InputError("give at least one --vcf")
    opened, owner = [], {}
    for vcf in vcfs:
        path = Path(vcf)
        cohort = Cohort([path])
        for sample in cohort.samples:
            if sample in owner:
                raise InputError(
                    f"sample {sample!r} is in both {owner[sample]} and {path}; each person must "
                    "be in one --vcf only (rename or drop one with bcftools)"
                )
            owner[sample] = path
        opened.append((path, cohort))
    return opened


def _genotype_dataset(training, vcf: Path, cohort, genes, partial: Path, *, log) -> _Cohort:
    """The VCF's genotype-only dataset in ``partial``, built once per VCF content and windows."""
    from data_prep import open_dataset
    from data_prep.genotype_dataset import build_genotype_dataset, read_sites

    fp = training.fingerprints
    key = digest_value({"vcf": file_digest(vcf), "windows": fp["windows"], "config": fp["config"],
                        "genes": list(genes)})  # fmt: skip
    where = partial / f"cohort-{key}"
    if not (where / "dataset.json").is_file():
        t0 = time.perf_counter()
        built = build_genotype_dataset(training, vcf, where, genes=genes, cohort=cohort,
                                       force=True, log=log)  # fmt: skip
        kind = "alleles (haplotype mode)" if training.haplotype_mode else "SNV alleles"
        log(
            f"read {vcf}: {len(built.samples)} people, {built.n_variants} {kind} carried "
            f"in {len(genes)} windows ({time.perf_counter() - t0:.1f} s)"
        )
    return _Cohort(vcf, key, open_dataset(where), read_sites(where))


# ---------------------------------------------------------------- predicting


def _predict_pieces(models, genes, cohorts, partial, *, batch_size, device, progress, say):
    """Every (model, fold, gene) piece: reused from ``partial`` or predicted and kept there."""
    tasks = [(m, g) for m in models for g in genes if g in set(m.genes)]
    show = sys.stderr.isatty() if progress is None else bool(progress)
    items = tasks
    if show:
        from tqdm.auto import tqdm

        items = tqdm(tasks, total=len(tasks), unit="piece", desc="predict", file=sys.stderr)
    pieces, computed, reused = [], 0, 0
    loaded: dict[Path, Any] = {}
    for i, (m, gene) in enumerate(items):
        key = digest_value({"model": m.checksum, "vcfs": [c.key for c in cohorts], "gene": gene, "fold": m.fold,
                            "label": m.label, "seq_len": m.seq_len, "haplotypes": m.haplotypes})  # fmt: skip
        done = partial / f"piece-{key}.tsv"
        if done.is_file():
            try:
                pieces.append(read_table(done, IMPUTED))
                reused += 1
                continue
            except InputError:
                pass  # a damaged leftover is recomputed
        t0 = time.perf_counter()
        frame = _predict_piece(m, gene, cohorts, batch_size=batch_size, device=device,
                               loaded=loaded)  # fmt: skip
        write_table(frame, done, IMPUTED)
        pieces.append(read_table(done, IMPUTED))
        computed += 1
        if not show:
            say(
                f"predict: {m.label} fold {m.fold} {gene}: {len(frame)} people in "
                f"{time.perf_counter() - t0:.1f} s ({i + 1}/{len(tasks)})"
            )
    return pieces, computed, reused


def _predict_piece(
    m: ImputeModel, gene: str, cohorts, *, batch_size, device, loaded
) -> pd.DataFrame:
    """One model's predictions of one gene for every person of every cohort (IMPUTED rows)."""
    if m.kind == "variformer":
        values = _variformer_values(m, gene, cohorts, batch_size=batch_size, device=device,
                                    loaded=loaded)  # fmt: skip
    else:
        values = _linear_values(m, gene, cohorts)
    samples = [s for c in cohorts for s in c.ds.samples]
    return pd.DataFrame(
        {
            "model": m.label,
            "fold": m.fold,
            "gene": gene,
            "sample": pd.Series(samples, dtype=object),
            "predicted": np.asarray(values, dtype=np.float64),
        }
    )


def _variformer_values(m, gene, cohorts, *, batch_size, device, loaded) -> np.ndarray:
    from variformer.model import Variformer
    from variformer.predict import predict_people

    if m.path not in loaded:
        loaded.clear()  # one model in memory at a time
        loaded[m.path] = Variformer.load(m.path)
    batch = batch_size or m.batch_size or 32
    parts = [
        predict_people(loaded[m.path], c.ds, gene, c.ds.samples, seq_len=m.seq_len,
                       batch_size=batch, device=device,
                       haplotypes=m.haplotypes)["predicted"].to_numpy()
        for c in cohorts
    ]  # fmt: skip
    return np.concatenate(parts)


_KEY = ["chrom", "pos", "ref", "alt"]


def _model_snvs(m: ImputeModel, gene: str, training) -> pd.DataFrame:
    """The SNVs a model uses (chrom, pos, ref, alt [, coef]): a linear model's nonzero ones,
    a Variformer's every training SNV of the window (of a haplotype-mode dataset: every
    applied allele whose REF overlaps the window, indels and MNPs too)."""
    if m.kind == "linear":
        coef = read_coefficients(m.path / "coefficients.tsv")
        return coef.loc[coef["coef"] != 0, [*_KEY, "coef"]].reset_index(drop=True)
    variants = training.variants(gene)
    if training.haplotype_mode:  # the span's alleles: keep those of the window
        from baselines.dosage_columns import dosage_column_mask

        variants = variants[dosage_column_mask(variants, training.window(gene), indels=True)]
    return variants[_KEY].reset_index(drop=True)


def _linear_values(m: ImputeModel, gene: str, cohorts) -> np.ndarray:
    """``dosages @ coef + intercept`` per person; a model SNV nobody new carries is dosage 0."""
    snvs = _model_snvs(m, gene, None)
    coef = snvs["coef"].to_numpy(np.float64)
    parts = []
    for c in cohorts:
        new = c.ds.variants(gene)[_KEY].reset_index()
        joined = snvs[_KEY].reset_index().merge(new, on=_KEY, how="inner", suffixes=("", "_new"))
        dosages = np.asarray(c.ds.dosages(gene), dtype=np.float64)
        x = np.zeros((len(c.ds.samples), len(snvs)))
        x[:, joined["index"].to_numpy()] = dosages[:, joined["index_new"].to_numpy()]
        # the order fit_linear predicts in: the product, then the intercept
        parts.append(x @ coef + m.intercept)
    return np.concatenate(parts)


# ---------------------------------------------------------------- tables


def coverage_table(models, genes, training, cohorts) -> pd.DataFrame:
    """Per model, fold and gene: its SNVs, how many every cohort's VCF offers, their share.

    Returns
    -------
    pd.DataFrame
        :data:`core.tables.COVERAGE`; ``fraction_found`` NaN for a model without SNVs.
    """
    rows = []
    for m in models:
        for gene in (g for g in genes if g in set(m.genes)):
            snvs = _model_snvs(m, gene, training)[_KEY]
            found = np.ones(len(snvs), bool)
            for c in cohorts:
                offered = c.sites.loc[c.sites["gene"] == gene, _KEY].drop_duplicates()
                hit = snvs.merge(offered.assign(_hit=True), on=_KEY, how="left")["_hit"]
                found &= hit.notna().to_numpy()
            n = len(snvs)
            rows.append({"model": m.label, "fold": m.fold, "gene": gene, "n_model_snvs": n,
                         "n_found": int(found.sum()),
                         "fraction_found": found.sum() / n if n else np.nan})  # fmt: skip
    return pd.DataFrame(rows, columns=list(COVERAGE.columns))


def _low_coverage(coverage: pd.DataFrame) -> list[str]:
    low = coverage[coverage["fraction_found"] < MIN_COVERAGE]
    return list(dict.fromkeys(low["gene"]))


def wide_table(long: pd.DataFrame, *, genes: Sequence[str], samples: Sequence[str]) -> pd.DataFrame:
    """Gene rows x sample columns: the mean over the folds' models of each gene's predictions.

    Parameters
    ----------
    long : pd.DataFrame
        :data:`core.tables.IMPUTED` rows of one model kind.
    genes, samples : sequence of str
        Row and column order.
    """
    mean = long.groupby(["gene", "sample"], sort=False)["predicted"].mean()
    wide = mean.unstack("sample").reindex(index=list(genes), columns=list(samples))
    wide.index.name, wide.columns.name = "gene", None
    return wide


def _empty_long() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in IMPUTED.columns})
