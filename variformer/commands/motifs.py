"""``variformer motifs``: JASPAR/MEME motifs that a dataset's SNVs break or create.

A thin shell over :mod:`variformer.analysis.motifs`; writes one TSV (``--out motifs.tsv``) whose
``method`` and ``database`` columns name the scoring method and the matrices' database.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from core.errors import InputError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``variformer motifs``."""
    parser.add_argument("--dataset", required=True, help="dataset directory from `variformer prep`")
    parser.add_argument("--gene", action="append", help="a gene (repeatable)")
    parser.add_argument("--genes", nargs="+", metavar="GENE", help="genes")
    parser.add_argument("--genes-file", help="file with one gene per line")
    parser.add_argument(
        "--variants",
        default="hsv",
        help="hsv (AN/hsvs.tsv, needs --analysis), all (every SNV of each window) or a "
        "tab-separated FILE with chrom, pos (1-based), ref, alt (and optionally gene); "
        "default hsv",
    )
    parser.add_argument("--analysis", help="analysis directory from `variformer analyze`")
    parser.add_argument(
        "--jaspar-release",
        default="2024",
        help="JASPAR release shipped by pyjaspar (default 2024; CORE vertebrates)",
    )
    parser.add_argument(
        "--meme",
        help="scan the matrices of this MEME file instead (HOCOMOCO v11 / v12 MEME files; the "
        "paper used HOCOMOCO v11)",
    )
    parser.add_argument(
        "--method",
        default="default",
        metavar="{default,ic,log}",
        help="scoring: default (motifbreakR's default, the paper's: probabilities weighted by "
        "each column's max - min), ic (weighted by information content) or log (log2-odds in "
        "bits); default: default",
    )
    parser.add_argument(
        "--pvalue", type=float, default=5e-5, help="hit when REF or ALT has p < this (5e-5)"
    )
    parser.add_argument(
        "--background",
        choices=("uniform", "window"),
        default="uniform",
        help="background for p-values (and the odds of ic / log): uniform or the window's "
        "base composition",
    )
    parser.add_argument(
        "--pseudocount",
        type=float,
        help="added to each column's counts (default: 1 for default / ic, motifbreakR's; 0.8 "
        "for log, TFBSTools')",
    )
    parser.add_argument(
        "--granularity",
        type=float,
        help="score units per step of the p-value tables (default: 0.001 for default / ic, "
        "0.01 bits for log)",
    )
    parser.add_argument(
        "--show-neutral",
        action="store_true",
        help="keep hits with a neutral effect (|score difference| <= 0.4 for default / ic, "
        "|P[ref] - P[alt]| < 0.4 for log)",
    )
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar over genes (default: when stderr is a terminal)",
    )
    parser.add_argument("--out", required=True, help="output TSV (new unless --force)")
    parser.add_argument("--force", action="store_true", help="replace --out if it exists")


def _genes(args, ds) -> list[str]:
    from data_prep.listfile import read_list

    genes = [*(args.gene or []), *(args.genes or [])]
    if args.genes_file:
        genes += read_list(args.genes_file, what="genes")
    genes = list(dict.fromkeys(genes)) or list(ds.genes)
    for g in genes:
        ds.window(g)  # an unknown gene fails here, before any work
    return genes


def _variant_table(args, ds, genes):
    """None for every SNV of the windows, else the table to scan (SNVs only)."""
    from variformer.analysis.motifs.variants import is_snv, read_variant_table

    if args.variants == "all":
        return None
    if args.variants == "hsv":
        if not args.analysis:
            raise InputError(
                "--variants hsv reads AN/hsvs.tsv: give --analysis AN (from `variformer "
                "analyze`), or use --variants all or --variants FILE"
            )
        path = Path(args.analysis) / "hsvs.tsv"
        if not path.is_file():
            raise InputError(f"{path} not found; run `variformer analyze` first")
    else:
        path = Path(args.variants)
    table = read_variant_table(path)
    snv = is_snv(table)
    if not snv.all():
        print(f"motifs: {path}: skipping {int((~snv).sum())} rows that are not SNVs")
    table = table[snv]
    if "gene" in table.columns:
        table = table[table["gene"].astype(str).isin(genes)]
    else:
        from data_prep.genome import in_window

        inside = np.zeros(len(table), dtype=bool)
        for g in genes:
            inside |= in_window(table["chrom"], table["pos"], ds.window(g))
        if not inside.all():
            print(f"motifs: {path}: {int((~inside).sum())} SNVs lie in none of the gene windows")
    return table


def main(args: argparse.Namespace) -> int:
    """Run ``variformer motifs``; returns the exit status."""
    from core.fileio import atomic_write_text, check_out_apart, check_writable_parent
    from data_prep import open_dataset
    from variformer.analysis.motifs.matrices import load_motifs, motif_database_name
    from variformer.analysis.motifs.scan import KEYS, dataset_motif_disruption
    from variformer.analysis.motifs.scoring import check_method

    method = check_method(args.method)
    out = Path(args.out)
    variants = None if args.variants in ("hsv", "all") else args.variants
    check_out_apart(out, {
        "--dataset": args.dataset, "--analysis": args.analysis, "--variants": variants,
        "--meme": args.meme, "--genes-file": args.genes_file,
    })  # fmt: skip
    if out.exists() and not args.force:
        raise InputError(f"{out} already exists; pass --force to replace it")
    check_writable_parent(out)
    ds = open_dataset(args.dataset)
    genes = _genes(args, ds)
    variants = _variant_table(args, ds, genes)
    t0 = time.perf_counter()
    matrices = load_motifs(jaspar_release=args.jaspar_release, meme=args.meme)
    where = f" ({args.meme})" if args.meme else ""
    print(f"motifs: {len(matrices)} matrices from {motif_database_name(matrices)}{where}")
    hits = dataset_motif_disruption(
        ds,
        genes,
        matrices,
        variants=variants,
        pvalue=args.pvalue,
        method=method,
        background=args.background,
        pseudocount=args.pseudocount,
        granularity=args.granularity,
        show_neutral=args.show_neutral,
        progress=sys.stderr.isatty() if args.progress is None else args.progress,
    )
    atomic_write_text(out, hits.to_csv(sep="\t", index=False, float_format="%.6g"))
    n_snv = hits[KEYS].drop_duplicates().shape[0]
    took = time.perf_counter() - t0
    print(
        f"wrote {out}: {len(hits)} hits at {n_snv} SNVs in {len(genes)} genes "
        f"(p < {args.pvalue:g}, method {method}, {args.background} background, {took:.1f} s)"
    )
    return 0
