"""``variformer evaluate``: fine-tuned runs, baselines and pre-trained Enformer in one table.

Writes ``EVAL/``: ``metrics.tsv`` (long: gene, fold, model, setting, split, r2, pcc, n, then
train_fraction, status, source, learned, learned_reason), ``summary.tsv`` (per gene and
model: mean over the folds every model has for the gene, named in ``folds``, beside the elastic
net's over the same folds), ``predictions.tsv`` (every person's prediction behind the metrics),
``missing.tsv``, Enformer's and cross-cohort predictions as runs (``enformer/fold<k>/``,
``cross_cohort/<model>/fold<k>/``) and ``figures/*.png``. See :mod:`variformer.evaluate`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core.errors import InputError
from variformer.commands._args import (
    add_gene_arguments,
    add_progress_argument,
    add_track_argument,
    genes_from_args,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", required=True, help="dataset the models were trained on")
    parser.add_argument("--runs", help="directory of fine-tuning runs (`variformer finetune`)")
    parser.add_argument("--baselines", help="baselines directory BL (`variformer baselines`)")
    parser.add_argument(
        "--enformer", metavar="ID|DIR", help="score pre-trained Enformer (hub id or local dir)"
    )
    add_track_argument(parser)
    parser.add_argument("--folds", nargs="+", type=int, help="folds (default: all found)")
    add_gene_arguments(parser, required=False, what="genes (default: those of the runs)")
    parser.add_argument(
        "--test-dataset", metavar="DS2", help="external cohort: cross_cohort predictions"
    )
    parser.add_argument("--batch-size", type=int, default=4, help="Enformer batch size (4)")
    parser.add_argument("--device", help="torch device (default: CUDA if available)")
    parser.add_argument("--figure-gene", help="gene of the observed-vs-predicted figure")
    parser.add_argument(
        "--ism",
        help="directory of <model>.tsv ISM tables: scores at float-rounding level mark the "
        "model/gene/fold learned = False in metrics.tsv",
    )
    parser.add_argument("--out", required=True, help="evaluation directory EVAL (new)")
    parser.add_argument("--force", action="store_true", help="replace --out")
    add_progress_argument(parser)


def _log(line: str) -> None:
    print(line, file=sys.stderr)


def main(args: argparse.Namespace) -> int:
    from core.fileio import check_out_apart
    from data_prep import open_dataset
    from variformer.evaluate import evaluate_to_directory

    check_out_apart(args.out, {
        "--dataset": args.dataset, "--test-dataset": args.test_dataset, "--runs": args.runs,
        "--baselines": args.baselines, "--enformer": args.enformer,
        "--genes-file": args.genes_file, "--ism": args.ism,
    })  # fmt: skip
    if args.batch_size < 1:
        raise InputError(f"--batch-size must be >= 1, got {args.batch_size}")
    if args.device is not None:  # refused now, not at the first forward
        from variformer.predict import check_device

        check_device(args.device)
    ds = open_dataset(args.dataset)
    ds2 = open_dataset(args.test_dataset) if args.test_dataset else None
    out = Path(args.out)
    result, figures = evaluate_to_directory(
        ds, out, runs=args.runs, baselines=args.baselines, enformer=args.enformer,
        track=args.track, folds=args.folds, genes=genes_from_args(args) or None,
        test_dataset=ds2, batch_size=args.batch_size, device=args.device,
        figure_gene=args.figure_gene, ism=args.ism, force=args.force, log=_log,
    )  # fmt: skip
    metrics = result.metrics
    ok = metrics[metrics["status"] == "ok"]
    print(
        f"wrote {out}: {len(metrics)} metric rows for {ok['gene'].nunique()} genes, "
        f"models {', '.join(sorted(set(ok['model'])))}; figures {', '.join(figures) or 'none'}"
    )
    _say_matched_folds(result.summary)
    if len(result.missing):
        by_model = result.missing.groupby("model").size()
        for model, count in by_model.items():
            first = result.missing[result.missing["model"] == model].iloc[0]
            print(
                f"missing: {model} lacks {count} gene-folds (e.g. {first['gene']} fold "
                f"{first['fold']}); marked status=missing in metrics.tsv, listed in missing.tsv"
            )
    return 0


def _say_matched_folds(summary) -> None:
    """Which folds ``summary.tsv`` compares each gene's models on, and which genes have none."""
    if summary.empty:
        return
    per_gene = summary.drop_duplicates(["gene", "folds"])
    counts = per_gene[per_gene["folds"] != ""].groupby("folds", sort=True)["gene"].nunique()
    if len(counts):
        said = "; ".join(f"folds {f}: {n} gene{'s' * (n != 1)}" for f, n in counts.items())
        print(f"summary.tsv compares each gene's models on the folds they all have ({said})")
    none = sorted(set(per_gene.loc[per_gene["folds"] == "", "gene"]))
    if none:
        print(
            f"no fold is shared by every model of {len(none)} genes (e.g. {none[0]}): their "
            "summary.tsv rows are NA, not compared"
        )
