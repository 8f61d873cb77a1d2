"""``variformer ism``: ISM scores of every observed SNV of a gene's window, to one TSV.

    variformer ism --run RUN_DIR --dataset DS [--gene G | --genes G1 G2 | --genes-file F] --out ism.tsv
    variformer ism --runs RUNS [--fold K] --dataset DS --out ISM/variformer.tsv
    variformer ism --enformer ID|DIR --track 4950 --dataset DS --gene G --out ism.tsv

``--runs`` scores every finished run under a runs root (of fold K, or of every fold), each on
its own genes, into one table (a gene may have one run per fold). Without genes, a run's own
genes (an Enformer: all genes of the dataset). Columns: gene, fold, chrom, pos (1-based), id,
ref, alt, maf, tss_distance, score. Resumable over genes. The work is
:mod:`variformer.analysis.ism_of_models`.
"""

from __future__ import annotations

import argparse

from core.errors import InputError
from variformer.commands._args import (
    add_fold_argument,
    add_gene_arguments,
    add_scoring_arguments,
    add_track_argument,
    genes_from_args,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--run", help="a fine-tuning run directory (best.ckpt or model.pt)")
    src.add_argument(
        "--runs",
        metavar="RUNS",
        help="a runs root (`variformer finetune --out`): every finished run, each on its genes",
    )
    src.add_argument(
        "--enformer", help="pre-trained Enformer: a hub id or a save_pretrained directory"
    )
    add_track_argument(parser)
    add_fold_argument(parser, "with --runs: only the runs of this fold (default: every fold)")
    parser.add_argument("--dataset", required=True, help="dataset directory (variformer prep)")
    add_gene_arguments(parser, required=False, what="genes (default: the run's genes)")
    parser.add_argument(
        "--background",
        metavar="SAMPLE",
        help="score ALTs on this person instead of the reference (an SNV dataset: their "
        "averaged one-hot; a haplotype dataset: each allele added to their two haplotypes)",
    )
    add_scoring_arguments(parser, unit="variants")


def main(args: argparse.Namespace) -> int:
    from core.fileio import check_out_apart
    from data_prep import open_dataset
    from variformer.analysis import ism_of_models as im

    check_out_apart(args.out, {
        "--dataset": args.dataset, "--run": args.run, "--runs": args.runs,
        "--enformer": args.enformer, "--genes-file": args.genes_file,
    })  # fmt: skip
    if args.batch_size < 1:
        raise InputError(f"--batch-size must be >= 1, got {args.batch_size}")
    if args.fold is not None and not args.runs:
        raise InputError("--fold goes with --runs (a --run directory has its own fold)")
    if args.device is not None:  # refused now, not at the first forward
        from variformer.predict import check_device

        check_device(args.device)
    ds = open_dataset(args.dataset)
    genes = genes_from_args(args) or None
    options = im.IsmOptions(
        background=args.background, method=args.method, batch_size=args.batch_size,
        device=args.device, precision=args.precision, force=args.force, progress=args.progress,
    )  # fmt: skip
    what = "alleles (SNVs, MNPs, indels)" if getattr(ds, "haplotype_mode", False) else "SNVs"
    if args.runs:
        res = im.ism_of_runs(args.runs, ds, args.out, fold=args.fold, genes=genes, options=options)
        print(
            f"wrote {args.out}: {len(res.table)} {what} of {res.n_genes} run gene(s) from "
            f"{res.n_runs} run(s)"
        )
        return 0
    if args.run:
        res = im.ism_of_run(args.run, ds, args.out, genes=genes, options=options)
    else:
        res = im.ism_of_enformer(
            args.enformer, ds, args.out, track=args.track, genes=genes, options=options
        )
    print(f"wrote {args.out}: {len(res.table)} {what} of {res.n_genes} gene(s)")
    return 0
