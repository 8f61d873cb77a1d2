"""Fine-tune Enformer on personal genomes of one fold, for one or more genes.

A run follows the run-directory contract (:mod:`core.runs`): it is trained in
``<out>/<gene or gene-set name>/fold<k>.partial/`` and renamed to ``fold<k>/`` when everything
is written. It holds ``best.ckpt`` (best tune monitor), ``last.ckpt`` (the last epoch, written
every epoch), ``metrics.csv`` (per-epoch tune metrics, per-step train loss), ``tensorboard/``
(if installed), ``predictions.tsv`` (tune and test people, :data:`core.tables.PREDICTIONS`),
``summary.json`` and ``config.yaml``. An interrupted run (SIGTERM, SLURM preemption/requeue,
Ctrl-C, or a hard kill) keeps its checkpoints in the partial directory and the same command
resumes from the newest: epoch counter, optimizer state, early-stopping count and best score.

:func:`finetune` reads as its steps: plan the run directory, check a checkpoint to resume,
build the data module, the model, the training system and the trainer, fit, then reload the
best checkpoint, predict the tune and test people, summarize and publish.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import pandas as pd
from lightning.pytorch.callbacks import Callback

from core import manifest, runs
from core.errors import InputError
from core.fileio import output_lock
from core.metrics import gene_metrics, nanmean
from core.tables import empty_predictions, predictions_table, write_predictions
from variformer.config import Config, load_config
from variformer.finetune_setup import (
    apply_model_options,
    build_datamodule,
    build_model,
    build_system,
    with_resolved_haplotypes,
)
from variformer.system import TrainingDiverged
from variformer.trainer import (
    build_trainer,
    check_hardware,
    quiet_lightning,
    read_checkpoint,
    resolve_monitor,
    resume_point,
)

if TYPE_CHECKING:
    from data_prep.dataset import GeneDatasetLike

__all__ = [
    "FinetuneResult",
    "build_datamodule",
    "build_model",
    "build_system",
    "finetune",
    "with_resolved_haplotypes",
]


class FinetuneResult(NamedTuple):
    """What :func:`finetune` produced (on non-zero DDP ranks ``summary`` is empty)."""

    run_dir: Path
    best_checkpoint: Path
    summary: dict
    predictions: pd.DataFrame  # sample, gene, split, observed, predicted
    skipped: bool = False  # a finished run from the same inputs, returned untrained


def finetune(
    dataset: str | Path | GeneDatasetLike,
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
    skip_finished: bool = False,
    callbacks: Sequence[Any] = (),
    progress: bool | None = None,
) -> FinetuneResult:
    """Fine-tune a Variformer on ``genes`` with the people of cross-validation ``fold``.

    Parameters
    ----------
    dataset : str, Path or GeneDatasetLike
        A directory written by ``variformer prep``, or an opened dataset
        (:class:`data_prep.GeneDatasetLike`).
    genes : sequence of str
        Train genes; one gene gives a single-gene model, several a multi-gene model.
    fold : int
        Cross-validation fold of the dataset's splits.
    config : Config, optional
        Defaults to the paper's (:func:`variformer.config.load_config`).
    out : str or Path
        The runs root: the run is ``<out>/<name>/fold<fold>``.
    name : str, optional
        Run name for gene sets (default: the gene, or ``<n>genes-<hash>``).
    pretrained : str, optional
        Hub id or local directory of Enformer weights; overrides ``config.model.pretrained``.
    random_init : bool
        Start from random weights (``config.model.hparams``; empty = full-size Enformer).
    accelerator, devices, strategy
        Passed to ``lightning.Trainer`` (see :func:`variformer.trainer.build_trainer`).
    force : bool
        Replace a finished run directory.
    skip_finished : bool
        A finished run made from the same inputs (dataset parts, genes, fold, config) is
        returned as it is, untrained; one made from other inputs is refused (what a SLURM
        array task, requeued or resubmitted, needs).
    callbacks : sequence of lightning Callbacks
        Extra callbacks (e.g. for monitoring).
    progress : bool, optional
        Progress bars (default: only when stderr is a terminal; otherwise one line per epoch).

    Returns
    -------
    FinetuneResult

    Raises
    ------
    InputError
        On a finished run without ``force``, an output location that cannot be written,
        unknown genes, too few people, bad options, an accelerator or devices this machine
        lacks (:func:`variformer.trainer.check_hardware`), unreadable weights or a corrupt
        checkpoint.
    """
    from lightning.fabric.utilities.rank_zero import rank_zero_only

    started = time.monotonic()
    check_hardware(accelerator, devices)
    config = apply_model_options(
        config or load_config(), pretrained=pretrained, random_init=random_init
    )
    genes = list(dict.fromkeys(genes))
    finished = runs.run_path(out, runs.run_name(genes, name=name), fold)
    if skip_finished and not force and (finished / runs.SUMMARY).is_file():
        dm = build_datamodule(dataset, genes=genes, fold=fold, config=config)
        dm.setup("fit")
        config = with_resolved_haplotypes(config, dm)
        manifest.check_inputs(
            finished, _run_inputs(dm, genes, fold, config),
            advice="pass --force to train it again on the current inputs",
        )  # fmt: skip
        run = runs.read_run(finished)
        model = runs.model_file(finished)
        return FinetuneResult(finished, model, run.summary, run.predictions, skipped=True)
    paths = runs.plan_run(out, runs.run_name(genes, name=name), fold, force=force)
    resume, previous_s = resume_point(paths.partial)
    is_rank_zero = rank_zero_only.rank == 0  # DDP children re-run this function too

    import lightning as L

    L.seed_everything(config.training.seed, workers=True, verbose=False)
    dm = build_datamodule(dataset, genes=genes, fold=fold, config=config)
    dm.setup("fit")  # fail on unknown genes / missing people before building the model
    config = with_resolved_haplotypes(config, dm)  # what the run records, and its readers read
    inputs = _run_inputs(dm, genes, fold, config)
    if force:
        resume, previous_s = None, 0.0  # --force starts the run again, from scratch
    elif (paths.partial / manifest.FAILED).is_file():
        reason = json.loads((paths.partial / manifest.FAILED).read_text()).get("reason", "")
        raise InputError(f"{paths.partial} stopped as failed ({reason}); re-run it with --force")
    elif resume is not None:
        # a half-done run continues only on the inputs it started with: a rebuilt dataset
        # (new splits would put test people in training) or a changed config is refused
        manifest.check_inputs(
            paths.partial, inputs, advice="pass --force to start the run again from scratch"
        )
    model = build_model(config)
    with contextlib.ExitStack() as stack:
        # only now that the inputs and weights are known to be good does the run directory appear
        if is_rank_zero:
            # one writer per run: a second process on the same run is refused, not mixed in
            paths.final.parent.mkdir(parents=True, exist_ok=True)
            stack.enter_context(output_lock(paths.final))
            if force and paths.resuming:
                shutil.rmtree(paths.partial)  # its checkpoints belong to the run being replaced
            runs.open_partial(paths)
            manifest.record_inputs(paths.partial, inputs)
            runs.write_config(paths.partial, config.to_dict(), resuming=resume is not None)
        trained = paths.partial / TRAINED
        if trained.is_file() and resume is None:
            trained.unlink()  # a marker without its checkpoint means nothing
        # a run whose training had ended (and was stopped while predicting) only predicts
        done = [_AlreadyTrained()] if trained.is_file() else []
        trainer = build_trainer(
            config,
            run_dir=paths.partial,
            accelerator=accelerator,
            devices=devices,
            strategy=strategy,
            callbacks=[*done, *callbacks],
            progress=progress,
        )
        with quiet_lightning():
            try:
                trainer.fit(
                    build_system(model, dm, config),
                    datamodule=dm,
                    ckpt_path=str(resume) if resume else None,
                    weights_only=True,  # tensors and plain containers only: no code from a file
                )
            except TrainingDiverged as err:
                # the run ends as failed, its reason on record; its checkpoints are not resumed
                manifest.write_failure(paths.partial, str(err))
                raise InputError(
                    f"{err}; the run stopped as failed (see {paths.partial / manifest.FAILED}): "
                    "lower training.learning_rate (or clip gradients harder) and re-run with --force"
                ) from None

        if is_rank_zero:
            trained.write_text("training ended; what remains is predicting and publishing\n")
        best = _best_checkpoint(trainer, paths.partial)
        if trainer.global_rank != 0:
            return FinetuneResult(paths.final, paths.final / best.name, {}, empty_predictions())
        best_epoch = int(read_checkpoint(best, advice=_AT_END).get("epoch", -1))
        predictions = predict_tune_and_test(_load_model(best), dm, config=config)
        summary = _summary(
            predictions,
            dm=dm,
            trainer=trainer,
            config=config,
            dataset=dataset,
            name=paths.final.parent.name,
            fold=fold,
            best_epoch=best_epoch,
            wall_time_s=previous_s + time.monotonic() - started,
        )
        # what the run's weights are (a result cached from them, e.g. ISM, is keyed by it)
        summary["model_sha256"] = runs.model_checksum(paths.partial)
        # full precision: values round-trip exactly, so metrics recomputed from the file match summary.json
        write_predictions(predictions, paths.partial / runs.PREDICTIONS)
        _merge_metrics(paths.partial)
        runs.write_summary(paths.partial, summary)
        runs.publish_run(paths, force=force)
        return FinetuneResult(paths.final, paths.final / best.name, summary, predictions)


# ---------------------------------------------------------------- the steps

#: written in the partial run directory when training has ended: a run stopped after it (while
#: predicting) resumes by predicting from its checkpoints, not by training more epochs
TRAINED = "trained"


class _AlreadyTrained(Callback):
    """Ends ``fit`` before its first epoch: training had ended already."""

    def on_train_start(self, trainer, pl_module) -> None:
        trainer.should_stop = True


def _run_inputs(dm, genes: Sequence[str], fold: int, config: Config) -> dict:
    """What a run is made from (``inputs.json``): dataset fingerprints, genes, fold, config."""
    return {
        "dataset": manifest.dataset_fingerprints(dm.ds),
        "genes": list(genes),
        "fold": int(fold),
        "config": config.to_dict(),
    }


def predict_tune_and_test(model, dm, *, config: Config, device=None) -> pd.DataFrame:
    """The run's predictions table: tune and test people of every gene (personal genomes).

    Returns
    -------
    pd.DataFrame
        :data:`core.tables.PREDICTIONS`; split-major, then gene, then people in
        split order.
    """
    from variformer.predict import predict_people

    d = config.data
    frames = []
    for split in ("tune", "test"):
        people = {gene: dm.people(gene, split) for gene in dm.all_genes}
        pred = predict_people(
            model,
            dm.ds,
            dm.all_genes,
            people,
            seq_len=d.seq_len,
            batch_size=d.eval_batch_size or d.batch_size,
            device=device,
            haplotypes=d.haplotypes is True,
        )
        observed = [dm.expression[g].loc[s] for g, s in zip(pred["gene"], pred["sample"])]
        frames.append(
            predictions_table(
                list(pred["sample"]),
                gene=list(pred["gene"]),
                split=split,
                observed=observed,
                predicted=pred["predicted"],
            )
        )
    return pd.concat(frames, ignore_index=True)


def _summary(
    predictions, *, dm, trainer, config, dataset, name, fold, best_epoch, wall_time_s
) -> dict:
    """``summary.json``: per-gene metrics from the predictions, training facts from the trainer."""
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
    best_score = trainer.checkpoint_callback.best_model_score
    stopping = trainer.early_stopping_callback
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
        "haplotypes": config.data.haplotypes is True,  # issue #24: the model's input mode
        "monitor": resolve_monitor(config)[0],
        "best_score": float(best_score) if best_score is not None else None,
        "best_epoch": best_epoch,
        "epochs": int(trainer.current_epoch),  # completed epochs
        "stopped_early": bool(stopping is not None and stopping.stopped_epoch > 0),
        "wall_time_s": round(float(wall_time_s), 3),
        "config": config.to_dict(),
        **runs.provenance({"dataset": dataset}),
    }


# ---------------------------------------------------------------- after training


_AT_END = "the disk may be full or failing: free space, then re-run the same command (it resumes)"


def _best_checkpoint(trainer, work_dir: Path) -> Path:
    best = trainer.checkpoint_callback.best_model_path
    path = Path(best) if best else work_dir / "last.ckpt"
    if trainer.global_rank == 0 and not path.is_file():
        raise InputError(
            f"training produced no checkpoint in {work_dir}; check training.limit_*_batches"
        )
    return path


def _load_model(best: Path):
    from variformer.model import Variformer

    return Variformer.load(best)


def _merge_metrics(work_dir: Path) -> None:
    """One ``metrics.csv`` from the CSV logs of every (resumed) session, in order."""
    parts = sorted(
        (work_dir / "logs").glob("version_*/metrics.csv"), key=lambda p: int(p.parent.name[8:])
    )
    frames = [pd.read_csv(p) for p in parts if p.stat().st_size > 0]
    if not frames:
        return
    kept: list[pd.DataFrame] = []
    for frame in frames:
        if {"epoch", "step"} <= set(frame.columns) and len(frame):
            # a session redoes what its predecessors logged after its checkpoint (a kill -9
            # loses that work): their rows from its first (epoch, step) on are superseded
            start = min(zip(frame["epoch"].fillna(-1), frame["step"].fillna(-1)))
            kept = [
                k[[(e, st) < start for e, st in zip(k["epoch"].fillna(-1), k["step"].fillna(-1))]]
                if {"epoch", "step"} <= set(k.columns)
                else k
                for k in kept
            ]
        kept.append(frame)
    pd.concat(kept, ignore_index=True).to_csv(work_dir / "metrics.csv", index=False)
