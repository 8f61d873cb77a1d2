"""``variformer baselines``: elastic net / lasso / ridge per gene and fold (see :mod:`baselines.run`)."""

from __future__ import annotations

import argparse
import sys

from variformer.commands._args import (
    add_fold_arguments,
    add_gene_arguments,
    add_progress_argument,
    folds_from_args,
    genes_from_args,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", required=True, help="dataset directory (`variformer prep`)")
    add_fold_arguments(parser)
    add_gene_arguments(parser, required=False, what="genes (default: all of the dataset)")
    parser.add_argument(
        "--model",
        default="elastic_net",
        choices=("elastic_net", "lasso", "ridge"),
        help="linear model (default elastic_net)",
    )
    parser.add_argument("--jobs", type=int, default=1, help="genes fitted in parallel (default 1)")
    parser.add_argument("--l1-ratio", type=float, default=0.5, help="elastic-net mixing (0.5)")
    parser.add_argument("--cv", type=int, default=5, help="inner CV folds on train people (5)")
    parser.add_argument("--seed", type=int, default=0, help="inner CV shuffle seed (0)")
    parser.add_argument(
        "--engine",
        default="gram",
        choices=("gram", "sklearn"),
        help="gram (shared Gram matrix, default) or sklearn (the plain ElasticNetCV pipeline)",
    )
    parser.add_argument(
        "--path-patience",
        type=int,
        default=10,
        metavar="N",
        help="stop each penalty path once the inner-CV error has been >2%% above its minimum "
        "for N alphas in a row, skipping the slow overfitting tail (default 10); 0 fits every "
        "alpha of the grid, exactly ElasticNetCV's choice",
    )
    parser.add_argument(
        "--all-people",
        action="store_true",
        help="also fit each gene on every person with expression (same model and inner-CV "
        "penalty choice), published as BL/<model>/<gene>/all/ for weight exports; not in "
        "summary.tsv, not evaluated",
    )
    parser.add_argument(
        "--indels",
        action="store_true",
        help="on a haplotype dataset (`prep --haplotypes`): every allele (indels and MNPs too) "
        "is a dosage column; default: its SNVs only, comparable with an SNV dataset",
    )
    parser.add_argument("--out", required=True, help="baselines directory BL (BL/<model>/...)")
    parser.add_argument(
        "--force", action="store_true", help="refit gene-folds that are already published"
    )
    add_progress_argument(parser)


def main(args: argparse.Namespace) -> int:
    from baselines.run import run_baselines
    from core.fileio import check_out_apart

    check_out_apart(args.out, {"--dataset": args.dataset})  # BL accumulates models and runs
    result = run_baselines(
        args.dataset,
        out=args.out,
        genes=genes_from_args(args) or None,
        folds=folds_from_args(args),
        model=args.model,
        jobs=args.jobs,
        l1_ratio=args.l1_ratio,
        cv=args.cv,
        seed=args.seed,
        engine=args.engine,
        patience=args.path_patience,
        all_people=args.all_people,
        indels=args.indels,
        force=args.force,
        log=lambda line: print(line, file=sys.stderr),
        progress=args.progress,
    )
    from core.runs import ALL_PEOPLE

    table = result.summary
    n_all = sum(fold == ALL_PEOPLE for _, fold in result.fitted)
    also = f" and {n_all} all-people fits" if args.all_people else ""
    print(
        f"{args.model}: fitted {len(result.fitted) - n_all} gene-folds{also}, skipped "
        f"{len(result.skipped)} already published; {result.root / 'summary.tsv'} has "
        f"{len(table)} rows (mean test R2 {table['test_r2'].mean():.3f})"
    )
    return 0
