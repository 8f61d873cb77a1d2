"""``variformer simulate``: a simulated cohort with known truth, written in the formats real users have.

Real cohorts (GTEx, ROSMAP) are controlled-access, so the toolkit ships its own: a reference
whose gene neighbourhoods carry JASPAR motifs planted at promoters and enhancers, GENCODE-style
genes, coalescent genotypes (msprime: human-like LD and allele-frequency spectrum), GTEx-style
normalized expression driven by a few causal SNVs at a chosen cis-heritability, and the truth.

Files written to ``out`` (coordinates: VCF/GTF/TSV ``pos`` 1-based, BED 0-based half-open):

- ``ref.fa`` + ``ref.fa.fai``; ``genes.gtf``; ``cohort.vcf.gz`` + ``.tbi`` (unphased GT, REF =
  ancestral = reference base, multi-allelic sites kept); ``expression.bed.gz`` + ``.tbi``;
- ``truth.tsv`` (causal SNVs), ``truth_genes.tsv`` (per-gene TSS and h2), ``finemap.txt``
  (GTEx CAVIAR high-confidence layout), ``chromhmm.bed`` (18-state mnemonics, 200-bp bins),
  ``planted_motifs.tsv`` (every planted motif instance).

Gene TSS (0-based) is GTF ``start - 1`` on + and ``end - 1`` on -; all causal SNVs lie in
``[tss0 - seq_len // 2, tss0 - seq_len // 2 + seq_len)``. The same seed writes byte-identical files.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import NamedTuple

import numpy as np

from data_prep import _motifs
from data_prep._simwrite import (
    _contig_order,
    _write_chromhmm,
    _write_expression,
    _write_fasta,
    _write_finemap,
    _write_gtf,
    _write_tables,
    _write_vcf,
)
from variformer.errors import InputError

NE = 10_000  # diploid effective population size (human-like)
RECOMBINATION_RATE = 1e-8  # per bp per generation
MUTATION_RATE = 1.25e-8  # per bp per generation; ~170 SNVs per 49 kb window in 300 people
DEFAULT_H2 = (0.6, 0.4, 0.25, 0.1)  # cycled; the last gene of a default run gets 0.0
BASES = "ACGT"

# Paper genes first (BTNL3 is the demo's fine-tuning gene), then blood eQTL genes.
# (symbol, chromosome, strand)
_GENE_TABLE = (
    ("BTNL3", "chr5", "+"), ("ZFP57", "chr6", "-"), ("PPIF", "chr10", "+"),
    ("ERAP2", "chr5", "+"), ("GSTM3", "chr1", "-"), ("CHI3L2", "chr1", "+"),
    ("THNSL2", "chr2", "+"), ("PEX6", "chr6", "-"), ("POMZP3", "chr7", "-"),
    ("UTS2", "chr1", "-"), ("FAM118A", "chr22", "+"), ("CYP4F11", "chr19", "-"),
    ("NQO2", "chr6", "+"), ("CRYBB2", "chr22", "+"), ("IRF5", "chr7", "+"),
    ("ITGB3", "chr17", "+"), ("CD52", "chr1", "+"), ("LILRA3", "chr19", "-"),
    ("FCGR2B", "chr1", "+"), ("CTSW", "chr11", "+"), ("GBP3", "chr1", "-"),
    ("PILRB", "chr7", "+"), ("NUDT2", "chr9", "+"), ("AMFR", "chr16", "-"),
    ("MTHFS", "chr15", "-"), ("ACCS", "chr11", "+"), ("SPATA20", "chr17", "+"),
    ("THEM4", "chr1", "-"), ("ADI1", "chr2", "-"), ("CPNE1", "chr20", "-"),
)  # fmt: skip
_GENE_IDS = {
    "BTNL3": "ENSG00000168903.11",
    "ZFP57": "ENSG00000204644.10",
    "PPIF": "ENSG00000108179.14",
    "ERAP2": "ENSG00000164308.17",
}
LNCRNA_NAME = "LINC01938"

# Causal-SNV roles: (name, minor-allele-frequency range, |distance to TSS| range as a fraction
# of seq_len, share of the genetic variance, in a motif?). The lead is a common proximal eQTL
# (what elastic nets find); distal and rare roles give the HSV analyses something to find.
_ROLES = (
    ("lead", (0.15, 0.5), (0.0, 0.04), 0.55, True),
    ("distal", (0.05, 0.5), (0.16, 0.48), 0.20, True),
    ("rare", (0.0025, 0.02), (0.0, 0.30), 0.12, True),
    ("plain", (0.05, 0.5), (0.0, 0.48), 0.13, False),
)


class SimulationSummary(NamedTuple):
    """What :func:`simulate_cohort` wrote: paths (final location) and counts."""

    out: Path
    fasta: Path
    gtf: Path
    vcf: Path
    expression: Path
    truth: Path
    truth_genes: Path
    finemap: Path
    chromhmm: Path
    motifs: Path
    n_people: int
    n_genes: int
    n_variants: int
    n_causal: int


class Gene(NamedTuple):
    name: str
    gene_id: str
    gene_type: str
    chrom: str
    strand: str
    tss0: int
    start1: int  # GTF gene start, 1-based inclusive
    end1: int  # GTF gene end, 1-based inclusive
    h2: float
    edge: bool


class Sites(NamedTuple):
    """Segregating sites of one contig.

    pos0 : np.ndarray, shape=(m,), 0-based positions, sorted.
    alleles : list of list of str, REF first then ALT(s); rewritten once the reference is final.
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
    effect: str  # break / create / none


def default_h2(genes: int) -> list[float]:
    """Per-gene h2 spread from high to none; gene 0 (BTNL3) high, the last gene 0 when genes >= 2."""
    values = [DEFAULT_H2[i % len(DEFAULT_H2)] for i in range(genes)]
    if genes >= 2:
        values[-1] = 0.0
    return values


def _resolve_h2(h2, genes: int) -> list[float]:
    if h2 is None:
        return default_h2(genes)
    values = [float(v) for v in np.atleast_1d(np.asarray(h2, dtype=np.float64))]
    if len(values) == 1:
        values = values * genes
    if len(values) != genes:
        raise InputError(
            f"--h2 got {len(values)} values for {genes} genes; give one value or one per gene"
        )
    if not all(0.0 <= v <= 1.0 for v in values):
        raise InputError("--h2 values must lie in [0, 1]")
    return values


def _layout(n_genes: int, seq_len: int, h2: list[float], rng: np.random.Generator):
    """Place genes on chromosome-named contigs; returns (genes incl. lncRNA, {contig: length})."""
    names = []
    for i in range(n_genes):
        if i < len(_GENE_TABLE):
            names.append(_GENE_TABLE[i])
        else:
            names.append((f"SIMG{i + 1:04d}", f"chr{i % 22 + 1}", "+-"[i % 2]))
    edge = 1 if n_genes > 1 else 0  # this gene's window runs off its contig's start (prep pads N)
    by_chrom: dict[str, list[int]] = {}
    for i, (_, chrom, _) in enumerate(names):
        by_chrom.setdefault(chrom, []).append(i)
    by_chrom[names[edge][1]].sort(key=lambda i: i != edge)
    half, flank = seq_len // 2, max(500, seq_len // 16)
    genes: list[Gene] = []
    lengths: dict[str, int] = {}
    for chrom in _contig_order(by_chrom):
        cursor = flank
        members = by_chrom[chrom] + ([-1] if chrom == names[0][1] else [])
        for i in members:
            glen = int(rng.integers(max(200, seq_len // 24), seq_len // 3))
            if i == -1:  # a lncRNA without expression: exercises prep's protein-coding filter
                tss0, strand = cursor + seq_len // 8, "-"
                glen = max(200, seq_len // 16)
                cursor = tss0 + seq_len // 4
                name, gid, gtype, gh2 = LNCRNA_NAME, f"ENSG{299000 + n_genes:011d}.1", "lncRNA", 0.0
            else:
                name, _, strand = names[i]
                tss0 = half - seq_len // 8 if i == edge else cursor + half
                cursor = tss0 + half + int(rng.integers(seq_len // 16, seq_len // 8 + 1))
                gid = _GENE_IDS.get(name, f"ENSG{200000 + 37 * i:011d}.{i * 7 % 15 + 1}")
                gtype, gh2 = "protein_coding", h2[i]
            start1, end1 = (tss0 + 1, tss0 + glen) if strand == "+" else (tss0 - glen + 2, tss0 + 1)
            genes.append(Gene(name, gid, gtype, chrom, strand, tss0, start1, end1, gh2, i == edge))
        lengths[chrom] = cursor + flank
    return genes, lengths


def _sample_ids(people: int, rng: np.random.Generator) -> list[str]:
    """GTEx-style donor ids (``GTEX-1117F``), unique and sorted as in GTEx VCFs."""
    alphabet = np.array(list("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
    ids: set[str] = set()
    while len(ids) < people:
        k = 5 if rng.random() < 0.8 else 4
        ids.add("GTEX-" + str(rng.choice(alphabet[1:])) + "".join(rng.choice(alphabet, k - 1)))
    return sorted(ids)


def _background(length: int, tss0s: list[int], rng: np.random.Generator) -> np.ndarray:
    """Human-like base composition: 41% GC, CpG depleted by deamination, CpG islands at promoters.

    Returns
    -------
    np.ndarray, shape=(length,), int8 codes 0-3
    """
    seq = rng.choice(4, size=length, p=[0.295, 0.205, 0.205, 0.295]).astype(np.int8)
    for tss0 in tss0s:  # GC-rich promoter island, laid down before CpG decay spares it
        lo, hi = max(0, tss0 - 600), min(length, tss0 + 400)
        seq[lo:hi] = rng.choice(4, size=hi - lo, p=[0.175, 0.325, 0.325, 0.175])
    island = np.zeros(length, dtype=bool)
    for tss0 in tss0s:
        island[max(0, tss0 - 600) : tss0 + 400] = True
    # Methylated CpGs decay to TpG / CpA; observed/expected CpG ends near the human ~0.25.
    cg = np.flatnonzero((seq[:-1] == 1) & (seq[1:] == 2) & ~island[:-1])
    decay = cg[rng.random(cg.size) < 0.75]
    to_tg = rng.random(decay.size) < 0.5
    seq[decay[to_tg]] = 3
    seq[decay[~to_tg] + 1] = 0
    return seq


def _simulate_sites(length: int, people: int, seed: int) -> Sites:
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


def _design_gene(gene: Gene, ref, occupied, sites: Sites, seq_len: int, rng, motif_sets):
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
                motifs = promoter_motifs if in_promoter else enhancer_motifs
                hit = _motifs.plant_switch(ref, occupied, pos0, effect, motifs, rng)
                if hit is None:
                    effect = "none"
                else:
                    sites.alleles[k] = [BASES[hit.ref_base], BASES[hit.alt_base]]
                    label = hit.motif.label
                    record([hit], "promoter" if in_promoter else "enhancer", str(pos0 + 1))
                    if not in_promoter:
                        elements.append((gene.chrom, pos0 - 200, pos0 + 200, "enhancer", role[0]))
                        cluster = _motifs.plant_cluster(
                            ref, occupied, pos0 - 200, pos0 + 200, 2, enhancer_motifs, rng
                        )
                        record(cluster, "enhancer")
            causals.append(Causal(gene.name, k, role[0], label, effect))
            shares.append(role[3])
    record(
        _motifs.plant_cluster(ref, occupied, prom_lo, prom_hi, 3, promoter_motifs, rng), "promoter"
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
                    _motifs.plant_cluster(ref, occupied, c - 200, c + 200, 3, enhancer_motifs, rng),
                    "enhancer",
                )
                break
    return causals, shares, planted, elements


def _finalize_alleles(sites: Sites, ref: np.ndarray, fixed: set[int]) -> None:
    """Make REF the reference base at every site by relabelling its alleles.

    JC69 treats the four bases symmetrically, so shifting every allele of a site by the same
    amount (mod 4) keeps the simulation's law while making the ancestral allele the REF.
    """
    for k, alleles in enumerate(sites.alleles):
        if k in fixed:
            continue
        shift = (int(ref[sites.pos0[k]]) - BASES.index(alleles[0])) % 4
        sites.alleles[k] = [BASES[(BASES.index(a) + shift) % 4] for a in alleles]


def inverse_normal(y: np.ndarray) -> np.ndarray:
    """GTEx inverse-normal transform: ``norm.ppf(rank / (n + 1))``, ties averaged.

    Parameters
    ----------
    y : np.ndarray, shape=(n,)

    Returns
    -------
    np.ndarray, shape=(n,)
    """
    from scipy.stats import norm, rankdata

    return norm.ppf(rankdata(y) / (len(y) + 1))


def _phenotypes(gene: Gene, causals, shares, sites: Sites, people: int, rng):
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
        # An activator site that is broken lowers expression; one that is created raises it.
        beta[j] *= {"break": -1.0, "create": 1.0}.get(c.effect) or float(rng.choice([-1.0, 1.0]))
    genetic = dos @ beta
    if genetic.var() > 0:  # LD between causal SNVs changes var(g); rescale to h2 exactly
        scale = np.sqrt(gene.h2 / genetic.var())
        beta, genetic = beta * scale, genetic * scale
    noise = rng.standard_normal(people)
    noise = (noise - noise.mean()) / noise.std() * np.sqrt(1.0 - gene.h2)
    y = genetic + noise
    return inverse_normal(y), beta, q, float(genetic.var() / y.var())


def simulate_cohort(
    out,
    *,
    people: int = 300,
    genes: int = 5,
    seq_len: int = 49152,
    h2=None,
    seed: int = 0,
    force: bool = False,
) -> SimulationSummary:
    """Write a simulated cohort with known truth to the directory ``out``.

    Parameters
    ----------
    out : str or Path
        Output directory; must not exist unless ``force``. Written into a temporary sibling
        and renamed at the end, so a failure leaves nothing behind.
    people : int
        Number of diploid people (>= 10).
    genes : int
        Number of expressed protein-coding genes (>= 1); a lncRNA without expression is added.
    seq_len : int
        Window length the cohort is designed for (>= 1024); causal SNVs lie inside each gene's
        ``[tss0 - seq_len // 2, tss0 - seq_len // 2 + seq_len)``.
    h2 : float or sequence of float, optional
        Cis-heritability per gene (one value for all, or one per gene); the default spreads
        0.6 (BTNL3), 0.4, 0.25, 0.1, ... and gives the last gene h2 = 0.
    seed : int
        Same seed, byte-identical files.
    force : bool
        Replace an existing ``out``.

    Returns
    -------
    SimulationSummary

    Raises
    ------
    InputError
        Bad sizes or h2, or ``out`` exists without ``force``.
    """
    out = Path(out)
    if people < 10 or genes < 1 or seq_len < 1024:
        raise InputError("need --people >= 10, --genes >= 1 and --seq-len >= 1024")
    h2s = _resolve_h2(h2, genes)
    if (out.exists() or out.is_symlink()) and not force:
        raise InputError(
            f"{out} already exists; pass --force to replace it or choose another --out"
        )
    rng = np.random.default_rng(seed)
    gene_list, lengths = _layout(genes, seq_len, h2s, rng)
    expressed = [g for g in gene_list if g.gene_type == "protein_coding"]
    samples = _sample_ids(people, rng)
    motif_sets = (
        _motifs.load_motifs(_motifs.PROMOTER_MOTIFS),
        _motifs.load_motifs(_motifs.ENHANCER_MOTIFS),
    )

    refs, sites, planted, elements = {}, {}, [], []
    design: dict[str, tuple[list, list]] = {}
    for chrom, length in lengths.items():
        members = [g for g in expressed if g.chrom == chrom]
        sites[chrom] = _simulate_sites(length, people, int(rng.integers(1, 2**30)))
        refs[chrom] = _background(length, [g.tss0 for g in members], rng)
        occupied = np.zeros(length, dtype=bool)
        for g in members:
            c, s, p, e = _design_gene(
                g, refs[chrom], occupied, sites[chrom], seq_len, rng, motif_sets
            )
            design[g.name] = (c, s)
            planted += p
            elements += e
        fixed = {c.site for g in members for c in design[g.name][0] if c.effect != "none"}
        _finalize_alleles(sites[chrom], refs[chrom], fixed)

    values, truth_rows, gene_rows = {}, [], []
    for g in expressed:
        causals, shares = design[g.name]
        st = sites[g.chrom]
        values[g.name], beta, q, h2_real = _phenotypes(g, causals, shares, st, people, rng)
        for c, b, f in zip(causals, beta, q):
            pos0 = int(st.pos0[c.site])
            dist = (pos0 - g.tss0) * (1 if g.strand == "+" else -1)
            snv = (g.chrom, pos0 + 1, *st.alleles[c.site], float(b), float(min(f, 1 - f)), dist)
            truth_rows.append((g.name, g.gene_id, *snv, c.motif, c.effect, g.h2, c.site))
        gene_rows.append(
            (g.name, g.gene_id, g.chrom, g.tss0, g.strand, g.h2, h2_real, len(causals))
        )

    names = (
        "ref.fa", "genes.gtf", "cohort.vcf.gz", "expression.bed.gz", "truth.tsv",
        "truth_genes.tsv", "finemap.txt", "chromhmm.bed", "planted_motifs.tsv",
    )  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        _write_fasta(tmp / "ref.fa", refs)
        _write_gtf(tmp / "genes.gtf", gene_list, rng)
        n_variants = _write_vcf(tmp / "cohort.vcf.gz", sites, lengths, samples, rng)
        _write_expression(tmp / "expression.bed.gz", expressed, samples, values)
        _write_tables(tmp, truth_rows, gene_rows, planted, list(lengths))
        _write_finemap(tmp / "finemap.txt", truth_rows, expressed, sites, seq_len, rng)
        _write_chromhmm(tmp / "chromhmm.bed", lengths, gene_list, elements, rng)
        if out.exists() or out.is_symlink():
            old = out.parent / f".{out.name}.old-{os.getpid()}"
            os.replace(out, old)
            if old.is_dir() and not old.is_symlink():
                shutil.rmtree(old)
            else:
                old.unlink()
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    p = [out / n for n in names]
    return SimulationSummary(out, *p, people, len(expressed), n_variants, len(truth_rows))
