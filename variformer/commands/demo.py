"""``variformer demo``: the whole pipeline on the embedded simulated cohort (:func:`variformer.demo.run_demo`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from variformer.commands._args import add_fold_argument, add_progress_argument


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
        default=None,
        help="fine-tune only this gene (default: every simulated gene, one tiny model each)",
    )
    add_fold_argument(
        p,
        default=0,
        help="cross-validation fold the models are fine-tuned and reported on (default 0; "
        "the elastic nets run on all 3 folds)",
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
    p.add_argument(
        "--no-finetune",
        action="store_true",
        help="stop after the baselines (no fine-tuning, ISM, analysis or report)",
    )
    p.add_argument(
        "--haplotypes",
        action="store_true",
        help="simulate indels (phased VCF) and run the haplotype mode too (prep --haplotypes, "
        "baselines --indels, finetune, evaluate); the table then has both modes' rows",
    )
    p.add_argument("--force", action="store_true", help="reuse an existing --out directory")
    add_progress_argument(p)
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="training config overrides")


def main(args: argparse.Namespace) -> int:
    """Run ``variformer demo``; returns the exit status."""
    from core.fileio import check_out_apart
    from variformer.demo import StepFailed, run_demo

    check_out_apart(args.out, {"--config": args.config})  # a preset name is no path: skipped
    try:
        table = _run(args, run_demo)
    except StepFailed as err:  # the step printed its own one-line error
        return err.returncode
    out = Path(args.out)
    print(
        f"\nsimulated cohort, tiny CPU model: test people of fold {args.fold}; h2 is the simulated "
        "truth, auroc_<model> ranks the true causal SNVs among each gene's SNVs"
    )
    if args.haplotypes:
        print(
            "mode snv: `prep` (indels dropped) and elastic nets on SNVs; mode haplotypes: `prep "
            "--haplotypes` (both haplotypes, indels applied) and `baselines --indels`"
        )
    print(table.to_string(index=False, float_format=lambda x: f"{x:.3f}", na_rep="-"))
    print(f"\nwrote {out / 'demo_summary.tsv'}")
    if (out / "report" / "index.html").is_file():
        print(f"report: {(out / 'report' / 'index.html').resolve()}")
    return 0


def _run(args: argparse.Namespace, run_demo):
    return run_demo(
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
        haplotypes=args.haplotypes,
    )
