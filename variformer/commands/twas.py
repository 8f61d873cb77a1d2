"""``variformer twas``: S-PrediXcan of GWAS summary statistics on an exported model.

    variformer twas --db DIR/<name>.db --covariance DIR/<name>.txt.gz --gwas gwas.tsv --out twas.tsv

The inputs are checked (:mod:`variformer.twas`), then ``pytwas`` computes S-PrediXcan exactly as
MetaXcan's ``SPrediXcan.py`` does. The output is its table, tab-separated, sorted by p-value.
"""

from __future__ import annotations

import argparse

from variformer.commands._args import add_gene_arguments, genes_from_args


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db", required=True, help="PredictDB model file (`variformer export predictdb`)"
    )
    parser.add_argument("--covariance", required=True, help="its SNP covariance (<name>.txt.gz)")
    parser.add_argument(
        "--gwas", required=True, help="GWAS summary statistics (tab/space separated)"
    )
    parser.add_argument(
        "--snp-column",
        default="variant_id",
        help="GWAS SNP id column (variant_id; rsid for rs ids)",
    )
    parser.add_argument("--effect-allele-column", default="effect_allele")
    parser.add_argument("--non-effect-allele-column", default="non_effect_allele")
    parser.add_argument("--zscore-column", default="zscore")
    add_gene_arguments(parser, required=False, what="genes to report (names or ids; default all)")
    parser.add_argument("--out", required=True, help="output table (TSV)")
    parser.add_argument("--force", action="store_true", help="replace --out")


def main(args: argparse.Namespace) -> int:
    from pathlib import Path

    from core.errors import InputError
    from core.fileio import atomic_write_text, check_out_apart
    from variformer.twas import read_gwas, run_twas

    check_out_apart(args.out, {"--db": args.db, "--covariance": args.covariance,
                               "--gwas": args.gwas, "--genes-file": args.genes_file})  # fmt: skip
    out = Path(args.out)
    if out.exists() and not args.force:
        raise InputError(f"{out} already exists; pass --force to replace it")
    gwas = read_gwas(
        args.gwas, snp_column=args.snp_column, effect_allele_column=args.effect_allele_column,
        non_effect_allele_column=args.non_effect_allele_column, zscore_column=args.zscore_column,
    )  # fmt: skip
    result = run_twas(
        args.db, args.covariance, gwas, gwas_path=args.gwas, genes=genes_from_args(args) or None
    )
    atomic_write_text(out, result.to_csv(sep="\t", index=False, na_rep="NA"))
    top = result.iloc[0] if len(result) else None
    best = (
        f"; top {top['gene_name']} z {top['zscore']:.2f} p {top['pvalue']:.2g}"
        if top is not None
        else ""
    )
    print(f"twas: {len(result)} genes -> {out}{best}")
    return 0
