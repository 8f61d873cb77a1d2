"""``variformer slurm``: SLURM arrays and chains, and what became of their tasks.

- ``slurm finetune``: an array, one ``variformer finetune`` task per gene x fold;
- ``slurm baselines``: one ``variformer baselines`` task per chunk of genes (all folds);
- ``slurm all``: baselines -> select-genes -> finetune -> evaluate -> ism -> analyze -> report,
  each stage a job waiting for the ones it reads (``--dependency=afterok``);
- ``slurm status JOB_DIR``: one line per task (done / running / failed / missing) and counts;
- ``slurm resubmit-failed JOB_DIR``: an array of just the failed and missing tasks.

Every write is a new submission directory in the job directory (see :mod:`variformer.slurm`).
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from core.errors import InputError
from core.fileio import check_out_apart
from variformer.commands._args import add_gene_arguments, genes_from_args
from variformer.commands._slurm_args import (
    add_finetune_model_arguments,
    add_resource_arguments,
    add_submit_arguments,
    finetune_task_args,
    print_job,
    resources_from_args,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Sub-commands of ``variformer slurm``."""
    from variformer.commands import slurm_all

    sub = parser.add_subparsers(dest="slurm_command", metavar="WHAT", required=True)
    p = sub.add_parser("finetune", help="array job: one `variformer finetune` per gene x fold")
    p.add_argument(
        "--dataset", required=True, help="dataset directory written by `variformer prep`"
    )
    add_gene_arguments(p, what="genes (one task per gene and fold)")
    p.add_argument("--folds", nargs="+", type=int, default=[0, 1, 2], help="folds (default: 0 1 2)")
    p.add_argument(
        "--out",
        default="runs",
        metavar="RUNS",
        help="runs root the tasks write into, as `finetune --out` (default: runs)",
    )
    p.add_argument(
        "--job-dir",
        help="job directory: each call adds a submission (script, tasks.tsv, logs) to it "
        "(default: RUNS/slurm)",
    )
    add_finetune_model_arguments(p)
    p.add_argument("--job-name", default="variformer-finetune")
    add_resource_arguments(p, gpus_help="GPUs per task (default 0: CPU; >1 runs DDP)")
    p.add_argument("--template", help="sbatch template (default: slurm/finetune_array.sbatch)")
    add_submit_arguments(p, what="runs")
    p.add_argument(
        "overrides", nargs="*", metavar="KEY=VALUE", help="config overrides passed to every task"
    )
    _add_baselines_arguments(sub)
    slurm_all.add_arguments(
        sub.add_parser(
            "all",
            help="the whole workflow as a chain of jobs: baselines -> select-genes -> finetune "
            "-> evaluate -> ism -> analyze -> report",
        )
    )
    s = sub.add_parser("status", help="one line per task: done / running / failed / missing")
    s.add_argument("job_dir", metavar="JOB_DIR", help="the job directory (--job-dir)")
    s.add_argument("--state", choices=("done", "running", "failed", "missing"), nargs="+",
                   help="show only tasks in these states (the counts cover all)")  # fmt: skip
    r = sub.add_parser(
        "resubmit-failed", help="submit an array of just the failed and missing tasks"
    )
    r.add_argument("job_dir", metavar="JOB_DIR", help="the job directory (--job-dir)")
    r.add_argument(
        "--dry-run", action="store_true", help="say what would be resubmitted; submit nothing"
    )
    r.add_argument("--parsable", action="store_true", help="print only the new job ids")


def main(args: argparse.Namespace) -> int:
    """Run ``variformer slurm ...``; returns the exit status."""
    if args.slurm_command == "status":
        return _main_status(args)
    if args.slurm_command == "resubmit-failed":
        return _main_resubmit(args)
    if args.slurm_command == "all":
        from variformer.commands import slurm_all

        return slurm_all.main(args)
    # --out is a root the tasks accumulate runs in, as for finetune and baselines: only the
    # dataset must stay apart from it (and from the job directory)
    check_out_apart(args.out, {"--dataset": args.dataset})
    if args.job_dir:
        check_out_apart(args.job_dir, {"--dataset": args.dataset}, flag="--job-dir")
    if args.parsable and not args.submit:
        raise InputError("--parsable prints the job id of a submission: add --submit")
    if args.slurm_command == "baselines":
        return _main_baselines(args)
    from variformer import slurm_inputs
    from variformer.slurm import write_finetune_array

    genes = genes_from_args(args)
    finetune_args, pretrained = finetune_task_args(args)
    config = slurm_inputs.task_config(
        args.config, args.overrides, pretrained=pretrained, random_init=args.random_init
    )  # fails now on a bad config, not in every task
    tasks = [(g, int(k)) for g in genes for k in args.folds]
    stale = slurm_inputs.stale_finetune_runs(args.out, args.dataset, tasks, config)
    slurm_inputs.refuse_stale(stale, force=args.force)
    job = write_finetune_array(
        args.job_dir or Path(args.out) / "slurm",
        runs=args.out,
        dataset=args.dataset,
        tasks=tasks,
        command=shlex.split(args.task_command) if args.task_command else None,
        finetune_args=finetune_args,
        job_name=args.job_name,
        resources=resources_from_args(args),
        template=args.template,
    )
    return print_job(job, args, stale=stale)


def _add_baselines_arguments(sub) -> None:
    p = sub.add_parser(
        "baselines", help="array job: `variformer baselines` over chunks of genes (all folds)"
    )
    p.add_argument(
        "--dataset", required=True, help="dataset directory written by `variformer prep`"
    )
    add_gene_arguments(p, what="genes (chunks of --genes-per-task per task)")
    p.add_argument("--folds", nargs="+", type=int, default=[0, 1, 2], help="folds (default: 0 1 2)")
    p.add_argument("--model", default="elastic_net", choices=("elastic_net", "lasso", "ridge"))
    p.add_argument(
        "--genes-per-task", type=int, default=50, help="genes per array task (default 50)"
    )
    p.add_argument(
        "--out",
        default="baselines",
        metavar="BL",
        help="baselines directory the tasks write into, as `baselines --out` (default: baselines)",
    )
    p.add_argument(
        "--job-dir",
        help="job directory: each call adds a submission (script, tasks.tsv, logs) to it "
        "(default: BL/slurm)",
    )
    p.add_argument(
        "--command",
        dest="task_command",  # not `command`: that is the CLI's subcommand attribute
        help="how a task runs variformer, as shell words (default: this Python by absolute "
        "path, `-m variformer.cli`)",
    )
    p.add_argument("--l1-ratio", type=float, help="elastic-net mixing passed to every task")
    p.add_argument("--cv", type=int, help="inner CV folds passed to every task")
    p.add_argument("--seed", type=int, help="inner CV seed passed to every task")
    p.add_argument(
        "--path-patience", type=int, metavar="N", help="`baselines --path-patience` of every task"
    )
    p.add_argument(
        "--all-people",
        action="store_true",
        help="`baselines --all-people` in every task: also fit each gene on all people",
    )
    p.add_argument(
        "--indels",
        action="store_true",
        help="`baselines --indels` in every task: on a haplotype dataset (`prep --haplotypes`) "
        "every allele overlapping the window is a dosage column (indels and MNPs too)",
    )
    p.add_argument("--job-name", default="variformer-baselines")
    add_resource_arguments(
        p, gpus_help=argparse.SUPPRESS, cpus_help="CPUs per task = genes fitted at once "
        "(default: all of a node's, from sinfo)",
    )  # fmt: skip
    p.add_argument("--template", help="sbatch template (default: slurm/baselines_array.sbatch)")
    add_submit_arguments(p, what="fits")


def _main_baselines(args: argparse.Namespace) -> int:
    from baselines.elastic_net import check_linear_options
    from baselines.run import check_indels, fit_options
    from data_prep import open_dataset
    from variformer import slurm_inputs
    from variformer.slurm import write_baselines_array

    # refused here, not in every array task
    check_linear_options(model=args.model, l1_ratio=args.l1_ratio, cv=args.cv)
    if args.indels:
        check_indels(open_dataset(args.dataset), True)
    extra: list[str] = []
    given = {}
    for flag, key, value in (
        ("--l1-ratio", "l1_ratio", args.l1_ratio),
        ("--cv", "cv", args.cv),
        ("--seed", "seed", args.seed),
        ("--path-patience", "patience", args.path_patience),
    ):
        if value is not None:
            extra += [flag, str(value)]
            given[key] = value
    if args.all_people:
        extra.append("--all-people")
    if args.indels:
        extra.append("--indels")
    genes = genes_from_args(args)
    stale = slurm_inputs.stale_baseline_fits(
        args.out, args.dataset, genes, args.folds,
        fit_options(args.model, **given, indels=args.indels),
        all_people=args.all_people,
    )  # fmt: skip
    slurm_inputs.refuse_stale(stale, force=args.force)
    job = write_baselines_array(
        args.job_dir or Path(args.out) / "slurm",
        baselines=args.out,
        dataset=args.dataset,
        genes=genes,
        folds=args.folds,
        model=args.model,
        genes_per_task=args.genes_per_task,
        command=shlex.split(args.task_command) if args.task_command else None,
        baselines_args=extra,
        job_name=args.job_name,
        resources=resources_from_args(args),
        template=args.template,
    )
    return print_job(job, args, stale=stale)


def _main_status(args: argparse.Namespace) -> int:
    from variformer.slurm_status import count_states, job_status

    states = job_status(args.job_dir)
    shown = [s for s in states if not args.state or s.state in args.state]
    rows = [("what", "gene", "fold", "state", "detail")]
    rows += [(s.what, s.gene, s.fold, s.state, s.detail) for s in shown]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)) + "  " + row[4])
    counts = count_states(states)
    print(f"{len(states)} tasks: " + ", ".join(f"{n} {state}" for state, n in counts.items()))
    return 0


def _main_resubmit(args: argparse.Namespace) -> int:
    from variformer.slurm_chain import resubmit_failed

    done = resubmit_failed(args.job_dir, dry_run=args.dry_run)
    if not done and not args.parsable:
        print(f"nothing to resubmit: no failed or missing tasks in {args.job_dir}")
    for what, job_id in done.items():
        if args.parsable:
            print(job_id)
        elif args.dry_run:
            print(f"would resubmit {what}")
        else:
            print(f"resubmitted {what} as job {job_id}")
    return 0
