"""A haplotype's TSS-anchored window: its edits applied to the reference, cut to ``seq_len``.

A haplotype is the reference with its edits (:mod:`data_prep.haplotypes`) applied, exactly as
``bcftools consensus -H 1|2`` builds the whole contig. Its window keeps the model's contract:
``seq_len`` bases with the TSS at index ``seq_len // 2``. The anchoring rule, stated once:

- The TSS's haplotype position ``H(tss0)`` is where bcftools' own chain file (``bcftools
  consensus -c``) maps reference base ``tss0``. Outside an edited stretch that is ``tss0`` plus
  the length changes of the edits before it (an insertion anchored on ``tss0 - 1`` is before
  it; one anchored on ``tss0`` is after it); a base replaced by an SNV or MNP keeps its place.
  Inside an edited stretch (a chain gap: reference ``[t, t + dt)`` replaced by haplotype
  ``[q, q + dq)``; a length-changing allele whose REF and ALT share the first base is a gap
  from the base after it, any other from its first base; back-to-back gaps merge, as bcftools
  writes them) the TSS keeps its offset, clamped to the gap's end: ``q + min(tss0 - t, dq)``.
  So a deleted TSS maps to the first haplotype base after the deletion, and a TSS inside a
  complex replacement keeps its offset within the ALT while the ALT is long enough.
- The window is haplotype ``[H(tss0) - seq_len // 2, H(tss0) - seq_len // 2 + seq_len)``.
  With no indels this is the reference window ``[start0, end0)``. Upstream insertions push
  reference bases out at the left end and upstream deletions pull bases in from beyond
  ``start0``; downstream indels do the same at the right end. The bases pulled in are the
  haplotype's own (reference plus any edits there), so a window is a crop of the whole-contig
  consensus and nothing is padded inside the contig. Beyond the contig ends: N.

GenVarLoader anchors a window at its reference start instead (upstream indels ignored, the
right end filled from the reference) and may shift long haplotypes randomly; here the TSS is
the anchor, as Enformer's gene-level outputs read the TSS bins.

An edit is ``(start0, end0, alt codes)``: the reference ``[start0, end0)`` replaced by the
ALT. A VCF allele at 0-based ``pos`` with REF ``r`` and ALT ``a`` is ``(pos, pos + len(r), a)``,
or ``(pos + 1, pos + len(r), a[1:])`` when its first base is dropped (the overlap rule in
:mod:`data_prep.haplotypes`). A haplotype's edits never overlap on the reference.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from data_prep.genome import N_CODE, encode

__all__ = [
    "GeneEdits",
    "anchored_window",
    "fill_windows_",
    "gene_edits",
    "haplotype_extent",
    "tss_position",
]


class GeneEdits(NamedTuple):
    """A gene's alleles as edits (one row per variant row, in variant order).

    Attributes
    ----------
    start0 : np.ndarray, shape=(V,), int64
        0-based first REF base.
    ref_len : np.ndarray, shape=(V,), int64
    alt_codes : np.ndarray, shape=(sum of ALT lengths,), uint8
        The ALTs' codes (:func:`data_prep.genome.encode`), concatenated.
    alt_offsets : np.ndarray, shape=(V + 1,), int64
    same_first : np.ndarray, shape=(V,), bool
        REF and ALT begin with the same base (case-insensitive): the chain gap of a
        length-changing allele starts one base after it.
    """

    start0: np.ndarray
    ref_len: np.ndarray
    alt_codes: np.ndarray
    alt_offsets: np.ndarray
    same_first: np.ndarray

    @property
    def alt_len(self) -> np.ndarray:
        return np.diff(self.alt_offsets)


def gene_edits(pos1, refs, alts) -> GeneEdits:
    """Variant rows (1-based ``pos1``, REF and ALT strings) -> :class:`GeneEdits`."""
    alt_len = np.fromiter((len(a) for a in alts), dtype=np.int64, count=len(alts))
    offsets = np.concatenate([[0], np.cumsum(alt_len)]).astype(np.int64)
    codes = encode("".join(alts)) if len(alts) else np.zeros(0, np.uint8)
    return GeneEdits(
        np.asarray(pos1, dtype=np.int64) - 1,
        np.fromiter((len(r) for r in refs), dtype=np.int64, count=len(refs)),
        codes,
        offsets,
        np.fromiter((r[:1].upper() == a[:1].upper() for r, a in zip(refs, alts)), bool, len(refs)),
    )


def tss_position(edits: GeneEdits, rows, *, tss0: int) -> int:
    """``H(tss0)``, the TSS's haplotype position by bcftools' chain rule (module docstring).

    ``rows``: the haplotype's applied variant rows in the order it applies them (by position).
    Positions count from the reference's origin (``H(p) = p`` before any edit).
    """
    gaps: list[list[int]] = []  # [t0, t1, dq]: reference [t0, t1) -> dq haplotype bases
    for i in rows:
        i = int(i)
        rlen, alen = int(edits.ref_len[i]), int(edits.alt_offsets[i + 1] - edits.alt_offsets[i])
        if rlen == alen:
            continue  # SNV/MNP: aligned, no gap
        k = int(edits.same_first[i])
        t, dt, dq = int(edits.start0[i]) + k, rlen - k, alen - k
        if gaps and t <= gaps[-1][1]:  # back to back: bcftools extends the gap
            gaps[-1][1], gaps[-1][2] = t + dt, gaps[-1][2] + dq
        elif t > tss0:
            break
        else:
            gaps.append([t, t + dt, dq])
    shift = 0
    for t0, t1, dq in gaps:
        if t1 <= tss0:  # before the TSS (an insertion at tss0 too)
            shift += dq - (t1 - t0)
        elif t0 <= tss0:
            return t0 + shift + min(tss0 - t0, dq)
    return tss0 + shift


def haplotype_extent(edits: GeneEdits, applied, dropped, *, tss0: int, span0: int, span1: int):
    """Where the TSS lands in each haplotype, and each haplotype's length, for many at once.

    Parameters
    ----------
    edits : GeneEdits
    applied, dropped : np.ndarray, shape=(..., V), bool
        Which rows a haplotype applies, and which of them with their first base dropped.
    tss0 : int
        0-based TSS.
    span0, span1 : int
        The reference span ``[span0, span1)`` the haplotypes are built over; it must contain
        every applied edit.

    Returns
    -------
    tss_at : np.ndarray, shape=(...), int64
        ``H(tss0) - H(span0)``: the TSS's index in the haplotype built over the span.
    length : np.ndarray, shape=(...), int64
        Length of that haplotype.
    """
    applied = np.asarray(applied, dtype=bool)
    dropped = np.asarray(dropped, dtype=bool)
    e = edits.start0 + edits.ref_len
    delta = edits.alt_len - edits.ref_len  # dropping the first base keeps the length change
    # sums of length changes as one BLAS product over a whole cohort's (people, 2, V), exact:
    # float32 while every partial sum stays below 2**24, float64 beyond
    exact = np.float32 if np.abs(delta).sum() < 2**24 else np.float64
    weights = np.stack([np.where(e <= tss0, delta, 0), delta], axis=1).astype(exact)
    sums = np.rint(applied.astype(exact) @ weights).astype(np.int64)  # (..., 2)
    tss_at = np.array((tss0 - span0) + sums[..., 0], dtype=np.int64)
    length = np.array((span1 - span0) + sums[..., 1], dtype=np.int64)
    # the few edits whose REF covers the TSS (first base included: dropping it may uncover it)
    near = np.flatnonzero((edits.start0 <= tss0) & (tss0 < e))
    s = edits.start0[near] + dropped[..., near]
    alen = edits.alt_len[near] - dropped[..., near]
    cover = applied[..., near] & (s <= tss0)
    inside = np.minimum(tss0 - s, alen) - (tss0 - s)
    tss_at += np.where(cover, inside, 0).sum(-1)
    # a TSS inside a length-changing edit: the chain rule may merge it with the edit before
    for at in np.argwhere((cover & (delta[near] != 0)).any(-1)):
        at = tuple(at)
        rows = np.flatnonzero(applied[at])
        rows = _in_order(edits, rows, dropped[at][rows])
        tss_at[at] = tss_position(edits, rows, tss0=tss0) - span0
    return tss_at, length


def _in_order(edits: GeneEdits, rows: np.ndarray, dropped: np.ndarray) -> np.ndarray:
    """A haplotype's rows in the order bcftools applies them: by (edited start, end)."""
    starts = edits.start0[rows] + dropped
    return rows[np.lexsort((edits.start0[rows] + edits.ref_len[rows], starts))]


def anchored_window(
    reference: np.ndarray,
    span0: int,
    edits: GeneEdits,
    rows,
    dropped,
    *,
    tss0: int,
    seq_len: int,
    contig_len: int,
    out: np.ndarray | None = None,
    tss_at: int | None = None,
) -> tuple[np.ndarray, bool]:
    """One haplotype's TSS-anchored window (codes), and whether its span sufficed.

    Parameters
    ----------
    reference : np.ndarray, shape=(S,), uint8
        Reference codes of ``[span0, span0 + S)`` (within the contig).
    span0 : int
        0-based start of ``reference``.
    edits : GeneEdits
    rows : np.ndarray, shape=(k,), int
        The variant rows the haplotype applies, by position.
    dropped : np.ndarray, shape=(k,), bool
        Whether each is applied with its first base dropped.
    tss0, seq_len, contig_len : int
    out : np.ndarray, shape=(seq_len,), uint8, optional
    tss_at : int, optional
        ``H(tss0) - span0`` if already known (:func:`haplotype_extent` gives it for many).

    Returns
    -------
    codes : np.ndarray, shape=(seq_len,), uint8
        N (4) beyond the contig ends.
    fits : bool
        False when the window needs reference beyond the span that lies inside the contig
        (the caller widens the span); the codes are then incomplete.
    """
    rows = np.asarray(rows, dtype=np.int64)
    dropped = np.asarray(dropped, dtype=np.int64)
    starts = edits.start0[rows] + dropped
    ends = edits.start0[rows] + edits.ref_len[rows]
    a0 = edits.alt_offsets[rows] + dropped
    a1 = edits.alt_offsets[rows + 1]
    order = np.lexsort((ends, starts))
    pieces = []
    cur = 0  # next reference base to copy, relative to span0
    alt_codes = edits.alt_codes
    for s, e, x0, x1 in zip(
        (starts[order] - span0).tolist(), (ends[order] - span0).tolist(),
        a0[order].tolist(), a1[order].tolist(),
    ):  # fmt: skip
        pieces.append(reference[cur:s])
        pieces.append(alt_codes[x0:x1])
        cur = e
    pieces.append(reference[cur:])
    if tss_at is None:
        tss_at = tss_position(edits, rows[order], tss0=tss0) - span0
    hap = np.concatenate(pieces) if len(pieces) > 1 else pieces[0]
    lo = tss_at - seq_len // 2
    hi = lo + seq_len
    if out is None:
        out = np.empty(seq_len, dtype=np.uint8)
    out.fill(N_CODE)
    a, b = max(lo, 0), min(hi, len(hap))
    if b > a:
        out[a - lo : b - lo] = hap[a:b]
    span1 = span0 + len(reference)
    fits = (lo >= 0 or span0 == 0) and (hi <= len(hap) or span1 >= contig_len)
    return out, fits


def fill_windows_(
    out: np.ndarray,
    source: np.ndarray,
    edits: GeneEdits,
    applied: np.ndarray,
    dropped: np.ndarray,
    *,
    span0: int,
    span_len: int,
    tss_at: np.ndarray,
    fill,
) -> np.ndarray:
    """Many haplotypes' TSS-anchored windows at once, written into ``out`` (in place).

    The same windows as :func:`anchored_window` (N beyond the haplotype built over the span),
    built without a loop over edits: between two length-changing edits a haplotype is the
    reference at one shift, so each such stretch is one slice copy, and every ALT base (SNVs,
    MNPs, inserted bases) lands afterwards in one scatter. Works on any item type: codes, or
    one-hot rows viewed as 16-byte items.

    Parameters
    ----------
    out : np.ndarray, shape=(H, seq_len)
        Filled in place, one row per haplotype.
    source : np.ndarray, shape=(span_len + len(edits.alt_codes),), out's dtype
        The span's items (reference ``[span0, span0 + span_len)``, 0-based) followed by the
        ALTs' items, in :class:`GeneEdits` order and the same encoding.
    edits : GeneEdits
    applied, dropped : np.ndarray, shape=(H, V), bool
        Which rows each haplotype applies, and which of them with their first base dropped.
    span0, span_len : int
    tss_at : np.ndarray, shape=(H,), int
        ``H(tss0) - span0`` per haplotype (:func:`haplotype_extent`).
    fill : scalar
        The item beyond the haplotype (N).

    Returns
    -------
    out : np.ndarray, shape=(H, seq_len)
    """
    n_hap, seq_len = out.shape
    lo = np.asarray(tss_at, dtype=np.int64) - seq_len // 2  # window start, haplotype coords
    hh, vv = np.nonzero(applied)
    dr = dropped[hh, vv].astype(np.int64)
    s = edits.start0[vv] + dr - span0  # span-relative, edited stretch [s, e)
    e = edits.start0[vv] + edits.ref_len[vv] - span0
    a0 = edits.alt_offsets[vv] + dr + span_len  # into source
    al = edits.alt_offsets[vv + 1] - edits.alt_offsets[vv] - dr
    order = np.lexsort((e, s, hh))  # bcftools' order within a haplotype
    hh, s, e, a0, al = hh[order], s[order], e[order], a0[order], al[order]
    delta = al - (e - s)
    cum = np.cumsum(delta)
    first = np.searchsorted(hh, np.arange(n_hap))  # each haplotype's first edit
    total = np.bincount(hh, weights=delta, minlength=n_hap).astype(np.int64)  # per haplotype
    shift = cum - delta - np.concatenate([[0], cum])[first][hh]  # length change before each edit
    # reference stretches: up to each length-changing edit, and from the last one to the end
    lc = np.flatnonzero(delta != 0)
    hl = hh[lc]
    new_hap = np.ones(len(lc), dtype=bool)
    new_hap[1:] = hl[1:] != hl[:-1]
    prev_end = np.zeros(len(lc), dtype=np.int64)
    prev_end[1:] = e[lc][:-1]
    prev_end[new_hap] = 0
    last_end = np.zeros(n_hap, dtype=np.int64)
    if len(lc):
        last = np.ones(len(lc), dtype=bool)
        last[:-1] = hl[1:] != hl[:-1]
        last_end[hl[last]] = e[lc][last]
    bh = np.concatenate([hl, np.arange(n_hap)])
    r0 = np.concatenate([prev_end, last_end])
    r1 = np.concatenate([s[lc], np.full(n_hap, span_len, dtype=np.int64)])
    o0 = r0 + np.concatenate([shift[lc], total]) - lo[bh]  # output positions
    c0 = np.maximum(o0, 0)
    c1 = np.minimum(o0 + (r1 - r0), seq_len)
    keep = c1 > c0
    for h, a, b, r in zip(
        bh[keep].tolist(), c0[keep].tolist(), c1[keep].tolist(), (r0 + c0 - o0)[keep].tolist()
    ):
        out[h, a:b] = source[r : r + b - a]
    # beyond the haplotype (contig ends): N
    length = span_len + total
    for h in np.flatnonzero((lo < 0) | (lo + seq_len > length)).tolist():
        out[h, : max(-lo[h], 0)] = fill
        out[h, max(length[h] - lo[h], 0) :] = fill
    # every ALT base that falls in its window, in one scatter
    o = s + shift - lo[hh]
    hit = (al > 0) & (o < seq_len) & (o + al > 0)
    o, a0, al, hh = o[hit], a0[hit], al[hit], hh[hit]
    step = np.arange(int(al.sum())) - np.repeat(np.cumsum(al) - al, al)
    pos = np.repeat(o, al) + step
    inside = (pos >= 0) & (pos < seq_len)
    out[np.repeat(hh, al)[inside], pos[inside]] = source[(np.repeat(a0, al) + step)[inside]]
    return out
