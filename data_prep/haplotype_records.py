"""Reading a region's VCF records for haplotype mode: positions, alleles and phased GT.

:func:`read_haplotype_records` reads through the fast text reader (:mod:`data_prep.vcf_text`:
raw tabix lines, GT parsed with numpy) where the region is the simple case, and through cyvcf2
everywhere else (BCF, haploid calls, any unusual field, ``VARIFORMER_VCF_READER=cyvcf2``). Both
give the same :class:`HaplotypeRecords`; every error message (an unphased heterozygous call,
a damaged file) comes from the cyvcf2 path, which a window the fast path doubts is sent to.
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np

from core.errors import InputError
from data_prep.variants import record_genotypes
from data_prep.vcf_text import fast_reader_enabled

__all__ = ["HaplotypeRecords", "read_haplotype_records"]


class HaplotypeRecords(NamedTuple):
    """VCF records of a region, in file order.

    Attributes
    ----------
    pos0 : np.ndarray, shape=(R,), int64
        0-based positions of the first REF base.
    ids, refs : list of str
        ``.`` for no ID; REF as in the VCF.
    alts : list of list of str
        ALT alleles as in the VCF (empty for ``.``).
    filter_pass : np.ndarray, shape=(R,), bool
        FILTER is PASS or ``.``.
    gt : np.ndarray, shape=(R, n, 2), int8 or int16
        Allele index per haplotype (-1 missing); a haploid call is copied to haplotype 2.
    has_gt : np.ndarray, shape=(R,), bool
        Whether the record carries GT (bcftools applies nothing for one that does not).
    haploid : np.ndarray, shape=(R, n), bool
        Whether each call is haploid.
    """

    pos0: np.ndarray
    ids: list
    refs: list
    alts: list
    filter_pass: np.ndarray
    gt: np.ndarray
    has_gt: np.ndarray
    haploid: np.ndarray


def read_haplotype_records(vcf, contig: str, start0: int, end0: int, sample_index: np.ndarray):
    """Records overlapping ``[start0, end0)``, the region widened until no record sticks out.

    bcftools decides whether an allele applies from the alleles applied before it; a record
    reaching into the region from the left may itself have been blocked by an earlier one, so
    the region grows to the leftmost record start until it is stable; it grows right to the
    last REF end, so that every record starting inside the final region is read. Returns
    ``(HaplotypeRecords, start0, end0)`` with the final region.

    Parameters
    ----------
    vcf : cyvcf2.VCF or data_prep.vcf_text.IndexedVcf
        An :class:`~data_prep.vcf_text.IndexedVcf` brings the fast text reader along.
    contig : str
        As the VCF spells it.
    start0, end0 : int
        0-based half-open region.
    sample_index : np.ndarray, shape=(n,), int
        VCF sample columns in output order.

    Raises
    ------
    InputError
        An unphased heterozygous call (see :mod:`data_prep.haplotypes`).
    """
    lo, hi = max(int(start0), 0), int(end0)
    text = getattr(vcf, "text_reader", None)
    if text is not None and not fast_reader_enabled():
        text = None
    while True:
        window = None
        if text is not None:
            window = text.read_window(contig, lo, hi, sample_index, overlapping=True, phase=True)
        if window is not None:
            starts = window.pos1
            ends = [p - 1 + len(r) for p, r in zip(window.pos1, window.refs)]
        else:
            text = None  # the region's records are not all simple: cyvcf2 from here on
            recs = _fetch(vcf, contig, lo, hi)
            starts = [r.POS for r in recs]
            ends = [r.POS - 1 + len(r.REF) for r in recs]
        first = min(starts, default=lo + 1) - 1
        last = max(ends, default=hi)
        if first >= lo and last <= hi:
            break
        lo, hi = min(lo, first), max(hi, last)
    if window is not None:
        records = _text_records(window)
        if records is not None:
            return records, lo, hi
        recs = _fetch(vcf, contig, lo, hi)  # an unphased call: cyvcf2 names it
    return _cyvcf2_records(vcf, recs, contig, sample_index), lo, hi


def _text_records(window) -> HaplotypeRecords | None:
    """The fast reader's window (every call diploid, with GT); None if a het call is unphased."""
    gt = window.gt  # int8 (the fast path reads one-digit allele indexes only)
    r, n = gt.shape[:2]
    if (~window.phased & (gt[:, :, 0] != gt[:, :, 1])).any():
        return None
    return HaplotypeRecords(
        np.asarray(window.pos1, dtype=np.int64) - 1, window.ids, window.refs, window.alts,
        np.asarray(window.filter_pass, dtype=bool), gt, np.ones(r, bool), np.zeros((r, n), bool),
    )  # fmt: skip


def _cyvcf2_records(vcf, recs: list, contig: str, sample_index) -> HaplotypeRecords:
    n = len(sample_index)
    n_vcf = len(vcf.samples)
    identity = n == n_vcf and bool(np.array_equal(sample_index, np.arange(n_vcf)))
    rows = slice(None) if identity else np.asarray(sample_index)
    gts, has_gt, haps = [], [], []
    for rec in recs:
        called = record_genotypes(rec, rows, n)
        if called is None:
            gts.append(np.full((n, 2), -1, np.int16))
            has_gt.append(False)
            haps.append(np.zeros(n, bool))
            continue
        gt, haploid = called
        # the phase flag of genotype.array() (cyvcf2's gt_phases misreads ".|0")
        phased = rec.genotype.array()[rows, -1] > 0
        unphased = ~phased & ~haploid & (gt[:, 0] != gt[:, 1])
        if unphased.any():
            s = int(np.flatnonzero(unphased)[0])
            name = vcf.samples[int(np.asarray(sample_index)[s])]
            raise InputError(
                f"unphased genotype at {contig}:{rec.POS} (sample {name}: "
                f"{'/'.join('.' if a < 0 else str(a) for a in gt[s])}); --haplotypes needs phased "
                "genotypes (phase the VCF, e.g. with SHAPEIT or Beagle), or leave out "
                "--haplotypes for averaged SNVs"
            )
        gts.append(gt.astype(np.int16, copy=False))
        has_gt.append(True)
        haps.append(haploid)
    return HaplotypeRecords(
        np.array([r.POS - 1 for r in recs], dtype=np.int64),
        [r.ID or "." for r in recs],
        [r.REF for r in recs],
        [list(r.ALT) for r in recs],
        np.array([r.FILTER is None for r in recs], dtype=bool),
        np.stack(gts) if gts else np.zeros((0, n, 2), np.int16),
        np.array(has_gt, dtype=bool),
        np.stack(haps) if haps else np.zeros((0, n), bool),
    )


def _fetch(vcf, contig: str, lo: int, end0: int) -> list:
    region = f"{contig}:{lo + 1}-{end0}"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # cyvcf2 warns "no intervals found" for empty regions
            return list(vcf(region))
    except Exception as err:  # cyvcf2 raises plain Exceptions for parse and index problems
        raise InputError(
            f"cannot read {region} from the VCF ({err}); is it bgzipped and indexed (bcftools index)?"
        ) from None
