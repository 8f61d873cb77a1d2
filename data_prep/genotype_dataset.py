"""A genotype-only dataset: new people's SNVs on a trained dataset's windows.

``variformer predict`` imputes expression for people who have genotypes and nothing else. It
builds, per VCF of new people, a dataset in the layout of :mod:`data_prep.dataset` from

- the training dataset's windows (genes.tsv: chrom, start0, end0, tss0, strand) and its stored
  reference (reference.npy), so no FASTA is needed and the windows are the models' own;
- the new VCF/BCF, read by the same reader prep uses (:func:`data_prep.variants.read_window_variants`)
  with the prep options the training dataset records in ``dataset.json`` (``missing``,
  ``ref_mismatch``, ``pass_only``): a new person's sequence is built exactly as a training
  person's was;

with no expression and no folds (``splits.tsv`` holds only the sample column, ``n_folds`` 0).
Beside it, ``sites.tsv`` (gene, chrom, pos 1-based, ref, alt) lists every SNV allele the VCF
offers in each window after the FILTER and REF checks, carried by one of the new people or not:
what a model's SNV must be among to count as found in the new cohort (:func:`read_sites`).

A haplotype-mode training dataset (``prep --haplotypes``) gives a haplotype-mode genotype-only
dataset: each new person's two phased haplotypes with SNVs, MNPs and indels, resolved over the
reference spans the training dataset stores (:mod:`data_prep.haplotype_genotypes`; unphased
heterozygous calls are refused with prep's line), and ``sites.tsv`` lists every allele (SNV,
MNP, indel) the VCF offers in each span.

A VCF that overlaps none of the windows, or whose REF disagrees with the stored reference at more
than :data:`MAX_REF_MISMATCH` of its SNVs, is on another genome build: refused in one line.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from core.errors import InputError
from core.fileio import atomic_dir, atomic_write_text
from data_prep._htslib import htslib_errors
from data_prep.cohort import Cohort
from data_prep.dataset import GeneDataset
from data_prep.dataset_writer import carrier_csr, write_dataset
from data_prep.genome import N_CODE
from data_prep.haplotype_carriers import pack_carriers
from data_prep.haplotype_genotypes import span_haplotypes, stored_span
from data_prep.variants import empty_window_variants, read_window_variants
from data_prep.windows import variant_table

__all__ = [
    "MAX_REF_MISMATCH",
    "SITES",
    "GenotypeDataset",
    "build_genotype_dataset",
    "read_sites",
    "reference_codes",
]

#: above this share of SNV alleles whose REF disagrees with the stored reference, a VCF is
#: taken to be on another genome build than the training dataset
MAX_REF_MISMATCH = 0.01
#: the VCF's SNV alleles per window, carried or not (written beside the dataset files)
SITES = "sites.tsv"
_SITE_COLUMNS = ["gene", "chrom", "pos", "ref", "alt"]


class GenotypeDataset(NamedTuple):
    """What :func:`build_genotype_dataset` wrote."""

    path: Path  # the dataset directory (open it with data_prep.open_dataset)
    samples: list  # the VCF's people, in VCF order
    n_variants: int  # alleles (SNV mode: SNV alleles) carried by at least one of them
    n_sites: int  # alleles the VCF offers in the windows or spans (sites.tsv rows)
    skipped: dict  # alleles skipped, by reason (indel, symbolic, ref_mismatch, ...); haplotype
    # mode also outside_span (records) and beyond_span (haplotypes N-filled past the span)


def reference_codes(training: GeneDataset, gene: str) -> np.ndarray:
    """The stored reference of a gene's window as codes, shape=(seq_len,), uint8 (A,C,G,T = 0..3, N = 4)."""
    onehot = training.reference(gene)
    return np.where(onehot.any(axis=1), onehot.argmax(axis=1), N_CODE).astype(np.uint8)


def _decode(codes: np.ndarray) -> str:
    return np.frombuffer(b"ACGTN", dtype=np.uint8)[codes].tobytes().decode("ascii")


def build_genotype_dataset(
    training: GeneDataset,
    vcf: str | os.PathLike,
    out: str | os.PathLike,
    *,
    genes: Sequence[str],
    cohort: Cohort | None = None,
    force: bool = False,
    log: Callable[[str], None] | None = None,
) -> GenotypeDataset:
    """Write the genotype-only dataset of ``vcf``'s people on ``training``'s windows at ``out``.

    The dataset's mode is the training dataset's: SNV mode, or haplotype mode (each person's
    two phased haplotypes over the stored reference spans, :mod:`data_prep.haplotype_genotypes`).

    Parameters
    ----------
    training : GeneDataset
        The dataset the models were trained on: windows, reference (spans) and prep options.
    vcf : path
        bgzipped + indexed VCF/BCF of the new people (one file: all their windows' contigs).
    out : path
        Dataset directory to create (published atomically: an interrupted build leaves none).
    genes : sequence of str
        Genes of ``training`` whose windows are built, in this order.
    cohort : Cohort, optional
        ``vcf`` already opened (:class:`data_prep.cohort.Cohort`).
    force : bool
        Replace an existing ``out``.
    log : callable, optional
        Receives one line when the VCF lacks some windows' contigs.

    Returns
    -------
    GenotypeDataset

    Raises
    ------
    InputError
        The VCF has no record in any window (another build, or another region), its REF
        disagrees with the stored reference at more than :data:`MAX_REF_MISMATCH` of its SNVs
        (another build), or at any SNV when the training dataset was prepped with
        ``ref_mismatch='error'``; a missing genotype with ``missing='error'``; an unknown gene;
        in haplotype mode an unphased heterozygous call.
    """
    vcf = Path(vcf)
    cohort = Cohort([vcf]) if cohort is None else cohort
    options = training.meta.get("options") or {}
    read_options = dict(
        missing=options.get("missing", "ref"),
        ref_mismatch="error",  # collect mismatches to judge the build; decided below
        pass_only=bool(options.get("pass_only", False)),
    )
    n = len(cohort.samples)
    sample_index = np.arange(n, dtype=np.int64)
    windows = {gene: training.window(gene) for gene in genes}
    gene_ids = dict(zip(training._genes["gene"], training._genes["gene_id"]))  # same package
    contigs = sorted({w.chrom for w in windows.values()})
    absent = [c for c in contigs if not cohort.has_records(c)]
    if len(absent) == len(contigs):
        raise InputError(
            f"{vcf} has no records on the contigs of the models' windows ({', '.join(contigs[:5])}): "
            "it is on another genome build or contig naming, or covers other chromosomes"
        )
    if absent and log:
        log(f"{vcf} has no records on {', '.join(absent)}: its people get the reference there")
    haplotypes = bool(training.haplotype_mode)
    rows, references, tables, carriers, sites = [], [], [], [], []
    spans: list | None = [] if haplotypes else None
    counts: Counter = Counter()
    mismatches: list = []
    for gene, w in windows.items():
        codes = reference_codes(training, gene)
        located = cohort.locate(w.chrom)
        if located is None or not cohort.has_records(w.chrom):
            vcf_in, vcf_contig = None, None
        else:
            vcf_in, vcf_contig = cohort.vcfs[located[0]], located[1]
        gene_sites: list = []
        row = dict(gene=gene, gene_id=gene_ids[gene], chrom=w.chrom, start0=w.start0,
                   end0=w.end0, tss0=w.tss0, strand=w.strand)  # fmt: skip
        with htslib_errors(f"VCF {vcf}"):
            if haplotypes:
                span = stored_span(training, gene)
                wv = span_haplotypes(
                    vcf_in, vcf_contig, span, w, sample_index=sample_index, counts=counts,
                    mismatches=mismatches, sites=gene_sites, missing=read_options["missing"],
                    pass_only=read_options["pass_only"],
                )  # fmt: skip
                row.update(span0=span.span0, span_len=len(span.codes), contig_len=span.contig_len)
                spans.append(span.codes)
            elif vcf_in is None:
                wv = empty_window_variants(n)
            else:
                lo = max(w.start0, 0)
                wv = read_window_variants(
                    vcf_in, vcf_contig, w.start0, w.end0, _decode(codes[lo - w.start0 :]),
                    sample_index=sample_index, counts=counts, mismatches=mismatches,
                    sites=gene_sites, **read_options,
                )  # fmt: skip
        rows.append(dict(row, n_variants=len(wv.pos1)))
        references.append(codes)
        tables.append(variant_table(gene, w.chrom, wv, n_samples=n))
        carriers.append((pack_carriers if haplotypes else carrier_csr)(wv.carriers))
        sites += [(gene, w.chrom, p, r, a) for p, r, a in gene_sites]
    _check_build(vcf, sites, mismatches, counts, ref_mismatch=options.get("ref_mismatch", "error"),
                 what="alleles" if haplotypes else "SNVs")  # fmt: skip
    if counts.get("beyond_span") and log:
        log(
            f"{vcf}: {counts['beyond_span']} haplotype window(s) reach past the reference span "
            "the training dataset stores (deletions longer than its flank): N there"
        )
    genes_table = pd.DataFrame(rows)
    genes_table["var_start"] = np.cumsum([0] + [r["n_variants"] for r in rows])[:-1]
    if haplotypes:
        genes_table["span_start"] = np.cumsum([0] + [len(c) for c in spans])[:-1].astype(np.int64)
    variants = pd.concat(tables, ignore_index=True)
    skipped = {k: int(v) for k, v in sorted(counts.items())}
    info = {
        "engine": "native",
        "inputs": {"vcf": [str(vcf)], "training_dataset": str(training.path)},
        "options": dict(options),
        "summary": {"skipped_alleles": skipped, "genotype_only": True},
    }
    with atomic_dir(out, force=force) as tmp:
        write_dataset(
            tmp, seq_len=training.seq_len, samples=list(cohort.samples), genes=genes_table,
            reference=np.stack(references), variants=variants, carriers=carriers,
            expression=None, splits=pd.DataFrame({"sample": list(cohort.samples)}),
            n_folds=0, info=info, spans=spans,
        )  # fmt: skip
        table = pd.DataFrame(sites, columns=_SITE_COLUMNS)
        atomic_write_text(tmp / SITES, table.to_csv(sep="\t", index=False))
    return GenotypeDataset(Path(out), list(cohort.samples), len(variants), len(sites), skipped)


def _check_build(
    vcf: Path, sites: list, mismatches: list, counts: Counter, *, ref_mismatch, what="SNVs"
):
    """Refuse a VCF that overlaps no window, or whose REF says it is on another build."""
    if not sites and not mismatches and not sum(counts.values()):
        raise InputError(
            f"{vcf} has no record inside any of the models' windows: it is on another genome "
            "build (positions elsewhere) or covers another region"
        )
    if not mismatches:
        return
    first = "; ".join(f"{c}:{p} REF={r} reference={b}" for c, p, r, b in mismatches[:3])
    share = len(mismatches) / (len(mismatches) + len(sites))
    if share > MAX_REF_MISMATCH:
        raise InputError(
            f"{vcf}: REF disagrees with the training dataset's reference at {len(mismatches)} of "
            f"{len(mismatches) + len(sites)} {what} ({share:.1%}; first: {first}): the VCF is on "
            "another genome build than the models' windows; lift it over to the training build"
        )
    if ref_mismatch == "error":
        raise InputError(
            f"{vcf}: {len(mismatches)} {what} have a REF that disagrees with the training "
            f"dataset's reference (first: {first}), and it was prepped with ref_mismatch=error; "
            "fix or drop those records (bcftools norm --check-ref x)"
        )


def read_sites(path: str | os.PathLike) -> pd.DataFrame:
    """``sites.tsv`` of a genotype-only dataset: gene, chrom, pos (1-based), ref, alt."""
    return pd.read_csv(
        Path(path) / SITES,
        sep="\t",
        dtype={"gene": str, "chrom": str, "ref": str, "alt": str, "pos": np.int64},
        keep_default_na=False,
    )
