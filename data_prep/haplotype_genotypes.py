"""New people's phased haplotypes on a haplotype-mode training dataset's stored spans.

``variformer predict`` builds a genotype-only dataset of new people
(:mod:`data_prep.genotype_dataset`). When the models were trained on a haplotype-mode dataset
(``variformer prep --haplotypes``), the new people's two haplotypes are resolved exactly as prep
resolved the training people's (:func:`data_prep.haplotypes.read_haplotype_records` and
:func:`~data_prep.haplotypes.resolve_haplotypes`: phase required, bcftools' overlap rule), over
the reference *span* the training dataset stores per gene (``spans.npy``; no FASTA needed):

- Records whose REF lies wholly inside the span are read and resolved; for the training VCF
  these are exactly the records prep resolved (prep's span is the region it read, widened
  until no record stuck out of it), so a training person comes out bit for bit the same.
- A record of the new VCF reaching outside the span (its reference bases are not stored) is
  skipped and counted as ``outside_span``.
- A new haplotype whose window needs reference beyond the span (net deletions longer than
  the span's flank) gets N there; such haplotypes are counted as ``beyond_span``.

Coordinates: ``span0`` is 0-based; VCF positions (``pos1``) are 1-based.
"""

from __future__ import annotations

from collections import Counter
from typing import NamedTuple

import numpy as np

from data_prep.haplotype_genes import _no_records  # one empty-records helper, not a copy
from data_prep.haplotype_windows import gene_edits, haplotype_extent
from data_prep.haplotypes import (
    DROP1,
    DROP2,
    HAP1,
    HAP2,
    HaplotypeRecords,
    HaplotypeVariants,
    read_haplotype_records,
    resolve_haplotypes,
)

__all__ = ["StoredSpan", "span_haplotypes", "stored_span"]

_BASES = np.frombuffer(b"ACGTN", dtype=np.uint8)


class StoredSpan(NamedTuple):
    """A gene's stored reference span: ``codes`` of ``[span0, span0 + len(codes))``, 0-based."""

    span0: int
    codes: np.ndarray  # shape=(span_len,), uint8 (A,C,G,T = 0..3, N = 4)
    contig_len: int

    @property
    def span1(self) -> int:
        return self.span0 + len(self.codes)

    def text(self) -> str:
        """The span as upper-case bases (N for anything but A, C, G, T)."""
        return _BASES[self.codes].tobytes().decode("ascii")


def stored_span(training, gene: str) -> StoredSpan:
    """The reference span a haplotype-mode dataset stores for ``gene`` (genes.tsv + spans.npy)."""
    g = training._genes.iloc[training._row(gene)]  # same package: the dataset's own tables
    s0, n = int(g["span_start"]), int(g["span_len"])
    codes = np.asarray(training._spans_mm[s0 : s0 + n], dtype=np.uint8)
    return StoredSpan(int(g["span0"]), codes, int(g["contig_len"]))


def span_haplotypes(
    vcf,
    vcf_contig: str | None,
    span: StoredSpan,
    window,
    *,
    sample_index: np.ndarray,
    missing: str = "ref",
    pass_only: bool = False,
    counts: Counter,
    mismatches: list,
    sites: list,
) -> HaplotypeVariants:
    """Resolve people's haplotypes of one gene over its stored span.

    Parameters
    ----------
    vcf : cyvcf2.VCF or data_prep.vcf_text.IndexedVcf, or None
        Indexed VCF/BCF with phased GT (None: no records on this contig).
    vcf_contig : str or None
        The contig as the VCF spells it.
    span : StoredSpan
    window : data_prep.genome.Window
        The gene's reference window (chrom, start0, end0, tss0: 0-based).
    sample_index : np.ndarray, shape=(n,), int
        VCF sample columns, in dataset order.
    missing, pass_only
        The training dataset's prep options (:func:`data_prep.haplotypes.resolve_haplotypes`).
    counts : Counter
        Incremented with skip reasons (``symbolic``, ``ref_mismatch``, ``outside_span``,
        ``beyond_span`` ...).
    mismatches : list
        Receives ``(chrom, pos1, vcf_ref, reference)`` per allele whose REF disagrees with the
        span (the caller judges the genome build from them).
    sites : list
        Receives ``(pos1, REF, ALT)`` of every allele the VCF offers in the span after the
        FILTER and REF checks, carried or not.

    Returns
    -------
    HaplotypeVariants
        Carrier codes as :class:`~data_prep.haplotypes.HaplotypeVariants` (one row per applied
        allele), rows sorted by position, REF, ALT.

    Raises
    ------
    InputError
        An unphased heterozygous call (prep's line); a missing genotype with
        ``missing='error'``.
    """
    n = len(sample_index)
    if vcf is None:
        return resolve_haplotypes(_no_records(n), "", span.span0)
    records, _, _ = read_haplotype_records(vcf, vcf_contig, span.span0, span.span1, sample_index)
    ends = records.pos0 + np.fromiter((len(r) for r in records.refs), np.int64, len(records.refs))
    inside = (records.pos0 >= span.span0) & (ends <= span.span1)
    if not inside.all():
        counts["outside_span"] += int(
            sum(max(len(a), 1) for a, k in zip(records.alts, inside) if not k)
        )
        records = _subset(records, inside)
    variants = resolve_haplotypes(
        records, span.text(), span.span0, contig=window.chrom, missing=missing,
        ref_mismatch="error", pass_only=pass_only, counts=counts, mismatches=mismatches,
        sites=sites,
    )  # fmt: skip
    beyond = _beyond_span(variants, span, window)
    if beyond:
        counts["beyond_span"] += beyond
    return variants


def _subset(records: HaplotypeRecords, keep: np.ndarray) -> HaplotypeRecords:
    """The records where ``keep`` (shape=(R,), bool), file order kept."""
    idx = np.flatnonzero(keep)
    return HaplotypeRecords(
        records.pos0[idx], [records.ids[i] for i in idx], [records.refs[i] for i in idx],
        [records.alts[i] for i in idx], records.filter_pass[idx], records.gt[idx],
        records.has_gt[idx], records.haploid[idx],
    )  # fmt: skip


def _beyond_span(variants: HaplotypeVariants, span: StoredSpan, window) -> int:
    """How many haplotypes' windows need reference outside the span (inside the contig)."""
    if not len(variants.pos1):
        return 0
    code = variants.carriers
    applied = np.stack([(code & HAP1) > 0, (code & HAP2) > 0], axis=1)  # (n, 2, V)
    dropped = np.stack([(code & DROP1) > 0, (code & DROP2) > 0], axis=1)
    edits = gene_edits(variants.pos1, variants.refs, variants.alts)
    tss_at, length = haplotype_extent(
        edits, applied, dropped, tss0=window.tss0, span0=span.span0, span1=span.span1
    )
    seq_len = window.end0 - window.start0
    half = seq_len // 2
    short_left = (tss_at < half) & (span.span0 > 0)
    short_right = (length - tss_at < seq_len - half) & (span.span1 < span.contig_len)
    return int((short_left | short_right).sum())
