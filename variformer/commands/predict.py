"""``variformer predict``: impute expression for people who have genotypes only.

    variformer predict --runs RUNS --vcf new.vcf.gz [--vcf more.vcf.gz ...] --out DIR
    variformer predict --baselines BL [--model elastic_net] --vcf new.vcf.gz --out DIR

The VCFs are read onto the training dataset's windows (found in the models' provenance, or
``--dataset``, which must match them); every model of every fold (or ``--fold K``) predicts every
person. ``DIR`` gets ``predicted_expression.tsv`` (gene rows x sample columns, the mean over the
folds), ``predicted_expression_long.tsv`` (model, fold, gene, sample, predicted) and
``coverage.tsv`` (model, fold, gene, n_model_snvs, n_found, fraction_found). Models of a
``prep --haplotypes`` dataset read the new people's two phased haplotypes (indels too), each run
in the mode it was trained in. Resumable. The work is :mod:`variformer.impute`.
"""

from __future__ import annotations

import argparse
import sys

from variformer.commands._args import (
    add_fold_argument,
    add_gene_arguments,
    add_progress_argument,
    genes_from_args,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--runs", help="a runs root (`variformer finetune --out`): every finished run")
    src.add_argument(
        "--baselines", metavar="BL", help="baselines directory (`variformer baselines`)"
    )
    parser.add_argument(
        "--model",
        choices=["elastic_net", "lasso", "ridge"],
        default="elastic_net",
        help="with --baselines: which linear model (default elastic_net)",
    )
    parser.add_argument(
        "--vcf", action="append", required=True, metavar="VCF",
        help="bgzipped + indexed VCF/BCF of the new people (repeat for more files, each with "
        "other people)",
    )  # fmt: skip
    parser.add_argument(
        "--dataset",
        help="the training dataset (default: the one the models record; must match them)",
    )
    add_fold_argument(parser, "only the models of this fold (default: every fold available)")
    add_gene_arguments(parser, required=False, what="genes (default: every gene of the models)")
    parser.add_argument(
        "--batch-size", type=int, help="Variformer batch size (default: each run's own)"
    )
    parser.add_argument("--device", help="cpu, cuda, cuda:1 (default: a GPU if there is one)")
    parser.add_argument("--out", required=True, help="output directory DIR (new)")
    parser.add_argument("--force", action="store_true", help="replace --out and redo every piece")
    add_progress_argument(parser)


def _log(line: str) -> None:
    print(line, file=sys.stderr)


def main(args: argparse.Namespace) -> int:
    from core.fileio import check_out_apart
    from variformer.impute import COVERAGE_TSV, LONG_TSV, WIDE_TSV, impute_expression

    check_out_apart(args.out, {
        "--runs": args.runs, "--baselines": args.baselines, "--vcf": args.vcf,
        "--dataset": args.dataset, "--genes-file": args.genes_file,
    })  # fmt: skip
    if args.device is not None:  # refused now, not at the first forward
        from variformer.predict import check_device

        check_device(args.device)
    result = impute_expression(
        vcfs=args.vcf, out=args.out, runs=args.runs, baselines=args.baselines, model=args.model,
        dataset=args.dataset, fold=args.fold, genes=genes_from_args(args) or None,
        batch_size=args.batch_size, device=args.device, force=args.force,
        progress=args.progress, log=_log,
    )  # fmt: skip
    n_genes, n_people = result.wide.shape
    models = sorted(set(result.long["model"])) if len(result.long) else []
    print(
        f"wrote {result.out}: {n_genes} genes x {n_people} people ({WIDE_TSV}, mean over "
        f"{result.long['fold'].nunique() if len(result.long) else 0} fold(s) of "
        f"{', '.join(models) or 'no model'}), {LONG_TSV}, {COVERAGE_TSV}"
        + (f"; {result.reused} piece(s) reused from an interrupted run" if result.reused else "")
    )
    return 0
