"""The state of every task of a job directory (``variformer slurm status``).

A job directory holds submissions (:mod:`variformer.slurm`); a task is a gene and fold of a
fine-tuning array, a gene and fold of a baselines array (``what`` is the model), or a stage of
a chain (``select-genes``, ``evaluate``, ...; gene and fold ``-``). When several submissions
hold the same task (a resubmission), the newest one speaks for it. Its state:

- ``done``: its result exists (a fine-tuning run's or a baseline fit's ``summary.json``, the
  run-directory contract of :mod:`core.runs`; a stage's output, after its last attempt exited 0);
- ``running``: ``squeue`` shows it pending or running (or, without ``squeue``, its log has
  changed in the last :data:`FRESH_S` seconds and has no end line);
- ``failed``: its last attempt ended with a non-zero status, was killed (time limit, memory,
  node failure), or waits on a stage that failed; the detail is the log's last error line;
- ``missing``: nothing (never submitted, or no log and not in the queue).

Each attempt of a task starts its log with ``### attempt N | host H | time | job J_T | ...``
and, when it runs to its end, writes ``### exit STATUS | time`` (the templates in ``slurm/``).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

from core import runs
from variformer import slurm_cluster
from variformer.slurm import TASKS, submissions

__all__ = ["FRESH_S", "STATES", "TaskState", "count_states", "job_status", "last_attempt"]

STATES = ("done", "running", "failed", "missing")
#: without squeue, a log without an end line that changed this recently counts as running
FRESH_S = 1800
NOT_SELECTED = "is not among the selected genes"
_LOG = re.compile(r"_(\d+)_(\d+)\.out$")
_KILLED = re.compile(r"CANCELLED AT .* DUE TO|oom[-_ ]kill|Out Of Memory", re.I)
_OURS = re.compile(r"^variformer [\w-]+: error: ")
_ERROR = re.compile(
    r"error|Error|ERROR|Traceback|Exception|Killed|CANCELLED|TIME LIMIT|oom|Out Of Memory"
)


class TaskState(NamedTuple):
    """One task of a job directory and its state (:func:`job_status`)."""

    what: str  # finetune, a baseline model, or a stage name
    gene: str  # "-" for a stage
    fold: str  # "-" for a stage
    state: str  # one of STATES
    detail: str  # the queue's state, the last error line, or where to look
    submission: dict  # the newest submission holding the task (its submission.json)
    index: int  # the task's array index there
    waiting: bool = False  # pending in the queue on a dependency (another stage)


class Attempt(NamedTuple):
    """The last attempt recorded in a task's log."""

    header: str  # its "### attempt" line ("" when the log has none)
    lines: list[str]  # what it printed (no ### lines)
    exit: int | None  # its "### exit" status; None when it did not run to its end
    log: Path
    age_s: float  # seconds since the log last changed


def last_attempt(log: Path, *, now: float | None = None) -> Attempt:
    """Parse the last attempt of an appended task log."""
    text = log.read_text(errors="replace").splitlines()
    starts = [i for i, line in enumerate(text) if line.startswith("### attempt")]
    section = text[starts[-1] :] if starts else text
    header = section[0] if starts else ""
    ends = [x for x in section if x.startswith("### exit")]
    status = None
    if ends:
        match = re.match(r"### exit (-?\d+)", ends[-1])
        status = int(match.group(1)) if match else 1
    lines = [x for x in section if x.strip() and not x.startswith("###")]
    age = (time.time() if now is None else now) - log.stat().st_mtime
    return Attempt(header, lines, status, log, age)


def error_line(attempt: Attempt) -> str:
    """The line of an attempt that says best why it ended: SLURM's ``CANCELLED ... DUE TO``
    (time limit, node failure, preemption) or an out-of-memory kill, else variformer's own
    ``error:`` line, else the last line that reads like an error, else its last line."""
    for pattern in (_KILLED, _OURS, _ERROR):
        found = [x for x in attempt.lines if pattern.search(x)]
        if found:
            break
    line = (found or attempt.lines or ["(the log is empty)"])[-1].strip()
    return line if len(line) <= 240 else line[:237] + "..."


def _logs(submission: dict, index: int) -> list[Path]:
    logs = Path(submission["directory"]) / "logs"
    found = [
        p
        for p in logs.glob(f"*_{index}.out")
        if (m := _LOG.search(p.name)) and int(m.group(2)) == index
    ]
    return sorted(found, key=lambda p: p.stat().st_mtime)


def _script(submission: dict) -> Path:
    return Path(submission["directory"]) / submission["script"]


def _tasks(submission: dict) -> Iterable[tuple[tuple[str, str, str], int]]:
    """``((what, gene, fold), array index)`` of every task of a submission."""
    lines = (Path(submission["directory"]) / TASKS).read_text().splitlines()[1:]
    what = submission["what"]
    for index, line in enumerate(lines):
        if submission["kind"] == "finetune":
            gene, fold = line.split("\t")
            yield (what, gene, fold), index
        elif submission["kind"] == "baselines":
            everyone = [runs.ALL_PEOPLE] if "--all-people" in submission.get("args", []) else []
            for gene in line.split():
                for fold in [*submission["folds"], *everyone]:
                    yield (what, gene, str(fold)), index
        else:
            yield (what, "-", "-"), index


def _done(submission: dict, gene: str, fold: str) -> bool:
    kind, out = submission["kind"], Path(submission["out"])
    if kind == "finetune":
        return (runs.run_path(out, gene, int(fold)) / runs.SUMMARY).is_file()
    if kind == "baselines":
        k = fold if fold == runs.ALL_PEOPLE else int(fold)
        return (runs.run_path(out / submission["model"], gene, k) / runs.SUMMARY).is_file()
    return out.exists()


def _selected(submission: dict) -> set[str] | None:
    path = submission.get("selected")
    if not path or not Path(path).is_file():
        return None
    return {x.strip() for x in Path(path).read_text().splitlines() if x.strip()}


def job_status(job_dir: str | Path, *, fresh_s: float = FRESH_S) -> list[TaskState]:
    """The state of every task of every submission of ``job_dir``, in submission order.

    Tasks of a chain's fine-tuning array whose gene select-genes did not choose are left out.
    """
    subs = submissions(job_dir)
    holders: dict[tuple[str, str, str], list[tuple[dict, int]]] = {}
    for sub in subs:
        for key, index in _tasks(sub):
            holders.setdefault(key, []).append((sub, index))
    queue = slurm_cluster.queued_tasks(j for s in subs for j in _job_ids(s))
    states = []
    for key, held in holders.items():
        sub, index = held[-1]
        chosen = _selected(sub) if sub["kind"] == "finetune" else None
        if chosen is not None and key[1] not in chosen:
            continue
        state, detail, waiting = _state(key, held, queue, fresh_s)
        states.append(TaskState(*key, state, detail, sub, index, waiting))
    return states


def _job_ids(submission: dict) -> list[str]:
    """The submission's job id, and those its log names carry (a script submitted by hand)."""
    ids = [str(submission["job_id"])] if submission.get("job_id") else []
    logs = (Path(submission["directory"]) / "logs").glob("*.out")
    return list(dict.fromkeys(ids + [m.group(1) for p in logs if (m := _LOG.search(p.name))]))


def _state(key, held, queue, fresh_s) -> tuple[str, str, bool]:
    sub = held[-1][0]
    attempt, ended = None, None
    for s, i in reversed(held):  # the newest log of the task
        logs = _logs(s, i)
        if logs:
            attempt = last_attempt(logs[-1])
            job = _LOG.search(logs[-1].name).group(1)
            ended = (queue or {}).get((job, str(i)))
            ended = ended if ended is not None and ended.runs(_script(s)) else None
            break
    stage_done = sub["kind"] != "stage" or (attempt is not None and attempt.exit == 0)
    if stage_done and _done(sub, key[1], key[2]):
        return "done", "", False
    running = [
        (job, i, q)
        for s, i in reversed(held)
        for job in _job_ids(s)
        if (q := (queue or {}).get((job, str(i)))) is not None and q.active
        and q.runs(_script(s))  # (a job id reused after a controller restart is another job)
    ]  # fmt: skip
    for job, i, queued in running[:1]:
        if "DependencyNeverSatisfied" in queued.reason:
            return "failed", f"never starts: a stage it waits for failed (job {job}_{i})", True
        where = f"on {queued.reason}" if queued.state == "RUNNING" else queued.reason
        waiting = queued.state == "PENDING" and "Dependency" in queued.reason
        detail = f"{queued.state} {where}, job {job}_{i}"
        n = re.match(r"### attempt (\d+)", attempt.header) if attempt is not None else None
        if n and int(n.group(1)) > 0:  # requeued: a number that keeps growing is a loop
            detail += f", attempt {n.group(1)}"
        return "running", detail, waiting
    if attempt is None:
        if not sub.get("job_id"):
            return "missing", f"not submitted: sbatch {_script(sub)}", False
        return "missing", "", False
    where = f" ({attempt.log})"
    if attempt.exit == 0:
        if any(NOT_SELECTED in x for x in attempt.lines):
            return "done", "not selected", False
        return "failed", f"exited 0 without a result{where}", False
    if attempt.exit is not None:
        return "failed", f"exit {attempt.exit}: {error_line(attempt)}{where}", False
    if queue is None and attempt.age_s < fresh_s:
        return "running", f"log changed {attempt.age_s:.0f} s ago{where}", False
    why = f"{ended.state}: " if ended is not None else "stopped without finishing: "
    return "failed", f"{why}{error_line(attempt)}{where}", False


def count_states(states: Iterable[TaskState]) -> dict[str, int]:
    """``{state: count}`` over :data:`STATES` (zeros kept)."""
    counts = dict.fromkeys(STATES, 0)
    for s in states:
        counts[s.state] += 1
    return counts
