"""Windows with one more allele: a listed variant placed on the reference or on a person.

What ``variformer score-variants`` and the ISM of indels feed the model: a gene's
TSS-anchored window with one VCF allele (SNV, MNP or indel; observed in the cohort or not)
applied at its true position, as ``bcftools consensus`` would write the contig and
:mod:`data_prep.haplotype_windows` anchors it (an indel before the TSS shifts the left part
of the window, one after it the right part; a deleted TSS maps to the first base after the
deletion).

- On the reference: the reference with the one allele.
- On a person of a haplotype-mode dataset: each of the person's two haplotypes with the
  allele added to the alleles it already applies, resolved by bcftools' overlap rule
  (:func:`data_prep.haplotypes.resolve_haplotypes`; records in position order, the listed
  allele after the person's own at the same position): the allele applied first wins, so a
  listed allele overlapping one the person carries is not applied on that haplotype, and one
  that starts first blocks the person's later overlapping allele (reported as ``displaced``).
  Limit: an allele that prep found blocked (not applied) is not in the dataset, so it cannot
  come back when the listed allele displaces the allele that blocked it.
- On a person of an SNV dataset (averaged one-hot): only same-length alleles (SNVs, MNPs)
  can be placed, base by base, as ISM places an SNV.

The bases an indel pulls into a window come from the reference the dataset keeps: a
haplotype-mode dataset's span (at least :data:`data_prep.haplotype_genes.FLANK` bp beyond
the window), an SNV dataset's window only. A window that needs more is reported (``fits``
False) and its allele skipped by the caller.
"""

from __future__ import annotations

from collections import Counter
from typing import NamedTuple

import numpy as np
import pandas as pd

from core.errors import InputError
from data_prep.genome import N_CODE, canonical_contig
from data_prep.haplotype_windows import anchored_window, gene_edits
from data_prep.haplotypes import DROP1, DROP2, HAP1, HAP2, HaplotypeRecords, resolve_haplotypes
from data_prep.variants import classify_allele

__all__ = [
    "KINDS",
    "GeneReference",
    "PersonAlleles",
    "allele_kind",
    "background_windows",
    "gene_reference",
    "overlaps_window",
    "person_alleles",
    "read_listed_variants",
    "reference_windows",
]

#: the ``kind`` of an allele
KINDS = ("snv", "mnp", "insertion", "deletion", "complex")
_BIG = 1 << 62  # contig length where the dataset does not know it: nothing beyond the span


def allele_kind(ref: str, alt: str) -> str:
    """``snv``, ``mnp`` (same length), ``insertion`` / ``deletion`` (REF a prefix or suffix of
    ALT, or the other way round) or ``complex`` (both change)."""
    r, a = ref.upper(), alt.upper()
    if len(r) == len(a):
        return "snv" if len(r) == 1 else "mnp"
    short, long_ = (r, a) if len(r) < len(a) else (a, r)
    if long_.startswith(short) or long_.endswith(short):
        return "insertion" if len(a) > len(r) else "deletion"
    return "complex"


class GeneReference(NamedTuple):
    """Reference codes around a gene's window.

    Attributes
    ----------
    span0 : int
        0-based start of ``codes``.
    codes : np.ndarray, shape=(S,), uint8
    contig_len : int
        The contig's length where the dataset records it (a huge number otherwise: then no
        window may reach beyond the span).
    """

    span0: int
    codes: np.ndarray
    contig_len: int

    def covers(self, start0, end0) -> np.ndarray:
        """Whether reference ``[start0, end0)`` (0-based, arrays) lies inside the span."""
        return (np.asarray(start0) >= self.span0) & (
            np.asarray(end0) <= self.span0 + len(self.codes)
        )

    def text(self, start0: int, end0: int) -> str:
        """Upper-case bases of ``[start0, end0)`` (inside the span)."""
        return "".join("ACGTN"[c] for c in self.codes[start0 - self.span0 : end0 - self.span0])


def gene_reference(ds, gene: str) -> GeneReference:
    """The reference a dataset keeps for ``gene``: a haplotype dataset's span, else the window."""
    if ds.haplotype_mode:
        from data_prep.haplotype_reader import HaplotypeStore

        store = HaplotypeStore.of(ds)
        g = store.genes.iloc[ds._row(gene)]
        s0, slen = int(g["span_start"]), int(g["span_len"])
        codes = np.asarray(store.spans[s0 : s0 + slen], dtype=np.uint8)
        return GeneReference(int(g["span0"]), codes, int(g["contig_len"]))
    one_hot = ds.reference(gene)
    codes = np.where(one_hot.sum(axis=1) > 0, one_hot.argmax(axis=1), N_CODE).astype(np.uint8)
    return GeneReference(int(ds.window(gene).start0), codes, _BIG)


def read_listed_variants(path) -> tuple[pd.DataFrame, Counter]:
    """The alleles of a VCF (sites only is fine; no index needed), one row per ALT.

    Returns
    -------
    variants : pd.DataFrame
        ``chrom, pos`` (1-based), ``id, ref, alt`` (upper-cased), ``kind`` (:data:`KINDS`),
        in file order.
    skipped : Counter
        ``symbolic`` (``<DEL>``, ``*``, breakends), ``non_acgt`` (another letter in REF or
        ALT) and ``ref_equals_alt`` alleles, which are not in ``variants``.

    Raises
    ------
    InputError
        The file cannot be read as a VCF.
    """
    import cyvcf2

    from data_prep._htslib import htslib_errors

    rows, skipped = [], Counter()
    with htslib_errors(f"VCF {path}"):
        try:
            vcf = cyvcf2.VCF(str(path), lazy=True, gts012=False)
        except (OSError, Exception) as err:  # cyvcf2 raises plain Exceptions
            raise InputError(f"cannot read {path} as a VCF/BCF ({err})") from None
        for rec in vcf:
            ref = rec.REF.upper()
            for alt in rec.ALT or ["."]:
                kind = classify_allele(ref, alt)
                if kind == "symbolic":
                    skipped["symbolic"] += 1
                elif set(ref + alt.upper()) - set("ACGT"):
                    skipped["non_acgt"] += 1
                elif ref == alt.upper():
                    skipped["ref_equals_alt"] += 1
                else:
                    a = alt.upper()
                    rows.append((rec.CHROM, rec.POS, rec.ID or ".", ref, a, allele_kind(ref, a)))
        vcf.close()
    frame = pd.DataFrame(rows, columns=["chrom", "pos", "id", "ref", "alt", "kind"])
    frame["pos"] = frame["pos"].astype(np.int64)
    return frame, skipped


def overlaps_window(variants: pd.DataFrame, chrom: str, start0: int, end0: int) -> np.ndarray:
    """Which alleles touch reference ``[start0, end0)``: their REF span ``[pos - 1,
    pos - 1 + len(REF))`` overlaps it (whatever the contig spelling). Bool, shape=(V,)."""
    key = canonical_contig(str(chrom))
    same = np.array([canonical_contig(str(c)) == key for c in variants["chrom"]], dtype=bool)
    p0 = variants["pos"].to_numpy(np.int64) - 1
    r_len = variants["ref"].str.len().to_numpy(np.int64)
    return same & (p0 < end0) & (p0 + r_len > start0)


def reference_windows(
    ref: GeneReference, pos1, refs, alts, *, tss0: int, seq_len: int
) -> tuple[np.ndarray, np.ndarray]:
    """The reference window with each allele alone applied, TSS-anchored.

    Parameters
    ----------
    ref : GeneReference
    pos1 : array of int, shape=(V,)
        1-based positions (the first REF base, as in the VCF).
    refs, alts : sequence of str
    tss0, seq_len : int
        0-based TSS; window length (the TSS at ``seq_len // 2``).

    Returns
    -------
    codes : np.ndarray, shape=(V, seq_len), uint8
    fits : np.ndarray, shape=(V,), bool
        False where the window needs reference beyond ``ref``'s span (codes incomplete).
    """
    edits = gene_edits(pos1, list(refs), list(alts))
    codes = np.empty((len(edits.start0), seq_len), dtype=np.uint8)
    fits = np.zeros(len(edits.start0), dtype=bool)
    none = np.zeros(1, dtype=bool)
    for i in range(len(edits.start0)):
        _, fits[i] = anchored_window(
            ref.codes, ref.span0, edits, [i], none, tss0=tss0, seq_len=seq_len,
            contig_len=ref.contig_len, out=codes[i],
        )  # fmt: skip
    return codes, fits


class PersonAlleles(NamedTuple):
    """The alleles one person applies in a gene (haplotype-mode dataset).

    Attributes
    ----------
    pos1 : np.ndarray, shape=(V,), int64
    refs, alts : list of str
    applied, dropped : np.ndarray, shape=(2, V), bool
        Applied on haplotype 1 / 2; applied there with the first base dropped.
    """

    pos1: np.ndarray
    refs: list
    alts: list
    applied: np.ndarray
    dropped: np.ndarray


def person_alleles(ds, gene: str, sample: str) -> PersonAlleles:
    """A person's applied alleles in ``gene`` from a haplotype-mode dataset."""
    from data_prep.haplotype_reader import HaplotypeStore

    store = HaplotypeStore.of(ds)  # InputError for an SNV dataset
    row = ds._row(gene)
    v0, nv = int(store.genes["var_start"].iat[row]), int(store.genes["n_variants"].iat[row])
    mine = store.carrier_codes(row)[ds._sample_rows([sample])[0]]
    keep = np.flatnonzero(mine)
    v = store.variants.iloc[v0 : v0 + nv].iloc[keep]
    m = mine[keep]
    return PersonAlleles(
        v["pos"].to_numpy(np.int64), list(v["ref"]), list(v["alt"]),
        np.stack([(m & HAP1) > 0, (m & HAP2) > 0]), np.stack([(m & DROP1) > 0, (m & DROP2) > 0]),
    )  # fmt: skip


def _haplotype_with(
    ref: GeneReference, person: PersonAlleles, h: int, new: tuple, *, tss0, seq_len
):
    """One haplotype with the listed allele ``new = (pos1, REF, ALT)`` added, by bcftools'
    rule: ``(codes, new allele applied, person alleles displaced, fits)``."""
    rows = np.flatnonzero(person.applied[h])
    start = person.pos1[rows] - 1 + person.dropped[h, rows]
    end = person.pos1[rows] - 1 + np.array([len(person.refs[i]) for i in rows], dtype=np.int64)
    rows = rows[np.lexsort((end, start))]  # the order bcftools applied them in
    key = (int(new[0]), new[1].upper(), new[2].upper())
    if key in {(int(person.pos1[i]), person.refs[i], person.alts[i]) for i in rows}:
        new = None  # carried already: a second copy of an allele always overlaps the first
    pos1 = [int(person.pos1[i]) for i in rows]
    refs = [person.refs[i] for i in rows]
    alts = [person.alts[i] for i in rows]
    if new is not None:
        at = int(np.searchsorted(np.asarray(pos1, dtype=np.int64), new[0], side="right"))
        pos1.insert(at, int(new[0]))
        refs.insert(at, new[1].upper())
        alts.insert(at, new[2].upper())
    n = len(pos1)
    gt = np.ones((n, 1, 2), dtype=np.int16)
    records = HaplotypeRecords(
        np.asarray(pos1, dtype=np.int64) - 1, ["."] * n, refs, [[a] for a in alts],
        np.ones(n, bool), gt, np.ones(n, bool), np.zeros((n, 1), bool),
    )  # fmt: skip
    lo = min(pos1) - 1
    hi = max(p - 1 + len(r) for p, r in zip(pos1, refs))
    if not (ref.covers(lo, hi)):
        return None, False, 0, False
    text = ref.text(lo, hi)
    resolved = resolve_haplotypes(records, text, lo)
    code = resolved.carriers[0]
    applied_rows = np.flatnonzero(code & HAP1)
    keys = list(zip(resolved.pos1.tolist(), resolved.refs, resolved.alts))
    new_applied = new is not None and key in keys and bool(code[keys.index(key)] & HAP1)
    displaced = len(rows) - (len(applied_rows) - int(new_applied))
    edits = gene_edits(resolved.pos1, resolved.refs, resolved.alts)
    codes, fits = anchored_window(
        ref.codes, ref.span0, edits, applied_rows, (code[applied_rows] & DROP1) > 0, tss0=tss0,
        seq_len=seq_len, contig_len=ref.contig_len,
    )  # fmt: skip
    return codes, new_applied, displaced, fits


def background_windows(
    ref: GeneReference, person: PersonAlleles, pos1, refs, alts, *, tss0: int, seq_len: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A person's two haplotype windows with each allele added (bcftools' overlap rule).

    Parameters
    ----------
    ref : GeneReference
    person : PersonAlleles
    pos1, refs, alts
        The listed alleles (1-based positions), shape=(V,).
    tss0, seq_len : int

    Returns
    -------
    codes : np.ndarray, shape=(V, 2, seq_len), uint8
    applied : np.ndarray, shape=(V, 2), bool
        Whether the listed allele was applied on each haplotype (False where an allele of the
        person that comes first claims its bases, e.g. the person carries it already).
    displaced : np.ndarray, shape=(V, 2), int64
        Alleles of the person no longer applied because the listed allele came first.
    fits : np.ndarray, shape=(V,), bool
        False where a window needs reference beyond the span.
    """
    v = len(pos1)
    codes = np.full((v, 2, seq_len), N_CODE, dtype=np.uint8)
    applied = np.zeros((v, 2), dtype=bool)
    displaced = np.zeros((v, 2), dtype=np.int64)
    fits = np.ones(v, dtype=bool)
    for i, new in enumerate(zip(np.asarray(pos1).tolist(), refs, alts)):
        for h in (0, 1):
            c, applied[i, h], displaced[i, h], ok = _haplotype_with(
                ref, person, h, new, tss0=tss0, seq_len=seq_len
            )
            fits[i] &= ok
            if c is not None:
                codes[i, h] = c
    return codes, applied, displaced, fits
