"""``variformer ism``: ISM scores of every observed SNV of a gene's window, to one TSV.

    variformer ism --run RUN_DIR --dataset DS [--gene G | --genes G1 G2 | --genes-file F] --out ism.tsv
    variformer ism --runs RUNS [--fold K] --dataset DS --out ISM/variformer.tsv
    variformer ism --enformer ID|DIR --track 4950 --dataset DS --gene G --out ism.tsv

``--runs`` scores every finished run under a runs root (of fold K, or of every fold), each on
its own genes, into one table (a gene may have one run per fold). Without genes, a run's own genes (an Enformer: all genes of the dataset). Columns: gene, fold,
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
        "--runs",
        metavar="RUNS",
        help="a runs root (`variformer finetune --out`): every finished run, each on its genes",
    )
    src.add_argument(
        "--enformer", help="pre-trained Enformer: a hub id or a save_pretrained directory"
    )
    parser.add_argument(
        "--track",
        type=int,
        default=4950,
        help="Enformer human track summed over the 3 centre bins (default 4950, CAGE blood)",
    )
    parser.add_argument(
        "--fold", type=int, help="with --runs: only the runs of this fold (default: every fold)"
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

    return _run_info(read_run(run_dir))


def _run_info(run) -> dict:
    """fold, genes and data.seq_len of a :class:`variformer.runs.Run` already read."""
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
    if args.fold is not None and not args.runs:
        raise InputError("--fold goes with --runs (a --run directory has its own fold)")
    ds = open_dataset(args.dataset)
    if args.runs:
        return _main_runs(args, ds)
    if args.run:
        from variformer.model import Variformer

        run_dir = Path(args.run).expanduser()
        info = _read_run(run_dir)
        model = Variformer.load(run_dir)
        source = {"run": str(run_dir.resolve())}
        default_genes = info["genes"] or list(ds.genes)
    else:
        from variformer.enformer import load_enformer
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


def _main_runs(args: argparse.Namespace, ds) -> int:
    """``--runs RUNS [--fold K]``: every finished run's genes into one table."""
    from variformer.analysis.ism_genes import ism_table, write_ism_tsv
    from variformer.model import Variformer
    from variformer.runs import find_runs

    runs = [
        r for r in find_runs(args.runs, kind="finetune") if args.fold is None or r.fold == args.fold
    ]
    if not runs:
        which = "" if args.fold is None else f" of fold {args.fold}"
        raise InputError(
            f"no finished fine-tuning run{which} under {args.runs}; run `variformer finetune` first"
        )
    wanted = set(genes_from_args(args)) or None
    known = set(ds.genes)
    tasks: list[tuple[str, str]] = []  # (run dir, gene)
    seen: dict[tuple[str, int], str] = {}
    infos = {str(run.path): _run_info(run) for run in runs}
    for run in runs:
        info = infos[str(run.path)]
        for gene in info["genes"] or list(ds.genes):
            if wanted is not None and gene not in wanted:
                continue
            if gene not in known:
                raise InputError(
                    f"run {run.path} has gene {gene}, which is not in the dataset {args.dataset}"
                )
            key = (gene, info["fold"])
            if key in seen:
                raise InputError(
                    f"{gene} has two runs on fold {info['fold']} ({seen[key]} and {run.path}); "
                    "score one with --run, or pass --genes to leave the gene out"
                )
            seen[key] = str(run.path)
            tasks.append((str(run.path), gene))
    if wanted is not None:
        missing = sorted(wanted - {g for _, g in tasks})
        if missing:
            raise InputError(
                f"no finished run under {args.runs} has gene(s) {', '.join(missing[:5])}"
            )
    if args.background is not None and args.background not in known:
        raise InputError(f"--background {args.background} is not a sample of {args.dataset}")
    loaded: dict[str, tuple] = {}

    def table(task: tuple[str, str]):
        run_dir, gene = task
        if run_dir not in loaded:
            loaded.clear()  # one model in memory at a time
            loaded[run_dir] = Variformer.load(run_dir)
        model, info = loaded[run_dir], infos[run_dir]
        return ism_table(
            model, ds, gene, fold=info["fold"], seq_len=info["seq_len"],
            background=args.background, method=args.method, batch_size=args.batch_size,
            device=args.device,
        )  # fmt: skip

    settings = {
        "runs": [str(Path(r).resolve()) for r, _ in tasks],
        "dataset": str(Path(args.dataset).resolve()),
        "background": args.background,
        "genes": [g for _, g in tasks],
    }
    result = write_ism_tsv(
        args.out, tasks, table, settings=settings, force=args.force, progress=args.progress
    )
    print(
        f"wrote {args.out}: {len(result)} SNVs of {len(tasks)} run gene(s) from {len(runs)} run(s)"
    )
    return 0
