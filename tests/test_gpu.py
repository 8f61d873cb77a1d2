"""GPU path: a bf16-mixed fine-tuning run (skipped without CUDA; see tests/conftest.py)."""

import pytest

from tests.fakes import FakeDataset, tiny_config


@pytest.mark.gpu
def test_bf16_mixed_finetune_on_cuda(tmp_path):
    import torch

    from variformer import finetune as ft
    from variformer.trainer import resolve_precision

    ds = FakeDataset(genes=("G0",), n_samples=80, seq_len=1024)
    result = ft.finetune(
        ds,
        genes=["G0"],
        fold=0,
        config=tiny_config("training.max_epochs=2"),
        out=tmp_path,
        accelerator="gpu",
        devices=1,
    )
    assert resolve_precision(tiny_config(), accelerator="gpu") == "bf16-mixed"
    assert result.summary["epochs"] == 2 and torch.cuda.max_memory_allocated() > 0
