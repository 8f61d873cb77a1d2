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

from collections import Counter
from functools import lru_cache
from typing import NamedTuple

import numpy as np

from core.errors import InputError
from data_prep.haplotype_records import HaplotypeRecords, read_haplotype_records
from data_prep.variants import classify_allele

__all__ = [
    "HaplotypeRecords",
    "HaplotypeVariants",
    "allele_rule",
    "read_haplotype_records",
    "resolve_haplotypes",
]

# carrier code bits: the allele is applied on haplotype 1 / 2; its first base is dropped there
HAP1, HAP2, DROP1, DROP2 = 1, 2, 4, 8


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
    alleles = _screen(
        records, reference, ref_start0, contig=contig, missing=missing,
        ref_mismatch=ref_mismatch, pass_only=pass_only, counts=counts, mismatches=mismatches,
        sites=sites,
    )  # fmt: skip
    if not alleles:
        return _no_variants(n)
    # the candidate records (with alleles to apply), and each allele's candidate
    cand_list, at_list = [], []
    for r, *_ in alleles:
        if not cand_list or cand_list[-1] != r:
            cand_list.append(r)
        at_list.append(len(cand_list) - 1)
    cand = np.array(cand_list, dtype=np.int64)
    at_rec = np.array(at_list, dtype=np.int64)
    allele = np.fromiter((x[1] for x in alleles), np.int64, len(alleles))
    width = int(allele.max()) + 1
    applies = np.zeros((len(cand), width), bool)  # applies[i, a]: allele a of cand[i]
    applies[at_rec, allele] = True
    n_alts = np.fromiter((len(records.alts[r]) for r in cand_list), np.int64, len(cand))
    g = records.gt if len(cand) == len(records.pos0) else records.gt[cand]
    if len(alleles) == int(n_alts.sum()) and (g.max(axis=(1, 2)) <= n_alts).all():
        asked = np.maximum(g, 0)  # every ALT of every record applies (the usual case)
    else:
        asked = _asked(g, applies)
    applied, dropped, blocked = _overlap_rule(records, cand, asked, alleles, at_rec, width)
    if blocked:
        counts["overlapping_allele"] += blocked
    # the code of each candidate record per person: bits HAP1/HAP2, DROP1/DROP2
    code = _pair_bits(applied)  # (C, n): HAP1 | HAP2
    if dropped is not None:
        code |= _pair_bits(dropped) << 2  # DROP1 | DROP2
    if len(at_rec) > len(cand):  # multi-allelic records: each allele keeps its own haplotypes
        code = code[at_rec]  # (K, n)
        multi = np.flatnonzero(np.bincount(at_rec)[at_rec] > 1)
        same = (asked[at_rec[multi]] == allele[multi, None, None]).view(np.uint8)
        code[multi] &= same[:, :, 0] * np.uint8(HAP1 | DROP1) | same[:, :, 1] * np.uint8(
            HAP2 | DROP2
        )
    rows: dict[tuple[int, str, str], int] = {}
    first: list[int] = []  # per row: the allele (index into ``code``) that made it
    again: list[tuple[int, int]] = []  # (row, allele): the same allele in a later record
    pos0 = records.pos0.tolist()
    for k in np.flatnonzero(code.any(axis=1)).tolist():
        r, _, ref_u, alt_u = alleles[k]
        key = (pos0[r] + 1, ref_u, alt_u)
        row = rows.get(key)
        if row is None:
            rows[key] = len(first)
            first.append(k)
        else:
            again.append((row, k))
    if not rows:
        return _no_variants(n)
    by_row = code[first]  # (V, n)
    for row, k in again:  # one row per allele, haplotypes OR-ed
        by_row[row] |= code[k]
    keys = list(rows)
    order = sorted(range(len(keys)), key=lambda i: keys[i])
    carriers = np.ascontiguousarray(by_row[order].T)  # (n, V)
    rec_of = cand[at_rec[first]] if len(at_rec) > len(cand) else cand[first]
    hap_calls = records.haploid[rec_of[order]].T  # (n, V)
    ids = [records.ids[alleles[first[i]][0]] for i in order]
    if hap_calls.any():  # a haploid carrier counts once
        copies = (carriers & HAP1 > 0).astype(np.int64) + (carriers & HAP2 > 0)
        ac = np.where(hap_calls, copies > 0, copies).sum(axis=0, dtype=np.int64)
    else:
        per_row = np.count_nonzero(by_row & HAP1, axis=1) + np.count_nonzero(by_row & HAP2, axis=1)
        ac = per_row.astype(np.int64)[order]
    an = (2 * n - hap_calls.sum(axis=0)).astype(np.int64)
    return HaplotypeVariants(
        np.array([keys[i][0] for i in order], dtype=np.int64),
        ids,
        [keys[i][1] for i in order],
        [keys[i][2] for i in order],
        np.ascontiguousarray(carriers),
        ac,
        an,
    )


def _asked(gt: np.ndarray, applies: np.ndarray) -> np.ndarray:
    """The allele each haplotype carries in each candidate record if it is one to apply, else 0.

    ``gt``: shape=(C, n, 2); ``applies``: bool shape=(C, W), ``applies[i, a]`` for allele ``a``
    of record ``i``. Returns the same shape and dtype as ``gt``.
    """
    width = applies.shape[1]
    if width > 16:  # many ALTs: one gather instead of a pass per allele
        g = np.where((gt > 0) & (gt < width), gt, 0)
        return np.where(applies[np.arange(len(gt))[:, None, None], g], g, 0).astype(gt.dtype)
    asked = np.zeros_like(gt)
    for a in range(1, width):
        rows = applies[:, a]
        if rows.any():
            hit = gt == a
            if not rows.all():
                hit &= rows[:, None, None]
            asked = np.where(hit, gt, asked)  # (a boolean-mask assignment is slower)
    return asked


def _pair_bits(pair: np.ndarray) -> np.ndarray:
    """bool shape=(C, n, 2) -> uint8 (C, n): bit 0 from ``[..., 0]``, bit 1 from ``[..., 1]``."""
    v = np.ascontiguousarray(pair).view("<u2")[:, :, 0]  # bits 0 and 8
    return (v | (v >> 7)).astype(np.uint8) & np.uint8(3)


def _no_variants(n: int) -> HaplotypeVariants:
    zero = np.zeros(0, np.int64)
    return HaplotypeVariants(zero, [], [], [], np.zeros((n, 0), np.uint8), zero, zero.copy())


def _screen(
    records,
    reference,
    ref_start0,
    *,
    contig,
    missing,
    ref_mismatch,
    pass_only,
    counts,
    mismatches,
    sites=None,
) -> list[tuple[int, int, str, str]]:
    """``(record, allele index, REF, ALT)`` (upper case) of every allele that may be applied,
    in file order; counts the skipped ones and raises the errors in the order met. ``sites``
    (a list) receives ``(pos1, REF, ALT)`` of each such allele, carried by someone or not."""
    out = []
    for r, p in enumerate(records.pos0.tolist()):
        ref, alts = records.refs[r], records.alts[r]
        kinds = [allele_rule(ref, alt)[0] for alt in alts] or ["no_alt"]
        n_apply = 0
        for k in kinds:
            if k == "apply":
                n_apply += 1
            else:
                counts[k] += 1
        if not n_apply:
            continue
        if not records.filter_pass[r]:
            if pass_only:
                counts["filter_not_pass"] += n_apply
                continue
            counts["applied_not_pass"] += n_apply
        off = p - ref_start0
        ref_u = ref.upper()
        if off < 0 or reference[off : off + len(ref)] != ref_u:
            counts["ref_mismatch"] += n_apply
            if ref_mismatch == "error":
                fasta = reference[max(off, 0) : off + len(ref)] if off >= 0 else "?"
                mismatches.extend([(contig, p + 1, ref, fasta or "-")] * n_apply)
            continue
        if sites is not None:
            sites.extend((p + 1, ref_u, alt.upper()) for k, alt in zip(kinds, alts) if k == "apply")
        if not records.has_gt[r]:
            if missing == "error":
                raise InputError(
                    f"record {contig}:{p + 1} has no GT in its FORMAT; use --missing ref to skip "
                    "such records, as bcftools consensus does"
                )
            counts["no_genotype"] += n_apply
            continue
        if missing == "error":
            gt = records.gt[r]
            if (gt < 0).any():
                s = int(np.flatnonzero((gt < 0).any(axis=1))[0])
                raise InputError(
                    f"missing genotype at {contig}:{p + 1} (sample #{s + 1}); use --missing ref "
                    "to treat missing alleles as reference, as bcftools consensus does"
                )
        out.extend(
            (r, a, ref_u, alt.upper())
            for a, (k, alt) in enumerate(zip(kinds, alts), 1)
            if k == "apply"
        )
    return out


def _overlap_rule(records, cand, asked, alleles, at_rec, width):
    """bcftools' overlap rule over the candidate records, per haplotype, in file order.

    Only a record that starts at or before the end of an earlier candidate record's REF can be
    blocked or have its first base dropped; every other record applies whatever its haplotypes
    ask for. So the state (``frz``: the last reference base claimed by each haplotype; whether
    that allele was an insertion) is only followed at those records, and advanced over the
    stretches between them wholesale (the last allele each haplotype applied there).

    Returns ``(applied, dropped, blocked)``: bool shape=(C, n, 2); bool (C, n, 2) or None when
    no record overlaps; the number of blocked alleles.
    """
    pos = records.pos0[cand]
    end = pos + np.fromiter((len(records.refs[r]) for r in cand.tolist()), np.int64, len(cand)) - 1
    applied = asked > 0
    reach = np.maximum.accumulate(end)
    overlapping = np.flatnonzero(pos[1:] <= reach[:-1]) + 1
    if not len(overlapping):
        return applied, None, 0
    anchored = np.zeros((len(cand), width), bool)
    insertion = np.zeros((len(cand), width), bool)
    for (r, a, ref_u, alt_u), i in zip(alleles, at_rec.tolist()):
        anchored[i, a] = allele_rule(records.refs[r], records.alts[r][a - 1])[1]
        insertion[i, a] = len(alt_u) > len(ref_u)
    n = asked.shape[1]
    frz = np.full((n, 2), -1, np.int64)
    prev_ins = np.zeros((n, 2), bool)
    dropped = np.zeros_like(applied)
    blocked = 0
    done = 0  # candidates before this index are accounted for in frz / prev_ins
    for i in overlapping.tolist():
        if i > done:  # the stretch [done, i): nothing overlaps, the last applied allele wins
            stretch = applied[done:i]
            some = stretch.any(axis=0)
            last = done + (i - done - 1) - stretch[::-1].argmax(axis=0)  # (n, 2)
            frz = np.where(some, end[last], frz)
            hap = np.arange(2)[None, :]
            prev_ins = np.where(
                some, insertion[last, asked[last, np.arange(n)[:, None], hap]], prev_ins
            )
        a = asked[i]
        has = a > 0
        p = int(pos[i])
        at_frz = frz == p
        ok = has & ((p > frz) | (at_frz & anchored[i][a] & ~prev_ins))
        blocked += int(np.count_nonzero(has & ~ok))
        frz[ok] = end[i]
        prev_ins[ok] = insertion[i][a][ok]
        applied[i] = ok
        dropped[i] = ok & at_frz
        done = i + 1
    return applied, dropped, blocked
