"""``variformer score-variants``: the effect of any variant (SNV, MNP, indel) on trained runs.

    variformer score-variants --runs RUNS --vcf VARIANTS.vcf --dataset DS --out effects.tsv
        [--background SAMPLE] [--fold K] [--genes G1 G2 | --genes-file F]

Each allele of ``VARIANTS.vcf`` (observed in the cohort or not; sites only is fine) inside a
run gene's window gets ``effect_reference`` (the prediction with the allele applied at its true
position, the window re-anchored at the TSS, minus the reference's) and, with
``--background``, ``effect_background`` (the same on that person: on each of their two
haplotypes in a haplotype-mode dataset, with bcftools' overlap rule; SNVs and MNPs only on an
SNV dataset's averaged one-hot). Columns: gene, fold, chrom, pos (1-based), id, ref, alt, kind,
tss_distance, effect_reference, effect_background, background_applied. Resumable over genes.
The work is :mod:`variformer.analysis.variant_effects`.
"""

from __future__ import annotations

import argparse
import sys

from core.errors import InputError
from variformer.commands._args import (
    add_fold_argument,
    add_gene_arguments,
    add_scoring_arguments,
    genes_from_args,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--runs", required=True, metavar="RUNS",
        help="a runs root (`variformer finetune --out`): every finished run, each on its genes",
    )  # fmt: skip
    parser.add_argument(
        "--vcf", required=True, metavar="VARIANTS.vcf",
        help="the variants to score (VCF/BCF, plain or bgzipped; genotypes are ignored)",
    )  # fmt: skip
    parser.add_argument("--dataset", required=True, help="dataset directory (variformer prep)")
    add_fold_argument(parser, "only the runs of this fold (default: every fold)")
    add_gene_arguments(parser, required=False, what="genes (default: the runs' genes)")
    parser.add_argument(
        "--background", metavar="SAMPLE",
        help="also score each variant on this person's sequence (effect_background)",
    )  # fmt: skip
    add_scoring_arguments(parser, unit="windows")


def main(args: argparse.Namespace) -> int:
    from core.fileio import check_out_apart
    from data_prep import open_dataset
    from variformer.analysis import variant_effects as ve

    check_out_apart(args.out, {
        "--dataset": args.dataset, "--runs": args.runs, "--vcf": args.vcf,
        "--genes-file": args.genes_file,
    })  # fmt: skip
    if args.batch_size < 1:
        raise InputError(f"--batch-size must be >= 1, got {args.batch_size}")
    if args.device is not None:  # refused now, not at the first forward
        from variformer.predict import check_device

        check_device(args.device)
    ds = open_dataset(args.dataset)
    options = ve.EffectOptions(
        background=args.background, batch_size=args.batch_size, device=args.device,
        precision=args.precision, method=args.method,
    )  # fmt: skip
    res = ve.score_runs(
        args.runs, ds, args.vcf, args.out, fold=args.fold, genes=genes_from_args(args) or None,
        options=options, force=args.force, progress=args.progress,
        log=lambda line: print(line, file=sys.stderr),
    )  # fmt: skip
    skipped = ", ".join(f"{n} {why}" for why, n in sorted(res.skipped.items()) if n)
    print(
        f"wrote {args.out}: {len(res.table)} variant effects of {res.n_tasks} run gene(s) from "
        f"{res.n_runs} run(s)" + (f"; skipped: {skipped}" if skipped else "")
    )
    return 0
