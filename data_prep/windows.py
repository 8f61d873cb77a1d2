"""One gene's part of a dataset: its TSS-centred reference window and the SNV alleles in it.

The window is ``seq_len`` bp on the forward strand with the TSS at index ``seq_len // 2``
(0-based half-open ``[start0, end0)``), N-padded where it runs off the contig. Its SNV alleles
and who carries them come from the native reader (:mod:`data_prep.variants`) or from
``bcftools consensus`` (:mod:`data_prep.bcftools_engine`); both follow the same contract.
"""

from __future__ import annotations

from collections import Counter
from typing import NamedTuple

import numpy as np
import pandas as pd

from core.errors import InputError
from data_prep._htslib import htslib_errors
from data_prep.cohort import Cohort
from data_prep.genome import ContigMap, encode, fetch_window, tss_window
from data_prep.variants import WindowVariants, empty_window_variants, read_window_variants

__all__ = ["GeneWindow", "gene_window", "locate_records", "variant_table"]


class GeneWindow(NamedTuple):
    """One gene's part of the dataset, as :func:`gene_window` builds it.

    Attributes
    ----------
    row : dict
        genes.tsv fields except ``var_start`` (assigned when genes are concatenated).
    reference : np.ndarray, shape=(seq_len,), uint8
        Codes of the N-padded reference window.
    variants : pd.DataFrame
        variants.tsv rows of the gene (see :func:`variant_table`).
    carriers : np.ndarray, shape=(n_samples, V), uint8
        Bit 0: haplotype 1 carries the ALT; bit 1: haplotype 2 does.
    skipped : Counter
        Alleles skipped, by reason (``indel``, ``symbolic``, ``ref_mismatch`` ...).
    mismatches : list of tuple
        ``(contig, pos1, vcf_ref, fasta_base)`` of records whose REF disagrees with the FASTA
        (collected with ``ref_mismatch='error'``; the caller raises once for all genes).
    """

    row: dict
    reference: np.ndarray
    variants: pd.DataFrame
    carriers: np.ndarray
    skipped: Counter
    mismatches: list


def gene_window(
    g,
    *,
    fa,
    fa_contigs: ContigMap,
    cohort: Cohort,
    samples: list[str],
    sample_index: np.ndarray,
    seq_len: int,
    engine: str = "native",
    missing: str = "ref",
    ref_mismatch: str = "error",
    pass_only: bool = False,
    allow_no_variants: bool = False,
) -> GeneWindow:
    """One gene's window, SNV alleles and carriers.

    Parameters
    ----------
    g : namedtuple
        A row of :func:`data_prep.annotation.resolve_genes`: gene_name, gene_id, chrom,
        tss0 (0-based), strand.
    fa : pysam.FastaFile
    fa_contigs : ContigMap
        The FASTA's contig names.
    cohort : Cohort
    samples : list of str
        Dataset people, in output order (the bcftools engine selects them by id).
    sample_index : np.ndarray, shape=(n,), int64
        The same people as columns of ``cohort.samples`` (the native engine).
    seq_len : int
    engine : {'native', 'bcftools'}
    missing : {'ref', 'error'}
    ref_mismatch : {'error', 'drop'}
    pass_only : bool
        Skip SNVs of records whose FILTER is not PASS.
    allow_no_variants : bool
        A gene on a contig that has no records in any VCF gets no variants (everyone gets the
        reference) instead of an error.

    Returns
    -------
    GeneWindow
    """
    win = tss_window(g.chrom, g.tss0, g.strand, seq_len)
    fa_contig = fa_contigs.require(g.chrom)
    contig_len = fa.get_reference_length(fa_contig)
    ref_seq = fetch_window(fa, fa_contig, win.start0, win.end0, contig_len)
    located = locate_records(cohort, g, allow_no_variants=allow_no_variants)
    lo = max(win.start0, 0)
    hi = max(lo, min(win.end0, contig_len))
    in_contig = ref_seq[lo - win.start0 : hi - win.start0]  # the part of the window on the contig
    skipped: Counter = Counter()
    mismatches: list = []
    opts = dict(missing=missing, ref_mismatch=ref_mismatch, pass_only=pass_only, counts=skipped,
                mismatches=mismatches)  # fmt: skip
    if located is None:  # allowed: no variants
        wv = empty_window_variants(len(samples))
    elif engine == "native":
        vi, vcf_contig = located
        with htslib_errors(f"VCF {cohort.paths[vi]}"):
            wv = read_window_variants(
                cohort.vcfs[vi], vcf_contig, win.start0, hi, in_contig,
                sample_index=sample_index, **opts,
            )  # fmt: skip
    else:
        vi, vcf_contig = located
        from data_prep.bcftools_engine import bcftools_window_variants

        wv = bcftools_window_variants(
            cohort.paths[vi], vcf_contig, win.start0, hi, in_contig, samples=samples, **opts
        )
    row = dict(gene=g.gene_name, gene_id=g.gene_id, chrom=g.chrom, start0=win.start0,
               end0=win.end0, tss0=win.tss0, strand=g.strand, n_variants=len(wv.pos1))  # fmt: skip
    table = variant_table(g.gene_name, g.chrom, wv, n_samples=len(samples))
    return GeneWindow(row, encode(ref_seq), table, wv.carriers, skipped, mismatches)


def locate_records(cohort: Cohort, g, *, allow_no_variants: bool) -> tuple[int, str] | None:
    """``(file index, VCF contig name)`` holding gene ``g``'s records, or None when its contig
    has none and ``allow_no_variants`` lets it have the reference only.

    Raises
    ------
    InputError
        The contig has no records in any VCF and ``allow_no_variants`` is False.
    """
    located = cohort.locate(g.chrom)
    if not cohort.has_records(g.chrom):
        if not allow_no_variants:
            raise InputError(
                f"contig {g.chrom} (gene {g.gene_name}) has no records in any VCF (a per-chromosome "
                "VCF left out?); add the VCF that covers it, or pass --allow-no-variants to give its "
                "genes the reference sequence"
            )
        return None
    return located


def variant_table(gene: str, chrom: str, wv: WindowVariants, *, n_samples: int) -> pd.DataFrame:
    """variants.tsv rows of one gene; AC/AF/MAF over the dataset's people (ALT alleles / alleles
    present: 2 per diploid and 1 per haploid call, see :mod:`data_prep.variants`)."""
    ac = wv.ac
    af = np.divide(ac, wv.an, out=np.zeros(len(ac)), where=wv.an > 0)
    return pd.DataFrame(
        {
            "gene": gene,
            "chrom": chrom,
            "pos": wv.pos1,
            "id": wv.ids,
            "ref": wv.refs,
            "alt": wv.alts,
            "ac": ac.astype(np.int64),
            "af": np.round(af, 8),
            "maf": np.round(np.minimum(af, 1 - af), 8),
        }
    )
