"""``variformer finetune``: fine-tune Enformer on personal genomes of one fold, for one or more genes.

A run lives in ``<out>/<gene or gene-set name>/fold<k>/`` and holds ``best.ckpt``, ``last.ckpt``,
``metrics.csv`` (per-epoch tune metrics, per-step train loss), ``tensorboard/`` (if installed),
``predictions.tsv`` (sample, gene, split, observed, predicted for tune and test people),
``summary.json`` and ``config.yaml``. Training happens in ``fold<k>.partial/``, renamed when
everything is written, so a run directory is always complete. An interrupted run (SIGTERM,
SLURM preemption/requeue, Ctrl-C) leaves ``last.ckpt`` in the partial directory and the same
command resumes from it: epoch counter, optimizer state, early-stopping and best score.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from data_prep.listfile import read_list
from variformer import runs
from variformer.config import Config, load_config
from variformer.errors import InputError
from variformer.metrics import empty_predictions, gene_metrics, nanmean, write_predictions


class FinetuneResult(NamedTuple):
    """What :func:`finetune` produced (on non-zero DDP ranks ``summary`` is empty)."""

    run_dir: Path
    best_checkpoint: Path
    summary: dict
    predictions: pd.DataFrame  # sample, gene, split, observed, predicted


def finetune(
    dataset: str | Path | Any,
    *,
    genes: Sequence[str],
    fold: int,
    config: Config | None = None,
    out: str | Path = "runs",
    name: str | None = None,
    pretrained: str | None = None,
    random_init: bool = False,
    accelerator: str = "auto",
    devices: int | str | list = "auto",
    strategy: str = "auto",
    force: bool = False,
    callbacks: Sequence[Any] = (),
) -> FinetuneResult:
    """Fine-tune a Variformer on ``genes`` with the people of cross-validation ``fold``.

    Parameters
    ----------
    dataset : str, Path or opened gene dataset
        A directory written by ``variformer prep`` (or an object with the same API).
    genes : sequence of str
        Train genes; one gene gives a single-gene model, several a multi-gene model.
    fold : int
        Cross-validation fold of the dataset's splits.
    config : Config, optional
        Defaults to the paper's (:func:`variformer.config.load_config`).
    out : str or Path
        Parent of the run directory ``<out>/<name>/fold<fold>``.
    name : str, optional
        Run name for gene sets (default: the gene, or ``<n>genes-<hash>``).
    pretrained : str, optional
        Hub id or local directory of Enformer weights; overrides ``config.model.pretrained``.
    random_init : bool
        Start from random weights (``config.model.hparams``; empty = full-size Enformer).
    accelerator, devices, strategy
        Passed to ``lightning.Trainer``; ``strategy="ddp"`` means DDP with
        ``find_unused_parameters=True`` (the paper's ``ddp_find_unused_parameters_true``).
    force : bool
        Replace a finished run directory.
    callbacks : sequence of lightning Callbacks
        Extra callbacks (e.g. for monitoring).

    Returns
    -------
    FinetuneResult

    Raises
    ------
    InputError
        On a finished run without ``force``, unknown genes, too few people, bad options.
    """
    import lightning as L
    import torch
    from lightning.fabric.utilities.rank_zero import rank_zero_only
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
    from lightning.pytorch.plugins.environments import SLURMEnvironment

    from variformer.data import VariformerDataModule
    from variformer.system import SaveOnInterrupt, VariformerSystem, WallClock

    started = time.monotonic()
    config = _apply_model_options(
        config or load_config(), pretrained=pretrained, random_init=random_init
    )
    genes = list(dict.fromkeys(genes))
    paths = runs.plan_run(out, runs.run_name(genes, name=name), fold, force=force)
    final_dir, work_dir = paths.final, paths.partial
    is_rank_zero = rank_zero_only.rank == 0  # DDP children re-run this function too
    resume = _resume_checkpoint(work_dir)

    d, t = config.data, config.training
    L.seed_everything(t.seed, workers=True, verbose=False)
    dm = VariformerDataModule(
        dataset,
        genes=genes,
        fold=fold,
        batch_size=d.batch_size,
        accumulate_grad_batches=t.accumulate_grad_batches,
        train_fraction=d.train_fraction,
        reference_genome=d.reference_genome,
        tune_genes=d.tune_genes,
        seq_len=d.seq_len,
        eval_batch_size=d.eval_batch_size,
        num_workers=d.num_workers,
        seed=t.seed,
    )
    dm.setup("fit")  # fail on unknown genes / missing people before building the model
    model = build_model(config)
    # only now that the inputs and weights are known to be good does the run directory appear
    if is_rank_zero:
        runs.open_partial(paths)
        runs.write_config(work_dir, config.to_dict(), resuming=resume is not None)
    system = VariformerSystem(
        model,
        gene_names=dm.genes,
        heldout_gene_names=dm.tune_genes,
        learning_rate=t.learning_rate,
        weight_decay=t.weight_decay,
        # the pairwise term needs people of one gene in a batch; reference batches mix genes
        alpha=1.0 if d.reference_genome else t.alpha,
    )

    monitor, mode = resolve_monitor(config)
    checkpoint = ModelCheckpoint(
        dirpath=work_dir,
        filename="best",
        monitor=monitor,
        mode=mode,
        save_top_k=1,
        save_last=True,
        auto_insert_metric_name=False,
        enable_version_counter=False,
    )
    all_callbacks = [checkpoint, SaveOnInterrupt(work_dir / "last.ckpt"), WallClock(), *callbacks]
    if t.early_stopping:
        all_callbacks.append(
            EarlyStopping(monitor=monitor, mode=mode, patience=t.patience, min_delta=t.min_delta)
        )
    loggers = [CSVLogger(work_dir, name="logs")]
    if importlib.util.find_spec("tensorboard") or importlib.util.find_spec("tensorboardX"):
        loggers.append(TensorBoardLogger(work_dir, name="tensorboard"))
    plugins = [SLURMEnvironment(auto_requeue=True)] if SLURMEnvironment.detect() else None
    trainer = L.Trainer(
        accelerator=accelerator,
        devices=devices,
        strategy="ddp_find_unused_parameters_true" if strategy == "ddp" else strategy,
        precision=resolve_precision(config, accelerator=accelerator),
        max_epochs=t.max_epochs,
        accumulate_grad_batches=t.accumulate_grad_batches,
        gradient_clip_val=t.gradient_clip_val,
        gradient_clip_algorithm="norm",
        check_val_every_n_epoch=t.check_val_every_n_epoch,
        limit_train_batches=t.limit_train_batches,
        limit_val_batches=t.limit_val_batches,
        callbacks=all_callbacks,
        logger=loggers,
        plugins=plugins,
        default_root_dir=work_dir,  # where Lightning's SLURM requeue writes hpc_ckpt_*.ckpt
        use_distributed_sampler=False,  # our samplers shard by rank themselves
        enable_progress_bar=True,
        log_every_n_steps=10,
        num_sanity_val_steps=0,
    )
    previous_s = _elapsed_in(resume)
    with warnings.catch_warnings():
        # we choose num_workers ourselves (data.num_workers); tiny test runs have few batches
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        warnings.filterwarnings("ignore", message=".*log_every_n_steps.*")
        # the partial run directory holds config.yaml (and, resuming, checkpoints) by design
        warnings.filterwarnings("ignore", message="Checkpoint directory .* exists and is not empty")
        trainer.fit(system, datamodule=dm, ckpt_path=str(resume) if resume else None)

    best = (
        Path(checkpoint.best_model_path) if checkpoint.best_model_path else work_dir / "last.ckpt"
    )
    if trainer.global_rank != 0:
        return FinetuneResult(final_dir, final_dir / best.name, {}, empty_predictions())
    if not best.is_file():
        raise InputError(
            f"training produced no checkpoint in {work_dir}; check training.limit_*_batches"
        )
    state = torch.load(best, map_location="cpu", weights_only=False)
    model.load_state_dict({k.removeprefix("model."): v for k, v in state["state_dict"].items()})
    predictions = predict_people(model, dm, batch_size=d.eval_batch_size or d.batch_size)
    last = torch.load(work_dir / "last.ckpt", map_location="cpu", weights_only=False)
    summary = _summary(
        predictions,
        dm=dm,
        config=config,
        dataset=dataset,
        fold=fold,
        name=final_dir.parent.name,
        monitor=monitor,
        best_state=state,
        last_state=last,
        # completed epochs; last.ckpt's own "epoch" is already incremented when it was written at train end
        epochs=trainer.current_epoch,
        wall_time_s=previous_s + time.monotonic() - started,
    )
    # full precision: values round-trip exactly, so metrics recomputed from the file match summary.json
    write_predictions(predictions, work_dir / runs.PREDICTIONS)
    _merge_metrics(work_dir)
    runs.write_summary(work_dir, summary)
    runs.publish_run(paths, force=force)
    return FinetuneResult(final_dir, final_dir / best.name, summary, predictions)


def build_model(config: Config):
    """The network to fine-tune: pretrained Enformer weights, or random ones from hparams."""
    from variformer.model import Variformer

    m = config.model
    if m.pretrained:
        return Variformer.from_pretrained(
            m.pretrained, freeze_trunk=m.freeze_trunk, train_batchnorm=m.train_batchnorm
        )
    return Variformer.from_hparams(
        freeze_trunk=m.freeze_trunk, train_batchnorm=m.train_batchnorm, **m.hparams
    )


def resolve_monitor(config: Config) -> tuple[str, str]:
    """(metric, mode) for checkpointing and early stopping; ``auto`` follows the paper."""
    monitor = config.training.monitor
    if monitor == "auto":
        monitor = "tune_loss" if config.data.reference_genome else "tune_r2_mean"
    return monitor, "min" if monitor == "tune_loss" else "max"


def resolve_precision(config: Config, *, accelerator: str = "auto") -> str:
    """``auto``: bf16-mixed on CUDA (the paper's), 32-bit on CPU."""
    precision = config.training.precision
    if precision != "auto":
        return precision
    import torch

    on_cuda = torch.cuda.is_available() and accelerator in ("auto", "gpu", "cuda")
    return "bf16-mixed" if on_cuda else "32-true"


def predict_people(model, dm, *, batch_size: int, chunk: int = 256) -> pd.DataFrame:
    """Predictions for the tune and test people of every gene (personal genomes).

    Returns
    -------
    pd.DataFrame
        Columns sample, gene, split, observed, predicted; one row per gene x person.
    """
    from variformer.predict import predict

    crop0 = int(dm.ds.seq_len) // 2 - (dm.seq_len or int(dm.ds.seq_len)) // 2
    crop = slice(crop0, crop0 + (dm.seq_len or int(dm.ds.seq_len)))
    frames = []
    for split in ("tune", "test"):
        for gene in dm.all_genes:
            people = dm.people(gene, split)
            preds = [
                predict(
                    model,
                    dm.ds.sequences(gene, people[i : i + chunk])[:, crop],
                    batch_size=batch_size,
                )
                for i in range(0, len(people), chunk)
            ]
            frames.append(
                pd.DataFrame(
                    {
                        "sample": people,
                        "gene": gene,
                        "split": split,
                        "observed": dm.expression[gene].loc[people].to_numpy(np.float64),
                        "predicted": np.concatenate(preds).astype(np.float64) if preds else [],
                    }
                )
            )
    return pd.concat(frames, ignore_index=True) if frames else empty_predictions()


def _summary(
    predictions,
    *,
    dm,
    config,
    dataset,
    name,
    fold,
    monitor,
    best_state,
    last_state,
    epochs,
    wall_time_s,
):
    metrics = gene_metrics(predictions, genes=dm.all_genes, splits=("tune", "test"))
    by_key = {(m.gene, m.split): m for m in metrics.itertuples(index=False)}
    heldout = set(dm.tune_genes)
    per_gene = {}
    for gene in dm.all_genes:
        entry = {"heldout": gene in heldout, "n_train": len(dm.people(gene, "train"))}
        for split in ("tune", "test"):
            m = by_key[(gene, split)]
            entry.update({f"n_{split}": int(m.n), f"{split}_r2": m.r2, f"{split}_pcc": m.pcc})
        per_gene[gene] = entry
    train_genes = [per_gene[g] for g in dm.genes]
    callbacks = last_state.get("callbacks", {})
    stopped = next(
        (v.get("stopped_epoch", 0) for k, v in callbacks.items() if k.startswith("EarlyStopping")),
        0,
    )
    best_score = next(
        (
            v.get("best_model_score")
            for k, v in callbacks.items()
            if k.startswith("ModelCheckpoint")
        ),
        None,
    )
    return {
        "kind": "finetune",
        "name": name,
        "dataset": str(dataset) if isinstance(dataset, (str, Path)) else type(dataset).__name__,
        "fold": fold,
        "genes": list(dm.genes),
        "heldout_genes": list(dm.tune_genes),
        "test_r2_mean": nanmean(g["test_r2"] for g in train_genes),
        "test_pcc_mean": nanmean(g["test_pcc"] for g in train_genes),
        "per_gene": per_gene,
        "monitor": monitor,
        "best_score": float(best_score) if best_score is not None else None,
        "best_epoch": int(best_state.get("epoch", -1)),
        "epochs": int(epochs),
        "stopped_early": bool(stopped),
        "wall_time_s": round(float(wall_time_s), 3),
        "config": config.to_dict(),
        **runs.provenance({"dataset": dataset}),
    }


def _apply_model_options(config: Config, *, pretrained: str | None, random_init: bool) -> Config:
    if pretrained and random_init:
        raise InputError("give either --pretrained or --random-init, not both")
    if pretrained or random_init:
        model = dataclasses.replace(
            config.model, pretrained=None if random_init else str(pretrained)
        )
        config = dataclasses.replace(config, model=model)
    return config


def _resume_checkpoint(work_dir: Path) -> Path | None:
    """The newest of ``last.ckpt`` and Lightning's SLURM ``hpc_ckpt_*.ckpt``, if any."""
    candidates = [
        p for p in [work_dir / "last.ckpt", *work_dir.glob("hpc_ckpt_*.ckpt")] if p.is_file()
    ]
    return max(candidates, key=lambda p: p.stat().st_mtime) if candidates else None


def _elapsed_in(checkpoint: Path | None) -> float:
    if checkpoint is None:
        return 0.0
    import torch

    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    return float(state.get("callbacks", {}).get("WallClock", {}).get("elapsed_s", 0.0))


def _merge_metrics(work_dir: Path) -> None:
    """One ``metrics.csv`` from the CSV logs of every (resumed) session, in order."""
    parts = sorted(
        (work_dir / "logs").glob("version_*/metrics.csv"), key=lambda p: int(p.parent.name[8:])
    )
    frames = [pd.read_csv(p) for p in parts if p.stat().st_size > 0]
    if frames:
        pd.concat(frames, ignore_index=True).to_csv(work_dir / "metrics.csv", index=False)


# ---------------------------------------------------------------- command line


def _devices(value: str) -> int | str | list:
    if value.isdigit():
        return int(value)
    if "," in value:
        return [int(v) for v in value.split(",") if v]
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``variformer finetune``."""
    parser.add_argument(
        "--dataset", required=True, help="dataset directory written by `variformer prep`"
    )
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--gene", help="train one gene (single-gene model)")
    which.add_argument(
        "--genes-file", help="train the genes listed in this file jointly (one per line)"
    )
    parser.add_argument("--fold", type=int, required=True, help="cross-validation fold")
    parser.add_argument(
        "--config", help="YAML config (default: the paper's settings, configs/default.yaml)"
    )
    init = parser.add_mutually_exclusive_group()
    init.add_argument("--pretrained", help="Enformer weights: hub id or local directory")
    init.add_argument("--random-init", action="store_true", help="start from random weights")
    parser.add_argument(
        "--tune-genes-file", help="held-out genes monitored by PCC on the tune people"
    )
    parser.add_argument(
        "--out", default="runs", help="parent of the run directories (default: runs)"
    )
    parser.add_argument("--name", help="run name for a gene set (default: the file's stem)")
    parser.add_argument("--accelerator", default="auto", help="auto, cpu or gpu")
    parser.add_argument(
        "--devices", default="auto", type=_devices, help="number of devices, ids, or auto"
    )
    parser.add_argument(
        "--strategy", default="auto", help="auto, ddp (find unused parameters), ddp_spawn, ..."
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="replace a finished run (an interrupted one always resumes)",
    )
    parser.add_argument(
        "overrides",
        nargs="*",
        metavar="KEY=VALUE",
        help="config overrides, e.g. training.learning_rate=1e-4",
    )


def main(args: argparse.Namespace) -> int:
    """Run ``variformer finetune``; returns the exit status."""
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    overrides = list(args.overrides)
    if args.tune_genes_file:
        overrides.append(
            f"data.tune_genes={json.dumps(read_list(args.tune_genes_file, what='tune genes'))}"
        )
    config = load_config(args.config, overrides=overrides)
    genes = [args.gene] if args.gene else read_list(args.genes_file, what="genes")
    name = args.name or (Path(args.genes_file).stem if args.genes_file else None)
    try:
        result = finetune(
            args.dataset,
            genes=genes,
            fold=args.fold,
            config=config,
            out=args.out,
            name=name,
            pretrained=args.pretrained,
            random_init=args.random_init,
            accelerator=args.accelerator,
            devices=args.devices,
            strategy=args.strategy,
            force=args.force,
        )
    except SIGTERMException:
        print(
            "variformer finetune: stopped by SIGTERM; re-run the same command to resume",
            file=sys.stderr,
        )
        return 143
    if result.summary:
        s = result.summary
        print(
            f"{result.run_dir}: test R2 {s['test_r2_mean']:.3f}, PCC {s['test_pcc_mean']:.3f} "
            f"({len(s['genes'])} gene(s), {s['epochs']} epochs, {s['wall_time_s']:.0f} s)"
        )
    return 0
