"""``variformer prep``: VCF/BCF + FASTA + GTF (+ expression) -> a gene dataset directory.

Argparse and printing only; the work is :func:`data_prep.prep.prep_dataset`. Imports no torch
(the cli imports this module only when ``prep`` is the command).
"""

from __future__ import annotations

import argparse
import sys

from core.fileio import check_out_apart
from data_prep.prep import ENGINES, prep_dataset
from variformer.commands._args import add_gene_arguments, add_progress_argument, genes_from_args


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``variformer prep``."""
    p.add_argument(
        "--vcf",
        nargs="+",
        action="extend",
        required=True,
        metavar="VCF",
        help="bgzipped + indexed VCF/BCF files with the same people, e.g. one per chromosome "
        "(--vcf cohort.chr{1..22}.vcf.gz, or --vcf repeated)",
    )
    p.add_argument("--fasta", required=True, help="reference FASTA with .fai")
    p.add_argument("--annotation", required=True, help="GENCODE GTF (.gtf/.gtf.gz) or TSS table")
    add_gene_arguments(p, what="gene symbols or Ensembl ids")
    p.add_argument(
        "--expression", help="GTEx-style expression BED (#chr start end gene_id samples...)"
    )
    p.add_argument("--samples", help="file with the sample ids to use, one per line")
    p.add_argument(
        "--test-samples", help="external test cohort: these samples are the test set of every fold"
    )
    p.add_argument(
        "--seq-len",
        type=int,
        default=49152,
        help="window length, a multiple of 128 (default 49152)",
    )
    p.add_argument("--out", required=True, help="dataset directory to create")
    p.add_argument(
        "--engine",
        choices=ENGINES,
        default="native",
        help="native (fast) or bcftools (bcftools consensus via pysam)",
    )
    p.add_argument(
        "--missing",
        choices=("ref", "error"),
        default="ref",
        help="missing genotypes: reference allele (as bcftools) or error",
    )
    p.add_argument(
        "--pass-only",
        action="store_true",
        help="skip SNVs of records whose FILTER is not PASS (by default they are applied, as "
        "bcftools consensus does, and counted in the summary)",
    )
    p.add_argument(
        "--allow-no-variants",
        action="store_true",
        help="allow genes on contigs with no record in any VCF (they get the reference "
        "sequence); by default that is an error, as a per-chromosome VCF may be missing",
    )
    p.add_argument(
        "--drop-ref-mismatch",
        action="store_true",
        help="skip SNVs whose REF disagrees with the FASTA instead of failing",
    )
    p.add_argument(
        "--protein-coding-only", action="store_true", help="keep only gene_type protein_coding"
    )
    p.add_argument(
        "--drop-close-tss",
        type=int,
        nargs="?",
        const=64,
        default=None,
        metavar="BP",
        help="drop genes whose TSS is within BP (default 64) of another gene's TSS",
    )
    p.add_argument("--folds", type=int, default=3, help="cross-validation folds (default 3)")
    p.add_argument(
        "--tune-fraction",
        type=float,
        default=0.1,
        help="fraction of people in each fold's tune set, for early stopping (default 0.1)",
    )
    p.add_argument(
        "--test-fraction",
        type=float,
        default=0.1,
        help="fraction of people in each fold's test set; folds x fraction <= 1 keeps the test "
        "sets disjoint (default 0.1; ignored with --test-samples)",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the train/tune/test assignment and the downsampling order (default 0)",
    )
    p.add_argument(
        "--haplotypes",
        action="store_true",
        help="each person's two phased haplotypes with SNVs, MNPs and indels, not averaged "
        "(needs phased GT; overlapping alleles follow bcftools consensus: the first applied wins)",
    )
    p.add_argument("--force", action="store_true", help="overwrite an existing output directory")
    add_progress_argument(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar (same as --no-progress)")


def main(args: argparse.Namespace) -> int:
    """Run ``variformer prep``; prints the summary and returns the exit status."""
    check_out_apart(args.out, {
        "--vcf": args.vcf, "--fasta": args.fasta, "--annotation": args.annotation,
        "--expression": args.expression, "--samples": args.samples,
        "--test-samples": args.test_samples, "--genes-file": args.genes_file,
    })  # fmt: skip
    progress = sys.stderr.isatty() if args.progress is None else args.progress
    s = prep_dataset(
        vcfs=args.vcf,
        fasta=args.fasta,
        annotation=args.annotation,
        out=args.out,
        genes=genes_from_args(args),
        expression=args.expression,
        samples_file=args.samples,
        test_samples_file=args.test_samples,
        seq_len=args.seq_len,
        engine=args.engine,
        missing=args.missing,
        ref_mismatch="drop" if args.drop_ref_mismatch else "error",
        pass_only=args.pass_only,
        allow_no_variants=args.allow_no_variants,
        protein_coding_only=args.protein_coding_only,
        drop_close_tss_bp=args.drop_close_tss,
        n_folds=args.folds,
        tune_fraction=args.tune_fraction,
        test_fraction=args.test_fraction,
        seed=args.seed,
        force=args.force,
        progress=progress and not args.quiet,
        haplotypes=args.haplotypes,
    )
    skipped = ", ".join(f"{k} {v}" for k, v in s.skipped.items()) or "none"
    dropped = ", ".join(f"{k}: {' '.join(v)}" for k, v in s.dropped_genes.items() if v) or "none"
    people = (
        ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in s.dropped_samples.items() if v) or "none"
    )
    for warning in s.warnings:
        print(f"variformer prep: warning: {warning}", file=sys.stderr)
    kind = "alleles (SNVs, MNPs, indels) on phased haplotypes" if args.haplotypes else "SNV alleles"
    lines = [
        f"wrote {s.out}: {s.n_genes} genes, {s.n_samples} people, {s.n_variants} {kind} kept "
        f"({s.seconds:.1f} s)",
        f"  skipped alleles: {skipped}",
        f"  dropped genes: {dropped}",
        f"  people left out: {people}",
    ]
    if s.applied_not_pass:
        lines.append(
            f"  FILTER not PASS: {s.applied_not_pass} {'alleles' if args.haplotypes else 'SNV alleles'} applied (as bcftools consensus "
            "does; --pass-only skips them)"
        )
    if s.genes_without_variants:
        lines.append(f"  genes without variants: {' '.join(s.genes_without_variants)}")
    if s.expression_missing:
        shown = ", ".join(f"{g} {n}" for g, n in list(s.expression_missing.items())[:10])
        more = " ..." if len(s.expression_missing) > 10 else ""
        lines.append(f"  people without expression (NA), per gene: {shown}{more}")
    print("\n".join(lines))
    return 0
