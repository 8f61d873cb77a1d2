"""Exact resume from any interruption: SIGTERM, SIGUSR1, Ctrl-C, ``scontrol requeue``, kill -9.

A run stopped at any moment and started again with the same command ends with the same
weights, predictions and metrics as a run that was never stopped (issue #22). Three pieces:

- :class:`ExactResume` takes over SIGTERM, SIGUSR1 and SIGINT while training. A signal only
  *asks* to stop; training stops at the next optimizer-step boundary (never between the
  micro-batches of one accumulated step, whose gradients a checkpoint does not hold), writes
  ``last.ckpt`` there and raises :class:`TrainingInterrupted`. The checkpoint holds the
  epoch's position (the sampler's ``state_dict``, :class:`variformer.data.ResumableDataLoader`):
  the resumed run skips the micro-batches already trained on. A request that comes during
  validation stops at the start of the next epoch, after the epoch's own ``last.ckpt``; one
  that comes after the last epoch lets the run finish. Under DDP the ranks agree on the step
  to stop at (the request is all-reduced at each step boundary). Inside a SLURM job, SIGUSR1
  (``#SBATCH --signal=SIGUSR1@90``, the time limit is near) also requeues the task.
- Randomness does not depend on where a session began: :class:`variformer.trainer.BatchSeed`
  seeds each batch from (seed, epoch, batch, rank), and the sampler's order from (seed, epoch).
- :class:`AtomicCheckpointIO` writes every checkpoint to a temporary file and renames it into
  place, so a kill -9 while writing leaves the previous checkpoint whole. There is one
  checkpoint to resume from, ``last.ckpt`` (Lightning's own SLURM ``hpc_ckpt_*`` are not made).

A kill -9 cannot be caught: the run resumes from the last checkpoint written (the last
step-boundary stop or epoch end), which is a consistent state, so the result is the same.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.plugins.io import TorchCheckpointIO

__all__ = ["AtomicCheckpointIO", "ExactResume", "TrainingInterrupted"]

#: the signals that ask a run to stop and save
SIGNALS = (signal.SIGTERM, signal.SIGUSR1, signal.SIGINT)


class TrainingInterrupted(Exception):
    """Training stopped on a signal after saving a checkpoint the same command resumes from.

    Attributes
    ----------
    signum : int
        The signal that asked to stop.
    checkpoint : Path or None
        The checkpoint written (None when the stop came before the first step).
    """

    def __init__(self, signum: int, checkpoint: Path | None, where: str) -> None:
        self.signum = int(signum)
        self.checkpoint = checkpoint
        name = signal.Signals(signum).name
        saved = f"saved {checkpoint}" if checkpoint else "nothing trained yet"
        super().__init__(f"stopped by {name} {where} ({saved}); the same command resumes it")

    @property
    def exit_code(self) -> int:
        """The shell's code for death by this signal (128 + signum)."""
        return 128 + self.signum


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint writer, but through a temporary file renamed into place."""

    def save_checkpoint(self, checkpoint: dict, path: Any, storage_options: Any = None) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            super().save_checkpoint(checkpoint, tmp, storage_options=storage_options)
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)


class ExactResume(Callback):
    """Stop on a signal at the next optimizer-step boundary, with a checkpoint to resume from.

    Parameters
    ----------
    run_dir : path
        Where ``last.ckpt`` is written.
    accumulate_grad_batches : int
        Micro-batches per optimizer step (a stop falls only after the last one of a step).
    """

    def __init__(self, run_dir: str | Path, *, accumulate_grad_batches: int = 1) -> None:
        self.path = Path(run_dir) / "last.ckpt"
        self.accumulate = int(accumulate_grad_batches)
        self.requested: int | None = None
        self._previous: dict[int, Any] = {}

    # ------------------------------------------------------------ signals

    def _handler(self, signum: int, frame: Any) -> None:
        if self.requested is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: stop now, keep the last checkpoint
        if self.requested is None:
            self.requested = signum
            print(
                f"received {signal.Signals(signum).name}: stopping at the next optimizer step "
                "with a checkpoint",
                file=sys.stderr,
                flush=True,
            )

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # the handlers before the fit, put back at its end (Lightning's are registered later)
        if threading.current_thread() is threading.main_thread():
            self._previous = {sig: signal.getsignal(sig) for sig in SIGNALS}

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # after Lightning registered its own SIGTERM handler (which would end the process at
        # the epoch's end with exit status 0): ours replace it for the training
        if self._previous:
            for sig in SIGNALS:
                signal.signal(sig, self._handler)

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
        self._previous = {}

    # ------------------------------------------------------------ stopping points

    def _agreed(self, trainer: L.Trainer) -> bool:
        """Whether any rank was asked to stop (every rank gets the same answer)."""
        asked = self.requested is not None
        if trainer.world_size > 1:
            return bool(trainer.strategy.reduce_boolean_decision(asked, all=False))
        return asked

    @staticmethod
    def _sampler(trainer: L.Trainer):
        loader = trainer.train_dataloader
        sampler = getattr(loader, "batch_sampler", None)
        return sampler if hasattr(sampler, "position") else None

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        sampler = self._sampler(trainer)
        if sampler is not None:
            sampler.position = (trainer.current_epoch, 0)
        if self._agreed(trainer):
            # the previous epoch's last.ckpt (if any) is where the run resumes
            self._stop(trainer, "before an epoch", None if not self.path.is_file() else self.path)

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
        batch_idx: int,
    ) -> None:  # fmt: skip
        sampler = self._sampler(trainer)
        done = batch_idx + 1
        if sampler is not None:
            sampler.position = (trainer.current_epoch, done)
        step_end = done % self.accumulate == 0
        last = done >= trainer.num_training_batches
        if sampler is None or not step_end or last:
            return  # mid-step, or the epoch's end (its own checkpoint follows validation)
        if self._agreed(trainer):
            trainer.save_checkpoint(self.path)
            where = f"in epoch {trainer.current_epoch} after {done} micro-batches"
            self._stop(trainer, where, self.path)

    def _stop(self, trainer: L.Trainer, where: str, checkpoint: Path | None) -> None:
        signum = self.requested if self.requested is not None else signal.SIGTERM
        if signum == signal.SIGUSR1 and trainer.is_global_zero:
            _requeue()
        raise TrainingInterrupted(signum, checkpoint, where)


def _requeue() -> None:
    """Inside a SLURM job: put this task back in the queue (the time limit is near)."""
    from variformer.trainer import in_slurm_job

    if not in_slurm_job():
        return
    array = os.environ.get("SLURM_ARRAY_JOB_ID")
    job = f"{array}_{os.environ['SLURM_ARRAY_TASK_ID']}" if array else os.environ["SLURM_JOB_ID"]
    result = subprocess.run(["scontrol", "requeue", job], capture_output=True, text=True)
    where = "requeued" if result.returncode == 0 else f"could not requeue ({result.stderr.strip()})"
    print(f"SLURM job {job}: {where}", file=sys.stderr, flush=True)
