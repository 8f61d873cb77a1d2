"""predict(): batching, eval mode and its restoration, inputs, dtypes; CenterBins."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from torch import nn

from variformer.model import Variformer
from variformer.predict import CenterBins, predict

TINY_YAML = Path(__file__).resolve().parents[1] / "configs" / "tiny.yaml"


@pytest.fixture(scope="module")
def model() -> Variformer:
    torch.manual_seed(0)
    hparams = yaml.safe_load(TINY_YAML.read_text())["model"]["hparams"]
    # strong dropout: outputs in train mode differ from eval mode, so the mode is observable
    m = Variformer.from_hparams(**{**hparams, "dropout_rate": 0.5})
    with torch.no_grad():
        nn.init.normal_(m.head.weight)
    return m


def one_hot_np(n: int, length: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.eye(4, dtype=np.float32)[rng.integers(0, 4, size=(n, length))]


def manual_eval_loop(model: nn.Module, X: np.ndarray) -> np.ndarray:
    model.eval()
    with torch.no_grad():
        out = np.array(
            [model(torch.from_numpy(X[i : i + 1]))[0].item() for i in range(len(X))],
            dtype=np.float32,
        )
    model.train()
    return out


def test_predict_equals_a_manual_loop_and_restores_training_mode(model):
    X = one_hot_np(7, 512)
    expected = manual_eval_loop(model, X)
    model.train()
    frozen_part = model.enformer.transformer  # a submodule in eval mode must stay so
    frozen_part.eval()
    got = predict(model, X, batch_size=3, device="cpu")  # 7 = 3 + 3 + 1
    assert got.dtype == np.float32 and got.shape == (7,)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert model.training and model.head.training and not frozen_part.training
    # in train mode, dropout would have changed the outputs: the eval switch is what made them match
    with torch.no_grad():
        train_mode = model(torch.from_numpy(X)).numpy()
    assert not np.allclose(train_mode, expected, atol=1e-4)
    model.eval()
    predict(model, X[:2], device="cpu")
    assert not model.training


def test_iterable_of_batches_and_torch_and_read_only_inputs(model):
    X = one_hot_np(11, 256, seed=1)
    reference = predict(model, X, batch_size=4, device="cpu")
    chunks = (X[a:b] for a, b in [(0, 5), (5, 7), (7, 11)])  # uneven, one larger than batch_size
    np.testing.assert_allclose(
        predict(model, chunks, batch_size=4, device="cpu"), reference, rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(
        predict(model, torch.from_numpy(X), batch_size=11), reference, rtol=1e-5, atol=1e-6
    )
    read_only = X.copy()
    read_only.setflags(write=False)
    np.testing.assert_allclose(
        predict(model, read_only, batch_size=2), reference, rtol=1e-5, atol=1e-6
    )
    assert predict(model, iter([]), device="cpu").shape == (0,)


def test_inputs_follow_the_model_dtype_and_outputs_are_float32():
    torch.manual_seed(4)
    lin = nn.Sequential(nn.Flatten(), nn.Linear(64 * 4, 3)).double()
    X = one_hot_np(5, 64, seed=2)
    got = predict(lin, X, batch_size=2, device="cpu")
    expected = lin(torch.from_numpy(X).double()).detach().numpy()
    assert got.dtype == np.float32 and got.shape == (5, 3)
    np.testing.assert_allclose(got, expected.astype(np.float32), rtol=1e-6)


def test_autocast_runs_the_matmul_in_bf16():
    torch.manual_seed(5)
    lin = nn.Sequential(nn.Flatten(), nn.Linear(32 * 4, 2))
    X = one_hot_np(4, 32, seed=3)
    x = torch.from_numpy(X).flatten(1)
    w, b = lin[1].weight.detach(), lin[1].bias.detach()
    bf16 = nn.functional.linear(x.bfloat16(), w.bfloat16(), b.bfloat16()).float().numpy()
    fp32 = nn.functional.linear(x, w, b).numpy()
    assert not np.allclose(bf16, fp32, rtol=0, atol=1e-6)
    np.testing.assert_allclose(
        predict(lin, X, device="cpu", precision="bf16-mixed"), bf16, rtol=1e-2, atol=1e-2
    )
    np.testing.assert_allclose(predict(lin, X, device="cpu"), fp32, rtol=1e-6, atol=1e-6)


class BinCounts(nn.Module):
    """(B, L, 4) -> per 128 bp bin, the count of each base: (B, L // 128, 4); a dict without head."""

    def forward(self, x: torch.Tensor, head: str | None = None):
        out = x.reshape(x.shape[0], x.shape[1] // 128, 128, 4).sum(dim=2)
        return (
            {"human": out, "mouse": -out} if head is None else {"human": out, "mouse": -out}[head]
        )


def test_center_bins_sums_the_three_centre_bins_of_one_track():
    X = one_hot_np(3, 1024, seed=4)  # 8 bins; centre c = 4 -> bins 3, 4, 5 = positions 384..767
    expected = X[:, 384:768, 2].sum(axis=1)  # track 2 = G counts
    got = predict(
        CenterBins(BinCounts(), n=3, track=2, head="human"), X, batch_size=2, device="cpu"
    )
    np.testing.assert_array_equal(got, expected)
    all_tracks = predict(CenterBins(BinCounts(), n=3, head="mouse"), X, device="cpu")
    np.testing.assert_array_equal(all_tracks, -X[:, 384:768].sum(axis=1))
    with pytest.raises(TypeError, match="head"):
        CenterBins(BinCounts())(torch.from_numpy(X))
    with pytest.raises(TypeError, match="CenterBins"):
        predict(BinCounts(), X, device="cpu")


def test_center_bins_at_49152_bp_are_191_to_193():
    class BinIndex(nn.Module):
        def forward(self, x):
            return torch.arange(x.shape[1] // 128, dtype=torch.float32).expand(x.shape[0], -1)

    x = torch.zeros(2, 49152, 4)
    assert CenterBins(BinIndex(), n=3)(x).tolist() == [191.0 + 192.0 + 193.0] * 2
    assert CenterBins(BinIndex(), n=1)(x).tolist() == [192.0] * 2
