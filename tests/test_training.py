"""What the config says reaches the optimizer step; checkpoints survive hard kills and corruption.

Every run here goes through the real ``finetune`` (its Trainer from ``build_trainer`` and its
system from ``build_system``), so removing a setting from either makes a test fail.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch

from core.errors import InputError
from tests.fakes import ROOT, FakeDataset, tiny_config
from variformer import finetune as ft
from variformer.loss import variformer_loss

SEQ_LEN = 512
# no dropout and frozen BatchNorm statistics: the forward pass is deterministic
DETERMINISTIC = (
    "model.hparams.attn_dropout=0.0",
    "model.hparams.pos_dropout=0.0",
    "model.train_batchnorm=false",
)
# learning rate 0: the weights never change, so the tune metric never improves after epoch 0
FROZEN = (*DETERMINISTIC, "training.learning_rate=0.0", "training.weight_decay=0.0")


class _StepSpy(L.Callback):
    """Counts micro-batches and optimizer steps; records the gradient norm each step applies."""

    def __init__(self):
        self.batches = 0
        self.norms = []

    def on_train_start(self, trainer, pl_module):
        optimizer = trainer.optimizers[0]
        step = optimizer.step

        def spied_step(closure=None, **kwargs):
            def closure_then_measure():
                loss = closure()  # forward, backward and (if configured) clipping
                grads = [p.grad.flatten() for p in pl_module.parameters() if p.grad is not None]
                self.norms.append(float(torch.linalg.vector_norm(torch.cat(grads))))
                return loss

            return step(closure=closure_then_measure, **kwargs)

        optimizer.step = spied_step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.batches += 1


def test_gradient_accumulation_and_clipping_reach_the_optimizer_step(tmp_path):
    ds = FakeDataset(genes=("G0",), n_samples=60, seq_len=SEQ_LEN)
    config = tiny_config(
        "training.max_epochs=1",
        "data.batch_size=4",
        "training.accumulate_grad_batches=3",
        "training.gradient_clip_val=1e-4",  # far below any real gradient norm: always clipped
    )
    spy = _StepSpy()
    ft.finetune(ds, genes=["G0"], fold=0, config=config, out=tmp_path, callbacks=[spy])
    n_train = len(ds.split(0)["train"])
    assert spy.batches == n_train // 4 == 12
    assert len(spy.norms) == spy.batches // 3  # one optimizer step per 3 micro-batches
    np.testing.assert_allclose(spy.norms, 1e-4, rtol=1e-3)  # the clipped global norm


@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_training_alpha_reaches_the_loss_that_is_optimized(tmp_path, alpha):
    ds = FakeDataset(genes=("G0",), n_samples=40, seq_len=SEQ_LEN)
    config = tiny_config(
        *DETERMINISTIC,
        "training.max_epochs=1",
        "training.limit_train_batches=2",
        "training.accumulate_grad_batches=1",
        f"training.alpha={alpha}",
    )
    seen = []

    class LossSpy(L.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            x, y, _ = batch
            with torch.no_grad():
                pred = pl_module.model(x)
            self.expected = {a: float(variformer_loss(pred, y, alpha=a)) for a in (0.0, 0.5, 1.0)}

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            seen.append((float(outputs["loss"]), self.expected))

    ft.finetune(ds, genes=["G0"], fold=0, config=config, out=tmp_path, callbacks=[LossSpy()])
    assert len(seen) == 2
    for loss, expected in seen:
        assert loss == pytest.approx(expected[alpha], rel=1e-5)
        other = expected[1.0 - alpha]
        assert abs(loss - other) > 1e-6 * max(1.0, abs(other))  # the two alphas differ here


# ------------------------------------------------------------------ checkpoints

_KILL_SCRIPT = """
import os, signal, sys
import lightning as L
from tests.fakes import FakeDataset, tiny_config
from variformer.finetune import finetune

class KillMidEpoch(L.Callback):
    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.current_epoch == 3 and batch_idx == 1:
            os.kill(os.getpid(), signal.SIGKILL)  # like the OOM killer: no handler runs

ds = FakeDataset(genes=("G0",), n_samples=60, seq_len=512)
finetune(ds, genes=["G0"], fold=0, config=tiny_config(*sys.argv[2:]), out=sys.argv[1],
         callbacks=[KillMidEpoch()], progress=False)
"""


class _RecordStart(L.Callback):
    def on_train_start(self, trainer, pl_module):
        self.epoch = trainer.current_epoch
        self.wait = trainer.early_stopping_callback.wait_count
        self.best = trainer.checkpoint_callback.best_model_score


def test_resume_after_kill_9_mid_epoch_starts_after_the_last_finished_epoch(tmp_path):
    overrides = [*FROZEN, "training.max_epochs=5", "training.patience=10"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", _KILL_SCRIPT, str(tmp_path), *overrides],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == -9, done.stderr[-2000:]
    partial = tmp_path / "G0" / "fold0.partial"
    last = torch.load(partial / "last.ckpt", map_location="cpu", weights_only=False)
    best = torch.load(partial / "best.ckpt", map_location="cpu", weights_only=False)
    assert best["epoch"] == 0  # the metric never improved after epoch 0 ...
    assert last["epoch"] == 2  # ... but last.ckpt is the last finished epoch (0-based 2)

    record = _RecordStart()
    ds = FakeDataset(genes=("G0",), n_samples=60, seq_len=512)  # the same as in the script
    result = ft.finetune(
        ds, genes=["G0"], fold=0, config=tiny_config(*overrides), out=tmp_path, callbacks=[record]
    )
    assert record.epoch == 3  # epochs 0, 1, 2 were done; epoch 3 was killed and is redone
    assert record.wait == 2  # early stopping kept counting (epochs 1 and 2 without improvement)
    assert result.summary["epochs"] == 5 and result.summary["best_epoch"] == 0


def test_stopped_early_is_reported(tmp_path):
    ds = FakeDataset(genes=("G0",), n_samples=40, seq_len=SEQ_LEN)
    config = tiny_config(*FROZEN, "training.max_epochs=20", "training.patience=2")
    result = ft.finetune(ds, genes=["G0"], fold=0, config=config, out=tmp_path)
    # epoch 0 sets the best; epochs 1 and 2 do not improve it: stop after 3 epochs
    assert result.summary["epochs"] == 3 and result.summary["stopped_early"] is True
    full = ft.finetune(
        ds,
        genes=["G0"],
        fold=1,
        config=tiny_config(*FROZEN, "training.max_epochs=2", "training.patience=5"),
        out=tmp_path,
    )
    assert full.summary["epochs"] == 2 and full.summary["stopped_early"] is False


def _partial_with(tmp_path, files):
    partial = tmp_path / "G0" / "fold0.partial"
    partial.mkdir(parents=True)
    for name, data in files.items():
        if isinstance(data, bytes):
            (partial / name).write_bytes(data)
        else:
            torch.save(data, partial / name)
    return partial


@pytest.mark.parametrize(
    ("files", "bad", "advice"),
    [
        ({"last.ckpt": b"PK\x03\x04 truncated"}, "last.ckpt", "delete it to resume"),
        (
            {"last.ckpt": {"state_dict": {}, "epoch": 1}, "best.ckpt": b"\x00" * 64},
            "best.ckpt",
            "to start over",
        ),
    ],
)
def test_corrupt_checkpoint_on_resume_is_one_clear_line(tmp_path, files, bad, advice):
    partial = _partial_with(tmp_path, files)
    ds = FakeDataset(genes=("G0",), n_samples=40, seq_len=SEQ_LEN)
    with pytest.raises(InputError) as err:
        ft.finetune(ds, genes=["G0"], fold=0, config=tiny_config(), out=tmp_path)
    message = str(err.value)
    assert "\n" not in message and f"{partial / bad}" in message
    assert "corrupt or truncated" in message and advice in message


def test_corrupt_best_checkpoint_at_the_end_is_one_clear_line(tmp_path):
    class CorruptBest(L.Callback):
        def on_train_end(self, trainer, pl_module):
            path = Path(trainer.checkpoint_callback.best_model_path)
            data = path.read_bytes()
            path.write_bytes(data[: len(data) // 2])  # a disk that filled up

    ds = FakeDataset(genes=("G0",), n_samples=40, seq_len=SEQ_LEN)
    config = tiny_config("training.max_epochs=1", "training.limit_train_batches=1")
    with pytest.raises(InputError, match=r"best\.ckpt is corrupt or truncated .*re-run"):
        ft.finetune(
            ds, genes=["G0"], fold=0, config=config, out=tmp_path, callbacks=[CorruptBest()]
        )
    assert (tmp_path / "G0" / "fold0.partial" / "last.ckpt").is_file()
    assert not (tmp_path / "G0" / "fold0").exists()
