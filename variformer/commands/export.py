"""``variformer export predictdb``: models as a PredictDB .db + covariance for TWAS.

    variformer export predictdb --baselines BL [--model elastic_net] [--fold 0|all] --dataset D --out DIR
    variformer export predictdb --ism ISM [--surrogate ism|drivers] [--fold 0] --dataset D --out DIR

Writes ``DIR/<name>.db`` (tables ``weights`` and ``extra`` as the published PredictDB files) and
``DIR/<name>.txt.gz`` (``GENE RSID1 RSID2 VALUE``); the work is :mod:`variformer.export`.
"""

from __future__ import annotations

import argparse
import sys

from core.errors import InputError
from variformer.commands._args import add_gene_arguments, genes_from_args


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="export_format", metavar="FORMAT", required=True)
    p = sub.add_parser(
        "predictdb",
        help="a PredictDB SQLite model file + SNP covariance (S-PrediXcan, MetaXcan, PrediXcan)",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--baselines", metavar="BL", help="`variformer baselines` output")
    src.add_argument(
        "--ism",
        metavar="ISM",
        help="a fine-tuned model's ISM table (`variformer ism --runs`), or a directory holding it",
    )
    p.add_argument("--dataset", required=True, help="the dataset the models were fitted on")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory")
    p.add_argument(
        "--name", help="file name stem (default: the model and fold, e.g. elastic_net_fold0)"
    )
    p.add_argument(
        "--model", default="elastic_net", choices=("elastic_net", "lasso", "ridge"),
        help="with --baselines: which linear model (default elastic_net)",
    )  # fmt: skip
    p.add_argument(
        "--fold", default="0",
        help="the fold whose model is exported (default 0); with --baselines, 'all' exports the "
        "refit on every person (`variformer baselines --all-people`)",
    )  # fmt: skip
    p.add_argument(
        "--surrogate", default="ism", choices=("ism", "drivers"),
        help="with --ism: ISM score x dosage of every observed SNV (default), or of the drivers only",
    )  # fmt: skip
    p.add_argument(
        "--rsid-from", default="id", choices=("id", "varID"),
        help="the weights' rsid column: the VCF ID column (default), or the GTEx-style varID "
        "(chr<N>_<pos>_<ref>_<alt>_b38) for cohorts without rs ids",
    )  # fmt: skip
    add_gene_arguments(p, required=False, what="genes (default: every gene with a model)")
    p.add_argument("--force", action="store_true", help="replace DIR/<name>.db and .txt.gz")


def _fold(args) -> int | str:
    if args.fold == "all":
        if args.ism:
            raise InputError(
                "--fold all is for --baselines (a refit on every person); an ISM table has folds"
            )
        return "all"
    try:
        return int(args.fold)
    except ValueError:
        raise InputError(f"--fold must be a fold number or 'all', not {args.fold!r}") from None


def main(args: argparse.Namespace) -> int:
    from pathlib import Path

    from core.fileio import check_out_apart

    check_out_apart(args.out, {"--dataset": args.dataset, "--baselines": args.baselines,
                               "--ism": args.ism, "--genes-file": args.genes_file})  # fmt: skip
    fold = _fold(args)
    name = args.name or (
        f"{args.model}_{'all' if fold == 'all' else f'fold{fold}'}" if args.baselines
        else f"variformer_{args.surrogate}_fold{fold}"
    )  # fmt: skip
    if "/" in name or name.startswith("."):
        raise InputError(f"--name {name!r} must be a plain file name stem")
    out = Path(args.out)
    existing = [p for p in (out / f"{name}.db", out / f"{name}.txt.gz") if p.exists()]
    if existing and not args.force:
        raise InputError(f"{existing[0]} already exists; pass --force to replace it")

    from data_prep import open_dataset
    from variformer.export import baseline_models, export_predictdb, surrogate_models

    ds = open_dataset(args.dataset)
    genes = genes_from_args(args) or None
    if genes:
        unknown = [g for g in genes if g not in set(ds.genes)]
        if unknown:
            raise InputError(f"gene(s) {', '.join(unknown[:5])} not in the dataset {args.dataset}")

    def log(line: str) -> None:
        print(line, file=sys.stderr)

    if args.baselines:
        models, left_out = baseline_models(
            args.baselines, ds, model=args.model, fold=fold, genes=genes
        )
    else:
        models, left_out = surrogate_models(
            args.ism, ds, fold=fold, surrogate=args.surrogate, genes=genes
        )
    result = export_predictdb(
        models, left_out, ds, out, name=name, rsid_from=args.rsid_from, log=log
    )
    print(
        f"export: {result.db} ({result.n_genes} genes, {result.n_weights} weights; "
        f"{len(result.left_out)} left out) and {result.covariance}"
    )
    return 0
