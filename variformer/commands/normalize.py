"""``variformer normalize``: TPM + read counts -> a directory of GTEx-normalized expression BEDs.

Argparse and printing only; the work is :func:`data_prep.normalize.normalize_files`.
"""

from __future__ import annotations

import argparse
import sys
import warnings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``variformer normalize``."""
    parser.add_argument(
        "--tpm", required=True, help="TPM matrix, genes x samples (GCT or TSV, may be gzipped)"
    )
    parser.add_argument("--counts", required=True, help="read-count matrix, same genes and samples")
    parser.add_argument(
        "--annotation", required=True, help="GENCODE GTF (gene records give the TSS)"
    )
    parser.add_argument(
        "--out",
        required=True,
        help="output directory to create: normalized_expression.bed.gz and log2tpm.bed.gz (+ .tbi)",
    )
    parser.add_argument(
        "--samples", help="file with sample ids (one per line) to keep, in this order"
    )
    parser.add_argument("--min-tpm", type=float, default=0.1, help="TPM threshold (default 0.1)")
    parser.add_argument(
        "--min-counts", type=float, default=6, help="read-count threshold (default 6)"
    )
    parser.add_argument(
        "--min-fraction",
        type=float,
        default=0.2,
        help="fraction of samples that must pass both thresholds (default 0.2)",
    )
    parser.add_argument("--force", action="store_true", help="replace --out if it exists")


def main(args: argparse.Namespace) -> int:
    """Run ``variformer normalize``; prints what was written and returns the exit status."""
    from core.fileio import check_out_apart
    from data_prep.normalize import normalize_files

    check_out_apart(args.out, {
        "--tpm": args.tpm, "--counts": args.counts, "--annotation": args.annotation,
        "--samples": args.samples,
    })  # fmt: skip
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        s = normalize_files(
            args.tpm,
            args.counts,
            args.annotation,
            args.out,
            samples_file=args.samples,
            min_tpm=args.min_tpm,
            min_counts=args.min_counts,
            min_fraction=args.min_fraction,
            force=args.force,
        )
    for w in caught:
        print(f"variformer normalize: warning: {w.message}", file=sys.stderr)
    print(
        f"{s.n_genes} genes x {s.n_samples} samples in; {s.n_kept} pass the expression filter; "
        f"{s.n_written} written to {s.normalized} and {s.log2tpm}"
    )
    return 0
