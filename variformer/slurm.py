"""``variformer slurm finetune``: a SLURM job array with one task per gene x fold.

Writes ``<out>/tasks.tsv`` (header ``gene<TAB>fold``, then one task per line; array task ``i``
is data line ``i``) and ``<out>/finetune_array.sbatch`` filled in from the template
``slurm/finetune_array.sbatch``, prints the script, and submits it with ``sbatch`` only when
asked (``--submit``). Each task runs ``variformer finetune`` for its gene and fold; the command
is ``${VARIFORMER:-variformer}`` (and the launcher ``${VARIFORMER_LAUNCH-srun}``), so the script
can be tried without SLURM.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from variformer.errors import InputError

TEMPLATE_NAME = "finetune_array.sbatch"


class SlurmJob(NamedTuple):
    """Files written by :func:`write_finetune_array`."""

    script: Path
    tasks: Path
    n_tasks: int
    text: str


def template_path() -> Path:
    """The sbatch template: the source tree's ``slurm/`` or a copy installed with the package."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "slurm" / TEMPLATE_NAME, here / "templates" / TEMPLATE_NAME):
        if candidate.is_file():
            return candidate
    raise InputError(
        f"sbatch template {TEMPLATE_NAME} not found next to the package; pass --template PATH"
    )


def write_finetune_array(
    out: str | Path,
    *,
    dataset: str | Path,
    genes: Sequence[str],
    folds: Sequence[int],
    runs: str | Path = "runs",
    finetune_args: Sequence[str] = (),
    job_name: str = "variformer-finetune",
    partition: str | None = None,
    time: str | None = None,
    gpus: int = 1,
    cpus: int | None = None,
    mem: str | None = None,
    account: str | None = None,
    max_parallel: int | None = None,
    sbatch_options: Sequence[str] = (),
    template: str | Path | None = None,
) -> SlurmJob:
    """Write ``tasks.tsv`` and ``finetune_array.sbatch`` into ``out``.

    Parameters
    ----------
    out : str or Path
        Job directory (created); SLURM logs go to ``out/logs``.
    dataset : str or Path
        Dataset directory passed to every task.
    genes, folds : sequence
        One task per gene x fold, gene-major.
    runs : str or Path
        ``--out`` of ``variformer finetune`` (run directories).
    finetune_args : sequence of str
        More arguments for ``variformer finetune`` (``--config``, overrides, ...).
    partition, time, gpus, cpus, mem, account : optional
        ``#SBATCH`` resources (``--gpus`` > 1 runs DDP with one task per GPU).
    max_parallel : int, optional
        At most this many array tasks at once (``--array=0-N%max_parallel``).
    sbatch_options : sequence of str
        Further ``#SBATCH`` options, e.g. ``--qos=long``.
    template : str or Path, optional
        Template to fill (default :func:`template_path`).

    Returns
    -------
    SlurmJob
    """
    genes = list(dict.fromkeys(genes))
    if not genes:
        raise InputError("no genes given; pass --genes-file or --genes")
    if not folds:
        raise InputError("no folds given; pass --folds 0 1 2")
    bad = [g for g in genes if not g or any(c.isspace() for c in g)]
    if bad:
        raise InputError(f"gene names must not contain whitespace: {bad[0]!r}")
    if gpus < 0:
        raise InputError(f"--gpus must be >= 0, got {gpus}")
    out = Path(out)
    (out / "logs").mkdir(parents=True, exist_ok=True)
    tasks = [(g, int(k)) for g in genes for k in folds]

    options = []
    for flag, value in (
        ("partition", partition),
        ("time", time),
        ("cpus-per-task", cpus),
        ("mem", mem),
        ("account", account),
    ):
        if value is not None:
            options.append(f"#SBATCH --{flag}={value}")
    if gpus:
        options.append(f"#SBATCH --gpus-per-node={gpus}")
    options += [f"#SBATCH {opt}" for opt in sbatch_options]
    extra = list(finetune_args)
    if gpus > 1:
        extra += ["--devices", str(gpus), "--strategy", "ddp"]

    tasks_path = (out / "tasks.tsv").resolve()
    fill = {
        "JOB_NAME": job_name,
        "LAST_TASK": str(len(tasks) - 1),
        "ARRAY_LIMIT": f"%{max_parallel}" if max_parallel else "",
        "LOG_DIR": str((out / "logs").resolve()),
        "NTASKS": str(max(gpus, 1)),
        "SBATCH_OPTIONS": "\n".join(options),
        "TASKS": shlex.quote(str(tasks_path)),
        "DATASET": shlex.quote(str(Path(dataset).resolve())),
        "RUNS": shlex.quote(str(Path(runs).resolve())),
        "EXTRA_ARGS": " ".join(shlex.quote(a) for a in extra),
    }
    text = Path(template or template_path()).read_text()
    for key, value in fill.items():
        text = text.replace("{{" + key + "}}", value)

    _write_atomic(tasks_path, "gene\tfold\n" + "".join(f"{g}\t{k}\n" for g, k in tasks))
    script = out / TEMPLATE_NAME
    _write_atomic(script, text)
    script.chmod(0o755)
    return SlurmJob(script, tasks_path, len(tasks), text)


def submit(script: str | Path) -> str:
    """Submit ``script`` with ``sbatch``; returns sbatch's output (the job id line)."""
    sbatch = shutil.which("sbatch")
    if sbatch is None:
        raise InputError(
            "sbatch is not on PATH: run this on a SLURM login node, or submit the written script there"
        )
    done = subprocess.run([sbatch, str(script)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        message = (done.stderr or done.stdout).strip().splitlines()
        raise InputError(
            f"sbatch failed with status {done.returncode}: {message[-1] if message else 'no output'}"
        )
    return done.stdout.strip()


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text)
    tmp.replace(path)


# ---------------------------------------------------------------- command line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Sub-commands of ``variformer slurm``."""
    sub = parser.add_subparsers(dest="slurm_command", metavar="WHAT", required=True)
    p = sub.add_parser("finetune", help="array job: one `variformer finetune` per gene x fold")
    p.add_argument(
        "--dataset", required=True, help="dataset directory written by `variformer prep`"
    )
    genes = p.add_mutually_exclusive_group(required=True)
    genes.add_argument("--genes-file", help="genes, one per line")
    genes.add_argument("--genes", nargs="+", help="genes")
    p.add_argument("--folds", nargs="+", type=int, default=[0, 1, 2], help="folds (default: 0 1 2)")
    p.add_argument(
        "--out", default="jobs", help="job directory for the script, tasks and logs (default: jobs)"
    )
    p.add_argument(
        "--runs", default="runs", help="where the tasks write run directories (default: runs)"
    )
    p.add_argument("--config", help="YAML config passed to every task")
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


def main(args: argparse.Namespace) -> int:
    """Run ``variformer slurm finetune``; returns the exit status."""
    from data_prep.listfile import read_list
    from variformer.config import load_config

    genes = read_list(args.genes_file, what="genes") if args.genes_file else list(args.genes)
    load_config(args.config, overrides=args.overrides)  # fail now, not in every task
    finetune_args: list[str] = []
    if args.config:
        finetune_args += ["--config", str(Path(args.config).resolve())]
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
        args.out,
        dataset=args.dataset,
        genes=genes,
        folds=args.folds,
        runs=args.runs,
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
    print(job.text, end="")
    print(f"# wrote {job.script} and {job.tasks} ({job.n_tasks} tasks)")
    if args.submit:
        print(submit(job.script))
    else:
        print(f"# submit with: sbatch {job.script}   (or re-run with --submit)")
    return 0
