"""``variformer slurm finetune``: write (and optionally submit) a SLURM array, one task per gene x fold.

``variformer slurm baselines``: one ``variformer baselines`` task per chunk of genes (all folds).
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from core.fileio import check_out_apart
from variformer.commands._args import add_gene_arguments, genes_from_args


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Sub-commands of ``variformer slurm``."""
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
        help="where the script, tasks.tsv and SLURM logs go (default: RUNS/slurm)",
    )
    p.add_argument(
        "--command",
        dest="task_command",  # not `command`: that is the CLI's subcommand attribute
        help="how a task runs variformer, as shell words (default: this Python by absolute "
        "path, `-m variformer.cli`)",
    )
    p.add_argument("--config", help="YAML config or preset name passed to every task")
    init = p.add_mutually_exclusive_group()
    init.add_argument("--pretrained", help="Enformer weights: hub id or local directory")
    init.add_argument("--random-init", action="store_true", help="start from random weights")
    p.add_argument("--job-name", default="variformer-finetune")
    p.add_argument("--partition")
    p.add_argument("--time", help="time limit per task, e.g. 04:00:00")
    p.add_argument("--gpus", type=int, default=1, help="GPUs per task (default 1; >1 runs DDP)")
    p.add_argument("--cpus", type=int, help="CPUs per task")
    p.add_argument("--mem", help="memory per node, e.g. 64G")
    p.add_argument("--account")
    p.add_argument("--max-parallel", type=int, help="run at most this many tasks at once")
    p.add_argument(
        "--sbatch-option", action="append", default=[], help="extra #SBATCH option (repeatable)"
    )
    p.add_argument("--template", help="sbatch template (default: slurm/finetune_array.sbatch)")
    p.add_argument(
        "--submit", action="store_true", help="submit with sbatch (default: only write and print)"
    )
    p.add_argument(
        "overrides", nargs="*", metavar="KEY=VALUE", help="config overrides passed to every task"
    )
    _add_baselines_arguments(sub)


def main(args: argparse.Namespace) -> int:
    """Run ``variformer slurm finetune`` (or ``baselines``); returns the exit status."""
    # --out is a root the tasks accumulate runs in, as for finetune and baselines: only the
    # dataset must stay apart from it (and from the job directory)
    check_out_apart(args.out, {"--dataset": args.dataset})
    if args.job_dir:
        check_out_apart(args.job_dir, {"--dataset": args.dataset}, flag="--job-dir")
    if args.slurm_command == "baselines":
        return _main_baselines(args)
    from variformer.config import load_config, resolve_config_path
    from variformer.slurm import write_finetune_array

    genes = genes_from_args(args)
    load_config(args.config, overrides=args.overrides)  # fail now, not in every task
    finetune_args: list[str] = []
    if args.config:
        finetune_args += ["--config", str(resolve_config_path(args.config).resolve())]
    if args.pretrained:
        pretrained = Path(args.pretrained)
        finetune_args += [
            "--pretrained",
            str(pretrained.resolve()) if pretrained.exists() else args.pretrained,
        ]
    if args.random_init:
        finetune_args.append("--random-init")
    finetune_args += list(args.overrides)
    job = write_finetune_array(
        args.job_dir or Path(args.out) / "slurm",
        runs=args.out,
        dataset=args.dataset,
        genes=genes,
        folds=args.folds,
        command=shlex.split(args.task_command) if args.task_command else None,
        finetune_args=finetune_args,
        job_name=args.job_name,
        partition=args.partition,
        time=args.time,
        gpus=args.gpus,
        cpus=args.cpus,
        mem=args.mem,
        account=args.account,
        max_parallel=args.max_parallel,
        sbatch_options=args.sbatch_option,
        template=args.template,
    )
    return _print_job(job, submit_now=args.submit)


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
        "--job-dir", help="where the script, tasks.tsv and SLURM logs go (default: BL/slurm)"
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
    p.add_argument("--job-name", default="variformer-baselines")
    p.add_argument("--partition")
    p.add_argument("--time", help="time limit per task, e.g. 01:00:00")
    p.add_argument("--cpus", type=int, default=4, help="CPUs per task = genes fitted at once (4)")
    p.add_argument("--mem", help="memory per node, e.g. 16G")
    p.add_argument("--account")
    p.add_argument("--max-parallel", type=int, help="run at most this many tasks at once")
    p.add_argument(
        "--sbatch-option", action="append", default=[], help="extra #SBATCH option (repeatable)"
    )
    p.add_argument("--template", help="sbatch template (default: slurm/baselines_array.sbatch)")
    p.add_argument(
        "--submit", action="store_true", help="submit with sbatch (default: only write and print)"
    )


def _main_baselines(args: argparse.Namespace) -> int:
    from baselines.elastic_net import check_linear_options
    from variformer.slurm import write_baselines_array

    # refused here, not in every array task
    check_linear_options(model=args.model, l1_ratio=args.l1_ratio, cv=args.cv)
    extra: list[str] = []
    for flag, value in (
        ("--l1-ratio", args.l1_ratio),
        ("--cv", args.cv),
        ("--seed", args.seed),
        ("--path-patience", args.path_patience),
    ):
        if value is not None:
            extra += [flag, str(value)]
    job = write_baselines_array(
        args.job_dir or Path(args.out) / "slurm",
        baselines=args.out,
        dataset=args.dataset,
        genes=genes_from_args(args),
        folds=args.folds,
        model=args.model,
        genes_per_task=args.genes_per_task,
        command=shlex.split(args.task_command) if args.task_command else None,
        baselines_args=extra,
        job_name=args.job_name,
        partition=args.partition,
        time=args.time,
        cpus=args.cpus,
        mem=args.mem,
        account=args.account,
        max_parallel=args.max_parallel,
        sbatch_options=args.sbatch_option,
        template=args.template,
    )
    return _print_job(job, submit_now=args.submit)


def _print_job(job, *, submit_now: bool) -> int:
    """Print the written script and where it is; submit it with ``--submit``."""
    from variformer.slurm import submit

    print(job.text, end="")
    print(f"# wrote {job.script} and {job.tasks} ({job.n_tasks} tasks)")
    if submit_now:
        print(submit(job.script))
    else:
        print(f"# submit with: sbatch {job.script}   (or re-run with --submit)")
    return 0
