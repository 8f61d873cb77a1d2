"""Genotypes and expression of the simulated people: coalescent sites, causal SNVs, phenotypes.

Sites come from msprime (human-like LD and allele-frequency spectrum); a few causal SNVs per
gene, some breaking or creating planted JASPAR motifs, drive an expression phenotype at the
gene's cis-heritability, inverse-normal transformed as GTEx does. Positions ``pos0`` are 0-based.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from core.errors import InputError
from data_prep.normalize import inverse_normal_transform
from data_prep.simulate import motifs

if TYPE_CHECKING:
    from data_prep.simulate.layout import Gene

__all__ = [
    "MUTATION_RATE",
    "NE",
    "RECOMBINATION_RATE",
    "Causal",
    "Sites",
    "design_gene",
    "finalize_alleles",
    "phenotypes",
    "sample_ids",
    "simulate_sites",
]

NE = 10_000  # diploid effective population size (human-like)
RECOMBINATION_RATE = 1e-8  # per bp per generation
MUTATION_RATE = 1.25e-8  # per bp per generation; ~170 SNVs per 49 kb window in 300 people
BASES = "ACGT"

# Causal-SNV roles: (name, minor-allele-frequency range, |distance to TSS| range as a fraction
# of seq_len, share of the genetic variance, in a motif?). The lead is a common proximal eQTL
# (what elastic nets find); distal and rare roles give the HSV analyses something to find.
_ROLES = (
    ("lead", (0.15, 0.5), (0.0, 0.04), 0.55, True),
    ("distal", (0.05, 0.5), (0.16, 0.48), 0.20, True),
    ("rare", (0.0025, 0.02), (0.0, 0.30), 0.12, True),
    ("plain", (0.05, 0.5), (0.0, 0.48), 0.13, False),
)


class Sites(NamedTuple):
    """Segregating sites of one contig.

    pos0 : np.ndarray, shape=(m,), 0-based positions, sorted.
    alleles : list of list of str, REF first then ALT(s); rewritten once the reference is final
        (an indel's alleles are anchored strings, :mod:`data_prep.simulate.indels`).
    hap : np.ndarray, shape=(m, 2 * people), int8 allele index per haplotype (person i = 2i, 2i+1).
    """

    pos0: np.ndarray
    alleles: list
    hap: np.ndarray


class Causal(NamedTuple):
    gene: str
    site: int  # index into the contig's Sites
    role: str
    motif: str  # matrix_id:name or '.'
    effect: str  # break / create / none; delete: a deletion of the motif (simulate --indels)


def sample_ids(people: int, rng: np.random.Generator) -> list[str]:
    """GTEx-style donor ids (``GTEX-1117F``), unique and sorted as in GTEx VCFs."""
    alphabet = np.array(list("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
    ids: set[str] = set()
    while len(ids) < people:
        k = 5 if rng.random() < 0.8 else 4
        ids.add("GTEX-" + str(rng.choice(alphabet[1:])) + "".join(rng.choice(alphabet, k - 1)))
    return sorted(ids)


def simulate_sites(length: int, people: int, seed: int) -> Sites:
    """Coalescent genotypes of ``people`` diploids over one contig (msprime, JC69, discrete genome)."""
    import msprime

    ts = msprime.sim_ancestry(
        samples=people,
        ploidy=2,
        population_size=NE,
        sequence_length=length,
        recombination_rate=RECOMBINATION_RATE,
        random_seed=seed,
    )
    ts = msprime.sim_mutations(ts, rate=MUTATION_RATE, random_seed=seed + 1, discrete_genome=True)
    pos0, alleles, haps = [], [], []
    for var in ts.variants():
        counts = np.bincount(var.genotypes, minlength=len(var.alleles))
        # Keep the ancestral allele (index 0) and only derived alleles someone carries.
        keep = [0] + [a for a in range(1, len(var.alleles)) if counts[a] > 0]
        if len(keep) < 2:
            continue
        remap = np.full(len(var.alleles), -1, dtype=np.int8)
        remap[keep] = np.arange(len(keep), dtype=np.int8)
        pos0.append(int(var.site.position))
        alleles.append([var.alleles[a] for a in keep])
        haps.append(remap[var.genotypes])
    hap = np.array(haps, dtype=np.int8).reshape(len(haps), 2 * people)
    return Sites(np.array(pos0, dtype=np.int64), alleles, hap)


def _pick_site(cands, dist, maf, role, taken, seq_len, rng) -> int | None:
    """A random candidate site for ``role``, relaxing distance then frequency when none fits."""
    _, (maf_lo, maf_hi), (d_lo, d_hi), _, _ = role
    far_enough = np.array([all(abs(p - t) >= 40 for t in taken) for p in cands[1]], dtype=bool)
    for level in range(5):
        lo = d_lo * seq_len / 2**level
        hi = min(0.5, d_hi * 2**level) * seq_len
        mlo, mhi = (maf_lo, maf_hi) if level < 3 else (0.0, 0.5)
        ok = far_enough & (np.abs(dist) >= lo) & (np.abs(dist) <= hi) & (maf > mlo) & (maf <= mhi)
        if ok.any():
            return int(cands[0][rng.choice(np.flatnonzero(ok))])
    return None


def design_gene(gene: Gene, ref, occupied, sites: Sites, seq_len: int, rng, motif_sets):
    """Choose the causal SNVs of one gene and plant its promoter and enhancer motifs.

    Returns
    -------
    causals : list of Causal
    shares : list of float
        Intended share of the genetic variance of each causal SNV.
    planted : list of tuple
        ``planted_motifs.tsv`` rows (gene, chrom, start0, end0, strand, matrix_id, tf, element, causal_pos1).
    elements : list of tuple
        (chrom, start0, end0, kind, role) regulatory elements, for the chromatin states.
    """
    promoter_motifs, enhancer_motifs = motif_sets
    half = seq_len // 2
    lo = max(0, gene.tss0 - half) + 40
    hi = min(ref.shape[0], gene.tss0 - half + seq_len) - 40
    if gene.strand == "+":
        prom_lo, prom_hi = gene.tss0 - 300, gene.tss0 + 100
    else:
        prom_lo, prom_hi = gene.tss0 - 99, gene.tss0 + 301
    causals, shares, planted = [], [], []
    elements = [(gene.chrom, prom_lo, prom_hi, "promoter", "promoter")]

    def record(hits, element, causal_pos1="."):
        for h in hits:
            where = (gene.name, gene.chrom, h.start0, h.start0 + h.motif.width, h.strand)
            planted.append((*where, h.motif.matrix_id, h.motif.name, element, causal_pos1))

    if gene.h2 > 0:
        sel = np.flatnonzero((sites.pos0 >= lo) & (sites.pos0 < hi) & (sites.hap.max(axis=1) == 1))
        if sel.size == 0:
            raise InputError(
                f"gene {gene.name} has no SNVs in its window; raise --seq-len or --people"
            )
        p = sites.hap[sel].mean(axis=1)
        dist, maf = sites.pos0[sel] - gene.tss0, np.minimum(p, 1 - p)
        taken: list[int] = []
        for role in _ROLES if rng.random() < 0.5 else _ROLES[:3]:
            k = _pick_site((sel, sites.pos0[sel]), dist, maf, role, taken, seq_len, rng)
            if k is None:
                continue
            pos0 = int(sites.pos0[k])
            taken.append(pos0)
            label, effect = ".", "none"
            if not role[4]:  # keep planted motifs off a non-motif causal SNV
                occupied[pos0] = True
            else:
                in_promoter = prom_lo - 200 <= pos0 < prom_hi + 200
                effect = "create" if rng.random() < (0.5 if role[0] == "rare" else 0.3) else "break"
                candidates = promoter_motifs if in_promoter else enhancer_motifs
                hit = motifs.plant_switch(ref, occupied, pos0, effect, candidates, rng)
                if hit is None:
                    effect = "none"
                else:
                    sites.alleles[k] = [BASES[hit.ref_base], BASES[hit.alt_base]]
                    label = hit.motif.label
                    record([hit], "promoter" if in_promoter else "enhancer", str(pos0 + 1))
                    if not in_promoter:
                        elements.append((gene.chrom, pos0 - 200, pos0 + 200, "enhancer", role[0]))
                        cluster = motifs.plant_cluster(
                            ref, occupied, pos0 - 200, pos0 + 200, 2, enhancer_motifs, rng
                        )
                        record(cluster, "enhancer")
            causals.append(Causal(gene.name, k, role[0], label, effect))
            shares.append(role[3])
    record(
        motifs.plant_cluster(ref, occupied, prom_lo, prom_hi, 3, promoter_motifs, rng), "promoter"
    )
    # Decoy enhancers: regulatory grammar that carries no causal variant.
    centers = [e[1] + 200 for e in elements[1:]] + [gene.tss0]
    for _ in range(2 + seq_len // 24576):
        for _ in range(20):
            if hi - lo <= 400:
                break
            c = int(rng.integers(lo + 200, hi - 200))
            if all(abs(c - x) >= 600 for x in centers):
                centers.append(c)
                elements.append((gene.chrom, c - 200, c + 200, "enhancer", "decoy"))
                record(
                    motifs.plant_cluster(ref, occupied, c - 200, c + 200, 3, enhancer_motifs, rng),
                    "enhancer",
                )
                break
    return causals, shares, planted, elements


def finalize_alleles(sites: Sites, ref: np.ndarray, fixed: set[int]) -> None:
    """Make REF the reference base at every site by relabelling its alleles.

    JC69 treats the four bases symmetrically, so shifting every allele of a site by the same
    amount (mod 4) keeps the simulation's law while making the ancestral allele the REF.
    """
    for k, alleles in enumerate(sites.alleles):
        if k in fixed:
            continue
        shift = (int(ref[sites.pos0[k]]) - BASES.index(alleles[0])) % 4
        sites.alleles[k] = [BASES[(BASES.index(a) + shift) % 4] for a in alleles]


def phenotypes(gene: Gene, causals, shares, sites: Sites, people: int, rng):
    """Genetic value from the causal SNVs scaled to ``gene.h2``, plus noise, inverse-normal transformed.

    Returns
    -------
    expression : np.ndarray, shape=(people,)
        INT-transformed phenotype, what ``expression.bed.gz`` holds.
    beta : np.ndarray, shape=(k,)
        Effect per ALT allele in units of the pre-INT phenotype (variance ~1).
    alt_freq : np.ndarray, shape=(k,)
    h2_realized : float
        var(genetic value) / var(pre-INT phenotype).
    genetic : np.ndarray, shape=(people,)
        The true genetic value ``dosages @ beta`` (pre-INT units; all 0 when h2 = 0), what a
        simulated GWAS trait is driven by (:mod:`data_prep.simulate.gwas`).
    """
    dos = np.zeros((people, len(causals)))
    for j, c in enumerate(causals):
        dos[:, j] = sites.hap[c.site, 0::2] + sites.hap[c.site, 1::2]
    q = dos.mean(axis=0) / 2
    # Per-allele effects sized so each SNV contributes its share (rare SNVs get large betas).
    # Capped at 3 SD per allele so a near-singleton cannot make an extreme outlier.
    beta = np.minimum(
        3.0, np.sqrt(np.asarray(shares) * gene.h2 / np.maximum(2 * q * (1 - q), 1e-9))
    )
    for j, c in enumerate(causals):
        # An activator site that is broken (or deleted) lowers expression; one created raises it.
        sign = {"break": -1.0, "delete": -1.0, "create": 1.0}.get(c.effect)
        beta[j] *= sign or float(rng.choice([-1.0, 1.0]))
    genetic = dos @ beta
    if genetic.var() > 0:  # LD between causal SNVs changes var(g); rescale to h2 exactly
        scale = np.sqrt(gene.h2 / genetic.var())
        beta, genetic = beta * scale, genetic * scale
    noise = rng.standard_normal(people)
    noise = (noise - noise.mean()) / noise.std() * np.sqrt(1.0 - gene.h2)
    y = genetic + noise
    h2_realized = float(genetic.var() / y.var())
    return inverse_normal_transform(y[None, :])[0], beta, q, h2_realized, genetic
