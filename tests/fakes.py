"""A small in-memory gene dataset with the ``data_prep.open_dataset`` API, for training tests.

Each gene has a random reference window and a few SNVs near the TSS; people carry 0/1/2 ALT
alleles (the sequence is the averaged one-hot, het = 0.5/0.5) and expression is a linear
function of two causal SNVs plus noise, so a tiny model can learn it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import yaml

from data_prep.genome import Window

if TYPE_CHECKING:
    import torch
from variformer.config import Config, load_config

ROOT = Path(__file__).resolve().parents[1]
TINY_YAML = ROOT / "configs" / "tiny.yaml"


class FakeDataset:
    """In-memory :class:`data_prep.GeneDatasetLike`, like ``open_dataset``'s (picklable, deterministic).

    Parameters
    ----------
    genes : sequence of str
    n_samples : int
    seq_len : int
    n_folds : int
    h2 : float
        Share of expression variance explained by the two causal SNVs.
    missing : dict, optional
        gene -> number of people without expression for that gene (the last ones).
    seed : int
    """

    def __init__(
        self,
        *,
        genes=("G0", "G1", "G2"),
        n_samples: int = 100,
        seq_len: int = 1024,
        n_folds: int = 3,
        n_variants: int = 12,
        h2: float = 0.9,
        missing: dict | None = None,
        seed: int = 0,
    ):
        rng = np.random.default_rng(seed)
        self.genes = list(genes)
        self.samples = [f"S{i:03d}" for i in range(n_samples)]
        self.seq_len = seq_len
        self.n_folds = n_folds
        self.has_expression = True
        self._ref = {g: rng.integers(0, 4, seq_len) for g in self.genes}
        self._pos, self._alt, self._dos, self._expr = {}, {}, {}, {}
        tss = seq_len // 2
        for g in self.genes:
            # SNVs within +-128 bp of the TSS: inside the TSS bin's immediate neighbourhood
            pos = np.sort(rng.choice(np.arange(tss - 128, tss + 128), n_variants, replace=False))
            alt = (self._ref[g][pos] + rng.integers(1, 4, n_variants)) % 4
            af = rng.uniform(0.2, 0.5, n_variants)
            dos = rng.binomial(2, af, size=(n_samples, n_variants)).astype(np.float32)
            genetic = dos[:, :2] @ np.array([1.0, -0.8])
            genetic = (genetic - genetic.mean()) / (genetic.std() + 1e-9)
            noise = rng.normal(size=n_samples)
            y = np.sqrt(h2) * genetic + np.sqrt(1 - h2) * noise
            keep = n_samples - (missing or {}).get(g, 0)
            self._pos[g], self._alt[g], self._dos[g] = pos, alt, dos
            self._expr[g] = pd.Series(y[:keep], index=self.samples[:keep], dtype=np.float64, name=g)
        perm = rng.permutation(n_samples)
        n_test = n_tune = max(2, n_samples // 10)
        self._folds = []
        for k in range(n_folds):
            rolled = np.roll(perm, -k * n_test)
            self._folds.append(
                {
                    "test": [self.samples[i] for i in rolled[:n_test]],
                    "tune": [self.samples[i] for i in rolled[n_test : n_test + n_tune]],
                    "train": [self.samples[i] for i in rolled[n_test + n_tune :]],
                }
            )

    def window(self, gene):
        return Window("chr1", 1000, 1000 + self.seq_len, 1000 + self.seq_len // 2, "+")

    def reference(self, gene):
        return np.eye(4, dtype=np.float32)[self._ref[gene]]

    def sequences(self, gene, samples, *, start=0, end=None):
        rows = np.array([self.samples.index(s) for s in samples], dtype=np.int64)
        out = np.broadcast_to(self.reference(gene), (len(rows), self.seq_len, 4)).copy()
        pos, alt = self._pos[gene], self._alt[gene]
        half = self._dos[gene][rows] / 2  # (n, V): ALT share of the averaged one-hot
        ref = self._ref[gene][pos]
        out[:, pos, ref] -= half
        out[:, pos, alt] += half
        return out[:, start:end]

    def sequence(self, gene, sample):
        return self.sequences(gene, [sample])[0]

    def variants(self, gene):
        pos, alt = self._pos[gene], self._alt[gene]
        af = self._dos[gene].mean(axis=0) / 2
        return pd.DataFrame(
            {
                "chrom": "chr1",
                "pos": self.window(gene).start0 + pos + 1,  # 1-based
                "id": ".",
                "ref": ["ACGT"[b] for b in self._ref[gene][pos]],
                "alt": ["ACGT"[b] for b in alt],
                "af": af,
                "maf": np.minimum(af, 1 - af),
            }
        )

    def dosages(self, gene, samples=None):
        dos = self._dos[gene]
        if samples is None:
            return dos.copy()
        return dos[[self.samples.index(s) for s in samples]]

    def expression(self, gene):
        return self._expr[gene].copy()

    def split(self, fold, *, train_fraction=1.0):
        parts = {k: list(v) for k, v in self._folds[fold].items()}
        parts["train"] = parts["train"][: int(np.ceil(train_fraction * len(parts["train"]) - 1e-9))]
        return parts


def tiny_config(*overrides: str) -> Config:
    """configs/tiny.yaml plus ``key=value`` overrides."""
    return load_config(TINY_YAML, overrides=overrides)


def tiny_hparams() -> dict:
    return dict(yaml.safe_load(TINY_YAML.read_text())["model"]["hparams"])


# ---------------------------------------------------------------- ISM test helpers


def one_hot(n: int, length: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.eye(4, dtype=np.float32)[rng.integers(0, 4, size=(n, length))]


def calibrate_(model: torch.nn.Module, length: int, seed: int = 1) -> torch.nn.Module:
    """Make a random model depend on its whole input, as a trained one does.

    BatchNorm running statistics from random sequences: with the initial ones (mean 0, var 1)
    the signal fades through the tower (scores ~1e-6; calibrated ~1e-2). Attention output
    weights drawn at random: enformer-pytorch initialises them to zero, so an untrained
    transformer never mixes bins and only SNVs within ~300 bp of the TSS would matter.
    """
    import torch
    from enformer_pytorch.modeling_enformer import Attention

    for m in model.modules():
        if isinstance(m, Attention):
            torch.nn.init.normal_(m.to_out.weight, std=m.to_out.in_features**-0.5)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm1d):
            m.momentum = None  # cumulative average
            m.track_running_stats = True
    model.train()
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm1d)]
    for bn in bns:
        bn.train()
    with torch.no_grad():
        x = torch.from_numpy(one_hot(16, length, seed))
        (model.forward_tower(x) if hasattr(model, "forward_tower") else model(x, head="human"))
    return model.eval()


ISM_SEQ_LEN = 4096  # the simulator's SNV density (~3.5/kb) needs a few kb for a dozen SNVs
ISM_CROP = 2048  # the run's data.seq_len


def ism_cohort(tmp: Path) -> dict:
    """A simulated 2-gene dataset under ``tmp`` and one saved tiny run (fold 1, first gene)."""
    import json

    import torch

    from data_prep import open_dataset
    from tests.datasets import simulated_dataset
    from variformer.model import Variformer

    _, sim = simulated_dataset(tmp, people=40, genes=2, seq_len=ISM_SEQ_LEN, seed=1)
    genes = list(pd.read_csv(sim.truth_genes, sep="\t")["gene"])
    torch.manual_seed(0)
    model = calibrate_(Variformer.from_hparams(**tiny_hparams(), train_batchnorm=True), ISM_CROP)
    run = tmp / "runs" / "G" / "fold1"
    run.mkdir(parents=True)
    model.save(run)
    (run / "summary.json").write_text(json.dumps({"fold": 1, "genes": genes[:1]}))
    (run / "config.yaml").write_text(yaml.safe_dump({"data": {"seq_len": ISM_CROP}}))
    return {
        "ds": open_dataset(tmp / "dataset"),
        "path": tmp / "dataset",
        "truth": pd.read_csv(sim.truth, sep="\t", dtype={"chrom": str}),
        "genes": genes,
        "run": run,
        "tmp": tmp,
    }


def copy_run(src, dst, *, fold, genes):
    import json
    import shutil

    shutil.copytree(src, dst)
    (dst / "summary.json").write_text(json.dumps({"fold": fold, "genes": genes}))


def save_tiny_enformer(directory: Path, length: int, *, seed: int = 2) -> Path:
    """A tiny calibrated Enformer (human head of 6 tracks, no crop) saved like the hub weights
    (``save_pretrained``), for ``--enformer DIR``; returns ``directory``."""
    import torch
    from enformer_pytorch import Enformer

    torch.manual_seed(seed)
    enf = Enformer.from_hparams(
        dim=48, depth=1, heads=2, attn_dim_key=8, dim_divisible_by=4,
        output_heads={"human": 6}, target_length=-1,
    )  # fmt: skip
    calibrate_(enf, length)
    enf.save_pretrained(directory, safe_serialization=False)
    return Path(directory)


def same_run(a, b) -> None:
    """Two fine-tuning results are the same run: predictions.tsv bytes, test metrics, epochs,
    tune metrics per epoch and every best-checkpoint tensor bit for bit."""
    import pandas as pd
    import torch

    assert (a.run_dir / "predictions.tsv").read_bytes() == (
        b.run_dir / "predictions.tsv"
    ).read_bytes()
    for key in ("test_r2_mean", "test_pcc_mean", "epochs", "best_epoch"):
        assert a.summary[key] == b.summary[key], key
    tune = [
        pd.read_csv(r.run_dir / "metrics.csv").dropna(subset=["tune_r2_mean"]).set_index("epoch")
        for r in (a, b)
    ]
    pd.testing.assert_frame_equal(tune[0], tune[1][tune[0].columns])
    weights = [
        torch.load(r.run_dir / "best.ckpt", map_location="cpu", weights_only=True)["state_dict"]
        for r in (a, b)
    ]
    assert weights[0].keys() == weights[1].keys()
    for key in weights[0]:
        torch.testing.assert_close(weights[0][key], weights[1][key], rtol=0, atol=0)
