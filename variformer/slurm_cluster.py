"""Talking to SLURM: ``sbatch`` (submit, ``--test-only``, dependencies), ``sinfo`` (what the
partition's nodes have) and ``squeue`` (which array tasks are queued or running).

Every function runs the SLURM command found on ``PATH`` and turns its failures into one
:class:`core.errors.InputError` line; :func:`partition_nodes` and :func:`queued_tasks` answer
``None`` instead when the command is missing, so writing a script or reading a job directory
works on a machine without SLURM.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import NamedTuple

from core.errors import InputError

__all__ = [
    "Node",
    "QueuedTask",
    "Resources",
    "cancel",
    "check_fits",
    "default_cpus",
    "dependency",
    "partition_nodes",
    "queued_tasks",
    "sbatch",
    "sbatch_option",
    "time_limit_s",
]

#: squeue states of a task that is gone or going (kept in squeue for MinJobAge after the end)
ENDED = {
    "BOOT_FAIL", "CANCELLED", "COMPLETED", "DEADLINE", "FAILED", "NODE_FAIL",
    "OUT_OF_MEMORY", "PREEMPTED", "REVOKED", "SPECIAL_EXIT", "TIMEOUT",
}  # fmt: skip


class Node(NamedTuple):
    """One node of a partition, as ``sinfo`` reports it."""

    name: str
    cpus: int
    memory_mb: int
    gpus: int


class QueuedTask(NamedTuple):
    """One array task in ``squeue`` (pending, running, or recently ended)."""

    state: str  # PENDING, RUNNING, COMPLETING, ... (squeue's %T)
    reason: str  # why pending, or the node list when running (squeue's %R)
    command: str = ""  # the batch script (squeue's %o): tells a reused job id apart

    def runs(self, script: str | Path) -> bool:
        """Whether this is a task of ``script`` (by its last two path parts: the submission
        directory and the script), or the queue did not say."""
        return not self.command or Path(self.command).parts[-2:] == Path(script).parts[-2:]

    @property
    def active(self) -> bool:
        """Still queued or running (not in :data:`ENDED`)."""
        return self.state not in ENDED


@dataclass(frozen=True)
class Resources:
    """What one task asks SLURM for; None leaves it to the cluster's defaults.

    ``gpus`` 0 means a CPU task (``--accelerator cpu`` for fine-tuning); ``cpus`` None means
    what the partition's nodes have (:func:`variformer.slurm_cluster.default_cpus`, when
    ``sinfo`` answers). ``sbatch`` holds further options, e.g. ``--constraint=a100``.
    """

    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    time: str | None = None
    mem: str | None = None
    cpus: int | None = None
    gpus: int = 0
    max_parallel: int | None = None
    sbatch: tuple[str, ...] = ()

    def check(self) -> Resources:
        """Refuse impossible values; returns itself."""
        if self.gpus < 0:
            raise InputError(f"--gpus must be >= 0, got {self.gpus}")
        if self.cpus is not None and self.cpus < 1:
            raise InputError(f"--cpus must be >= 1, got {self.cpus}")
        if self.max_parallel is not None and self.max_parallel < 1:
            raise InputError(f"--max-parallel must be >= 1, got {self.max_parallel}")
        return self

    def with_default_cpus(self, *, tasks_per_node: int = 1) -> Resources:
        """``cpus`` filled in from ``sinfo`` when not given (split over ``tasks_per_node``)."""
        if self.cpus is not None:
            return self
        cpus = default_cpus(self.partition, self.gpus)
        return replace(self, cpus=None if cpus is None else max(1, cpus // tasks_per_node))

    def lines(self) -> list[str]:
        """The ``#SBATCH`` lines."""
        out = [
            f"#SBATCH --{flag}={value}"
            for flag, value in (
                ("partition", self.partition),
                ("account", self.account),
                ("qos", self.qos),
                ("time", self.time),
                ("cpus-per-task", self.cpus),
                ("mem", self.mem),
            )
            if value is not None
        ]
        if self.gpus:
            out.append(f"#SBATCH --gpus-per-node={self.gpus}")
        return out + [f"#SBATCH {sbatch_option(opt)}" for opt in self.sbatch]

    def describe(self) -> str:
        """``cpus 4, gpus 1, mem 64G, partition gpu`` (for messages)."""
        shown = {"cpus": self.cpus, "gpus": self.gpus, "mem": self.mem, "time": self.time}
        shown |= {"partition": self.partition, "qos": self.qos, "account": self.account}
        return ", ".join(f"{k} {v}" for k, v in shown.items() if v is not None)


def sbatch_option(option: str) -> str:
    """``constraint=a100`` or ``--constraint=a100`` -> ``--constraint=a100``."""
    option = option.strip()
    if not option or any(c in option for c in "\n\r"):
        raise InputError(f"bad sbatch option {option!r}")
    return option if option.startswith("-") else f"--{option}"


def time_limit_s(value: str | None) -> int | None:
    """Seconds of a SLURM ``--time`` (``M``, ``M:S``, ``H:M:S``, ``D-H``, ``D-H:M``,
    ``D-H:M:S``); None when not given, unlimited or not understood."""
    if not value or value.strip().lower() in ("infinite", "unlimited"):
        return None
    days, _, clock = value.strip().rpartition("-")
    try:
        parts = [int(p) for p in clock.split(":")]
        d = int(days) if days else 0
    except ValueError:
        return None
    if days:  # D-H, D-H:M, D-H:M:S
        h, m, s = [*parts, 0, 0][:3]
    elif len(parts) == 3:
        h, m, s = parts
    else:  # M or M:S
        h, (m, s) = 0, [*parts, 0][:2]
    return ((d * 24 + h) * 60 + m) * 60 + s


#: seconds a SLURM command may take (a controller that does not answer)
TIMEOUT_S = 120


def _run(argv: Sequence[str], *, missing: str) -> subprocess.CompletedProcess:
    """Run a SLURM command; a hung one ends as status 124 with a line saying so."""
    exe = shutil.which(argv[0])
    if exe is None:
        raise InputError(missing)
    try:
        return subprocess.run(
            [exe, *argv[1:]], capture_output=True, text=True, check=False, timeout=TIMEOUT_S
        )
    except subprocess.TimeoutExpired:
        message = f"{argv[0]} did not answer within {TIMEOUT_S} s (is the controller up?)"
        return subprocess.CompletedProcess(argv, 124, "", message)


def _last_line(done: subprocess.CompletedProcess) -> str:
    lines = [x.strip() for x in (done.stderr + "\n" + done.stdout).splitlines() if x.strip()]
    return lines[-1] if lines else f"no output (status {done.returncode})"


def partition_nodes(partition: str | None = None) -> list[Node] | None:
    """The nodes of ``partition`` (default: the cluster's default partition) from ``sinfo``.

    Returns
    -------
    list of Node or None
        None when ``sinfo`` is not on PATH or does not answer (no cluster here).
    """
    if shutil.which("sinfo") is None:
        return None
    argv = ["sinfo", "-h", "-N", "-o", "%N|%P|%c|%m|%G"]
    if partition:
        argv += ["-p", partition]
    done = _run(argv, missing="")
    if done.returncode != 0:
        return None
    nodes: dict[str, Node] = {}
    for line in done.stdout.splitlines():
        parts = line.strip().split("|")
        if len(parts) != 5:
            continue
        name, part, cpus, memory, gres = parts
        if not partition and not part.endswith("*"):  # the default partition is starred
            continue
        gpus = sum(int(n) for n in re.findall(r"gpu(?::[^:,(]+)?:(\d+)", gres))
        try:
            nodes[name] = Node(name, int(cpus.rstrip("+")), int(memory.rstrip("+")), gpus)
        except ValueError:
            continue
    return list(nodes.values())


def default_cpus(partition: str | None, gpus: int) -> int | None:
    """CPUs per task when none are asked for: all of a node's (the smallest node of the
    partition), or with ``gpus`` on nodes that have GPUs, their share (cpus x gpus / node GPUs).

    Returns None when ``sinfo`` cannot say (then SLURM's own default applies).
    """
    nodes = partition_nodes(partition)
    if not nodes:
        return None
    if gpus > 0:
        with_gpus = [n for n in nodes if n.gpus >= gpus]
        if with_gpus:
            return max(1, min(n.cpus * gpus // n.gpus for n in with_gpus))
    return min(n.cpus for n in nodes)


def dependency(kind: str, job_ids: Iterable[str]) -> str | None:
    """``afterok:1:2`` (``kind`` afterok, aftercorr, afterany, ...), or None without jobs."""
    ids = [str(j) for j in job_ids if j]
    return f"{kind}:{':'.join(ids)}" if ids else None


def check_fits(script: str | Path, *, what: str = "the request") -> None:
    """Refuse, in one line, a script whose request fits no node (``sbatch --test-only``).

    Raises
    ------
    InputError
        ``sbatch`` is missing, or says the job could never start.
    """
    done = _run(["sbatch", "--test-only", str(script)], missing=_NO_SBATCH)
    if done.returncode == 0:
        return
    reason = _last_line(done).removeprefix("sbatch: error: ")
    if "array" in reason.lower():
        advice = "the array may exceed the cluster's MaxArraySize: submit fewer tasks per call"
        raise InputError(f"sbatch --test-only refuses {what}: {reason}; {advice}")
    raise InputError(
        f"{what} fits no node of the cluster (sbatch --test-only: {reason}); ask for fewer "
        "CPUs, GPUs or less memory, or another --partition, --qos or --account"
    )


_NO_SBATCH = (
    "sbatch is not on PATH: run this on a SLURM login node, or submit the written script there"
)


def sbatch(script: str | Path, *, dependency: str | None = None) -> str:
    """Submit ``script``; returns the job id (``sbatch --parsable``, without a cluster name).

    Raises
    ------
    InputError
        ``sbatch`` is missing or refuses the job (its last line).
    """
    argv = ["sbatch", "--parsable"]
    if dependency:
        argv.append(f"--dependency={dependency}")
    done = _run([*argv, str(script)], missing=_NO_SBATCH)
    if done.returncode != 0:
        raise InputError(f"sbatch failed with status {done.returncode}: {_last_line(done)}")
    words = done.stdout.strip().splitlines()
    job_id = words[-1].split(";")[0].strip() if words else ""
    if not job_id:
        raise InputError(f"sbatch printed no job id for {script}")
    return job_id


def cancel(job_ids: Iterable[str]) -> None:
    """``scancel`` the jobs (a job id, or ``id_task`` for one array task).

    Raises
    ------
    InputError
        ``scancel`` is missing or fails.
    """
    ids = [str(j) for j in job_ids if j]
    if not ids:
        return
    done = _run(["scancel", *ids], missing="scancel is not on PATH")
    if done.returncode != 0:
        raise InputError(f"scancel {' '.join(ids)} failed: {_last_line(done)}")


def queued_tasks(job_ids: Iterable[str]) -> dict[tuple[str, str], QueuedTask] | None:
    """``(job id, array task id) -> QueuedTask`` for the tasks ``squeue`` shows of ``job_ids``.

    Returns
    -------
    dict or None
        None when ``squeue`` is missing or fails (then nothing is known about the queue).
    """
    ids = sorted({str(j) for j in job_ids if j})
    if shutil.which("squeue") is None:
        return None
    if not ids:
        return {}
    # --states=all: ended tasks too (TIMEOUT, OUT_OF_MEMORY, ...), for MinJobAge after the end
    argv = ["squeue", "-h", "-r", "--states=all", "-o", "%F|%K|%T|%R|%o", f"--jobs={','.join(ids)}"]
    done = _run(argv, missing="")
    if done.returncode != 0:
        # every id unknown (finished longer ago than MinJobAge) is an error to squeue
        return {} if "Invalid job id" in done.stderr else None
    found = {}
    for line in done.stdout.splitlines():
        parts = line.strip().split("|", 4)
        if len(parts) >= 4 and parts[0] in ids:
            found[(parts[0], parts[1])] = QueuedTask(*parts[2:])
    return found
