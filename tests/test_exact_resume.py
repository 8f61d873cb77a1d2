"""A run stopped by any signal at any point and started again ends exactly as a run never stopped
(issue #22): the same best weights bit for bit, the same predictions file byte for byte, the
same per-epoch tune metrics. Each interrupted run is a real process that signals itself."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest
import torch

from tests.fakes import ROOT, FakeDataset, same_run, tiny_config
from variformer import finetune as ft

SEQ_LEN = 512
# 8 people per micro-batch, 2 per optimizer step: 7 steps (14 micro-batches) per epoch
SETTINGS = ("training.max_epochs=3", "training.early_stopping=false", "data.batch_size=8")
N_SAMPLES = 200

_SCRIPT = """
import os, signal, sys
import lightning as L
from tests.fakes import FakeDataset, tiny_config
from variformer import finetune as ft
from variformer.interrupts import TrainingInterrupted

scenario, out = sys.argv[1], sys.argv[2]
kill = lambda sig: os.kill(os.getpid(), sig)

class Send(L.Callback):
    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        e = trainer.current_epoch
        if scenario == "term_before_first_checkpoint" and (e, batch_idx) == (0, 0):
            kill(signal.SIGTERM)
        if scenario == "usr1_mid_step" and (e, batch_idx) == (1, 4):
            kill(signal.SIGUSR1)  # after the 1st micro-batch of a step: stops after the 2nd
        if scenario == "int_mid_epoch" and (e, batch_idx) == (1, 7):
            kill(signal.SIGINT)
        if scenario == "kill9_mid_step" and (e, batch_idx) == (1, 5):
            kill(signal.SIGKILL)
        if scenario == "kill9_before_first_checkpoint" and (e, batch_idx) == (0, 3):
            kill(signal.SIGKILL)
        if scenario == "usr1_before_first_checkpoint" and (e, batch_idx) == (0, 1):
            kill(signal.SIGUSR1)
    def on_validation_start(self, trainer, pl_module):
        if scenario == "term_during_validation" and trainer.current_epoch == 1:
            kill(signal.SIGTERM)
    def on_train_epoch_end(self, trainer, pl_module):
        if scenario == "term_between_epochs" and trainer.current_epoch == 0:
            kill(signal.SIGTERM)
        if scenario == "usr1_between_epochs" and trainer.current_epoch == 1:
            kill(signal.SIGUSR1)
        if scenario == "kill9_between_epochs" and trainer.current_epoch == 0:
            kill(signal.SIGKILL)  # before last.ckpt of epoch 0 is written (checkpoints run last)

if scenario == "term_during_test_step":
    real = ft.predict_tune_and_test
    def predict_then_die(*args, **kwargs):
        kill(signal.SIGTERM)  # training is over: the default handler ends the process
        return real(*args, **kwargs)
    ft.predict_tune_and_test = predict_then_die

ds = FakeDataset(genes=("G0",), n_samples=%d, seq_len=%d)
config = tiny_config(*%r)
try:
    ft.finetune(ds, genes=["G0"], fold=0, config=config, out=out, callbacks=[Send()])
except TrainingInterrupted as err:
    print(err, file=sys.stderr)
    sys.exit(err.exit_code)
"""


def _interrupted(scenario: str, out) -> subprocess.CompletedProcess:
    script = _SCRIPT % (N_SAMPLES, SEQ_LEN, SETTINGS)
    return subprocess.run(
        [sys.executable, "-c", script, scenario, str(out)], cwd=ROOT, capture_output=True,
        text=True, timeout=600,
    )  # fmt: skip


def _run(out, **kwargs):
    ds = FakeDataset(genes=("G0",), n_samples=N_SAMPLES, seq_len=SEQ_LEN)
    return ft.finetune(ds, genes=["G0"], fold=0, config=tiny_config(*SETTINGS), out=out, **kwargs)


@pytest.fixture(scope="module")
def whole(tmp_path_factory):
    return _run(tmp_path_factory.mktemp("whole"))


@pytest.mark.parametrize(
    ("scenario", "code"),
    [
        ("term_before_first_checkpoint", 128 + signal.SIGTERM),
        ("usr1_mid_step", 128 + signal.SIGUSR1),
        ("int_mid_epoch", 128 + signal.SIGINT),
        ("term_during_validation", 128 + signal.SIGTERM),
        ("term_between_epochs", 128 + signal.SIGTERM),
        ("term_during_test_step", -signal.SIGTERM),
        ("kill9_mid_step", -signal.SIGKILL),
        ("usr1_before_first_checkpoint", 128 + signal.SIGUSR1),
        ("usr1_between_epochs", 128 + signal.SIGUSR1),
        ("kill9_before_first_checkpoint", -signal.SIGKILL),
        ("kill9_between_epochs", -signal.SIGKILL),
    ],
)
def test_interrupted_then_resumed_equals_the_uninterrupted_run(whole, tmp_path, scenario, code):
    stopped = _interrupted(scenario, tmp_path)
    assert stopped.returncode == code, stopped.stderr[-2000:]
    partial = tmp_path / "G0" / "fold0.partial"
    assert partial.is_dir() and not (tmp_path / "G0" / "fold0").exists()
    assert not list(partial.glob("hpc_ckpt_*")) and not list(partial.glob(".*.tmp"))
    if scenario == "usr1_mid_step":
        # stopped at the step boundary after micro-batch 5 (index 4 began mid-step), in epoch 1
        assert "in epoch 1 after 6 micro-batches" in stopped.stderr
        state = torch.load(partial / "last.ckpt", map_location="cpu", weights_only=False)
        assert state["loops"]["fit_loop"]["state_dict"]["combined_loader"] == [
            {"epoch": 1, "consumed": 6}
        ]
    resumed = _run(tmp_path)
    same_run(whole, resumed)


def test_twice_interrupted_equals_the_uninterrupted_run(whole, tmp_path):
    assert _interrupted("usr1_mid_step", tmp_path).returncode == 128 + signal.SIGUSR1
    # the second session is stopped again, later in the same epoch
    assert _interrupted("int_mid_epoch", tmp_path).returncode == 128 + signal.SIGINT
    same_run(whole, _run(tmp_path))


def test_a_checkpoint_is_written_whole_or_not_at_all(tmp_path, monkeypatch):
    """A write that dies half-way leaves the previous checkpoint as it was."""
    from variformer.interrupts import AtomicCheckpointIO

    io = AtomicCheckpointIO()
    path = tmp_path / "last.ckpt"
    io.save_checkpoint({"x": torch.arange(3)}, path)
    before = path.read_bytes()

    def die(checkpoint, filepath):
        with open(filepath, "wb") as fh:
            fh.write(b"half a checkpoint")
        raise OSError("disk full")

    import lightning.fabric.plugins.io.torch_io as torch_io

    monkeypatch.setattr(torch_io, "_atomic_save", die)
    with pytest.raises(OSError):
        io.save_checkpoint({"x": torch.arange(5)}, path)
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]
