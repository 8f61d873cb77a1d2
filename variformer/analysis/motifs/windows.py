"""The windows around SNVs: each allele's best window per strand, and the hits kept.

motifbreakR's ``scoreSeqWindows`` + ``maxThresholdWindows`` (``R/scoreMotif.R``) on integer
codes: every window of a matrix's width that overlaps the SNV is scored on both strands for
REF and ALT (:func:`strand_scores`); :func:`each_strand` keeps per-strand rows (``log``),
:func:`best_strand` motifbreakR's one row per SNV and matrix (``default``, ``ic``).
"""

from __future__ import annotations

import numpy as np

from variformer.analysis.motifs.pvalues import reverse_complement

__all__ = ["at_snv", "best_strand", "each_strand", "strand_scores"]


def strand_scores(mat, table, ctx, ref_c, alt_c) -> list[dict]:
    """For the + and the - strand, every SNV's best REF and best ALT window.

    ``ctx`` holds the ``2w - 1`` bases around each SNV (the SNV at ``w - 1``); window ``k`` is
    ``ctx[:, k:k+w]`` (the same forward-strand bases on both strands) and holds the SNV at its
    column ``w - 1 - k``. Returns per strand: ``ref`` / ``alt`` (best scores, rounded to 1e-9,
    -inf if every window has an N), ``ref_win`` / ``alt_win`` (their ``k``, the first of ties) and
    ``ref_p`` / ``alt_p`` (exact p-values), each shape=(n,).
    """
    w = mat.shape[0]
    n = ctx.shape[0]
    rows = np.arange(n)
    k = np.arange(w)
    # codes of every window, as flat indices into a (w, 5) matrix: column j, base b -> 5j + b
    flat_idx = ctx[:, k[:, None] + k[None, :]] + 5 * k[None, None, :]  # (n, w, w)
    out = []
    for flip in (False, True):
        m = np.full((w, 5), -np.inf)
        m[:, :4] = mat
        mi = np.full((w, 5), -np.inf)
        mi[:, :4] = table.int_lo
        if flip:
            m, mi = reverse_complement(m), reverse_complement(mi)
        ref_s = m.ravel().take(flat_idx).sum(axis=2)  # (n, w)
        col = w - 1 - k  # the SNV's column in window k; ALT changes only that term
        change = m[col[None, :], alt_c[:, None]] - m[col[None, :], ref_c[:, None]]
        with np.errstate(invalid="ignore"):
            alt_s = ref_s + change  # -inf stays -inf (an N elsewhere in the window)
        # equal scores summed in different orders differ by ~1e-15; on a 1e-9 grid they are
        # equal, so ties (of windows, strands, alleles) and a zero delta are exact
        ref_s, alt_s = np.round(ref_s, 9), np.round(alt_s, 9)
        best_r, best_a = ref_s.argmax(axis=1), alt_s.argmax(axis=1)
        r_int = mi.ravel().take(flat_idx[rows, best_r]).sum(axis=1)
        a_int = mi.ravel().take(flat_idx[rows, best_a]).sum(axis=1)
        a_int = a_int + mi[w - 1 - best_a, alt_c] - mi[w - 1 - best_a, ref_c]
        out.append(
            {
                "ref": ref_s[rows, best_r],
                "alt": alt_s[rows, best_a],
                "ref_win": best_r,
                "alt_win": best_a,
                "ref_p": table.pvalue_int(r_int),
                "alt_p": table.pvalue_int(a_int),
            }
        )
    return out


def _hit_rows(row, flip, ref, alt, ref_p, alt_p, window) -> dict:
    with np.errstate(invalid="ignore"):
        ref = np.where(np.isfinite(ref), ref, np.nan)
        alt = np.where(np.isfinite(alt), alt, np.nan)
    return {
        "row": row,
        "flip": flip,
        "ref_score": ref,
        "alt_score": alt,
        "ref_p": ref_p,
        "alt_p": alt_p,
        "delta": alt - ref,
        "window": window,
    }


def each_strand(per_strand: list[dict], pvalue: float) -> dict:
    """``log``: one row per SNV and strand where REF or ALT reaches ``p < pvalue``; the hit
    window is the better allele's best window on that strand."""
    parts = []
    for flip, s in zip((False, True), per_strand):
        hit = np.flatnonzero((s["ref_p"] < pvalue) | (s["alt_p"] < pvalue))
        r, a = s["ref"][hit], s["alt"][hit]
        win = np.where(r >= a, s["ref_win"][hit], s["alt_win"][hit])
        flips = np.full(hit.size, flip)
        parts.append(_hit_rows(hit, flips, r, a, s["ref_p"][hit], s["alt_p"][hit], win))
    return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}


def best_strand(per_strand: list[dict], pvalue: float) -> dict:
    """``default`` / ``ic``: one row per SNV, as motifbreakR's ``scoreSnpList`` (2.x) reports.

    REF's score is its best window over both strands, ALT's likewise (possibly another window
    or strand: ``maxThresholdWindows``; ties go to the leftmost window, then to +); the hit is
    REF's window if ``REF >= ALT`` else ALT's, and the row is kept if either allele's p-value
    is < ``pvalue``.
    """
    plus, minus = per_strand
    picked = {}
    for allele in ("ref", "alt"):
        s_p, s_m = plus[allele], minus[allele]
        w_p, w_m = plus[f"{allele}_win"], minus[f"{allele}_win"]
        use_minus = (s_m > s_p) | ((s_m == s_p) & (w_m < w_p))
        picked[allele] = (
            use_minus,
            np.where(use_minus, s_m, s_p),
            np.where(use_minus, w_m, w_p),
            np.where(use_minus, minus[f"{allele}_p"], plus[f"{allele}_p"]),
        )
    (r_minus, r, r_win, r_p), (a_minus, a, a_win, a_p) = picked["ref"], picked["alt"]
    hit = np.flatnonzero((r_p < pvalue) | (a_p < pvalue))
    ref_wins = r[hit] >= a[hit]
    flip = np.where(ref_wins, r_minus[hit], a_minus[hit])
    win = np.where(ref_wins, r_win[hit], a_win[hit])
    return _hit_rows(hit, flip, r[hit], a[hit], r_p[hit], a_p[hit], win)


def at_snv(found: dict, probs, bg, ref_c, alt_c, w: int) -> dict:
    """The SNV's column in the hit window (motif orientation), the probability difference of
    the alleles there as the motif reads them, and that column's information content."""
    row, flip, win = found["row"], found["flip"], found["window"]
    # on -, the motif reads the window backwards and complemented
    mpos = np.where(flip, win, w - 1 - win)
    rb = np.where(flip, 3 - ref_c[row], ref_c[row])
    ab = np.where(flip, 3 - alt_c[row], alt_c[row])
    return {
        "motif_pos": mpos + 1,
        "allele_diff": probs[mpos, rb] - probs[mpos, ab],
        "ic": (probs[mpos] * np.log2(probs[mpos] / bg)).sum(axis=1),
    }
