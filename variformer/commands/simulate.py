"""``variformer simulate``: a simulated cohort with known truth, in the formats real users have.

Argparse and printing only; the work is :func:`data_prep.simulate.simulate_cohort`.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``variformer simulate``."""
    parser.add_argument("--out", required=True, help="output directory (new unless --force)")
    parser.add_argument("--people", type=int, default=300, help="number of people (default 300)")
    parser.add_argument(
        "--genes", type=int, default=5, metavar="N", help="number of expressed genes (default 5)"
    )
    parser.add_argument("--seq-len", type=int, default=49152, help="window bp (default 49152)")
    parser.add_argument(
        "--h2", type=float, nargs="+", default=None,
        help="cis-heritability: one value for all genes or one per gene (default: 0.6 0.4 0.25 0.1 ... 0)",
    )  # fmt: skip
    parser.add_argument("--seed", type=int, default=0, help="same seed, same files (default 0)")
    parser.add_argument(
        "--gwas-gene", metavar="GENE",
        help="gene whose true genetic expression drives the simulated GWAS trait (gwas.tsv; "
        "default: the expressed gene with the largest h2)",
    )  # fmt: skip
    parser.add_argument(
        "--gwas-h2", type=float, default=0.5, metavar="H2",
        help="share of the GWAS trait's variance from that gene's genetic expression (default 0.5)",
    )  # fmt: skip
    parser.add_argument(
        "--indels", action="store_true",
        help="also plant indels (1-50 bp, ~12%% of sites; each heritable gene's main effect is "
        "a deletion of a planted motif) and write a phased VCF, for `prep --haplotypes`",
    )  # fmt: skip
    parser.add_argument("--force", action="store_true", help="replace --out if it exists")


def main(args: argparse.Namespace) -> int:
    """Run ``variformer simulate``; prints what was written and returns the exit status."""
    from data_prep.simulate import simulate_cohort

    sizes = dict(people=args.people, genes=args.genes, seq_len=args.seq_len, h2=args.h2)
    gwas = dict(gwas_gene=args.gwas_gene, gwas_h2=args.gwas_h2)
    s = simulate_cohort(
        args.out, **sizes, seed=args.seed, **gwas, indels=args.indels, force=args.force
    )
    causal = f"{s.n_causal} causal variants" if args.indels else f"{s.n_causal} causal SNVs"
    indels = f" ({s.n_indels} indels, phased)" if args.indels else ""
    counts = (
        f"{s.n_people} people, {s.n_genes} genes, {s.n_variants} sites{indels}, {causal}; "
        f"GWAS trait driven by {s.gwas_gene}"
    )
    print(f"wrote {s.out}: {counts}")
    return 0
