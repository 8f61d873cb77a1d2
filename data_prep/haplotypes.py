"""Each person's two phased haplotypes as edit lists, resolved by ``bcftools consensus`` rules.

Haplotype mode (``variformer prep --haplotypes``) applies SNVs, MNPs and indels (and
multi-allelic records mixing them) to each of a person's two haplotypes separately. Nothing
is materialized here: every applied allele is an *edit* of the reference, and a haplotype is
its list of edits (see :mod:`data_prep.haplotype_windows` for turning one into a sequence).

Input contract: a bgzipped, indexed VCF/BCF with ``GT``; haplotype 1 and 2 are the first and
second allele of ``GT`` (``bcftools consensus -H 1`` and ``-H 2``). The rules, all checked
against ``pysam.bcftools`` (tests/test_haplotypes_oracle.py):

- **Phase.** A diploid call written unphased (``0/1``) whose two alleles differ is refused with
  one line (an unphased homozygous call such as ``1/1`` or ``0/0`` is the same either way and
  is accepted). SNV mode keeps accepting unphased calls.
- **Overlaps** (bcftools' rule, per haplotype, records in file order): an allele is applied
  only if it starts after the last reference base claimed by the previously applied allele;
  *the first applied wins* and the later one is skipped (counted per haplotype as
  ``overlapping_allele``).
  bcftools' one exception is reproduced: an indel whose first REF and ALT bases agree (an
  anchored indel, htslib's ``VCF_INDEL`` with the same first base) may start *on* that last
  claimed base, unless the previous allele was an insertion; its anchor base is then not
  written again (the earlier allele's base stays), so it is stored with its first base dropped.
  An allele equal to REF claims its bases too; a REF (``0``) or missing (``.``) allele claims
  nothing.
- **Skipped alleles** (counted, never applied, claim nothing): symbolic ALTs (``<DEL>``,
  ``<INS>``, ``<*>`` ...), breakends and ``*`` (``symbolic``); records whose FILTER is not PASS
  with ``pass_only`` (``filter_not_pass``); records whose REF disagrees with the FASTA
  (``ref_mismatch``, an error by default as in SNV mode). bcftools would apply ``<DEL>`` (and
  let a gVCF block's ``<*>``/``<NON_REF>`` claim its bases); we do not guess a symbolic
  allele's sequence.
- **Haploid calls** (``GT=1``) are the person's only haplotype and are applied to both (as in
  SNV mode; bcftools applies them with ``-H 1`` only).
- **Case.** Exact for an upper-case FASTA. In one corner bcftools depends on soft-masking: an
  anchored insertion starting on the last base of an allele applied at a lower-case position
  overwrites that base with its own REF base; we keep the earlier allele's base, as bcftools
  does at upper-case positions.
"""

from __future__ import annotations

import warnings
from collections import Counter
from functools import lru_cache
from typing import NamedTuple

import numpy as np

from core.errors import InputError
from data_prep.variants import classify_allele, record_genotypes

__all__ = [
    "HaplotypeRecords",
    "HaplotypeVariants",
    "allele_rule",
    "read_haplotype_records",
    "resolve_haplotypes",
]

# carrier code bits: the allele is applied on haplotype 1 / 2; its first base is dropped there
HAP1, HAP2, DROP1, DROP2 = 1, 2, 4, 8


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
    gt : np.ndarray, shape=(R, n, 2), int16
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


class HaplotypeVariants(NamedTuple):
    """Alleles applied to at least one haplotype, one row per (position, REF, ALT).

    Attributes
    ----------
    pos1 : np.ndarray, shape=(V,), int64
        1-based positions (of the first REF base, as in the VCF).
    ids, refs, alts : list of str
        As in the VCF (REF/ALT upper-cased).
    carriers : np.ndarray, shape=(n, V), uint8
        Bits 0/1 (:data:`HAP1`, :data:`HAP2`): applied on haplotype 1/2 (after the overlap
        rule); bits 2/3 (:data:`DROP1`, :data:`DROP2`): applied there with its first base dropped
        (an anchored indel starting on the previous allele's last base).
    ac, an : np.ndarray, shape=(V,), int64
        Applied copies (a haploid carrier counts once) and alleles present (2 per diploid and 1
        per haploid call).
    """

    pos1: np.ndarray
    ids: list
    refs: list
    alts: list
    carriers: np.ndarray
    ac: np.ndarray
    an: np.ndarray


@lru_cache(maxsize=65536)
def allele_rule(ref: str, alt: str) -> tuple[str, bool]:
    """``(kind, anchored)`` of an ALT for haplotype mode.

    ``kind`` is ``'apply'`` or the reason it is skipped (``'symbolic'``); ``anchored`` is
    bcftools' ``trim_beg``: htslib classes the pair as an indel (``bcf_set_variant_type``) and
    the first REF and ALT characters are equal (case-sensitively, as bcftools compares them).
    """
    if classify_allele(ref, alt) == "symbolic" or not alt.isalpha() or not alt.isascii():
        return "symbolic", False
    return "apply", _htslib_indel(ref, alt) and ref[0] == alt[0]


def _htslib_indel(ref: str, alt: str) -> bool:
    """Whether htslib's ``bcf_set_variant_type`` sets ``VCF_INDEL`` for a REF/ALT pair."""
    if len(ref) == 1 and len(alt) == 1:
        return False
    r, a = ref.upper(), alt.upper()
    i = 0
    while i < len(r) and i < len(a) and r[i] == a[i]:
        i += 1
    if i == len(r) or i == len(a):  # one is a prefix of the other
        return len(r) != len(a)
    re_, ae = len(r) - 1, len(a) - 1
    while re_ > i and ae > i and r[re_] == a[ae]:
        re_, ae = re_ - 1, ae - 1
    if ae == i and re_ != i:
        return r[re_] == a[ae]
    if re_ == i and ae != i:
        return r[re_] == a[ae]
    return False


def read_haplotype_records(vcf, contig: str, start0: int, end0: int, sample_index: np.ndarray):
    """Records overlapping ``[start0, end0)``, the region widened until no record sticks out.

    bcftools decides whether an allele applies from the alleles applied before it; a record
    reaching into the region from the left may itself have been blocked by an earlier one, so
    the region grows to the leftmost record start until it is stable; it grows right to the
    last REF end, so that every record starting inside the final region is read. Returns
    ``(HaplotypeRecords, start0, end0)`` with the final region.

    Raises
    ------
    InputError
        An unphased heterozygous call (see the module docstring).
    """
    lo, hi = max(int(start0), 0), int(end0)
    while True:
        recs = _fetch(vcf, contig, lo, hi)
        first = min((r.POS - 1 for r in recs), default=lo)
        last = max((r.POS - 1 + len(r.REF) for r in recs), default=hi)
        if first >= lo and last <= hi:
            break
        lo, hi = min(lo, first), max(hi, last)
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
    records = HaplotypeRecords(
        np.array([r.POS - 1 for r in recs], dtype=np.int64),
        [r.ID or "." for r in recs],
        [r.REF for r in recs],
        [list(r.ALT) for r in recs],
        np.array([r.FILTER is None for r in recs], dtype=bool),
        np.stack(gts) if gts else np.zeros((0, n, 2), np.int16),
        np.array(has_gt, dtype=bool),
        np.stack(haps) if haps else np.zeros((0, n), bool),
    )
    return records, lo, hi


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


def resolve_haplotypes(
    records: HaplotypeRecords,
    reference: str,
    ref_start0: int,
    *,
    contig: str = "",
    missing: str = "ref",
    ref_mismatch: str = "error",
    pass_only: bool = False,
    counts: Counter | None = None,
    mismatches: list | None = None,
    sites: list | None = None,
) -> HaplotypeVariants:
    """Apply ``bcftools consensus``'s overlap rule to every haplotype at once.

    Parameters
    ----------
    records : HaplotypeRecords
        In file order (as :func:`read_haplotype_records` returns them).
    reference : str
        Upper-case reference of ``[ref_start0, ref_start0 + len(reference))``, covering every
        record's REF (a REF running past it counts as a mismatch).
    ref_start0 : int
        0-based start of ``reference``.
    missing, ref_mismatch, pass_only, counts, mismatches
        As in :func:`data_prep.variants.read_window_variants`.
    sites : list, optional
        Receives ``(pos1, REF, ALT)`` (upper-cased) of every applicable allele that passes the
        FILTER and REF checks, carried by someone or not (``variformer predict``'s coverage).

    Returns
    -------
    HaplotypeVariants
        Sorted by position, then REF, then ALT.
    """
    counts = Counter() if counts is None else counts
    mismatches = [] if mismatches is None else mismatches
    n = records.gt.shape[1]
    frz = np.full((n, 2), -1, np.int64)  # bcftools' fa_frz_pos: last reference base claimed
    prev_ins = np.zeros((n, 2), bool)  # whether the last applied allele was an insertion
    rows: dict[tuple[int, str, str], int] = {}
    ids, codes, haploid = [], [], []
    for r, p in enumerate(records.pos0.tolist()):
        ref, alts = records.refs[r], records.alts[r]
        rules = [allele_rule(ref, alt) for alt in alts]
        kinds = [k for k, _ in rules] or ["no_alt"]
        for k in kinds:
            if k != "apply":
                counts[k] += 1
        n_apply = kinds.count("apply")
        if not n_apply:
            continue
        if not records.filter_pass[r]:
            if pass_only:
                counts["filter_not_pass"] += n_apply
                continue
            counts["applied_not_pass"] += n_apply
        off = p - ref_start0
        if off < 0 or reference[off : off + len(ref)] != ref.upper():
            counts["ref_mismatch"] += n_apply
            if ref_mismatch == "error":
                fasta = reference[max(off, 0) : off + len(ref)] if off >= 0 else "?"
                mismatches.extend([(contig, p + 1, ref, fasta or "-")] * n_apply)
            continue
        if sites is not None:
            sites.extend((p + 1, ref.upper(), alt.upper()) for (k, _), alt in zip(rules, alts)
                         if k == "apply")  # fmt: skip
        if not records.has_gt[r]:
            if missing == "error":
                raise InputError(
                    f"record {contig}:{p + 1} has no GT in its FORMAT; use --missing ref to skip "
                    "such records, as bcftools consensus does"
                )
            counts["no_genotype"] += n_apply
            continue
        gt = records.gt[r]
        if missing == "error" and (gt < 0).any():
            s = int(np.flatnonzero((gt < 0).any(axis=1))[0])
            raise InputError(
                f"missing genotype at {contig}:{p + 1} (sample #{s + 1}); use --missing ref to "
                "treat missing alleles as reference, as bcftools consensus does"
            )
        rlen = len(ref)
        for a, ((kind, anchored), alt) in enumerate(zip(rules, alts), start=1):
            if kind != "apply":
                continue
            has = gt == a  # (n, 2)
            if not has.any():
                continue
            at_frz = p == frz
            ok = has & ((p > frz) | (at_frz & anchored & ~prev_ins))
            blocked = int(np.count_nonzero(has & ~ok))
            if blocked:
                counts["overlapping_allele"] += blocked
            if not ok.any():
                continue
            frz[ok] = p + rlen - 1
            prev_ins[ok] = len(alt) > rlen
            drop = ok & at_frz
            code = (
                ok[:, 0].view(np.uint8) * HAP1
                | ok[:, 1].view(np.uint8) * HAP2
                | drop[:, 0].view(np.uint8) * DROP1
                | drop[:, 1].view(np.uint8) * DROP2
            ).astype(np.uint8)
            key = (p + 1, ref.upper(), alt.upper())
            row = rows.get(key)
            if row is not None:  # the same allele in a later record: one row, haplotypes OR-ed
                codes[row] |= code
                continue
            rows[key] = len(codes)
            ids.append(records.ids[r])
            codes.append(code)
            haploid.append(records.haploid[r])
    keys = list(rows)
    order = sorted(range(len(keys)), key=lambda i: keys[i])
    if not order:
        zero = np.zeros(0, np.int64)
        return HaplotypeVariants(zero, [], [], [], np.zeros((n, 0), np.uint8), zero, zero.copy())
    carriers = np.stack([codes[i] for i in order], axis=1)
    hap_calls = np.stack([haploid[i] for i in order], axis=1)  # (n, V)
    copies = ((carriers & HAP1) > 0).astype(np.int64) + ((carriers & HAP2) > 0)
    ac = np.where(hap_calls, copies > 0, copies).sum(axis=0).astype(np.int64)
    an = (2 * n - hap_calls.sum(axis=0)).astype(np.int64)
    return HaplotypeVariants(
        np.array([keys[i][0] for i in order], dtype=np.int64),
        [ids[i] for i in order],
        [keys[i][1] for i in order],
        [keys[i][2] for i in order],
        np.ascontiguousarray(carriers),
        ac,
        an,
    )
