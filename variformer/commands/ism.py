"""``variformer ism``: ISM scores of every observed SNV of a gene's window, to one TSV.

    variformer ism --run RUN_DIR --dataset DS [--gene G | --genes G1 G2 | --genes-file F] --out ism.tsv
    variformer ism --enformer ID|DIR --track 4950 --dataset DS --gene G --out ism.tsv

Without genes, a run's own genes (an Enformer: all genes of the dataset). Columns: gene, fold,
chrom, pos (1-based), id, ref, alt, maf, tss_distance, score. Resumable over genes.
"""

from __future__ import annotations

import argparse
from functools import partial
from pathlib import Path

from variformer.commands._args import add_gene_arguments, add_progress_argument, genes_from_args
from variformer.errors import InputError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--run", help="a fine-tuning run directory (best.ckpt or model.pt)")
    src.add_argument(
        "--enformer", help="pre-trained Enformer: a hub id or a save_pretrained directory"
    )
    parser.add_argument(
        "--track",
        type=int,
        default=4950,
        help="Enformer human track summed over the 3 centre bins (default 4950, CAGE blood)",
    )
    parser.add_argument("--dataset", required=True, help="dataset directory (variformer prep)")
    add_gene_arguments(parser, required=False, what="genes (default: the run's genes)")
    parser.add_argument(
        "--background",
        metavar="SAMPLE",
        help="score ALTs on this person's averaged one-hot instead of the reference",
    )
    parser.add_argument("--method", choices=["fast", "naive"], default="fast")
    parser.add_argument("--batch-size", type=int, default=16, help="variants per forward")
    parser.add_argument("--device", help="cpu, cuda, cuda:1 (default: a GPU if there is one)")
    parser.add_argument("--out", required=True, help="the TSV to write")
    parser.add_argument("--force", action="store_true", help="replace an existing --out")
    add_progress_argument(parser)


def _read_run(run_dir: Path) -> dict:
    """fold, genes and data.seq_len of a finished fine-tuning run (via variformer.runs)."""
    from variformer.runs import read_run

    run = read_run(run_dir)
    return {
        "fold": -1 if run.fold is None else run.fold,
        "genes": list(run.summary.get("genes") or []) or None,
        "seq_len": (run.config.get("data") or {}).get("seq_len"),
    }


def main(args: argparse.Namespace) -> int:
    from data_prep import open_dataset
    from variformer.analysis.ism_genes import ism_table, write_ism_tsv

    if args.batch_size < 1:
        raise InputError(f"--batch-size must be >= 1, got {args.batch_size}")
    ds = open_dataset(args.dataset)
    if args.run:
        from variformer.model import Variformer

        run_dir = Path(args.run).expanduser()
        info = _read_run(run_dir)
        model = Variformer.load(run_dir)
        source = {"run": str(run_dir.resolve())}
        default_genes = info["genes"] or list(ds.genes)
    else:
        from variformer.model import load_enformer
        from variformer.predict import CenterBins

        enformer = load_enformer(args.enformer)
        n_tracks = enformer.output_heads.get("human", 0)
        if not 0 <= args.track < n_tracks:
            raise InputError(f"--track {args.track} is not one of the {n_tracks} human tracks")
        model = CenterBins(enformer, n=3, track=args.track, head="human")
        info = {"fold": -1, "seq_len": None}
        source = {"enformer": args.enformer, "track": args.track}
        default_genes = list(ds.genes)
    genes = genes_from_args(args) or list(dict.fromkeys(default_genes))
    unknown = [g for g in genes if g not in set(ds.genes)]
    if unknown:
        raise InputError(
            f"gene(s) {', '.join(unknown[:5])} not in the dataset {args.dataset}; see its genes.tsv"
        )
    if args.background is not None and args.background not in set(ds.samples):
        raise InputError(f"--background {args.background} is not a sample of {args.dataset}")
    table = partial(
        ism_table,
        model,
        ds,
        fold=info["fold"],
        seq_len=info["seq_len"],
        background=args.background,
        method=args.method,
        batch_size=args.batch_size,
        device=args.device,
    )
    settings = {
        **source,
        "dataset": str(Path(args.dataset).resolve()),
        "background": args.background,
        "genes": genes,
    }
    result = write_ism_tsv(
        args.out, genes, table, settings=settings, force=args.force, progress=args.progress
    )
    print(f"wrote {args.out}: {len(result)} SNVs of {len(genes)} gene(s)")
    return 0
