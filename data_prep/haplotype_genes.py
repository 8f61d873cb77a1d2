"""One gene's part of a haplotype-mode dataset: its alleles as edits, and the reference they need.

The TSS-anchored window of a haplotype (:mod:`data_prep.haplotype_windows`) may reach beyond
the gene's reference window ``[start0, end0)`` when indels shift bases in or out at its ends.
So per gene the dataset keeps a reference *span* around the window, wide enough for every
person's two haplotypes, and the alleles applied in it (:mod:`data_prep.haplotypes`). The span
starts with a flank of :data:`FLANK` bp on each side and grows (x4) until every haplotype's
window fits in it or reaches the contig ends.
"""

from __future__ import annotations

from collections import Counter
from typing import NamedTuple

import numpy as np

from data_prep._htslib import htslib_errors
from data_prep.genome import Window, encode, fetch_window, tss_window
from data_prep.haplotype_windows import GeneEdits, anchored_window, gene_edits, haplotype_extent
from data_prep.haplotypes import (
    DROP1,
    DROP2,
    HAP1,
    HAP2,
    HaplotypeVariants,
    read_haplotype_records,
    resolve_haplotypes,
)

__all__ = ["FLANK", "GeneHaplotypes", "gene_haplotype_window", "gene_haplotypes"]

FLANK = 1024


class GeneHaplotypes(NamedTuple):
    """A gene's haplotype data as prep writes it.

    Attributes
    ----------
    window : Window
        The reference window (TSS at ``seq_len // 2``).
    span0 : int
        0-based start of ``span``.
    span : np.ndarray, shape=(S,), uint8
        Reference codes of ``[span0, span0 + S)``, inside the contig, around the window.
    contig_len : int
    variants : HaplotypeVariants
    skipped : Counter
    mismatches : list
    """

    window: Window
    span0: int
    span: np.ndarray
    contig_len: int
    variants: HaplotypeVariants
    skipped: Counter
    mismatches: list

    @property
    def edits(self) -> GeneEdits:
        """The applied alleles as :class:`~data_prep.haplotype_windows.GeneEdits`."""
        v = self.variants
        return gene_edits(v.pos1, v.refs, v.alts)

    def haplotype(self, person: int, hap: int) -> np.ndarray:
        """Codes of a person's haplotype ``hap`` (0 or 1) window, shape=(seq_len,), uint8."""
        code = self.variants.carriers[person]
        rows = np.flatnonzero(code & (HAP1, HAP2)[hap])
        dropped = (code[rows] & (DROP1, DROP2)[hap]) > 0
        seq_len = self.window.end0 - self.window.start0
        out, _ = anchored_window(
            self.span, self.span0, self.edits, rows, dropped, tss0=self.window.tss0,
            seq_len=seq_len, contig_len=self.contig_len,
        )  # fmt: skip
        return out


def gene_haplotypes(
    vcf,
    vcf_contig: str,
    fa,
    fa_contig: str,
    window: Window,
    *,
    sample_index: np.ndarray,
    missing: str = "ref",
    ref_mismatch: str = "error",
    pass_only: bool = False,
    flank: int = FLANK,
) -> GeneHaplotypes:
    """Read and resolve a gene's haplotypes over a span wide enough for all of them.

    Parameters
    ----------
    vcf : cyvcf2.VCF or data_prep.vcf_text.IndexedVcf
        Indexed VCF/BCF with phased GT (or None: no records on this contig).
    vcf_contig, fa_contig : str
        The contig as the VCF and the FASTA spell it.
    fa : pysam.FastaFile
    window : Window
    sample_index : np.ndarray, shape=(n,), int
        VCF sample columns in dataset order.
    missing, ref_mismatch, pass_only
        As in :func:`data_prep.haplotypes.resolve_haplotypes`.
    flank : int
        First flank tried on each side of the window (bp).
    """
    contig_len = fa.get_reference_length(fa_contig)
    seq_len = window.end0 - window.start0
    half = seq_len // 2
    while True:
        lo = max(window.start0 - flank, 0)
        hi = min(window.end0 + flank, contig_len)
        skipped: Counter = Counter()
        mismatches: list = []
        if vcf is None:
            variants = resolve_haplotypes(_no_records(len(sample_index)), "", lo)
        else:
            records, lo, hi = read_haplotype_records(vcf, vcf_contig, lo, hi, sample_index)
            hi = min(hi, contig_len)
            reference = fetch_window(fa, fa_contig, lo, hi, contig_len)
            variants = resolve_haplotypes(
                records, reference, lo, contig=window.chrom, missing=missing,
                ref_mismatch=ref_mismatch, pass_only=pass_only, counts=skipped,
                mismatches=mismatches,
            )  # fmt: skip
        edits = gene_edits(variants.pos1, variants.refs, variants.alts)
        code = variants.carriers
        applied = np.stack([(code & HAP1) > 0, (code & HAP2) > 0], axis=1)  # (n, 2, V)
        dropped = np.stack([(code & DROP1) > 0, (code & DROP2) > 0], axis=1)
        # every haplotype's window must lie in the span, or reach a contig end
        tss_at, length = haplotype_extent(
            edits, applied, dropped, tss0=window.tss0, span0=lo, span1=hi
        )
        left_ok = lo == 0 or bool((tss_at >= half).all())
        right_ok = hi >= contig_len or bool((length - tss_at >= seq_len - half).all())
        if left_ok and right_ok:
            span = encode(fetch_window(fa, fa_contig, lo, hi, contig_len))
            return GeneHaplotypes(window, lo, span, contig_len, variants, skipped, mismatches)
        flank *= 4


def gene_haplotype_window(
    g, *, fa, fa_contigs, cohort, samples, sample_index, seq_len, missing="ref",
    ref_mismatch="error", pass_only=False, allow_no_variants=False,
):  # fmt: skip
    """:func:`data_prep.windows.gene_window`'s haplotype-mode twin: ``(GeneWindow, span)``.

    The GeneWindow's row gains ``span0``, ``span_len`` and ``contig_len``; its carriers use
    the haplotype codes of :class:`data_prep.haplotypes.HaplotypeVariants`; ``span`` is the
    reference codes of ``[span0, span0 + span_len)``, shape=(span_len,), uint8.
    """
    from data_prep.windows import GeneWindow, locate_records, variant_table

    win = tss_window(g.chrom, g.tss0, g.strand, seq_len)
    fa_contig = fa_contigs.require(g.chrom)
    located = locate_records(cohort, g, allow_no_variants=allow_no_variants)
    vcf, vcf_contig, what = None, None, "VCF"
    if located is not None:
        vi, vcf_contig = located
        vcf, what = cohort.vcfs[vi], f"VCF {cohort.paths[vi]}"
    with htslib_errors(what):
        gh = gene_haplotypes(
            vcf, vcf_contig, fa, fa_contig, win, sample_index=sample_index, missing=missing,
            ref_mismatch=ref_mismatch, pass_only=pass_only,
        )  # fmt: skip
    v = gh.variants
    row = dict(gene=g.gene_name, gene_id=g.gene_id, chrom=g.chrom, start0=win.start0,
               end0=win.end0, tss0=win.tss0, strand=g.strand, n_variants=len(v.pos1),
               span0=gh.span0, span_len=len(gh.span), contig_len=gh.contig_len)  # fmt: skip
    reference = encode(fetch_window(fa, fa_contig, win.start0, win.end0, gh.contig_len))
    table = variant_table(g.gene_name, g.chrom, v, n_samples=len(samples))
    return GeneWindow(row, reference, table, v.carriers, gh.skipped, gh.mismatches), gh.span


def _no_records(n: int):
    from data_prep.haplotypes import HaplotypeRecords

    zero = np.zeros(0, np.int64)
    return HaplotypeRecords(
        zero, [], [], [], zero.astype(bool), np.zeros((0, n, 2), np.int16), zero.astype(bool),
        np.zeros((0, n), bool),
    )  # fmt: skip
