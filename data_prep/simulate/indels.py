"""Indels of the simulated cohort (``variformer simulate --indels``): plant them, some causal.

Two kinds, both made from coalescent sites (:class:`~data_prep.simulate.genetics.Sites`) so
they keep msprime's LD and allele-frequency spectrum, only their alleles change:

- a **causal deletion** per heritable gene (:func:`plant_causal_deletion`): a strong JASPAR
  motif is planted right after a common site and the site becomes the deletion of exactly that
  motif (REF = anchor base + motif, ALT = anchor base), so the ALT haplotype has no motif; its
  truth row says ``motif_effect = delete`` and its effect on expression lowers it (an
  activator's site is gone);
- **background indels** (:func:`scatter_indels`): about :data:`INDEL_FRACTION` of the other
  biallelic sites become insertions or deletions of 1-:data:`MAX_INDEL` bp (short ones most
  often), off planted motifs, without effect.

Every indel is VCF-normal (bcftools norm leaves it alone): anchored on the base before it,
REF equal to the reference, left-aligned (it cannot shift left), and its deleted span holds no
other site, so ``bcftools consensus`` applies every record. Positions ``p`` are 0-based; the
VCF ``POS`` is ``p + 1``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from data_prep.simulate import motifs
from data_prep.simulate.genetics import BASES, Causal

if TYPE_CHECKING:
    from data_prep.simulate.genetics import Sites
    from data_prep.simulate.layout import Gene

__all__ = [
    "CAUSAL_SHARE",
    "INDEL_FRACTION",
    "MAX_INDEL",
    "STREAM",
    "plant_causal_deletion",
    "scatter_indels",
]

#: share of the other biallelic sites that become background indels (human: ~10-15 %)
INDEL_FRACTION = 0.12
#: longest background indel (bp)
MAX_INDEL = 50
#: intended share of the genetic variance of a gene's causal deletion, beside the causal SNVs'
#: shares (which add up to about 1): the deletion is the gene's main effect
CAUSAL_SHARE = 1.5
#: the indels' own random stream beside the cohort seed ("indl"): the files of a run without
#: ``--indels`` are the same bytes as before the option existed
STREAM = 0x696E646C

_LENGTHS = np.arange(1, MAX_INDEL + 1)
_LENGTH_P = _LENGTHS**-1.8 / (_LENGTHS**-1.8).sum()  # most indels are 1-2 bp, as in humans


def _text(codes) -> str:
    return "".join(BASES[int(c)] for c in codes)


def _span_free(sites: Sites, k: int, end0: int) -> bool:
    """No site other than ``k`` lies in ``(pos0[k], end0]`` (0-based)."""
    return k + 1 >= len(sites.pos0) or int(sites.pos0[k + 1]) > end0


def plant_causal_deletion(
    gene: Gene,
    ref: np.ndarray,
    occupied: np.ndarray,
    sites: Sites,
    seq_len: int,
    taken: set[int],
    rng: np.random.Generator,
    motif_sets,
):
    """Make a common site of ``gene``'s window the deletion of a motif planted after it.

    Parameters
    ----------
    gene : Gene
    ref : np.ndarray, shape=(contig_length,), int8 codes, modified in place (the motif, and
        the anchor base when it would let the deletion shift left)
    occupied : np.ndarray, shape=(contig_length,), bool, modified in place
    sites : Sites
        The contig's sites; the chosen site's alleles become ``[anchor + motif, anchor]``.
    seq_len : int
    taken : set of int
        Sites already causal (left alone).
    rng : np.random.Generator
    motif_sets : (promoter motifs, enhancer motifs)

    Returns
    -------
    (Causal, planted_row) or None
        The causal (role ``indel``, effect ``delete``) and its ``planted_motifs.tsv`` row
        (``causal_pos1`` = the deletion's VCF POS, the anchor base before the motif); None if
        no common site of the window fits.
    """
    half = seq_len // 2
    lo = max(0, gene.tss0 - half) + 60
    hi = min(ref.shape[0], gene.tss0 - half + seq_len) - 60
    p = sites.hap.mean(axis=1)
    maf = np.minimum(p, 1 - p)
    sel = (sites.pos0 >= lo) & (sites.pos0 < hi) & (sites.hap.max(axis=1) == 1)
    dist = np.abs(sites.pos0 - gene.tss0)
    for maf_lo, d_hi in ((0.15, 0.3), (0.05, 0.45), (0.01, 0.5)):  # relax when nothing fits
        ok = sel & (maf > maf_lo) & (dist <= d_hi * seq_len) & (dist >= 30)
        cands = [int(k) for k in np.flatnonzero(ok) if int(k) not in taken]
        for k in rng.permutation(cands) if cands else []:
            k = int(k)
            pos0 = int(sites.pos0[k])
            near_promoter = abs(pos0 - gene.tss0) < 500
            choices = motif_sets[0] if near_promoter else motif_sets[1]
            motif = choices[int(rng.integers(len(choices)))]
            width = motif.width
            end0 = pos0 + width  # the last deleted base
            if occupied[pos0 : end0 + 1].any() or not _span_free(sites, k, end0):
                continue
            if pos0 < gene.tss0 <= end0:  # keep the TSS base itself on every haplotype
                continue
            strand = "+-"[int(rng.integers(2))]
            bases = motifs.to_genome(motifs.sample_instance(motif, rng), strand)
            if not motifs.plant(ref, occupied, pos0 + 1, bases):
                continue
            occupied[pos0] = True  # the anchor: no other indel or motif there
            if ref[pos0] == ref[end0]:  # could shift left: change the anchor base
                ref[pos0] = (int(ref[end0]) + 1 + int(rng.integers(3))) % 4
            sites.alleles[k] = [_text(ref[pos0 : end0 + 1]), BASES[int(ref[pos0])]]
            element = "promoter" if near_promoter else "enhancer"
            row = (gene.name, gene.chrom, pos0 + 1, end0 + 1, strand, motif.matrix_id,
                   motif.name, element, str(pos0 + 1))  # fmt: skip
            return Causal(gene.name, k, "indel", motif.label, "delete"), row
    return None


def scatter_indels(
    sites: Sites,
    ref: np.ndarray,
    occupied: np.ndarray,
    protected: set[int],
    rng: np.random.Generator,
    *,
    fraction: float = INDEL_FRACTION,
) -> set[int]:
    """Turn about ``fraction`` of the biallelic, unprotected sites into background indels.

    Each chosen site becomes a deletion (half of them) or an insertion after its base, of a
    length drawn from ``P(L) ~ L^-1.8`` on 1-:data:`MAX_INDEL` bp. A deletion must delete no
    planted motif and no other site and be left-aligned (else a few other lengths are tried,
    then an insertion); an insertion's last base differs from its anchor (left-aligned) and
    it never splits a planted motif. ``ref`` is only read.

    Returns
    -------
    set of int
        Indices of the sites that are now indels (their ``sites.alleles`` rewritten).
    """
    done: set[int] = set()
    biallelic = sites.hap.max(axis=1) == 1
    for k in np.flatnonzero(biallelic):
        k = int(k)
        if k in protected or rng.random() >= fraction:
            continue
        pos0 = int(sites.pos0[k])
        if occupied[pos0 : pos0 + 2].any():
            continue
        lengths = rng.choice(_LENGTHS, size=3, p=_LENGTH_P)
        if rng.random() < 0.5:  # a deletion of ref[pos0 + 1 : pos0 + 1 + L]
            for length in map(int, lengths):
                end0 = pos0 + length
                if (
                    end0 < ref.shape[0]
                    and not occupied[pos0 : end0 + 1].any()
                    and _span_free(sites, k, end0)
                    and ref[pos0] != ref[end0]
                ):
                    sites.alleles[k] = [_text(ref[pos0 : end0 + 1]), BASES[int(ref[pos0])]]
                    done.add(k)
                    break
            if k in done:
                continue
        inserted = rng.integers(0, 4, size=int(lengths[0]))
        if inserted[-1] == ref[pos0]:
            inserted[-1] = (int(ref[pos0]) + 1 + int(rng.integers(3))) % 4
        anchor = BASES[int(ref[pos0])]
        sites.alleles[k] = [anchor, anchor + _text(inserted)]
        done.add(k)
    return done
