"""Before an array is queued: do its tasks exist (:func:`check_tasks`), and are the runs they
would skip or resume made from their inputs?

A task of ``variformer slurm finetune`` skips a finished run made from the same inputs and
resumes an interrupted one (``finetune --skip-finished``); a run made from another config or a
rebuilt dataset would make the task fail in the queue, hours later. :func:`stale_finetune_runs`
and :func:`stale_baseline_fits` find them at submission (the same check the task makes,
:func:`core.manifest.check_inputs`, which names the differing config keys);
:func:`refuse_stale` refuses them in one line, and with ``--force`` :func:`set_aside` moves them
into the submission directory so the tasks train them again from scratch. (Passing ``--force``
to the tasks instead would restart a requeued task from scratch at every attempt.)
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

from core import manifest, runs
from core.errors import InputError
from core.fileio import output_lock

__all__ = [
    "StaleRun",
    "check_tasks",
    "refuse_stale",
    "set_aside",
    "stale_baseline_fits",
    "stale_finetune_runs",
    "task_config",
]


class StaleRun(NamedTuple):
    """A finished or interrupted run that the task would refuse."""

    path: Path  # <root>/<gene>/fold<k> or fold<k>.partial
    reason: str  # one line, naming what differs


def _stale(
    root: Path,
    tasks: Sequence[tuple[str, int]],
    current: Callable[[str, int], dict],
    *,
    partials: bool,
) -> list[StaleRun]:
    found = []
    for gene, fold in tasks:
        final = runs.run_path(root, gene, fold)
        partial = final.with_name(final.name + runs.PARTIAL_SUFFIX)
        checks = [final] if (final / runs.SUMMARY).is_file() else []
        # as finetune: a partial run is checked when it would be resumed (it has a checkpoint)
        # or is refused anyway (it stopped as failed)
        if partials and (
            (partial / manifest.FAILED).is_file() or next(partial.rglob("*.ckpt"), None)
        ):
            checks.append(partial)
        for path in checks:
            if (path / manifest.FAILED).is_file():
                reason = json.loads((path / manifest.FAILED).read_text()).get("reason", "")
                found.append(StaleRun(path, f"{path} stopped as failed ({reason})"))
                continue
            try:
                manifest.check_inputs(path, current(gene, fold), advice="")
            except InputError as err:
                found.append(StaleRun(path, str(err).removesuffix("; ")))
    return found


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


def task_config(
    config: str | None,
    overrides: Sequence[str],
    *,
    pretrained: str | None = None,
    random_init: bool = False,
):
    """The config an array task trains with (``finetune --config config overrides``, with
    ``--pretrained`` / ``--random-init`` applied as ``variformer finetune`` applies them)."""
    from variformer.config import load_config
    from variformer.finetune_setup import apply_model_options

    loaded = load_config(config, overrides=list(overrides))
    return apply_model_options(loaded, pretrained=pretrained, random_init=random_init)


def stale_finetune_runs(
    out: str | os.PathLike,
    dataset: str | os.PathLike,
    tasks: Sequence[tuple[str, int]],
    config,
) -> list[StaleRun]:
    """Finished and interrupted fine-tuning runs of ``tasks`` made from other inputs.

    Parameters
    ----------
    out : path
        The runs root.
    dataset : path
    tasks : sequence of (gene, fold)
    config : variformer.config.Config
        The config every task trains with (model options applied).
    """
    from data_prep import open_dataset

    fingerprints = manifest.dataset_fingerprints(open_dataset(dataset))
    settings = config.to_dict()

    def current(gene, fold):
        return {"dataset": fingerprints, "genes": [gene], "fold": int(fold), "config": settings}

    return _stale(Path(out).expanduser(), tasks, current, partials=True)


def stale_baseline_fits(
    out: str | os.PathLike,
    dataset: str | os.PathLike,
    genes: Sequence[str],
    folds: Sequence[int],
    options: dict,
    *,
    all_people: bool = False,
) -> list[StaleRun]:
    """Published gene-folds of ``BL/<model>`` made from other inputs than ``options``
    (:func:`baselines.run.fit_options`); with ``all_people`` the fits on all people too."""
    from baselines.run import fit_inputs
    from data_prep import open_dataset

    fingerprints = manifest.dataset_fingerprints(open_dataset(dataset))
    root = Path(out).expanduser() / options["model"]
    targets = [*(int(k) for k in folds), *([runs.ALL_PEOPLE] if all_people else [])]
    tasks = [(g, k) for g in genes for k in targets]

    def current(gene, fold):
        return fit_inputs(fingerprints, gene, fold, options)

    return _stale(root, tasks, current, partials=False)


def refuse_stale(stale: Sequence[StaleRun], *, force: bool) -> None:
    """Without ``force``, refuse the first stale run in one line (saying how many more).

    Raises
    ------
    InputError
        ``stale`` is not empty and ``force`` is False.
    """
    if stale and not force:
        more = f" (and {len(stale) - 1} more)" if len(stale) > 1 else ""
        raise InputError(
            f"{stale[0].reason}{more}; its task would refuse it: pass --force to train such runs "
            "again (the old ones are moved into the submission directory), or restore the old "
            "inputs"
        )


def set_aside(stale: Sequence[StaleRun], aside: Path) -> list[Path]:
    """Move each stale run to ``aside/<gene>/<its directory name>``; returns where they went.

    ``aside`` should be hidden (a name starting with ``.``) so it is never read as runs.

    Raises
    ------
    InputError
        A stale run is being written now (by a task of an earlier submission).
    """
    moved = []
    for run in stale:
        target = aside / run.path.parent.name / run.path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        final = run.path.with_name(run.path.name.removesuffix(runs.PARTIAL_SUFFIX))
        with output_lock(final):  # a task writing it now is refused, not moved from under
            shutil.move(str(run.path), str(target))
        moved.append(target)
    return moved
