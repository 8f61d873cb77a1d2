"""``simulate_cohort``: lay out genes, simulate genotypes and expression, write every file.

See :mod:`data_prep.simulate` for the files and their coordinates.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np

from core.errors import InputError
from core.fileio import atomic_dir
from data_prep.simulate import indels as indel_sites
from data_prep.simulate import motifs, write
from data_prep.simulate.genetics import (
    design_gene,
    finalize_alleles,
    phenotypes,
    sample_ids,
    simulate_sites,
)
from data_prep.simulate.gwas import DEFAULT_GWAS_H2, check_gwas_options, write_gwas
from data_prep.simulate.layout import background, gene_names, layout

__all__ = ["SimulationSummary", "default_h2", "simulate_cohort"]

DEFAULT_H2 = (0.6, 0.4, 0.25, 0.1)  # cycled; the last gene of a default run gets 0.0


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
    eqtls: Path
    chromhmm: Path
    motifs: Path
    gwas: Path  # gwas.tsv (data_prep.simulate.gwas)
    gwas_trait: Path
    gwas_truth: Path
    n_people: int
    n_genes: int
    n_variants: int
    n_causal: int
    gwas_gene: str  # the gene whose genetic expression drives the GWAS trait
    n_indels: int = 0  # indel records of the VCF (``indels=True``), causal ones included


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


def simulate_cohort(
    out,
    *,
    people: int = 300,
    genes: int = 5,
    seq_len: int = 49152,
    h2=None,
    seed: int = 0,
    gwas_gene: str | None = None,
    gwas_h2: float = DEFAULT_GWAS_H2,
    indels: bool = False,
    force: bool = False,
) -> SimulationSummary:
    """Write a simulated cohort with known truth to the directory ``out``.

    Besides the truth, ``finemap.txt`` (CAVIAR-style fine-mapped SNVs) and
    ``signif_variant_gene_pairs.txt.gz`` (GTEx-style significant eQTLs: every biallelic SNV of
    a gene's window tested by OLS of expression on dosage, kept when ``pval_nominal < 1e-3``,
    :data:`~data_prep.simulate.write.EQTL_PVALUE`) give ``variformer analyze`` the published
    FM-eQTL auROC inputs: fine-mapped positives, non-fine-mapped significant eQTLs as
    negatives. A fine-mapped SNV that is not significant is absent from the pairs file but is
    still a positive there (only non-fine-mapped pairs become negatives). ``gwas.tsv`` holds
    the summary statistics of a trait driven by one gene's true genetic expression
    (:mod:`data_prep.simulate.gwas`). See :mod:`data_prep.simulate` for every file.

    Parameters
    ----------
    out : str or Path
        Output directory; must not exist unless ``force``. Built privately and published by
        :func:`core.fileio.atomic_dir`, so a failure leaves nothing behind.
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
    gwas_gene : str, optional
        The gene whose true genetic expression drives the GWAS trait; default: the expressed
        gene with the largest realized h2 (the first such in gene order on a tie).
    gwas_h2 : float
        Share of the trait's variance from that gene's genetic expression, in [0, 1].
    indels : bool
        Plant indels (:mod:`data_prep.simulate.indels`): each heritable gene gets a causal
        deletion of a planted motif (its main effect; ``truth.tsv`` ``motif_effect`` =
        ``delete``, REF/ALT the anchored VCF strings) and about 12 % of the other biallelic
        sites become 1-50 bp insertions or deletions. The VCF is then *phased* (``a|b``), as
        haplotypes with indels need (``variformer prep --haplotypes``). The indels draw from
        their own random stream, and without ``indels`` every file is the same bytes as
        before the option existed.
    force : bool
        Replace an existing ``out``.

    Returns
    -------
    SimulationSummary

    Raises
    ------
    InputError
        Bad sizes or h2, an unknown ``gwas_gene``, ``gwas_h2`` outside [0, 1], or ``out``
        exists without ``force``.
    """
    out = Path(out)
    if people < 10 or genes < 1 or seq_len < 1024:
        raise InputError("need --people >= 10, --genes >= 1 and --seq-len >= 1024")
    h2s = _resolve_h2(h2, genes)
    check_gwas_options(gwas_gene, gwas_h2, gene_names(genes))
    if (out.exists() or out.is_symlink()) and not force:
        raise InputError(
            f"{out} already exists; pass --force to replace it or choose another --out"
        )
    rng = np.random.default_rng(seed)
    indel_rng = np.random.default_rng([indel_sites.STREAM, seed]) if indels else None
    gene_list, lengths = layout(genes, seq_len, h2s, rng)
    expressed = [g for g in gene_list if g.gene_type == "protein_coding"]
    samples = sample_ids(people, rng)
    motif_sets = (
        motifs.load_motifs(motifs.PROMOTER_MOTIFS),
        motifs.load_motifs(motifs.ENHANCER_MOTIFS),
    )

    refs, sites, planted, elements = {}, {}, [], []
    design: dict[str, tuple[list, list]] = {}
    for chrom, length in lengths.items():
        members = [g for g in expressed if g.chrom == chrom]
        sites[chrom] = simulate_sites(length, people, int(rng.integers(1, 2**30)))
        refs[chrom] = background(length, [g.tss0 for g in members], rng)
        occupied = np.zeros(length, dtype=bool)
        for g in members:
            c, s, p, e = design_gene(
                g, refs[chrom], occupied, sites[chrom], seq_len, rng, motif_sets
            )
            design[g.name] = (c, s)
            planted += p
            elements += e
        fixed = {c.site for g in members for c in design[g.name][0] if c.effect != "none"}
        if indel_rng is not None:
            fixed |= _plant_indels(members, refs[chrom], occupied, sites[chrom], design,
                                   planted, seq_len, indel_rng, motif_sets)  # fmt: skip
        finalize_alleles(sites[chrom], refs[chrom], fixed)

    values, truth_rows, gene_rows, genetic, h2_realized = {}, [], [], {}, {}
    for g in expressed:
        causals, shares = design[g.name]
        st = sites[g.chrom]
        values[g.name], beta, q, h2_real, genetic[g.name] = phenotypes(
            g, causals, shares, st, people, rng
        )
        h2_realized[g.name] = h2_real
        for c, b, f in zip(causals, beta, q):
            pos0 = int(st.pos0[c.site])
            # the truth the analyses are tested against keeps its own transcription of the
            # TSS distance (data_prep.genome.tss_distance is the code under test)
            dist = (pos0 - g.tss0) * (1 if g.strand == "+" else -1)
            snv = (g.chrom, pos0 + 1, *st.alleles[c.site], float(b), float(min(f, 1 - f)), dist)
            truth_rows.append((g.name, g.gene_id, *snv, c.motif, c.effect, g.h2, c.site))
        gene_rows.append(
            (g.name, g.gene_id, g.chrom, g.tss0, g.strand, g.h2, h2_real, len(causals))
        )

    names = (
        "ref.fa", "genes.gtf", "cohort.vcf.gz", "expression.bed.gz", "truth.tsv",
        "truth_genes.tsv", "finemap.txt", "signif_variant_gene_pairs.txt.gz", "chromhmm.bed",
        "planted_motifs.tsv", "gwas.tsv", "gwas_trait.tsv", "gwas_truth.json",
    )  # fmt: skip
    if gwas_gene is None:  # max keeps the first of equals: gene order breaks ties
        gwas_gene = max(h2_realized, key=h2_realized.__getitem__)
    causal_gene = next(g for g in expressed if g.name == gwas_gene)
    with atomic_dir(out, force=force) as tmp:
        write.write_fasta(tmp / "ref.fa", refs)
        write.write_gtf(tmp / "genes.gtf", gene_list, rng)
        ids = write.vcf_ids(sum(len(st.pos0) for st in sites.values()), rng)
        n_variants = write.write_vcf(
            tmp / "cohort.vcf.gz", sites, lengths, samples, rng, ids=ids, phased=indels
        )
        write.write_expression(tmp / "expression.bed.gz", expressed, samples, values)
        write.write_tables(tmp, truth_rows, gene_rows, planted, list(lengths))
        write.write_finemap(tmp / "finemap.txt", truth_rows, expressed, sites, seq_len, rng)
        # draws nothing from rng: the other files are the same bytes as before it existed
        write.write_eqtls(
            tmp / "signif_variant_gene_pairs.txt.gz", expressed, sites, values, seq_len
        )
        write.write_chromhmm(tmp / "chromhmm.bed", lengths, gene_list, elements, rng)
        # its own random stream (seeded by seed): the files above keep their bytes
        write_gwas(
            tmp, gene=causal_gene, genetic=genetic[gwas_gene],
            h2_expression=h2_realized[gwas_gene], h2_trait=gwas_h2, sites=sites, ids=ids,
            samples=samples, seed=seed,
        )  # fmt: skip
    p = [out / n for n in names]
    counts = (people, len(expressed), n_variants, len(truth_rows))
    n_indels = sum(
        len(a[0]) != len(alt) for st in sites.values() for a in st.alleles for alt in a[1:]
    )
    return SimulationSummary(out, *p, *counts, gwas_gene, n_indels)


def _plant_indels(members, ref, occupied, sites, design, planted, seq_len, rng, motif_sets):
    """A causal motif deletion per heritable gene of a contig, then background indels.

    Appends each causal deletion to its gene's ``design`` (share
    :data:`~data_prep.simulate.indels.CAUSAL_SHARE`) and its motif to ``planted``; returns
    the indices of every site that is now an indel (their alleles are final).
    """
    causal = {c.site for g in members for c in design[g.name][0]}
    made = set()
    for g in members:
        if g.h2 <= 0:
            continue
        hit = indel_sites.plant_causal_deletion(
            g, ref, occupied, sites, seq_len, causal, rng, motif_sets
        )
        if hit is not None:
            design[g.name][0].append(hit[0])
            design[g.name][1].append(indel_sites.CAUSAL_SHARE)
            planted.append(hit[1])
            causal.add(hit[0].site)
            made.add(hit[0].site)
    return made | indel_sites.scatter_indels(sites, ref, occupied, causal, rng)
