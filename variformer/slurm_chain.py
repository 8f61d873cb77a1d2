"""The whole workflow as one chain of SLURM jobs (``variformer slurm all``), and resubmitting
what failed (``variformer slurm resubmit-failed``).

:func:`write_chain` writes one submission per stage into the job directory:

======================  ============================================  ===================
stage                   runs                                          waits for (afterok)
======================  ============================================  ===================
``<model>``             a ``baselines`` array per linear model        -
``select-genes``        ``select-genes`` on the chain's genes         ``elastic_net``
``finetune``            a ``finetune`` array over genes x folds       ``select-genes``
``evaluate``            ``evaluate``                                  finetune, baselines
``ism``                 ``ism --runs`` of one fold                    ``finetune``
``analyze``             ``analyze``                                   ``ism``, baselines
``report``              ``report``                                    evaluate, analyze
======================  ============================================  ===================

The fine-tuning array is written before the genes are chosen, so it holds every gene x fold;
a task whose gene ``select-genes`` did not choose exits at once (``status`` leaves it out).
Every stage has its own resources (:class:`variformer.slurm_cluster.Resources`). No two
stages map task to task (ISM scores every run of a fold into one table, and analyze reads it
whole), so every dependency is ``afterok`` on whole jobs
(:func:`variformer.slurm_cluster.dependency` also writes ``aftercorr``, for arrays that would).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import InputError
from variformer import slurm, slurm_cluster
from variformer.slurm_cluster import Resources

__all__ = ["CHAIN_STAGES", "ChainPaths", "resubmit_failed", "submit_chain", "write_chain"]

CHAIN_STAGES = ("baselines", "select-genes", "finetune", "evaluate", "ism", "analyze", "report")


@dataclass(frozen=True)
class ChainPaths:
    """Where each stage writes (as the single commands' ``--out``)."""

    baselines: str | os.PathLike = "BL"
    selection: str | os.PathLike = "genes"
    runs: str | os.PathLike = "runs"
    evaluation: str | os.PathLike = "EVAL"
    ism: str | os.PathLike = "ISM"
    analysis: str | os.PathLike = "AN"
    report: str | os.PathLike = "REPORT"


@dataclass(frozen=True)
class ChainOptions:
    """What the stages run with, beyond the paths."""

    models: tuple[str, ...] = ("elastic_net", "ridge")
    genes_per_task: int = 50
    select: bool = True
    ism_fold: int = 0
    finetune_args: tuple[str, ...] = ()
    extra: Mapping[str, Sequence[str]] = field(default_factory=dict)  # stage -> more args


def _abs(path) -> str:
    return str(Path(path).expanduser().resolve())


def write_chain(
    job_dir: str | os.PathLike,
    *,
    dataset: str | os.PathLike,
    genes: Sequence[str],
    folds: Sequence[int],
    paths: ChainPaths,
    options: ChainOptions,
    resources: Mapping[str, Resources],
    command: Sequence[str] | None = None,
) -> list[tuple[str, slurm.SlurmJob]]:
    """Write every stage's submission; returns ``(stage, job)`` in submission order.

    Parameters
    ----------
    job_dir : path
        The chain's job directory (one submission directory per stage in it).
    dataset : path
    genes : sequence of str
        The candidate genes (baselines are fitted on all of them; select-genes picks among them).
    folds : sequence of int
    paths : ChainPaths
    options : ChainOptions
    resources : mapping
        Stage name (a model name for a baselines array, or one of :data:`CHAIN_STAGES`) ->
        its resources; a missing stage gets ``resources["default"]`` or none.
    command : sequence of str, optional
        How a task runs variformer (default :func:`variformer.slurm.entry_point`).
    """
    if options.select and "elastic_net" not in options.models:
        raise InputError("select-genes reads the elastic nets: keep elastic_net in --models")
    dataset, genes = _abs(dataset), list(dict.fromkeys(genes))
    slurm.check_tasks(dataset, genes, folds)
    p = {k: _abs(v) for k, v in vars(paths).items()}

    def res(stage: str) -> Resources:
        return resources.get(stage) or resources.get("default") or Resources()

    def more(stage: str) -> list[str]:
        return list(options.extra.get(stage, ()))

    jobs = []
    for model in options.models:
        jobs.append((model, slurm.write_baselines_array(
            job_dir, baselines=p["baselines"], dataset=dataset, genes=genes, folds=folds,
            model=model, genes_per_task=options.genes_per_task, command=command,
            baselines_args=more("baselines"), job_name=f"variformer-{model}",
            resources=res(model) if model in resources else res("baselines"),
        )))  # fmt: skip
    selected, after_select = None, []
    if options.select:
        args = ["select-genes", "--baselines", p["baselines"], "--pool-genes-file",
                "{submission}/pool_genes.txt", "--out", p["selection"], "--force",
                *more("select-genes")]  # fmt: skip
        jobs.append(("select-genes", slurm.write_stage(
            job_dir, stage="select-genes", output=Path(p["selection"]) / "train_genes.txt",
            args=args, command=command, resources=res("select-genes"), after=["elastic_net"],
            files={"pool_genes.txt": "".join(f"{g}\n" for g in genes)},
        )))  # fmt: skip
        selected, after_select = Path(p["selection"]) / "train_genes.txt", ["select-genes"]
    finetune = slurm.write_finetune_array(
        job_dir, runs=p["runs"], dataset=dataset, tasks=[(g, k) for g in genes for k in folds],
        command=command, finetune_args=options.finetune_args, resources=res("finetune"),
        selected=selected, after=after_select,
    )  # fmt: skip
    jobs.append(("finetune", finetune))
    ism_out = str(Path(p["ism"]) / "variformer.tsv")
    stages = {
        "evaluate": (["evaluate", "--dataset", dataset, "--runs", p["runs"], "--baselines",
                      p["baselines"], "--out", p["evaluation"], "--force", "--no-progress"],
                     p["evaluation"], ["finetune", *options.models]),
        "ism": (["ism", "--runs", p["runs"], "--fold", str(options.ism_fold), "--dataset",
                 dataset, "--out", ism_out, "--force", "--no-progress"], ism_out, ["finetune"]),
        "analyze": (["analyze", "--dataset", dataset, "--ism", p["ism"], "--baselines",
                     p["baselines"], "--runs", p["runs"], "--out", p["analysis"], "--force"],
                    p["analysis"], ["ism", *options.models]),
        "report": (["report", "--eval", p["evaluation"], "--analysis", p["analysis"], "--out",
                    p["report"], "--force"], str(Path(p["report"]) / "index.html"),
                   ["evaluate", "analyze"]),
    }  # fmt: skip
    for name, (args, output, after) in stages.items():
        if name != "report" and res(name).gpus == 0:
            args.extend(["--device", "cpu"])  # a node's GPUs that SLURM did not give this job
        jobs.append((name, slurm.write_stage(
            job_dir, stage=name, args=[*args, *more(name)], output=output, command=command,
            resources=res(name), after=after,
        )))  # fmt: skip
    return jobs


def check_chain_fits(jobs: Sequence[tuple[str, slurm.SlurmJob]]) -> None:
    """Refuse a chain with a stage that fits no node (``sbatch --test-only``), in one line;
    every stage's submission directory is then removed."""
    import shutil

    try:
        for _, job in jobs:
            slurm.check_fits(job)
    except InputError:
        for _, job in jobs:
            shutil.rmtree(job.directory, ignore_errors=True)
        raise


def submit_chain(
    jobs: Sequence[tuple[str, slurm.SlurmJob]],
    *,
    known: Mapping[str, str] | None = None,
    test: bool = True,
) -> dict[str, str]:
    """Check that every stage fits a node (``sbatch --test-only``), then submit them in
    order, each waiting (``afterok``) for the stages its submission names (``after``).

    Parameters
    ----------
    jobs : sequence of (stage, SlurmJob)
    known : mapping, optional
        Stage -> job id of stages submitted earlier that are still queued or running.
    test : bool
        Check first with ``sbatch --test-only`` (:func:`check_chain_fits`).

    Returns
    -------
    dict
        Stage -> job id.
    """
    if test:
        check_chain_fits(jobs)
    ids = dict(known or {})
    for name, job in jobs:
        record = slurm.read_submission(job.directory)
        upstream = [ids[a] for a in record.get("after", []) if a in ids]
        dependency = slurm_cluster.dependency("afterok", upstream)
        ids[name] = slurm.submit(job, dependency=dependency, test=False)
    return ids


def resubmit_failed(job_dir: str | os.PathLike, *, dry_run: bool = False) -> dict[str, str]:
    """Submit, per submission, a new array of its failed and missing tasks.

    In a chain, a stage waiting on one of them (pending on its dependency, or stuck because
    an upstream task failed) is cancelled and submitted again after the new jobs.

    Returns
    -------
    dict
        What was resubmitted (``finetune``, a model name or a stage) -> new job id (``""``
        with ``dry_run``, which writes, cancels and submits nothing).
    """
    from variformer.slurm_status import job_status

    todo: dict[str, dict] = {}  # submission directory -> {"sub", "keys", "cancel"}
    active: dict[str, str] = {}  # what -> job id that still has tasks queued or running
    redone: set[str] = set()
    for s in job_status(job_dir):  # in submission order: upstream stages first
        sub = s.submission
        behind = s.waiting and bool(redone & set(sub.get("after", ())))
        if s.state in ("failed", "missing") or behind:
            entry = todo.setdefault(sub["directory"], {"sub": sub, "keys": [], "cancel": False})
            entry["keys"].append(s)
            entry["cancel"] |= s.waiting
            redone.add(s.what)
        elif s.state == "running" and sub.get("job_id"):
            active[s.what] = str(sub["job_id"])
    if dry_run:
        return {entry["sub"]["what"]: "" for entry in todo.values()}
    written = [(e["sub"]["what"], _rewrite(e["sub"], e["keys"])) for e in todo.values()]
    check_chain_fits(written)  # before anything is cancelled
    slurm_cluster.cancel([str(e["sub"]["job_id"]) for e in todo.values() if e["cancel"]])
    known = {k: v for k, v in active.items() if k not in redone}
    ids = submit_chain(written, known=known, test=False)
    return {what: ids[what] for what, _ in written}


def _rewrite(sub: dict, keys) -> slurm.SlurmJob:
    """A new submission like ``sub``, of the tasks ``keys`` only."""
    job_dir = Path(sub["directory"]).parent
    res = Resources(**{**sub["resources"], "sbatch": tuple(sub["resources"].get("sbatch", ()))})
    command = sub.get("command") or None
    if sub["kind"] == "finetune":
        return slurm.write_finetune_array(
            job_dir, runs=sub["out"], dataset=sub["dataset"],
            tasks=[(k.gene, int(k.fold)) for k in keys], command=command,
            finetune_args=sub["args"], job_name=sub["job_name"], resources=res,
            template=sub.get("template"), selected=sub.get("selected"), after=sub.get("after", ()),
        )  # fmt: skip
    if sub["kind"] == "baselines":
        return slurm.write_baselines_array(
            job_dir, baselines=sub["out"], dataset=sub["dataset"],
            genes=list(dict.fromkeys(k.gene for k in keys)), folds=sub["folds"],
            model=sub["model"], genes_per_task=sub["genes_per_task"], command=command,
            baselines_args=sub["args"], job_name=sub["job_name"], resources=res,
            template=sub.get("template"), after=sub.get("after", ()),
        )  # fmt: skip
    return slurm.write_stage(
        job_dir, stage=sub["what"], args=sub["args"], output=sub["out"], command=command,
        resources=res, after=sub.get("after", ()),
    )  # fmt: skip
