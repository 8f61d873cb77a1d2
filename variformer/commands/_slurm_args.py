"""Options shared by the ``variformer slurm`` sub-commands, so each means one thing everywhere:
the resources of a task, ``--submit/--parsable/--force``, and how a fine-tuning task runs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from variformer.slurm_cluster import Resources

RESOURCE_KEYS = ("partition", "account", "qos", "time", "mem", "cpus", "gpus", "max_parallel")


def add_resource_arguments(
    parser: argparse.ArgumentParser,
    *,
    gpus_help: str = "GPUs per task (default 0: CPU)",
    cpus_help: str = "CPUs per task (default: all of a node's, or its share per GPU, from sinfo)",
) -> None:
    """``--partition --account --qos --time --mem --cpus --gpus --max-parallel --sbatch``."""
    parser.add_argument("--partition", help="partition (default: the cluster's default)")
    parser.add_argument("--account", help="account to charge")
    parser.add_argument("--qos", help="quality of service")
    parser.add_argument("--time", help="time limit per task, e.g. 04:00:00")
    parser.add_argument("--mem", help="memory per node, e.g. 64G (default: the cluster's)")
    parser.add_argument("--cpus", type=int, help=cpus_help)
    parser.add_argument("--gpus", type=int, default=0, help=gpus_help)
    parser.add_argument("--max-parallel", type=int, help="run at most this many tasks at once")
    parser.add_argument(
        "--sbatch",
        "--sbatch-option",
        dest="sbatch",
        action="append",
        default=[],
        metavar="OPTION",
        help="a further sbatch option, e.g. --sbatch=--constraint=a100 or --sbatch "
        "constraint=a100 (repeatable)",
    )


def resources_from_args(args: argparse.Namespace) -> Resources:
    """The :class:`Resources` of :func:`add_resource_arguments` options."""
    return Resources(
        **{k: getattr(args, k) for k in RESOURCE_KEYS}, sbatch=tuple(args.sbatch)
    ).check()


def add_submit_arguments(parser: argparse.ArgumentParser, *, what: str) -> None:
    """``--submit``, ``--parsable`` and ``--force``."""
    parser.add_argument(
        "--submit",
        action="store_true",
        help="submit with sbatch, after `sbatch --test-only` checks that the request fits a "
        "node (default: only write and print)",
    )
    parser.add_argument(
        "--parsable", action="store_true", help="with --submit: print only the job id"
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help=f"{what} made from other inputs (config, dataset) are moved into the submission "
        "directory and made again (default: refused, naming what differs)",
    )


def add_finetune_model_arguments(parser: argparse.ArgumentParser) -> None:
    """``--command``, ``--config`` and ``--pretrained`` / ``--random-init`` of the tasks."""
    parser.add_argument(
        "--command",
        dest="task_command",  # not `command`: that is the CLI's subcommand attribute
        help="how a task runs variformer, as shell words (default: this Python by absolute "
        "path, `-m variformer.cli`)",
    )
    parser.add_argument("--config", help="YAML config or preset name passed to every task")
    init = parser.add_mutually_exclusive_group()
    init.add_argument("--pretrained", help="Enformer weights: hub id or local directory")
    init.add_argument("--random-init", action="store_true", help="start from random weights")


def finetune_task_args(args: argparse.Namespace) -> tuple[list[str], str | None]:
    """The ``variformer finetune`` arguments of every task (config and weights by absolute
    path, then the overrides) and the ``--pretrained`` value they carry."""
    from variformer.config import resolve_config_path

    out: list[str] = []
    if args.config:
        out += ["--config", str(resolve_config_path(args.config).resolve())]
    pretrained = None
    if args.pretrained:
        given = Path(args.pretrained)
        pretrained = str(given.resolve()) if given.exists() else args.pretrained
        out += ["--pretrained", pretrained]
    if args.random_init:
        out.append("--random-init")
    return out + list(args.overrides), pretrained


def print_job(job, args: argparse.Namespace, *, stale=()) -> int:
    """Print the written script and where it is (or, ``--parsable``, only the job id); with
    ``--submit`` check that it fits a node, move the ``stale`` runs (:mod:`variformer.slurm_inputs`,
    allowed by ``--force``) into the submission directory, and submit it."""
    from variformer.slurm import check_fits, submit
    from variformer.slurm_inputs import set_aside

    if args.submit:
        check_fits(job)
    moved = set_aside(stale, job.directory / ".replaced")
    note = sys.stderr if args.parsable else sys.stdout
    if not args.parsable:
        print(job.text, end="")
        print(f"# wrote {job.script} and {job.tasks} ({job.n_tasks} tasks)")
    if moved:
        where = job.directory / ".replaced"
        print(f"# moved {len(moved)} run(s) made from other inputs to {where}", file=note)
    if not args.submit:
        print(f"# submit with: sbatch {job.script}   (or re-run with --submit)")
        return 0
    job_id = submit(job, test=False)  # checked above, before anything was moved
    if args.parsable:
        print(job_id)
    else:
        print(f"Submitted batch job {job_id} (submission {job.directory})")
    return 0
