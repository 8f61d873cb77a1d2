"""Fine-tuning end to end on a fake dataset: config, data, run files, metrics, resume, learning."""

from __future__ import annotations

import argparse
import json
import os
import signal

import lightning as L
import numpy as np
import pandas as pd
import pytest
import torch
from scipy.stats import pearsonr
from sklearn.metrics import r2_score

from core.errors import InputError
from tests.datasets import simulated_dataset
from tests.fakes import ROOT, FakeDataset, tiny_config
from variformer import finetune as ft
from variformer.commands import finetune as finetune_command
from variformer.config import Config, load_config
from variformer.data import REFERENCE, GeneSampleDataset, VariformerDataModule
from variformer.model import Variformer
from variformer.trainer import resume_checkpoint

SEQ_LEN = 512


# ------------------------------------------------------------------ config


def test_overrides_are_parsed_as_yaml_types():
    c = load_config(
        overrides=[
            "training.learning_rate=5e-4",  # YAML 1.1 reads this as a string
            "training.max_epochs=3",
            "training.early_stopping=false",
            "data.tune_genes=[A, B]",
            "data.seq_len=2048",
            "model.pretrained=null",
            "model.hparams.dim=96",
            "training.limit_train_batches=0.5",
        ]
    )
    assert c.training.learning_rate == 5e-4 and isinstance(c.training.learning_rate, float)
    assert c.training.max_epochs == 3 and c.training.early_stopping is False
    assert c.data.tune_genes == ["A", "B"] and c.data.seq_len == 2048
    assert c.model.pretrained is None and c.model.hparams == {"dim": 96}
    assert c.training.limit_train_batches == 0.5
    # untouched keys keep the paper's defaults
    assert (c.data.batch_size, c.training.accumulate_grad_batches, c.training.alpha) == (32, 4, 0.5)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("training.learnig_rate=1", "did you mean 'training.learning_rate'"),
        ("optimizer.lr=1", "unknown config key 'optimizer'"),
        ("training.max_epochs=1.5", "must be int"),
        ("training.early_stopping=3", "must be bool"),
        ("training.alpha=2", r"alpha must be in \[0, 1\]"),
        ("training.monitor=val_loss", "monitor must be one of"),
        ("learning_rate", "not key=value"),
    ],
)
def test_bad_overrides_are_input_errors(override, message):
    with pytest.raises(InputError, match=message):
        load_config(overrides=[override])


def test_unknown_key_in_yaml_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("training:\n  patience: 3\n  warmup: 10\n")
    with pytest.raises(InputError, match=r"unknown config key 'training\.warmup'"):
        load_config(path)


def test_presets_are_valid_and_default_yaml_spells_out_the_defaults():
    assert load_config(ROOT / "configs" / "default.yaml") == Config()
    tiny = load_config(ROOT / "configs" / "tiny.yaml")
    assert tiny.model.pretrained is None and tiny.model.hparams["dim"] < 1536
    # the paper's numbers
    t, d = Config().training, Config().data
    assert (t.learning_rate, d.batch_size, t.accumulate_grad_batches, t.gradient_clip_val) == (
        5e-6,
        32,
        4,
        0.05,
    )
    assert (t.max_epochs, t.patience, t.alpha) == (150, 20, 0.5)


# ------------------------------------------------------------------ data


def test_datamodule_items_targets_and_crop():
    ds = FakeDataset(genes=("G0", "G1"), n_samples=40, seq_len=SEQ_LEN, missing={"G1": 6})
    dm = VariformerDataModule(ds, genes=["G0", "G1"], fold=1, batch_size=4, seq_len=256)
    dm.setup("fit")
    split = ds.split(1)
    expr1 = ds.expression("G1")
    # G1 lacks expression for its last 6 samples: they are not G1 items
    assert dm.people("G1", "train") == [s for s in split["train"] if s in expr1.index]
    assert len(dm.people("G1", "train")) < len(split["train"]) == len(dm.people("G0", "train"))
    items = dm.items("train")
    for g, gene in enumerate(["G0", "G1"]):
        sel = items.gene_index == g
        samples = [s for s, k in zip(items.sample, sel) if k]
        np.testing.assert_allclose(
            items.target[sel], ds.expression(gene).loc[samples].to_numpy(), rtol=1e-6
        )
    data = GeneSampleDataset(ds, dm.all_genes, items, seq_len=256)
    x, y, g = data[len(items.sample) - 1]
    gene, sample = ["G0", "G1"][int(g)], items.sample[-1]
    # TSS at SEQ_LEN // 2 stays at index 128 of the 256 bp crop
    np.testing.assert_array_equal(
        x.numpy(), ds.sequence(gene, sample)[SEQ_LEN // 2 - 128 : SEQ_LEN // 2 + 128]
    )
    assert x.dtype == torch.float32 and y.dtype == torch.float32 and g.dtype == torch.int64
    # reference mode: one item per gene, the reference sequence, the mean of the split's people
    ref = dm.items("tune", reference=True)
    assert ref.sample == [REFERENCE, REFERENCE]
    np.testing.assert_allclose(
        ref.target,
        [ds.expression(gn).loc[dm.people(gn, "tune")].mean() for gn in ("G0", "G1")],
        rtol=1e-6,
    )
    xr = GeneSampleDataset(ds, dm.all_genes, ref)[1][0]
    np.testing.assert_array_equal(xr.numpy(), ds.reference("G1"))


def test_unknown_gene_is_an_input_error(tmp_path):
    ds = FakeDataset(genes=("G0",), n_samples=30, seq_len=SEQ_LEN)
    with pytest.raises(InputError, match="not in the dataset"):
        ft.finetune(ds, genes=["NOPE"], fold=0, config=tiny_config(), out=tmp_path)


# ------------------------------------------------------------------ a whole run


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Two train genes + one held-out tune gene, 2 epochs."""
    ds = FakeDataset(genes=("G0", "G1", "G2"), n_samples=80, seq_len=SEQ_LEN, missing={"G1": 4})
    config = tiny_config(
        "training.max_epochs=2", "training.early_stopping=false", "data.tune_genes=[G2]"
    )
    out = tmp_path_factory.mktemp("runs")
    result = ft.finetune(ds, genes=["G0", "G1"], fold=0, config=config, out=out, name="pair")
    return ds, config, out, result


def test_run_directory_files(run):
    ds, _, out, result = run
    assert result.run_dir == out / "pair" / "fold0"
    for name in (
        "best.ckpt",
        "last.ckpt",
        "metrics.csv",
        "predictions.tsv",
        "summary.json",
        "config.yaml",
    ):
        assert (result.run_dir / name).is_file(), name
    assert not (out / "pair" / "fold0.partial").exists()
    pred = pd.read_csv(result.run_dir / "predictions.tsv", sep="\t")
    assert list(pred.columns) == ["sample", "gene", "split", "observed", "predicted"]
    split = ds.split(0)
    for gene in ("G0", "G1", "G2"):
        expr = ds.expression(gene)
        for part in ("tune", "test"):
            rows = pred[(pred.gene == gene) & (pred.split == part)]
            assert list(rows["sample"]) == [s for s in split[part] if s in expr.index]
            np.testing.assert_allclose(rows["observed"], expr.loc[list(rows["sample"])], rtol=1e-5)


def test_summary_metrics_equal_sklearn_and_scipy(run):
    _, _, _, result = run
    pred = pd.read_csv(result.run_dir / "predictions.tsv", sep="\t")
    summary = json.loads((result.run_dir / "summary.json").read_text())
    assert summary["genes"] == ["G0", "G1"] and summary["heldout_genes"] == ["G2"]
    r2s = []
    for gene in ("G0", "G1", "G2"):
        rows = pred[(pred.gene == gene) & (pred.split == "test")]
        entry = summary["per_gene"][gene]
        assert entry["n_test"] == len(rows)
        assert entry["test_r2"] == pytest.approx(r2_score(rows.observed, rows.predicted), abs=1e-6)
        assert entry["test_pcc"] == pytest.approx(
            pearsonr(rows.observed, rows.predicted).statistic, abs=1e-6
        )
        if gene != "G2":
            r2s.append(entry["test_r2"])
    assert summary["test_r2_mean"] == pytest.approx(np.mean(r2s), abs=1e-9)
    assert summary["epochs"] == 2 and summary["monitor"] == "tune_r2_mean"
    assert summary["config"]["training"]["max_epochs"] == 2
    assert {"torch", "lightning", "python"} <= set(summary["versions"])
    assert summary["wall_time_s"] > 0


def test_logged_tune_metrics_match_the_best_checkpoint(run):
    # the system gathers tune predictions itself; at the best epoch its tune_r2_mean must equal
    # sklearn's mean R2 over train genes on the tune rows that predict() wrote from best.ckpt
    _, _, _, result = run
    metrics = pd.read_csv(result.run_dir / "metrics.csv")
    tune = metrics[metrics.tune_r2_mean.notna()]
    assert list(tune.epoch) == [0, 1]
    summary = json.loads((result.run_dir / "summary.json").read_text())
    best = tune[tune.epoch == summary["best_epoch"]].iloc[0]
    assert best.tune_r2_mean == pytest.approx(summary["best_score"], abs=1e-6)
    pred = pd.read_csv(result.run_dir / "predictions.tsv", sep="\t")
    tune_rows = pred[pred.split == "tune"]
    r2 = {g: r2_score(r.observed, r.predicted) for g, r in tune_rows.groupby("gene")}
    pcc = {g: pearsonr(r.observed, r.predicted).statistic for g, r in tune_rows.groupby("gene")}
    assert best.tune_r2_mean == pytest.approx(np.mean([r2["G0"], r2["G1"]]), abs=1e-4)
    assert best["tune_r2/G1"] == pytest.approx(r2["G1"], abs=1e-4)
    assert best.tune_pcc_mean == pytest.approx(np.mean([pcc["G0"], pcc["G1"]]), abs=1e-4)
    assert best.heldout_pcc_mean == pytest.approx(pcc["G2"], abs=1e-4)
    assert metrics.train_loss_epoch.notna().sum() == 2


def test_best_checkpoint_loads_as_variformer(run):
    ds, _, _, result = run
    ckpt = torch.load(result.best_checkpoint, map_location="cpu", weights_only=False)
    assert ckpt["hyper_parameters"]["enformer_hparams"]["dim"] == tiny_config().model.hparams["dim"]
    model = Variformer.load(result.run_dir).eval()
    pred = pd.read_csv(result.run_dir / "predictions.tsv", sep="\t")
    rows = pred[(pred.gene == "G0") & (pred.split == "test")]
    with torch.no_grad():
        again = model(torch.from_numpy(ds.sequences("G0", list(rows["sample"])))).numpy()
    np.testing.assert_allclose(again, rows.predicted, rtol=1e-4, atol=1e-5)


def test_finished_run_is_not_overwritten_without_force(run):
    ds, config, out, _ = run
    with pytest.raises(InputError, match="--force"):
        ft.finetune(ds, genes=["G0", "G1"], fold=0, config=config, out=out, name="pair")


def test_force_replaces_a_finished_run(tmp_path):
    ds = FakeDataset(genes=("G0",), n_samples=40, seq_len=SEQ_LEN)
    config = tiny_config("training.max_epochs=1", "training.limit_train_batches=1")
    first = ft.finetune(ds, genes=["G0"], fold=0, config=config, out=tmp_path)
    (first.run_dir / "marker").write_text("old")
    second = ft.finetune(ds, genes=["G0"], fold=0, config=config, out=tmp_path, force=True)
    assert second.run_dir == first.run_dir == tmp_path / "G0" / "fold0"
    assert not (second.run_dir / "marker").exists() and (second.run_dir / "summary.json").is_file()


# ------------------------------------------------------------------ resume


class _SigtermAfterEpoch(L.Callback):
    def __init__(self, epoch):
        self.epoch = epoch

    def on_train_epoch_end(self, trainer, pl_module):
        if trainer.current_epoch == self.epoch:
            # ExactResume stops at the next epoch's start, after this epoch's last.ckpt
            os.kill(os.getpid(), signal.SIGTERM)


class _RecordStart(L.Callback):
    def on_train_start(self, trainer, pl_module):
        self.epoch = trainer.current_epoch
        # clone: Adam updates its state tensors in place as training goes on
        state = trainer.optimizers[0].state_dict()["state"]
        self.optimizer = {k: {n: t.clone() for n, t in v.items()} for k, v in state.items()}
        self.best = trainer.checkpoint_callback.best_model_score


def test_resume_after_sigterm_continues_the_same_run(tmp_path):
    from variformer.interrupts import TrainingInterrupted

    ds = FakeDataset(genes=("G0",), n_samples=60, seq_len=SEQ_LEN)
    config = tiny_config("training.max_epochs=4", "training.early_stopping=false")
    with pytest.raises(TrainingInterrupted, match="SIGTERM before an epoch"):
        ft.finetune(
            ds, genes=["G0"], fold=0, config=config, out=tmp_path, callbacks=[_SigtermAfterEpoch(1)]
        )
    partial = tmp_path / "G0" / "fold0.partial"
    assert not (tmp_path / "G0" / "fold0").exists()
    saved = torch.load(partial / "last.ckpt", map_location="cpu", weights_only=False)
    saved_best = next(
        v["best_model_score"]
        for k, v in saved["callbacks"].items()
        if k.startswith("ModelCheckpoint")
    )

    record = _RecordStart()
    result = ft.finetune(ds, genes=["G0"], fold=0, config=config, out=tmp_path, callbacks=[record])
    assert record.epoch == 2  # epochs 0 and 1 were done
    assert record.best == pytest.approx(float(saved_best))
    saved_state = saved["optimizer_states"][0]["state"]
    assert set(record.optimizer) == set(saved_state) and len(saved_state) > 0
    k = next(iter(saved_state))
    torch.testing.assert_close(record.optimizer[k]["exp_avg"], saved_state[k]["exp_avg"])
    torch.testing.assert_close(record.optimizer[k]["step"], saved_state[k]["step"])
    metrics = pd.read_csv(result.run_dir / "metrics.csv")
    assert sorted(metrics.loc[metrics.tune_r2_mean.notna(), "epoch"]) == [0, 1, 2, 3]
    assert result.summary["epochs"] == 4
    # wall time adds up over both sessions
    assert result.summary["wall_time_s"] > saved["callbacks"]["WallClock"]["elapsed_s"] > 0


def test_resume_uses_last_ckpt_only(tmp_path):
    """One checkpoint to resume from: Lightning's SLURM hpc_ckpt_* (saved mid-step by older
    versions) is never picked, however new."""
    assert resume_checkpoint(tmp_path) is None
    (tmp_path / "hpc_ckpt_2.ckpt").write_bytes(b"")
    assert resume_checkpoint(tmp_path) is None
    (tmp_path / "last.ckpt").write_bytes(b"")
    assert resume_checkpoint(tmp_path) == tmp_path / "last.ckpt"


# ------------------------------------------------------------------ variants and learning


def test_reference_genome_mode_trains_on_reference_with_mse(tmp_path):
    ds = FakeDataset(genes=("G0", "G1", "G2"), n_samples=40, seq_len=SEQ_LEN)
    config = tiny_config("training.max_epochs=2", "data.reference_genome=true", "data.batch_size=2")
    seen = []

    class Spy(L.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            seen.append((batch[0].clone(), batch[1].clone(), batch[2].clone()))

    result = ft.finetune(
        ds, genes=["G0", "G1", "G2"], fold=0, config=config, out=tmp_path, callbacks=[Spy()]
    )
    assert result.summary["monitor"] == "tune_loss"
    split = ds.split(0)
    genes = ["G0", "G1", "G2"]
    for x, y, g in seen:
        for xi, yi, gi in zip(x, y, g):
            gene = genes[int(gi)]
            np.testing.assert_array_equal(xi.numpy(), ds.reference(gene))
            assert float(yi) == pytest.approx(
                ds.expression(gene).loc[split["train"]].mean(), rel=1e-5
            )
    assert sum(len(b[2]) for b in seen) == 2 * 3  # each gene once per epoch
    metrics = pd.read_csv(result.run_dir / "metrics.csv")
    assert metrics.tune_loss.notna().sum() == 2


def test_a_tiny_model_learns_a_high_h2_gene(tmp_path):
    ds = FakeDataset(genes=("G0",), n_samples=120, seq_len=SEQ_LEN, h2=0.9, seed=0)
    result = ft.finetune(
        ds, genes=["G0"], fold=0, config=tiny_config("training.max_epochs=8"), out=tmp_path
    )
    gene = result.summary["per_gene"]["G0"]
    assert gene["test_r2"] > 0.2 and gene["test_pcc"] > 0.6, gene


@pytest.mark.slow
def test_a_tiny_model_learns_a_high_h2_gene_of_the_simulated_cohort(tmp_path):
    """The learning check on the real pipeline: simulate -> prep -> finetune (tiny preset)."""
    _, sim = simulated_dataset(tmp_path, people=300, genes=2, seq_len=1024, h2=[0.9, 0.0])
    genes = list(pd.read_csv(sim.truth_genes, sep="\t")["gene"])
    config = tiny_config("training.max_epochs=8")
    high = ft.finetune(
        tmp_path / "dataset", genes=[genes[0]], fold=0, config=config, out=tmp_path / "runs"
    )
    null = ft.finetune(
        tmp_path / "dataset", genes=[genes[1]], fold=0, config=config, out=tmp_path / "runs"
    )
    high_gene, null_gene = high.summary["per_gene"][genes[0]], null.summary["per_gene"][genes[1]]
    assert high_gene["test_r2"] > 0.1 and high_gene["test_pcc"] > 0.3, high_gene
    assert null_gene["test_r2"] < 0.05, null_gene  # h2 = 0: nothing to learn


# ------------------------------------------------------------------ command line


def test_cli_arguments_reach_finetune(tmp_path, monkeypatch):
    genes_file = tmp_path / "train_genes.txt"
    genes_file.write_text("# train genes\nBTNL3\nZFP57  # high h2\n\nPPIF\n")
    tune_file = tmp_path / "heldout.txt"
    tune_file.write_text("ERAP2\n")
    captured = {}

    def fake_finetune(dataset, **kwargs):
        captured.update(kwargs, dataset=dataset)
        return ft.FinetuneResult(tmp_path, tmp_path / "best.ckpt", {}, pd.DataFrame())

    monkeypatch.setattr(ft, "finetune", fake_finetune)
    parser = argparse.ArgumentParser()
    finetune_command.add_arguments(parser)
    args = parser.parse_args(
        [
            "--dataset",
            "data/blood",
            "--genes-file",
            str(genes_file),
            "--fold",
            "2",
            "--tune-genes-file",
            str(tune_file),
            "--devices",
            "8",
            "--strategy",
            "ddp",
            "--random-init",
            "training.learning_rate=5e-4",
            "data.batch_size=16",
        ]
    )
    assert finetune_command.main(args) == 0
    assert captured["dataset"] == "data/blood" and captured["genes"] == ["BTNL3", "ZFP57", "PPIF"]
    assert captured["fold"] == 2 and captured["name"] == "train_genes"
    assert (
        captured["devices"] == 8
        and captured["strategy"] == "ddp"
        and captured["random_init"] is True
    )
    config = captured["config"]
    assert config.training.learning_rate == 5e-4 and config.data.batch_size == 16
    assert config.data.tune_genes == ["ERAP2"]


def test_bad_inputs_leave_no_run_directory(tmp_path, monkeypatch):
    """Unknown genes or weights that cannot be loaded fail before anything is written."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    ds = FakeDataset(genes=("G0",), n_samples=40, seq_len=SEQ_LEN)
    with pytest.raises(InputError, match="not in the dataset"):
        ft.finetune(ds, genes=["NOPE"], fold=0, config=tiny_config(), out=tmp_path)
    with pytest.raises(InputError, match="could not load Enformer weights"):
        ft.finetune(
            ds,
            genes=["G0"],
            fold=0,
            config=tiny_config(),
            out=tmp_path,
            pretrained="EleutherAI/enformer-official-rough",
        )
    assert list(tmp_path.iterdir()) == []
