"""``variformer demo``: the whole pipeline on the embedded simulated cohort (:func:`variformer.demo.run_demo`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from variformer.commands._args import add_progress_argument


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``variformer demo``."""
    p.add_argument("--out", default="demo_out", help="output directory (default demo_out)")
    p.add_argument(
        "--people", type=int, default=300, help="people in the simulated cohort (default 300)"
    )
    p.add_argument(
        "--genes",
        type=int,
        default=5,
        metavar="N",
        help="number of genes to simulate (default 5), as `variformer simulate --genes`",
    )
    p.add_argument(
        "--seq-len",
        type=int,
        default=4096,
        help="window length (default 4096: the tiny CPU model trains in minutes; the paper uses 49152)",
    )
    p.add_argument(
        "--gene",
        default="BTNL3",
        help="gene to fine-tune (default BTNL3, the highest-h2 demo gene)",
    )
    p.add_argument(
        "--fold",
        type=int,
        default=0,
        help="cross-validation fold whose test people are reported (default 0)",
    )
    p.add_argument(
        "--config", help="training config file or preset (default: tiny, a CPU-sized model)"
    )
    p.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the simulation, the splits and training (default 0; same seed, same files)",
    )
    p.add_argument("--no-finetune", action="store_true", help="stop after the baselines")
    p.add_argument("--force", action="store_true", help="reuse an existing --out directory")
    add_progress_argument(p)
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="training config overrides")


def main(args: argparse.Namespace) -> int:
    """Run ``variformer demo``; returns the exit status."""
    from variformer.demo import run_demo

    table = run_demo(
        args.out,
        people=args.people,
        genes=args.genes,
        seq_len=args.seq_len,
        gene=args.gene,
        fold=args.fold,
        config=args.config,
        overrides=tuple(args.overrides),
        seed=args.seed,
        force=args.force,
        finetune_model=not args.no_finetune,
        progress=args.progress,
    )
    print("\nheld-out people (test split), simulated truth h2 beside each model:")
    print(table.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    print(f"\nwrote {Path(args.out) / 'demo_summary.tsv'}")
    return 0
