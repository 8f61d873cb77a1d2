"""``variformer finetune``: fine-tune Enformer on personal genomes (:func:`variformer.finetune.finetune`)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from variformer.commands._args import (
    add_fold_argument,
    add_gene_arguments,
    add_progress_argument,
    genes_from_args,
    parse_devices,
)
from variformer.config import ENFORMER_HUB_ID

DESCRIPTION = (
    "Fine-tune Enformer on the personal genomes of one cross-validation fold. By default it "
    f"uses the paper's settings and downloads the pre-trained Enformer ({ENFORMER_HUB_ID}, "
    "about 1 GB) from the Hugging Face hub, which needs a GPU to train in reasonable time; "
    "`--config tiny` is the CPU preset (a small randomly initialised model)."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``variformer finetune``."""
    parser.description = DESCRIPTION
    parser.add_argument(
        "--dataset", required=True, help="dataset directory written by `variformer prep`"
    )
    add_gene_arguments(parser, what="train genes (several: one multi-gene model)")
    add_fold_argument(parser, required=True)
    parser.add_argument(
        "--config",
        help="YAML config file, or a preset name: `tiny` (CPU preset), `default` "
        "(the paper's settings; the default)",
    )
    init = parser.add_mutually_exclusive_group()
    init.add_argument(
        "--pretrained",
        help=f"Enformer weights: hub id or local directory (default {ENFORMER_HUB_ID})",
    )
    init.add_argument("--random-init", action="store_true", help="start from random weights")
    parser.add_argument(
        "--tune-genes-file", help="held-out genes monitored by PCC on the tune people"
    )
    parser.add_argument(
        "--out",
        default="runs",
        metavar="RUNS",
        help="runs root; the run is RUNS/<gene or name>/fold<k> (default: runs)",
    )
    parser.add_argument(
        "--name", help="run name for a gene set (default: the genes file's stem, or a hash)"
    )
    parser.add_argument("--accelerator", default="auto", help="auto, cpu or gpu")
    parser.add_argument(
        "--devices", default="auto", type=parse_devices, help="number of devices, ids, or auto"
    )
    parser.add_argument(
        "--strategy", default="auto", help="auto, ddp (find unused parameters), ddp_spawn, ..."
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="start the run again from scratch: replace a finished run, or an interrupted one "
        "instead of resuming it",
    )
    parser.add_argument(
        "--skip-finished",
        action="store_true",
        help="a finished run made from the same dataset, genes, fold and config is done: "
        "print so and exit 0 (one made from other inputs is refused); for SLURM array tasks",
    )
    add_progress_argument(parser)
    parser.add_argument(
        "overrides",
        nargs="*",
        metavar="KEY=VALUE",
        help="config overrides, e.g. training.learning_rate=1e-4",
    )


def main(args: argparse.Namespace) -> int:
    """Run ``variformer finetune``; returns the exit status."""
    from core.fileio import check_out_apart
    from data_prep.listfile import read_list
    from variformer.config import load_config
    from variformer.finetune import finetune
    from variformer.interrupts import TrainingInterrupted

    # --out is a runs root that accumulates runs (and may hold genes files, configs): only
    # the dataset must stay apart from it
    check_out_apart(args.out, {"--dataset": args.dataset})
    overrides = list(args.overrides)
    if args.tune_genes_file:
        tune = read_list(args.tune_genes_file, what="tune genes")
        overrides.append(f"data.tune_genes={json.dumps(tune)}")
    config = load_config(args.config, overrides=overrides)
    genes = genes_from_args(args)
    name = args.name or (Path(args.genes_file).stem if args.genes_file else None)
    try:
        result = finetune(
            args.dataset,
            genes=genes,
            fold=args.fold,
            config=config,
            out=args.out,
            name=name,
            pretrained=args.pretrained,
            random_init=args.random_init,
            accelerator=args.accelerator,
            devices=args.devices,
            strategy=args.strategy,
            force=args.force,
            skip_finished=args.skip_finished,
            progress=args.progress,
        )
    except TrainingInterrupted as err:
        print(f"variformer finetune: {err}", file=sys.stderr)
        return err.exit_code
    if result.skipped:
        print(f"{result.run_dir} is finished, from the same inputs; nothing to do")
        return 0
    if result.summary:
        s = result.summary
        print(
            f"{result.run_dir}: test R2 {s['test_r2_mean']:.3f}, PCC {s['test_pcc_mean']:.3f} "
            f"({len(s['genes'])} gene(s), {s['epochs']} epochs, {s['wall_time_s']:.0f} s"
            f"{', haplotype mode' if s.get('haplotypes') else ''})"
        )
    return 0
