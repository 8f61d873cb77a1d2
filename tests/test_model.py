"""Variformer: shapes, the TSS bin, the identity head, loading/saving, frozen trunk."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch
import yaml
from enformer_pytorch import Enformer
from enformer_pytorch.modeling_enformer import Attention
from torch import nn

from core.errors import InputError
from variformer.config import ENFORMER_HUB_ID
from variformer.model import Variformer

TINY_YAML = Path(__file__).resolve().parents[1] / "configs" / "tiny.yaml"


def tiny_hparams() -> dict:
    return dict(yaml.safe_load(TINY_YAML.read_text())["model"]["hparams"])


@pytest.fixture
def model() -> Variformer:
    torch.manual_seed(0)
    return Variformer.from_hparams(**tiny_hparams())


def one_hot(n: int, length: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(0, 4, (n, length), generator=g)
    return nn.functional.one_hot(idx, 4).float()


def test_tiny_config_is_valid_and_small():
    hp = tiny_hparams()
    assert (hp["dim"] // hp["heads"]) % 6 == 0
    assert hp["num_downsamples"] == 7
    m = Variformer.from_hparams(**hp)
    assert sum(p.numel() for p in m.parameters()) < 200_000


@pytest.mark.parametrize(("length", "tss_bin"), [(1024, 4), (2048, 8), (49152, 192)])
def test_forward_reads_the_tss_bin(model, length, tss_bin):
    n = 1 if length > 2048 else 2
    x = one_hot(n, length)
    model.eval()
    bins = model.forward_bins(x)
    assert bins.shape == (n, length // 128)
    # replace the head's output by the bin index: forward must return (L // 2) // 128
    handle = model.adapter.to_tracks.register_forward_hook(
        lambda mod, inp, out: (
            torch.arange(out.shape[1], dtype=out.dtype).expand_as(out[..., 0]).unsqueeze(-1)
        )
    )
    try:
        assert model(x).tolist() == [float(tss_bin)] * n
    finally:
        handle.remove()
    torch.testing.assert_close(model(x), bins[:, tss_bin])


def test_head_is_one_linear_track_with_identity_output_on_the_final_embeddings(model):
    model.eval()
    x = one_hot(3, 1024, seed=1)
    with torch.no_grad():
        nn.init.normal_(model.head.weight)
        model.head.bias.fill_(-1e3)  # far below any w.x: a softplus would turn these positive
        emb = model.enformer(
            x, return_only_embeddings=True
        )  # after final_pointwise: 2 * dim features
        assert emb.shape == (3, 8, 2 * tiny_hparams()["dim"])
        manual = emb @ model.head.weight[0] + model.head.bias[0]
        got = model.forward_bins(x)
    assert (manual < 0).any(), "identity output must keep negative values (no softplus)"
    torch.testing.assert_close(got, manual)


def test_rejects_lengths_that_are_not_whole_bins(model):
    with pytest.raises(InputError, match="multiple of 128"):
        model(one_hot(1, 1000))


def save_tiny_enformer(directory: Path, *, use_tf_gamma: bool) -> Enformer:
    """A tiny Enformer saved like the official weights: 896-bin crop, human/mouse heads."""
    torch.manual_seed(1)
    hp = {**tiny_hparams(), "output_heads": {"human": 5, "mouse": 2}, "target_length": 896}
    enformer = Enformer.from_hparams(**hp, use_tf_gamma=use_tf_gamma)
    enformer.save_pretrained(directory, safe_serialization=False)
    return enformer


def test_from_pretrained_local_directory_matches_the_saved_enformer(tmp_path):
    # saved with use_tf_gamma=True (the module-level from_pretrained trap) and an 896-bin crop:
    # both would make a 1024 bp input fail; from_pretrained must undo them.
    original = save_tiny_enformer(tmp_path, use_tf_gamma=True)
    model = Variformer.from_pretrained(tmp_path).eval()
    assert not any(m.use_tf_gamma for m in model.modules() if isinstance(m, Attention))
    assert model.enformer.output_heads == {}
    x = one_hot(2, 1024, seed=2)
    original.eval().set_target_length(-1)
    for m in original.modules():
        if isinstance(m, Attention):
            m.use_tf_gamma = False
    with torch.no_grad():
        expected = (
            original(x, return_only_embeddings=True) @ model.head.weight[0] + model.head.bias[0]
        )
        torch.testing.assert_close(model.forward_bins(x), expected, rtol=0, atol=0)


def test_use_tf_gamma_only_accepts_196608_bp(tmp_path):
    save_tiny_enformer(tmp_path, use_tf_gamma=False)
    model = Variformer.from_pretrained(tmp_path, use_tf_gamma=True)
    with pytest.raises(InputError, match="196608"):
        model(one_hot(1, 1024))


def test_offline_hub_id_gives_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(InputError) as err:
        Variformer.from_pretrained(ENFORMER_HUB_ID, cache_dir=tmp_path / "empty-cache")
    message = str(err.value)
    assert "\n" not in message
    assert f"'{ENFORMER_HUB_ID}'" in message and "offline" in message
    assert f"huggingface-cli download {ENFORMER_HUB_ID}" in message and "--pretrained" in message


def test_missing_local_directory_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="no such directory"):
        Variformer.from_pretrained(tmp_path / "missing" / "enformer")
    with pytest.raises(InputError, match=r"no config\.json"):
        Variformer.from_pretrained(tmp_path)


def test_save_load_round_trip(model, tmp_path):
    with torch.no_grad():
        nn.init.normal_(model.head.weight)
    file = model.save(tmp_path / "model.pt")
    assert file == tmp_path / "model.pt" and not list(tmp_path.glob(".*tmp*"))
    x = one_hot(2, 1024, seed=3)
    expected = model.eval()(x)
    for source in (file, tmp_path):  # a file, or a run directory holding model.pt
        loaded = Variformer.load(source).eval()
        assert loaded.enformer_hparams == model.enformer_hparams
        assert loaded.freeze_trunk is False
        torch.testing.assert_close(loaded(x), expected, rtol=0, atol=0)
    assert Variformer.load(file, freeze_trunk=True).freeze_trunk is True
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="none of"):
        Variformer.load(empty)


class _System(L.LightningModule):
    """The checkpoint contract of the training system: self.model + hyper_parameters['enformer_hparams']."""

    def __init__(self, enformer_hparams: dict, freeze_trunk: bool = False):
        super().__init__()
        self.save_hyperparameters()
        self.model = Variformer.from_hparams(freeze_trunk=freeze_trunk, **enformer_hparams)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return nn.functional.mse_loss(self.model(x), y)

    def configure_optimizers(self):
        return torch.optim.AdamW(self.parameters(), lr=1e-2)


def test_load_lightning_checkpoint(tmp_path):
    torch.manual_seed(2)
    system = _System(tiny_hparams(), freeze_trunk=True)
    x, y = one_hot(4, 256, seed=4), torch.randn(4)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=2)
    trainer = L.Trainer(
        max_steps=2,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(system, loader)
    trainer.save_checkpoint(tmp_path / "best.ckpt")
    loaded = Variformer.load(tmp_path).eval()  # a run directory holding best.ckpt
    assert loaded.freeze_trunk is True
    torch.testing.assert_close(loaded(x), system.model.eval()(x), rtol=0, atol=0)


def test_frozen_trunk_trains_only_the_head():
    torch.manual_seed(3)
    x, y = one_hot(3, 512, seed=5), torch.randn(3)
    for freeze in (True, False):
        model = Variformer.from_hparams(freeze_trunk=freeze, **tiny_hparams()).train()
        nn.functional.mse_loss(model(x), y).backward()
        assert model.head.weight.grad is not None and model.head.weight.grad.abs().sum() > 0
        trunk_grads = [p.grad for p in model.enformer.parameters()]
        trunk_moved = sum(float(g.abs().sum()) for g in trunk_grads if g is not None)
        if freeze:
            assert all(g is None for g in trunk_grads)
            assert not any(p.requires_grad for p in model.enformer.parameters())
        else:
            assert trunk_moved > 0


def test_from_hparams_validates_sizes():
    with pytest.raises(InputError, match="divisible by 6"):
        Variformer.from_hparams(**{**tiny_hparams(), "dim": 40})
    with pytest.raises(InputError, match="unknown Enformer hparams"):
        Variformer.from_hparams(dimension=48)


def test_train_batchnorm_round_trips_and_makes_random_init_see_its_input(tmp_path):
    """Frozen BatchNorms (HeadAdapterWrapper's default) leave a random-init trunk nearly blind:
    its output hardly varies across inputs. Trained BatchNorms fix that and survive save/load."""
    tiny = Path(__file__).resolve().parents[1] / "configs" / "tiny.yaml"
    hp = yaml.safe_load(tiny.read_text())["model"]["hparams"]
    torch.manual_seed(0)
    x = torch.rand(8, 1024, 4)
    spread = {}
    for flag in (False, True):
        torch.manual_seed(0)
        m = Variformer.from_hparams(train_batchnorm=flag, **hp)
        m.train()
        spread[flag] = float(m(x).std())
        assert m.train_batchnorm is flag
        if flag:
            m.save(tmp_path / "m.pt")
            back = Variformer.load(tmp_path / "m.pt")
            assert back.train_batchnorm is True
            m.eval(), back.eval()
            torch.testing.assert_close(m(x), back(x))
    assert spread[True] > 10 * spread[False]


def test_unreachable_hub_looks_in_the_cache_only_and_fails_at_once(tmp_path, monkeypatch):
    """No HF_HUB_OFFLINE set, but no network: no download retries, one clear line."""
    import variformer.enformer as ve

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(ve, "_hub_reachable", lambda timeout=3.0: False)
    seen = {}
    real = ve.Enformer.from_pretrained

    def spy(source, **kwargs):
        seen.update(kwargs)
        return real(source, **kwargs)

    monkeypatch.setattr(ve.Enformer, "from_pretrained", spy)
    with pytest.raises(InputError, match="offline") as err:
        Variformer.from_pretrained("some-lab/some-enformer", cache_dir=tmp_path / "empty")
    assert seen["local_files_only"] is True and "\n" not in str(err.value)


def test_hub_reachability_is_one_short_connection_attempt(monkeypatch):
    import socket

    import variformer.enformer as ve

    calls = []

    def refuse(address, timeout=None):
        calls.append((address, timeout))
        raise OSError("network is unreachable")

    monkeypatch.setattr(socket, "create_connection", refuse)
    assert ve._hub_reachable(timeout=0.5) is False
    assert calls == [(("huggingface.co", 443), 0.5)]


class _Payload:
    """Unpickling this runs code (writes a marker file): what a tampered checkpoint could do."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (Path(self.marker).touch, ())


def test_files_that_would_run_code_are_refused_not_run(tmp_path):
    import torch

    from core.errors import InputError
    from variformer.model import Variformer
    from variformer.trainer import read_checkpoint

    marker = tmp_path / "pwned"
    for name, payload in (
        ("model.pt", {"format": "x", "state_dict": {}, "evil": _Payload(marker)}),
        ("last.ckpt", {"state_dict": {}, "callbacks": _Payload(marker)}),
    ):
        path = tmp_path / name
        torch.save(payload, path)
        with pytest.raises(InputError):
            if name.endswith(".ckpt"):
                read_checkpoint(path, advice="delete it")
            else:
                Variformer.load(path)
        assert not marker.exists()
