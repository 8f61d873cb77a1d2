"""SLURM job arrays: one ``variformer finetune`` task per gene x fold, one ``variformer
baselines`` task per chunk of genes, and single stages of a chain (:mod:`variformer.slurm_chain`).

One submission, one frozen task list. Every write makes a new submission directory
``<job_dir>/<submission id>/`` (:func:`new_submission`; the id is the time it was made and what
it runs, e.g. ``20250301-142501-finetune``) holding ``tasks.tsv`` (the header, then one task
per line; array task ``i`` is data line ``i``), the sbatch script filled in from the template
in ``slurm/`` (it reads its own ``tasks.tsv``), ``logs/`` and ``submission.json`` (what it
runs, its options and, once submitted, its job id). Nothing in a submission directory is
rewritten, so a queued array never trains another gene because a later call reused the job
directory; ``variformer slurm status`` (:mod:`variformer.slurm_status`) reads them all.

Each task runs the variformer that wrote the script, by absolute path (:func:`entry_point`; a
batch job does not see a virtual environment's ``PATH``); ``VARIFORMER="..."`` and the launcher
``VARIFORMER_LAUNCH`` (default ``srun``) override it at run time, so a script can be tried
without SLURM. :func:`submit` checks with ``sbatch --test-only`` that the request fits a node,
then submits.
"""

from __future__ import annotations

import json
import shlex
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, NamedTuple

from core.errors import InputError
from core.fileio import atomic_write_text, check_writable_parent
from variformer import slurm_cluster
from variformer.slurm_cluster import Resources
from variformer.slurm_inputs import check_tasks

TEMPLATE_NAME = "finetune_array.sbatch"
BASELINES_TEMPLATE = "baselines_array.sbatch"
STAGE_TEMPLATE = "stage.sbatch"
SUBMISSION = "submission.json"
TASKS = "tasks.tsv"


class SlurmJob(NamedTuple):
    """A written submission (:func:`write_finetune_array`, :func:`write_baselines_array`,
    :func:`write_stage`)."""

    script: Path
    tasks: Path
    n_tasks: int
    text: str
    directory: Path  # <job_dir>/<submission id>


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


# ---------------------------------------------------------------- submission directories


def new_submission(job_dir: str | Path, what: str) -> Path:
    """Create ``<job_dir>/<time>-<what>/`` (``-2``, ``-3``, ... when taken) and its ``logs/``."""
    root = Path(job_dir).expanduser()
    check_writable_parent(root / "x")
    root.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for n in range(1, 1000):
        path = root / (f"{stamp}-{what}" + (f"-{n}" if n > 1 else ""))
        try:
            path.mkdir()
        except FileExistsError:
            continue
        (path / "logs").mkdir()
        return path
    raise InputError(f"cannot create a new submission directory in {root}")


def read_submission(directory: str | Path) -> dict:
    """``submission.json`` of a submission directory (its ``directory`` key added)."""
    path = Path(directory) / SUBMISSION
    try:
        record = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise InputError(f"cannot read {path}: {err}") from None
    return {**record, "directory": str(Path(directory).resolve())}


def submissions(job_dir: str | Path) -> list[dict]:
    """Every submission of ``job_dir`` (and of its subdirectories), oldest first."""
    root = Path(job_dir).expanduser()
    if not root.is_dir():
        raise InputError(f"{root} is not a job directory (no such directory)")
    found = [read_submission(p.parent) for p in root.rglob(SUBMISSION)]
    if not found:
        raise InputError(f"{root} holds no submissions (no {SUBMISSION} below it)")
    return sorted(found, key=lambda r: (r.get("created", 0), r["directory"]))


def _write(
    directory: Path,
    *,
    template: str | Path,
    fill: Mapping[str, str],
    tasks_text: str,
    record: Mapping[str, Any],
    script_name: str,
) -> SlurmJob:
    text = Path(template).read_text()
    for key, value in fill.items():
        text = text.replace("{{" + key + "}}", value)
    tasks = directory / TASKS
    atomic_write_text(tasks, tasks_text)
    script = directory / script_name
    atomic_write_text(script, text)
    script.chmod(0o755)
    n_tasks = max(len(tasks_text.splitlines()) - 1, 0)
    atomic_write_text(
        directory / SUBMISSION,
        json.dumps(
            {"id": directory.name, "created": time.time(), "job_id": None, "dependency": None,
             "script": script.name, "n_tasks": n_tasks, **record},
            indent=1,
        ) + "\n",
    )  # fmt: skip
    return SlurmJob(script, tasks, n_tasks, text, directory)


def _common_fill(directory: Path, job_name: str, command, resources: Resources, n: int) -> dict:
    limit = f"%{resources.max_parallel}" if resources.max_parallel else ""
    return {
        "JOB_NAME": job_name,
        "ARRAY": f"0-{n - 1}{limit}",
        "LOG_DIR": str((directory / "logs").resolve()),
        "SBATCH_OPTIONS": "\n".join(resources.lines()),
        "TASKS": shlex.quote(str((directory / TASKS).resolve())),
        "COMMAND": " ".join(shlex.quote(a) for a in (command or entry_point())),
    }


def _abs(path: str | Path | None) -> str | None:
    return None if path is None else str(Path(path).expanduser().resolve())


# ---------------------------------------------------------------- the three kinds of script


def write_finetune_array(
    job_dir: str | Path,
    *,
    runs: str | Path,
    dataset: str | Path,
    tasks: Sequence[tuple[str, int]],
    command: Sequence[str] | None = None,
    finetune_args: Sequence[str] = (),
    job_name: str = "variformer-finetune",
    resources: Resources | None = None,
    template: str | Path | None = None,
    selected: str | Path | None = None,
    after: Sequence[str] = (),
) -> SlurmJob:
    """Check the tasks (:func:`check_tasks`), then write a new submission of fine-tuning tasks.

    Parameters
    ----------
    job_dir : str or Path
        The job directory; the submission is a new directory in it (:func:`new_submission`).
    runs : str or Path
        The runs root, ``--out`` of every ``variformer finetune`` task.
    dataset : str or Path
        Dataset directory passed to every task.
    tasks : sequence of (gene, fold)
        One array task each, in this order.
    command : sequence of str, optional
        How a task runs variformer (default :func:`entry_point`).
    finetune_args : sequence of str
        More arguments for ``variformer finetune`` (``--config``, overrides, ...).
    resources : Resources
        Per task; ``gpus`` 0 trains on CPUs, > 1 runs DDP with one SLURM task per GPU (the
        default CPUs, from ``sinfo``, are split between them).
    template : str or Path, optional
        Template to fill (default :func:`template_path`).
    selected : str or Path, optional
        A genes file written later (by ``select-genes`` in a chain): a task whose gene is not
        in it exits 0 without training.
    after : sequence of str
        In a chain, the stages it waits for (recorded for ``resubmit-failed``).

    Returns
    -------
    SlurmJob
    """
    tasks = list(dict.fromkeys((str(g), int(k)) for g, k in tasks))
    resources = resources or Resources()
    resources = resources.check().with_default_cpus(tasks_per_node=max(resources.gpus, 1))
    check_tasks(dataset, list(dict.fromkeys(g for g, _ in tasks)), sorted({k for _, k in tasks}))
    extra = []  # before finetune_args, which end with the KEY=VALUE overrides
    if resources.gpus == 0:
        extra += ["--accelerator", "cpu"]
    elif resources.gpus > 1:
        extra += ["--devices", str(resources.gpus), "--strategy", "ddp"]
    extra += finetune_args
    directory = new_submission(job_dir, "finetune")
    fill = _common_fill(directory, job_name, command, resources, len(tasks))
    limit = slurm_cluster.time_limit_s(resources.time)
    # SLURM sends a signal up to 60 s early: under 5 minutes it would come at once and
    # Lightning would requeue the task forever
    signal = "" if limit is not None and limit < 300 else "#SBATCH --signal=SIGUSR1@90"
    fill |= {
        "SIGNAL": signal,
        "NTASKS": str(max(resources.gpus, 1)),
        "DATASET": shlex.quote(_abs(dataset)),
        "RUNS": shlex.quote(_abs(runs)),
        "EXTRA_ARGS": " ".join(shlex.quote(a) for a in extra),
        "SELECTED": shlex.quote(_abs(selected) or ""),
    }
    record = {
        "kind": "finetune", "what": "finetune", "out": _abs(runs), "dataset": _abs(dataset),
        "selected": _abs(selected), "command": list(command or []),
        "args": list(finetune_args), "job_name": job_name, "resources": asdict(resources),
        "template": _abs(template), "after": list(after),
    }  # fmt: skip
    return _write(
        directory,
        template=template or template_path(),
        fill=fill,
        tasks_text="gene\tfold\n" + "".join(f"{g}\t{k}\n" for g, k in tasks),
        record=record,
        script_name=TEMPLATE_NAME,
    )


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
    resources: Resources | None = None,
    template: str | Path | None = None,
    after: Sequence[str] = (),
) -> SlurmJob:
    """Check the tasks, then write a new submission of ``variformer baselines`` tasks.

    Parameters
    ----------
    job_dir : str or Path
        The job directory; the submission is a new directory in it (:func:`new_submission`).
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
        More arguments for ``variformer baselines`` (``--l1-ratio``, ``--cv``, ``--force``, ...).
    resources : Resources
        Per task; a task fits ``cpus`` genes at once (``--jobs``).
    template : str or Path, optional
    after : sequence of str
        In a chain, the stages it waits for.

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
    resources = (resources or Resources()).check().with_default_cpus()
    check_tasks(dataset, genes, folds)
    chunks = [genes[i : i + genes_per_task] for i in range(0, len(genes), genes_per_task)]
    directory = new_submission(job_dir, model)
    fill = _common_fill(directory, job_name, command, resources, len(chunks))
    fill |= {
        "DATASET": shlex.quote(_abs(dataset)),
        "BASELINES": shlex.quote(_abs(baselines)),
        "FOLDS": " ".join(str(int(k)) for k in folds),
        "MODEL": model,
        "EXTRA_ARGS": " ".join(shlex.quote(a) for a in baselines_args),
    }
    record = {
        "kind": "baselines", "what": model, "out": _abs(baselines), "dataset": _abs(dataset),
        "model": model, "folds": [int(k) for k in folds], "genes_per_task": genes_per_task,
        "command": list(command or []), "args": list(baselines_args), "job_name": job_name,
        "resources": asdict(resources), "template": _abs(template), "after": list(after),
    }  # fmt: skip
    return _write(
        directory,
        template=template or template_path(BASELINES_TEMPLATE),
        fill=fill,
        tasks_text="genes\n" + "".join(" ".join(c) + "\n" for c in chunks),
        record=record,
        script_name=BASELINES_TEMPLATE,
    )


def write_stage(
    job_dir: str | Path,
    *,
    stage: str,
    args: Sequence[str],
    output: str | Path,
    command: Sequence[str] | None = None,
    job_name: str | None = None,
    resources: Resources | None = None,
    after: Sequence[str] = (),
    files: Mapping[str, str] | None = None,
) -> SlurmJob:
    """Write a new submission that runs ``variformer <args>`` once (a one-task array).

    Parameters
    ----------
    stage : str
        Its name in a chain (``select-genes``, ``evaluate``, ``ism``, ``analyze``, ``report``).
    args : sequence of str
        The variformer command line, subcommand first; ``{submission}`` in an argument is
        replaced by the submission directory.
    output : str or Path
        What the stage writes: it is done when its last attempt exited 0 and this exists.
    after : sequence of str
        The stages it waits for (recorded for ``status`` and ``resubmit-failed``).
    files : mapping, optional
        File name -> text, written into the submission directory (read by the stage).
    """
    resources = (resources or Resources()).check().with_default_cpus()
    directory = new_submission(job_dir, stage)
    args = [a.replace("{submission}", str(directory.resolve())) for a in args]
    for name, text in (files or {}).items():
        atomic_write_text(directory / name, text)
    fill = _common_fill(directory, job_name or f"variformer-{stage}", command, resources, 1)
    fill |= {"STAGE": stage, "ARGS": " ".join(shlex.quote(a) for a in args)}
    record = {
        "kind": "stage", "what": stage, "out": _abs(output), "args": list(args),
        "command": list(command or []), "resources": asdict(resources), "after": list(after),
    }  # fmt: skip
    return _write(
        directory,
        template=template_path(STAGE_TEMPLATE),
        fill=fill,
        tasks_text=f"stage\n{stage}\n",
        record=record,
        script_name=STAGE_TEMPLATE,
    )


def check_fits(job: SlurmJob) -> None:
    """Refuse, in one line naming the request, a submission that fits no node of the cluster
    (``sbatch --test-only``); the refused submission directory is removed.

    Raises
    ------
    InputError
    """
    import shutil

    record = read_submission(job.directory)
    asked = Resources(**{**record["resources"], "sbatch": tuple(record["resources"]["sbatch"])})
    try:
        slurm_cluster.check_fits(
            job.script, what=f"{record['what']}'s request ({asked.describe()})"
        )
    except InputError:
        shutil.rmtree(job.directory, ignore_errors=True)
        raise


def submit(job: SlurmJob | str | Path, *, dependency: str | None = None, test: bool = True) -> str:
    """Submit a written submission (or a script) with ``sbatch``; returns the job id.

    With ``test``, ``sbatch --test-only`` first refuses a request that fits no node
    (:func:`check_fits`). The job id and dependency are recorded in its ``submission.json``.

    Raises
    ------
    InputError
        ``sbatch`` is missing, the request fits no node, or sbatch refuses the job.
    """
    script = Path(job.script if isinstance(job, SlurmJob) else job)
    if test and isinstance(job, SlurmJob):
        check_fits(job)
    elif test:
        slurm_cluster.check_fits(script, what=f"the request of {script}")
    job_id = slurm_cluster.sbatch(script, dependency=dependency)
    record_path = script.parent / SUBMISSION
    if record_path.is_file():
        record = json.loads(record_path.read_text())
        record |= {"job_id": job_id, "dependency": dependency, "submitted": time.time()}
        atomic_write_text(record_path, json.dumps(record, indent=1) + "\n")
    return job_id
