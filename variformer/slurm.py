"""SLURM job arrays with one ``variformer finetune`` task per gene x fold.

(:func:`write_baselines_array`: one ``variformer baselines`` task per chunk of genes, every
fold, the task's CPUs fitting genes in parallel.)

:func:`write_finetune_array` checks the dataset, genes and folds, then writes
``<job_dir>/tasks.tsv`` (header ``gene<TAB>fold``, then one task per line; array task ``i`` is
data line ``i``) and ``<job_dir>/finetune_array.sbatch`` filled in from the template
``slurm/finetune_array.sbatch``; :func:`submit` hands it to ``sbatch``. Each task runs the
variformer that wrote the script, by absolute path (:func:`entry_point`; a batch job does not
see a virtual environment's ``PATH``); ``VARIFORMER="..."`` and the launcher
``VARIFORMER_LAUNCH`` (default ``srun``) override it at run time, so the script can be tried
without SLURM.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from core.errors import InputError
from core.fileio import atomic_write_text, check_writable_parent

TEMPLATE_NAME = "finetune_array.sbatch"


class SlurmJob(NamedTuple):
    """Files written by :func:`write_finetune_array`."""

    script: Path
    tasks: Path
    n_tasks: int
    text: str


def template_path(name: str = TEMPLATE_NAME) -> Path:
    """The sbatch template: the source tree's ``slurm/`` or a copy installed with the package."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "slurm" / name, here / "templates" / name):
        if candidate.is_file():
            return candidate
    raise InputError(f"sbatch template {name} not found next to the package; pass --template PATH")


def entry_point() -> list[str]:
    """The command that runs this variformer: the running interpreter (absolute, not resolved,
    so a virtual environment's ``python`` stays itself) with ``-m variformer.cli``."""
    return [str(Path(sys.executable).absolute()), "-m", "variformer.cli"]


def check_tasks(dataset: str | Path, genes: Sequence[str], folds: Sequence[int]) -> None:
    """Refuse tasks that would fail in the queue: a missing dataset, unknown genes, bad folds.

    Raises
    ------
    InputError
        With the first problem found.
    """
    from data_prep import open_dataset

    genes = list(genes)
    if not genes:
        raise InputError("no genes given; pass --gene, --genes or --genes-file")
    if not folds:
        raise InputError("no folds given; pass --folds 0 1 2")
    bad = [g for g in genes if not g or any(c.isspace() for c in g)]
    if bad:
        raise InputError(f"gene names must not contain whitespace: {bad[0]!r}")
    ds = open_dataset(dataset)
    unknown = [g for g in genes if g not in set(ds.genes)]
    if unknown:
        raise InputError(
            f"{len(unknown)} gene(s) not in the dataset {dataset} (first: {unknown[0]}); "
            "check the gene list"
        )
    wrong = [k for k in folds if not 0 <= int(k) < ds.n_folds]
    if wrong:
        raise InputError(
            f"fold {wrong[0]} does not exist; the dataset has folds 0..{ds.n_folds - 1}"
        )
    if not ds.has_expression:
        raise InputError(
            f"the dataset {dataset} has no expression targets; prepare it with expression to fine-tune"
        )


def write_finetune_array(
    job_dir: str | Path,
    *,
    runs: str | Path,
    dataset: str | Path,
    genes: Sequence[str],
    folds: Sequence[int],
    command: Sequence[str] | None = None,
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
    """Check the tasks (:func:`check_tasks`), then write ``tasks.tsv`` and the sbatch script.

    Parameters
    ----------
    job_dir : str or Path
        Job directory (created): the script, ``tasks.tsv`` and SLURM logs (``job_dir/logs``).
    runs : str or Path
        The runs root, ``--out`` of every ``variformer finetune`` task.
    dataset : str or Path
        Dataset directory passed to every task.
    genes, folds : sequence
        One task per gene x fold, gene-major.
    command : sequence of str, optional
        How a task runs variformer (default :func:`entry_point`).
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
    if gpus < 0:
        raise InputError(f"--gpus must be >= 0, got {gpus}")
    check_tasks(dataset, genes, folds)
    text_template = Path(template or template_path()).read_text()
    out = Path(job_dir)
    check_writable_parent(out / "logs")
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
        "COMMAND": " ".join(shlex.quote(a) for a in (command or entry_point())),
        "EXTRA_ARGS": " ".join(shlex.quote(a) for a in extra),
    }
    text = text_template
    for key, value in fill.items():
        text = text.replace("{{" + key + "}}", value)

    atomic_write_text(tasks_path, "gene\tfold\n" + "".join(f"{g}\t{k}\n" for g, k in tasks))
    script = out / TEMPLATE_NAME
    atomic_write_text(script, text)
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


# ---------------------------------------------------------------- baselines arrays

BASELINES_TEMPLATE = "baselines_array.sbatch"


def write_baselines_array(
    job_dir: str | Path,
    *,
    baselines: str | Path,
    dataset: str | Path,
    genes: Sequence[str],
    folds: Sequence[int],
    model: str = "elastic_net",
    genes_per_task: int = 50,
    command: Sequence[str] | None = None,
    baselines_args: Sequence[str] = (),
    job_name: str = "variformer-baselines",
    partition: str | None = None,
    time: str | None = None,
    cpus: int | None = 4,
    mem: str | None = None,
    account: str | None = None,
    max_parallel: int | None = None,
    sbatch_options: Sequence[str] = (),
    template: str | Path | None = None,
) -> SlurmJob:
    """Check the tasks, then write ``tasks.tsv`` and ``baselines_array.sbatch`` into ``job_dir``.

    Parameters
    ----------
    job_dir : str or Path
        Job directory (created): the script, ``tasks.tsv`` and SLURM logs (``job_dir/logs``).
    baselines : str or Path
        The baselines directory BL, ``--out`` of every ``variformer baselines`` task.
    dataset : str or Path
    genes : sequence of str
        Split into consecutive chunks of ``genes_per_task``; one array task per chunk (line
        ``i`` of ``tasks.tsv`` after its header ``genes``: the chunk, space-separated).
    folds : sequence of int
        Every task fits these folds of its genes.
    model : {"elastic_net", "lasso", "ridge"}
    genes_per_task : int
    command : sequence of str, optional
        How a task runs variformer (default :func:`entry_point`).
    baselines_args : sequence of str
        More arguments for ``variformer baselines`` (``--l1-ratio``, ``--cv``, ...).
    cpus : int, optional
        CPUs per task; the task fits that many genes at once (``--jobs``).
    partition, time, mem, account, max_parallel, sbatch_options, template
        As for :func:`write_finetune_array`.

    Returns
    -------
    SlurmJob
    """
    from baselines.elastic_net import MODELS

    genes = list(dict.fromkeys(genes))
    if model not in MODELS:
        raise InputError(f"unknown linear model {model!r}; choose one of {', '.join(MODELS)}")
    if genes_per_task < 1:
        raise InputError(f"--genes-per-task must be >= 1, got {genes_per_task}")
    check_tasks(dataset, genes, folds)
    text = Path(template or template_path(BASELINES_TEMPLATE)).read_text()
    out = Path(job_dir)
    check_writable_parent(out / "logs")
    (out / "logs").mkdir(parents=True, exist_ok=True)
    chunks = [genes[i : i + genes_per_task] for i in range(0, len(genes), genes_per_task)]
    options = [
        f"#SBATCH --{flag}={value}"
        for flag, value in (
            ("partition", partition),
            ("time", time),
            ("cpus-per-task", cpus),
            ("mem", mem),
            ("account", account),
        )
        if value is not None
    ]
    options += [f"#SBATCH {opt}" for opt in sbatch_options]
    tasks_path = (out / "tasks.tsv").resolve()
    fill = {
        "JOB_NAME": job_name,
        "LAST_TASK": str(len(chunks) - 1),
        "ARRAY_LIMIT": f"%{max_parallel}" if max_parallel else "",
        "LOG_DIR": str((out / "logs").resolve()),
        "SBATCH_OPTIONS": "\n".join(options),
        "TASKS": shlex.quote(str(tasks_path)),
        "DATASET": shlex.quote(str(Path(dataset).resolve())),
        "BASELINES": shlex.quote(str(Path(baselines).resolve())),
        "FOLDS": " ".join(str(int(k)) for k in folds),
        "MODEL": model,
        "COMMAND": " ".join(shlex.quote(a) for a in (command or entry_point())),
        "EXTRA_ARGS": " ".join(shlex.quote(a) for a in baselines_args),
    }
    for key, value in fill.items():
        text = text.replace("{{" + key + "}}", value)
    atomic_write_text(tasks_path, "genes\n" + "".join(" ".join(c) + "\n" for c in chunks))
    script = out / BASELINES_TEMPLATE
    atomic_write_text(script, text)
    script.chmod(0o755)
    return SlurmJob(script, tasks_path, len(chunks), text)
