"""``variformer slurm all``: the whole workflow as one chain of SLURM jobs
(:mod:`variformer.slurm_chain`): baselines -> select-genes -> finetune -> evaluate -> ism ->
analyze -> report, each stage on its own resources and waiting for the stages it reads."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from core.errors import InputError
from variformer.commands._args import add_gene_arguments, genes_from_args
from variformer.commands._slurm_args import (
    RESOURCE_KEYS,
    add_finetune_model_arguments,
    add_resource_arguments,
    add_submit_arguments,
    finetune_task_args,
    resources_from_args,
)

STAGE_NAMES = ("baselines", "elastic_net", "lasso", "ridge", "select-genes", "finetune",
               "evaluate", "ism", "analyze", "report")  # fmt: skip


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``variformer slurm all``."""
    p.add_argument("--dataset", required=True, help="dataset directory (`variformer prep`)")
    add_gene_arguments(p, what="candidate genes (baselines on all; select-genes picks)")
    p.add_argument("--folds", nargs="+", type=int, default=[0, 1, 2], help="folds (default: 0 1 2)")
    for flag, default, what in (
        ("--baselines", "BL", "baselines directory"),
        ("--selection", "genes", "select-genes output (train_genes.txt, ...)"),
        ("--runs", "runs", "runs root of the fine-tuning"),
        ("--eval", "EVAL", "evaluate output"),
        ("--ism", "ISM", "ISM directory (ISM/variformer.tsv)"),
        ("--analysis", "AN", "analyze output"),
        ("--report", "REPORT", "report output"),
    ):
        p.add_argument(flag, default=default, help=f"{what} (default: {default})")
    p.add_argument(
        "--job-dir", help="job directory: one submission per stage (default: RUNS/slurm)"
    )
    p.add_argument(
        "--models", nargs="+", default=["elastic_net", "ridge"],
        choices=("elastic_net", "lasso", "ridge"), help="linear baselines (elastic_net ridge)",
    )  # fmt: skip
    p.add_argument(
        "--genes-per-task", type=int, default=50, help="genes per baselines task (default 50)"
    )
    p.add_argument(
        "--no-select", dest="select", action="store_false",
        help="fine-tune every gene (no select-genes stage)",
    )  # fmt: skip
    p.add_argument("--ism-fold", type=int, default=0, help="fold whose runs ISM scores (0)")
    add_finetune_model_arguments(p)
    add_resource_arguments(p, gpus_help="GPUs per task of every stage (default 0: CPU)")
    p.add_argument(
        "--stage", action="append", default=[], metavar="STAGE:KEY=VALUE[,KEY=VALUE]",
        help="resources of one stage, e.g. finetune:gpus=1,time=24:00:00,partition=gpu "
        f"(keys: {', '.join(RESOURCE_KEYS)}, sbatch; stages: {', '.join(STAGE_NAMES)}); "
        "the other options are every stage's defaults",
    )  # fmt: skip
    p.add_argument(
        "--args", action="append", default=[], metavar="STAGE=WORDS",
        help="more arguments of one stage's command, as shell words, e.g. "
        "'analyze=--truth cohort/truth.tsv' (stages: baselines, select-genes, evaluate, ism, "
        "analyze, report)",
    )  # fmt: skip
    add_submit_arguments(p, what="runs and fits")
    p.add_argument(
        "overrides", nargs="*", metavar="KEY=VALUE", help="config overrides of every finetune"
    )


def stage_resources(args: argparse.Namespace) -> dict:
    """``{"default": Resources, stage: Resources}`` from the options and ``--stage``."""
    from dataclasses import replace

    base = resources_from_args(args)
    out = {"default": base}
    for spec in args.stage:
        stage, _, pairs = spec.partition(":")
        if stage not in STAGE_NAMES or not pairs:
            raise InputError(
                f"--stage {spec!r}: give STAGE:KEY=VALUE[,KEY=VALUE] with a stage of "
                f"{', '.join(STAGE_NAMES)}"
            )
        values = {}
        for pair in pairs.split(","):
            key, eq, value = pair.partition("=")
            key = key.strip().replace("-", "_")
            if not eq or key not in (*RESOURCE_KEYS, "sbatch"):
                raise InputError(
                    f"--stage {spec!r}: {pair!r} is not KEY=VALUE with a key of "
                    f"{', '.join(RESOURCE_KEYS)}, sbatch"
                )
            if key == "sbatch":
                values["sbatch"] = (*values.get("sbatch", out.get(stage, base).sbatch), value)
            elif key in ("cpus", "gpus", "max_parallel"):
                try:
                    values[key] = int(value)
                except ValueError:
                    raise InputError(f"--stage {spec!r}: {key} must be a number") from None
            else:
                values[key] = value
        out[stage] = replace(out.get(stage, base), **values).check()
    return out


def _stage_args(args: argparse.Namespace) -> dict[str, list[str]]:
    extra: dict[str, list[str]] = {}
    for spec in args.args:
        stage, eq, words = spec.partition("=")
        if not eq or stage not in STAGE_NAMES:
            raise InputError(f"--args {spec!r}: give STAGE=WORDS, e.g. 'analyze=--truth t.tsv'")
        extra.setdefault(stage, []).extend(shlex.split(words))
    return extra


def main(args: argparse.Namespace) -> int:
    """Write (and with ``--submit`` submit) the chain; returns the exit status."""
    from baselines.run import fit_options
    from core.fileio import check_out_apart
    from variformer import slurm_chain, slurm_inputs

    job_dir = args.job_dir or Path(args.runs) / "slurm"
    inputs = {"--dataset": args.dataset, "--genes-file": args.genes_file}
    for flag in ("--runs", "--baselines", "--selection", "--eval", "--ism", "--analysis",
                 "--report", "--job-dir"):  # fmt: skip
        out = job_dir if flag == "--job-dir" else getattr(args, flag[2:])
        check_out_apart(out, inputs, flag=flag)
    if args.parsable and not args.submit:
        raise InputError("--parsable prints the job id of a submission: add --submit")
    genes = genes_from_args(args)
    resources = stage_resources(args)
    finetune_args, pretrained = finetune_task_args(args)
    config = slurm_inputs.task_config(
        args.config, args.overrides, pretrained=pretrained, random_init=args.random_init
    )
    tasks = [(g, int(k)) for g in genes for k in args.folds]
    stale = {"finetune": slurm_inputs.stale_finetune_runs(args.runs, args.dataset, tasks, config)}
    for model in args.models:
        stale[model] = slurm_inputs.stale_baseline_fits(
            args.baselines, args.dataset, genes, args.folds, fit_options(model)
        )
    slurm_inputs.refuse_stale([s for runs in stale.values() for s in runs], force=args.force)
    paths = slurm_chain.ChainPaths(
        baselines=args.baselines, selection=args.selection, runs=args.runs,
        evaluation=args.eval, ism=args.ism, analysis=args.analysis, report=args.report,
    )  # fmt: skip
    options = slurm_chain.ChainOptions(
        models=tuple(args.models), genes_per_task=args.genes_per_task, select=args.select,
        ism_fold=args.ism_fold, finetune_args=tuple(finetune_args), extra=_stage_args(args),
    )  # fmt: skip
    jobs = slurm_chain.write_chain(
        job_dir, dataset=args.dataset, genes=genes, folds=args.folds, paths=paths,
        options=options, resources=resources,
        command=shlex.split(args.task_command) if args.task_command else None,
    )  # fmt: skip
    if args.submit:
        slurm_chain.check_chain_fits(jobs)  # before anything is moved or submitted
    by_stage = dict(jobs)
    for stage, runs in stale.items():
        moved = slurm_inputs.set_aside(runs, by_stage[stage].directory / ".replaced")
        if moved:
            print(f"# {stage}: moved {len(moved)} run(s) made from other inputs to "
                  f"{by_stage[stage].directory / '.replaced'}", file=sys.stderr)  # fmt: skip
    if not args.submit:
        for name, job in jobs:
            print(f"{name}\t{job.script}\t({job.n_tasks} tasks)")
        print(f"# wrote {len(jobs)} stages into {job_dir}; submit them with --submit")
        return 0
    ids = slurm_chain.submit_chain(jobs, test=False)  # checked above
    if args.parsable:
        print(ids[jobs[-1][0]])
        return 0
    for name, job in jobs:
        record = job.directory / "submission.json"
        print(f"{name}\tjob {ids[name]}\t{job.n_tasks} task(s)\t{record.parent}")
    print(f"# watch with: variformer slurm status {job_dir}")
    return 0
