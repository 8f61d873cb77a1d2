"""The Lightning ``Trainer`` of a fine-tuning run, built from the config in one place.

:func:`build_trainer` wires what the config says into Lightning: precision, epochs, gradient
accumulation and clipping, validation cadence, checkpoints (``best.ckpt`` on a better tune
monitor, ``last.ckpt`` after every epoch), early stopping, CSV/TensorBoard logs, SLURM requeue,
and what the user sees (a progress bar on a terminal, one line per epoch otherwise; Lightning's
start-up chatter silenced). The callbacks it uses, and the checks of checkpoints to resume
from, live here too.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import math
import os
import sys
import time
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint

from core.errors import InputError
from variformer.config import Config
from variformer.interrupts import AtomicCheckpointIO, ExactResume

__all__ = [
    "BatchSeed",
    "EpochLine",
    "WallClock",
    "build_trainer",
    "check_hardware",
    "cluster_environment",
    "in_slurm_job",
    "quiet_lightning",
    "read_checkpoint",
    "resolve_monitor",
    "resolve_precision",
    "resume_checkpoint",
    "resume_point",
]

#: Lightning loggers whose INFO lines are start-up chatter (GPU/TPU lines, tips, "fit stopped")
_CHATTY_LOGGERS = ("lightning.pytorch", "lightning.fabric", "pytorch_lightning", "lightning")


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


def check_hardware(accelerator: Any = "auto", devices: int | str | list = "auto") -> None:
    """Refuse an accelerator this machine lacks, or devices it cannot give, before any work.

    Lightning finds out only when the Trainer is built (after the dataset is read and the run
    directory made) and says so in a traceback; this says it in one line at the start.

    Parameters
    ----------
    accelerator : str
        ``auto``, ``cpu``, ``gpu``, or a Lightning accelerator name (``cuda``, ``mps``,
        ``tpu``); an Accelerator object is left to Lightning.
    devices : int, str or list of int
        A count >= 1 (-1: all), device ids, or ``auto`` (as ``--devices`` is parsed).

    Raises
    ------
    InputError
        An unknown or unavailable accelerator, a device count < 1, or more CUDA devices
        (or a higher device id) than this machine has.
    """
    import torch
    from lightning.pytorch.accelerators import AcceleratorRegistry

    if isinstance(devices, str) and devices.strip().lstrip("-").isdigit():
        devices = int(devices)
    bad_count = isinstance(devices, int) and devices < 1 and devices != -1
    bad_ids = isinstance(devices, list) and (not devices or min(devices) < 0)
    if bad_count or bad_ids or (isinstance(devices, str) and devices != "auto"):
        raise InputError(
            f"--devices must be a count >= 1, device ids (0,1) or auto, got {devices!r}"
        )
    if not isinstance(accelerator, str):
        return
    name = accelerator.lower()
    known = {"auto", "gpu", *AcceleratorRegistry.available_accelerators()}
    if name not in known:
        raise InputError(
            f"unknown --accelerator {accelerator}; choose one of {', '.join(sorted(known))}"
        )
    cuda = torch.cuda.is_available()
    mps = AcceleratorRegistry["mps"]["accelerator"].is_available()
    if name in ("gpu", "cuda") and not cuda and not (name == "gpu" and mps):
        raise InputError(
            f"--accelerator {accelerator}: CUDA is not available here; use --accelerator cpu "
            "(or auto), or run on a machine with a GPU"
        )
    if name not in ("auto", "gpu") and not AcceleratorRegistry[name]["accelerator"].is_available():
        raise InputError(
            f"--accelerator {accelerator} is not available on this machine; use auto, cpu or gpu"
        )
    if cuda and name in ("auto", "gpu", "cuda"):
        n = torch.cuda.device_count()
        wanted = max(devices) + 1 if isinstance(devices, list) else devices
        if isinstance(wanted, int) and wanted > n:
            raise InputError(
                f"--devices {devices}: this machine has {n} CUDA device(s); ask for at most {n}"
            )


def build_trainer(
    config: Config,
    *,
    run_dir: str | Path,
    accelerator: str = "auto",
    devices: int | str | list = "auto",
    strategy: str = "auto",
    callbacks: Sequence[Callback] = (),
    progress: bool | None = None,
    quiet: bool = True,
) -> L.Trainer:
    """A ``lightning.Trainer`` for one fine-tuning run writing into ``run_dir``.

    Parameters
    ----------
    config : Config
        ``training`` settings become Trainer options; ``training.monitor`` drives the
        ``best.ckpt`` checkpoint and early stopping (:func:`resolve_monitor`).
    run_dir : str or Path
        Checkpoints (``best.ckpt``, ``last.ckpt``), ``logs/`` (CSV) and ``tensorboard/``.
    accelerator, devices, strategy
        Passed to the Trainer; ``strategy="ddp"`` means DDP with ``find_unused_parameters``
        (the paper's ``ddp_find_unused_parameters_true``).
    callbacks : sequence of Callback
        Extra callbacks, run after the built-in ones.
    progress : bool, optional
        Progress bars; default: only when stderr is a terminal. Without bars, one line per
        epoch goes to stderr (:class:`EpochLine`).
    quiet : bool, default True
        Silence Lightning's INFO chatter (GPU/TPU lines, tips) and the model summary
        (:func:`quiet_lightning`; changes the ``lightning`` loggers' level for the process).

    Returns
    -------
    lightning.Trainer
        ``trainer.checkpoint_callback`` is the ``best.ckpt`` checkpoint,
        ``trainer.early_stopping_callback`` the early stopping (None if disabled).
    """
    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

    t = config.training
    run_dir = Path(run_dir)
    if progress is None:
        progress = sys.stderr.isatty()
    if quiet:
        _silence_loggers()
    monitor, mode = resolve_monitor(config)
    best = ModelCheckpoint(
        dirpath=run_dir,
        filename="best",
        monitor=monitor,
        mode=mode,
        save_top_k=1,
        auto_insert_metric_name=False,
        enable_version_counter=False,
    )
    # Lightning's save_last rewrites last.ckpt only when a new best is saved; a run killed
    # (OOM, node failure) must resume from its last epoch, so last.ckpt is its own checkpoint
    last = ModelCheckpoint(
        dirpath=run_dir,
        filename="last",
        monitor=None,
        save_top_k=1,
        save_on_train_epoch_end=True,
        enable_version_counter=False,
    )
    every: list[Callback] = [
        BatchSeed(t.seed),
        best,
        last,
        ExactResume(run_dir, accumulate_grad_batches=t.accumulate_grad_batches),
        WallClock(),
    ]
    if t.early_stopping:
        every.append(
            EarlyStopping(monitor=monitor, mode=mode, patience=t.patience, min_delta=t.min_delta)
        )
    if not progress:
        every.append(EpochLine(monitor=monitor, mode=mode))
    loggers: list[Any] = [CSVLogger(run_dir, name="logs")]
    if importlib.util.find_spec("tensorboard") or importlib.util.find_spec("tensorboardX"):
        loggers.append(TensorBoardLogger(run_dir, name="tensorboard"))
    plugins = [cluster_environment(), AtomicCheckpointIO()]
    return L.Trainer(
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
        callbacks=[*every, *callbacks],
        logger=loggers,
        plugins=plugins,
        default_root_dir=run_dir,
        use_distributed_sampler=False,  # our samplers shard by rank themselves
        enable_progress_bar=bool(progress),
        enable_model_summary=not quiet,
        log_every_n_steps=10,
        num_sanity_val_steps=0,
    )


#: the start of Lightning's hint (``SLURMEnvironment._validate_srun_used``), matched exactly
_SRUN_HINT = r"The `srun` command is available on your system but is not used\."


def in_slurm_job(environ: Any = None) -> bool:
    """True inside a SLURM job step: ``SLURM_JOB_ID`` and ``SLURM_NTASKS`` set, and the job is
    not an interactive shell (job name ``bash`` or ``interactive``, as Lightning's rule)."""
    env = os.environ if environ is None else environ
    return (
        "SLURM_JOB_ID" in env
        and "SLURM_NTASKS" in env
        and env.get("SLURM_JOB_NAME") not in ("bash", "interactive")
    )


def cluster_environment() -> Any:
    """Lightning's cluster environment for this process, chosen here and not by Lightning.

    Lightning's own order, with two changes: torchrun first (it can run inside SLURM), then
    ``SLURMEnvironment(auto_requeue=False)`` inside a SLURM job step, then LSF and MPI when
    detected, else ``LightningEnvironment``. Requeueing is not Lightning's: its SIGUSR1 handler
    saves an ``hpc_ckpt_*`` mid-step, which does not resume exactly;
    :class:`variformer.interrupts.ExactResume` stops at a step boundary and requeues. And
    Lightning's SLURM probe warns on any machine with ``srun`` on PATH (every cluster
    login node) that ``srun`` is not used; :func:`in_slurm_job` asks the same question without
    that hint, so it stays out of the logs of runs outside a job.
    """
    from lightning.fabric.plugins.environments import (
        LightningEnvironment,
        LSFEnvironment,
        MPIEnvironment,
        SLURMEnvironment,
        TorchElasticEnvironment,
    )

    if TorchElasticEnvironment.detect():
        return TorchElasticEnvironment()
    if in_slurm_job():
        return SLURMEnvironment(auto_requeue=False)
    for kind in (LSFEnvironment, MPIEnvironment):
        if kind.detect():
            return kind()
    return LightningEnvironment()


def _silence_loggers() -> None:
    for name in _CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


@contextlib.contextmanager
def quiet_lightning(quiet: bool = True) -> Iterator[None]:
    """Around ``trainer.fit``: hide Lightning's INFO chatter and expected warnings.

    Hidden: deprecation warnings from the libraries (not ours to fix), the warnings about
    ``num_workers`` / ``log_every_n_steps`` (our choices), the non-empty checkpoint
    directory warning (a partial run directory holds config.yaml and, resuming, checkpoints),
    and, outside a SLURM job, Lightning's "srun is available but not used" hint: its
    checkpoint connector probes SLURM again on every fresh ``fit``, whatever environment
    :func:`cluster_environment` chose (inside a job step ``srun`` is used and it never fires).
    """
    if quiet:
        _silence_loggers()
    with warnings.catch_warnings():
        if quiet:
            for category in (DeprecationWarning, FutureWarning, PendingDeprecationWarning):
                warnings.filterwarnings("ignore", category=category)
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        warnings.filterwarnings("ignore", message=".*log_every_n_steps.*")
        warnings.filterwarnings("ignore", message="Checkpoint directory .* exists and is not empty")
        if not in_slurm_job():
            warnings.filterwarnings("ignore", message=_SRUN_HINT)
        yield


# ---------------------------------------------------------------- checkpoints


def resume_checkpoint(work_dir: Path) -> Path | None:
    """``last.ckpt``, the one checkpoint a run resumes from (written atomically at each epoch
    end and at a stop on a signal, :mod:`variformer.interrupts`), if any. Lightning's
    ``hpc_ckpt_*`` of older versions are not used: they were saved mid-step."""
    path = work_dir / "last.ckpt"
    return path if path.is_file() else None


def resume_point(work_dir: Path) -> tuple[Path | None, float]:
    """The checkpoint to resume from (checked readable) and the wall time already spent."""
    resume = resume_checkpoint(work_dir)
    if resume is None:
        return None, 0.0
    state = read_checkpoint(
        resume,
        advice=f"delete it to resume from an older checkpoint, or delete {work_dir} to start over",
    )
    if (work_dir / "best.ckpt").is_file():
        read_checkpoint(work_dir / "best.ckpt", advice=f"delete {work_dir} to start over")
    return resume, float(state.get("callbacks", {}).get("WallClock", {}).get("elapsed_s", 0.0))


def read_checkpoint(path: Path, *, advice: str) -> dict:
    """A checkpoint's dict (memory-mapped); a corrupt or truncated file is one clear line."""
    import torch

    try:
        # weights_only: tensors and plain containers only, so a tampered file cannot run code
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as err:  # truncated zips, garbage and foreign files raise many types
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise InputError(
            f"checkpoint {path} is corrupt or truncated ({reason}); {advice}"
        ) from None
    if not isinstance(state, dict) or "state_dict" not in state:
        raise InputError(f"{path} is not a Lightning checkpoint; {advice}")
    return state


# ---------------------------------------------------------------- callbacks


class BatchSeed(Callback):
    """Seed torch, numpy and random before every training batch from (seed, epoch, batch, rank).

    Dropout and anything else random in a step then depends only on the seed and where the step
    is (the samplers already shuffle by ``set_epoch``), not on what ran before it in this
    process (data-loader set-up, validation, a resume): a run killed at any point and resumed
    from its last epoch's checkpoint trains exactly as the uninterrupted run did (on CPU, bit
    for bit; ``tests/test_finetune.py`` checks it).
    """

    def __init__(self, seed: int) -> None:
        self.seed = int(seed)

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        import random

        import numpy as np
        import torch

        where = [self.seed, trainer.current_epoch, batch_idx, trainer.global_rank]
        value = int(np.random.SeedSequence(where).generate_state(1)[0])
        random.seed(value)
        np.random.seed(value)  # noqa: NPY002 (the legacy global state is what libraries draw from)
        torch.manual_seed(value)  # also every CUDA device


class WallClock(Callback):
    """Training wall time accumulated across resumed sessions (kept in checkpoints)."""

    def __init__(self) -> None:
        self.before_s = 0.0
        self.start = time.monotonic()

    @property
    def state_key(self) -> str:
        return "WallClock"

    def elapsed_s(self) -> float:
        return self.before_s + time.monotonic() - self.start

    def state_dict(self) -> dict:
        return {"elapsed_s": self.elapsed_s()}

    def load_state_dict(self, state_dict: dict) -> None:
        self.before_s = float(state_dict.get("elapsed_s", 0.0))


class EpochLine(Callback):
    """One line per epoch on stderr (instead of progress bars in logs): losses and monitor."""

    def __init__(self, *, monitor: str, mode: str = "max", stream: Any = None) -> None:
        self.monitor = monitor
        self.mode = mode
        self.stream = stream
        self.start = time.monotonic()

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.start = time.monotonic()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.global_rank != 0 or trainer.sanity_checking:
            return
        m = trainer.callback_metrics
        parts = [f"epoch {trainer.current_epoch + 1}/{trainer.max_epochs}"]
        for key in ("train_loss_epoch", "tune_loss", self.monitor):
            if key in m and key not in {p.split(" ")[0] for p in parts}:
                value = float(m[key])
                parts.append(f"{key} {value:.4g}" if math.isfinite(value) else f"{key} nan")
        # the best.ckpt callback runs after this one (Lightning puts checkpoints last), so its
        # best_model_score is still the previous epoch's: fold this epoch's value in here
        ckpt = trainer.checkpoint_callback
        best = getattr(ckpt, "best_model_score", None)
        best = None if best is None else float(best)
        if self.monitor in m and math.isfinite(now := float(m[self.monitor])):
            better = best is None or (now > best if self.mode == "max" else now < best)
            best = now if better else best
        if best is not None:
            parts.append(f"best {best:.4g}")
        parts.append(f"{time.monotonic() - self.start:.1f} s")
        print(", ".join(parts), file=self.stream or sys.stderr, flush=True)
