"""``variformer prep``: VCF/BCF + FASTA + GTF (+ expression) -> a gene dataset directory.

Per gene: the TSS-centred reference window and its SNV alleles with who carries them on which
haplotype; nothing per person is materialized. See :mod:`data_prep.dataset` for the layout.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from core.errors import InputError
from core.fileio import atomic_dir, check_writable_parent
from data_prep.annotation import drop_close_tss, read_annotation, resolve_genes
from data_prep.cohort import Cohort
from data_prep.dataset_writer import carrier_csr, write_dataset
from data_prep.expression import missing_per_gene
from data_prep.genome import ContigMap, open_fasta
from data_prep.haplotype_carriers import pack_carriers
from data_prep.haplotype_genes import gene_haplotype_window
from data_prep.people import People, select_people
from data_prep.splits import make_splits
from data_prep.windows import GeneWindow, gene_window

ENGINES = ("native", "bcftools")


class PrepSummary(NamedTuple):
    """What ``prep`` wrote: the dataset path, its size and why SNV alleles were skipped."""

    out: Path
    n_genes: int
    n_samples: int
    n_variants: int
    skipped: dict
    dropped_genes: dict
    dropped_samples: dict
    seconds: float
    genes_without_variants: list
    expression_missing: dict
    applied_not_pass: int
    warnings: list


class _Inputs(NamedTuple):
    """The opened reference and cohort."""

    fasta_path: Path
    fa: object  # pysam.FastaFile
    fa_contigs: ContigMap
    cohort: Cohort


def prep_dataset(
    *,
    vcfs: list,
    fasta,
    annotation,
    out,
    genes: list[str] | None = None,
    expression=None,
    samples_file=None,
    test_samples_file=None,
    seq_len: int = 49152,
    engine: str = "native",
    missing: str = "ref",
    ref_mismatch: str = "error",
    pass_only: bool = False,
    allow_no_variants: bool = False,
    protein_coding_only: bool = False,
    drop_close_tss_bp: int | None = None,
    n_folds: int = 3,
    tune_fraction: float = 0.1,
    test_fraction: float = 0.1,
    seed: int = 0,
    force: bool = False,
    progress: bool = True,
    haplotypes: bool = False,
) -> PrepSummary:
    """Build a gene dataset: TSS-centred windows, SNVs and haplotypes, expression, splits.

    Parameters
    ----------
    vcfs : list of path
        bgzipped + indexed VCF/BCF files with the same samples (e.g. one per chromosome).
    fasta : path
        Reference FASTA with a ``.fai`` index.
    annotation : path
        GENCODE GTF or TSS table (see :func:`data_prep.annotation.read_annotation`).
    out : path
        Dataset directory to create.
    genes : list of str
        Symbols or Ensembl ids (with or without version).
    expression : path, optional
        GTEx-style expression BED; samples are restricted to those with genotypes and expression.
    seq_len : int
        Window length, a multiple of 128 (Enformer's bin size).
    engine : {'native', 'bcftools'}
        'bcftools' runs ``bcftools consensus`` (pysam) per person and haplotype; same dataset, slower.
    missing : {'ref', 'error'}
    ref_mismatch : {'error', 'drop'}
    pass_only : bool
        Skip SNVs of records whose FILTER is not PASS (by default they are applied, as
        ``bcftools consensus`` does, and counted in the summary).
    allow_no_variants : bool
        Allow genes on contigs without any VCF record (they get the reference sequence).
    protein_coding_only : bool
    drop_close_tss_bp : int, optional
        Drop genes whose TSS is within this many bp of another gene's TSS (paper: 64).
    haplotypes : bool
        Each person's two phased haplotypes with SNVs, MNPs and indels, not averaged
        (:mod:`data_prep.haplotypes`; unphased heterozygous calls are refused). The native
        engine only.

    Returns
    -------
    PrepSummary

    Raises
    ------
    InputError
        For every user-fixable problem; nothing is left at ``out`` in that case.
    """
    t0 = time.perf_counter()
    out = Path(out)
    _check_options(seq_len=seq_len, engine=engine, out=out, force=force, genes=genes,
                   haplotypes=haplotypes)  # fmt: skip
    selected, dropped_genes = _select_genes(
        annotation,
        genes,
        protein_coding_only=protein_coding_only,
        drop_close_tss_bp=drop_close_tss_bp,
    )
    inputs = _open_inputs(vcfs, fasta)
    people = select_people(
        inputs.cohort, selected, expression=expression, samples_file=samples_file,
        test_samples_file=test_samples_file,
    )  # fmt: skip
    windows = []
    spans = [] if haplotypes else None
    for g in _progress(selected, progress):
        opts = dict(fa=inputs.fa, fa_contigs=inputs.fa_contigs, cohort=inputs.cohort,
                    samples=people.samples, sample_index=people.sample_index, seq_len=seq_len,
                    missing=missing, ref_mismatch=ref_mismatch, pass_only=pass_only,
                    allow_no_variants=allow_no_variants)  # fmt: skip
        if haplotypes:
            w, span = gene_haplotype_window(g, **opts)
            spans.append(span)
        else:
            w = gene_window(g, engine=engine, **opts)
        # sparse at once: memory holds the genes' carriers, never all their dense matrices
        windows.append(
            w._replace(carriers=(pack_carriers if haplotypes else carrier_csr)(w.carriers))
        )
    _raise_on_mismatches(windows, what="alleles" if haplotypes else "SNVs")
    splits = make_splits(
        people.samples,
        n_folds=n_folds,
        tune_fraction=tune_fraction,
        test_fraction=test_fraction,
        test_samples=people.test_samples,
        seed=seed,
    )
    skipped = _skipped_alleles(windows)
    applied_not_pass = skipped.pop("applied_not_pass", 0)
    no_variants = [w.row["gene"] for w in windows if w.row["n_variants"] == 0]
    expr_missing = missing_per_gene(people.expression) if people.expression is not None else {}
    options = dict(missing=missing, ref_mismatch=ref_mismatch, pass_only=pass_only,
                   allow_no_variants=allow_no_variants, protein_coding_only=protein_coding_only,
                   drop_close_tss_bp=drop_close_tss_bp, tune_fraction=tune_fraction,
                   test_fraction=test_fraction, seed=seed)  # fmt: skip
    if haplotypes:  # SNV datasets keep their options (and fingerprints) as before
        options["haplotypes"] = True
    summary = dict(
        skipped_alleles=skipped, applied_not_pass=applied_not_pass, dropped_genes=dropped_genes,
        dropped_samples=people.dropped, genes_without_variants=no_variants,
        expression_missing=expr_missing,
    )  # fmt: skip
    info = _provenance(engine, inputs, annotation, expression, options=options, summary=summary)
    n_variants = _write(
        out,
        windows,
        people,
        splits=splits,
        seq_len=seq_len,
        n_folds=n_folds,
        info=info,
        force=force,
        spans=spans,
    )
    return PrepSummary(
        out,
        len(windows),
        len(people.samples),
        n_variants,
        skipped,
        dropped_genes,
        people.dropped,
        time.perf_counter() - t0,
        no_variants,
        expr_missing,
        applied_not_pass,
        list(inputs.cohort.warnings),
    )


# ---- the steps of prep_dataset, in order ----


def _check_options(
    *, seq_len: int, engine: str, out: Path, force: bool, genes, haplotypes: bool = False
) -> None:
    if seq_len <= 0 or seq_len % 128:
        raise InputError(
            f"--seq-len must be a positive multiple of 128 (Enformer bins are 128 bp), got {seq_len}"
        )
    if engine not in ENGINES:
        raise InputError(f"--engine must be one of {', '.join(ENGINES)}")
    if haplotypes and engine != "native":
        raise InputError(
            "--haplotypes uses the native engine (tested against bcftools consensus); drop --engine"
        )
    check_writable_parent(out)  # before any work, so a long run does not fail at its very end
    if out.exists() and not force:
        raise InputError(f"{out} already exists; pass --force to overwrite it")
    if not genes:
        raise InputError("no genes given; use --genes or --genes-file")


def _select_genes(
    annotation, genes: list[str], *, protein_coding_only: bool, drop_close_tss_bp: int | None
) -> tuple[pd.DataFrame, dict[str, list[str]]]:
    """The requested genes' annotation rows after the filters, and who each filter dropped."""
    ann = read_annotation(annotation)
    selected = resolve_genes(ann, genes)
    dropped: dict[str, list[str]] = {}
    if protein_coding_only:
        pc = selected["gene_type"] == "protein_coding"
        dropped["not_protein_coding"] = list(selected.loc[~pc, "gene_name"])
        selected = selected[pc].reset_index(drop=True)
    if drop_close_tss_bp is not None:
        selected, close = drop_close_tss(selected, ann, within=drop_close_tss_bp)
        dropped[f"tss_within_{drop_close_tss_bp}bp"] = close
    if selected.empty:
        raise InputError(f"no genes left after filtering ({dropped}); relax the gene filters")
    return selected, dropped


def _open_inputs(vcfs: list, fasta) -> _Inputs:
    fasta_path = Path(fasta)
    fa = open_fasta(fasta_path)
    fa_contigs = ContigMap(fa.references, source=f"FASTA {fasta_path.name}")
    return _Inputs(fasta_path, fa, fa_contigs, Cohort([Path(v) for v in vcfs]))


def _progress(selected: pd.DataFrame, progress: bool):
    rows = selected.itertuples(index=False)
    if not progress:  # tqdm.auto imports asyncio: only pay for it when a bar is shown
        return rows
    from tqdm.auto import tqdm

    return tqdm(rows, total=len(selected), desc="prep genes", unit="gene", file=sys.stderr)


def _raise_on_mismatches(windows: list[GeneWindow], *, what: str = "SNVs") -> None:
    mismatches = [m for w in windows for m in w.mismatches]
    if mismatches:
        shown = list(dict.fromkeys(mismatches))[:3]  # a multi-allelic record counts per allele
        first = "; ".join(f"{c}:{p} REF={r} FASTA={b}" for c, p, r, b in shown)
        raise InputError(
            f"{len(mismatches)} {what} have a REF that disagrees with the FASTA (first: {first}); check that the VCF and "
            "FASTA use the same genome build, or pass --drop-ref-mismatch to skip them"
        )


def _skipped_alleles(windows: list[GeneWindow]) -> dict[str, int]:
    total: Counter = Counter()
    for w in windows:
        total.update(w.skipped)
    return {k: int(v) for k, v in sorted(total.items())}


def _provenance(engine, inputs: _Inputs, annotation, expression, *, options, summary) -> dict:
    """dataset.json's record of where the dataset came from and what was left out."""
    return {
        "engine": engine,
        "inputs": {
            "vcf": [str(p) for p in inputs.cohort.paths],
            "fasta": str(inputs.fasta_path),
            "annotation": str(annotation),
            "expression": str(expression) if expression else None,
        },
        "options": options,
        "summary": summary,
    }


def _write(
    out: Path, windows, people: People, *, splits, seq_len, n_folds, info, force, spans=None
) -> int:
    """Write the dataset privately and publish it at ``out``; returns the number of alleles."""
    starts = np.cumsum([0] + [w.row["n_variants"] for w in windows])
    genes = pd.DataFrame([dict(w.row, var_start=int(s)) for w, s in zip(windows, starts)])
    if spans is not None:
        genes["span_start"] = np.cumsum([0] + [len(s) for s in spans])[:-1].astype(np.int64)
    variants = pd.concat([w.variants for w in windows], ignore_index=True)
    with atomic_dir(out, force=force) as tmp:
        write_dataset(
            tmp,
            seq_len=seq_len,
            samples=people.samples,
            genes=genes,
            reference=np.stack([w.reference for w in windows]),
            variants=variants,
            carriers=[w.carriers for w in windows],
            expression=people.expression,
            splits=splits,
            n_folds=n_folds,
            info=info,
            spans=spans,
        )
    return int(starts[-1])
