"""Haplotype mode (issue #24, item 2): a person's prediction is the mean of the model's
predictions on their two haplotype windows, the loss is on that mean, and a run records the
setting for everything that predicts with it (evaluate, ISM, `variformer predict`).

The truth here is computed from the model called directly on ``ds.haplotypes(gene, sample)``
(which equals ``bcftools consensus -H 1/-H 2``: tests/test_haplotypes_prep.py) and from numpy.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from core.errors import InputError
from core.runs import read_run
from data_prep import open_dataset
from data_prep.prep import prep_dataset
from tests.fakes import ROOT, calibrate_, tiny_config, tiny_hparams
from tests.genomes import random_sequence, write_expression_bed, write_fasta, write_vcf
from variformer import finetune as ft
from variformer.cli import main as cli

GENE, GENE_ID, TSS1 = "HAPG", "ENSG00000000042.1", 1500  # TSS 1-based on chr1 (+ strand)
SEQ_LEN = 512
N_PEOPLE = 40
# no dropout: in eval mode a forward pass is a function of the input (BatchNorms train, as
# tiny.yaml says a random trunk needs, so that the predictions depend on the sequence)
DETERMINISTIC = ("model.hparams.attn_dropout=0.0", "model.hparams.pos_dropout=0.0")
SETTINGS = ("training.max_epochs=2", "training.early_stopping=false", "data.batch_size=8")


def _cohort(tmp: Path) -> dict:
    """A phased cohort of one gene: SNVs, an MNP, deletions and insertions within 200 bp of
    the TSS (one deletion causal); an SNV-mode and a haplotype-mode dataset of it."""
    rng = np.random.default_rng(24)
    seq = random_sequence(rng, 3000, lowercase=0.0, n_frac=0.0)
    fasta = write_fasta(tmp / "ref.fa", {"chr1": seq})

    def ref(p1, n=1):
        return seq[p1 - 1 : p1 - 1 + n]

    def other(p1):
        return "A" if ref(p1) != "A" else "C"

    recs = [
        (1330, ref(1330), [other(1330)]),
        (1380, ref(1380, 12), [ref(1380)]),  # 11-bp deletion upstream
        (1420, ref(1420), [ref(1420) + "GATTACA" * 3]),  # 21-bp insertion upstream
        (1460, ref(1460), [other(1460)]),
        (1490, ref(1490, 7), [ref(1490)]),  # the causal deletion, across the TSS (1500)
        (1530, ref(1530, 2), ["TG" if ref(1530, 2) != "TG" else "CA"]),  # MNP
        (1560, ref(1560), [ref(1560) + "CC"]),
        (1600, ref(1600), [other(1600)]),
        (1650, ref(1650, 4), [ref(1650)]),
    ]
    tss = tmp / "tss.tsv"
    tss.write_text(f"gene_name\tgene_id\tchrom\ttss\tstrand\n{GENE}\t{GENE_ID}\tchr1\t{TSS1}\t+\n")
    for prefix in ("P", "Q"):  # the training cohort, and other people (a cross-cohort test)
        samples = [f"{prefix}{i:03d}" for i in range(N_PEOPLE)]
        records, copies = [], {}
        for i, (p1, r, alts) in enumerate(recs):
            haps = rng.random((N_PEOPLE, 2)) < rng.uniform(0.25, 0.5)
            copies[p1] = haps.sum(axis=1)
            gts = [f"{int(a)}|{int(b)}" for a, b in haps]
            records.append(("chr1", p1, f"v{i}", r, alts, gts))
        vcf = write_vcf(tmp / f"{prefix}.vcf.gz", {"chr1": len(seq)}, samples, records)
        y = 1.0 * copies[1490] - 0.6 * copies[1460] + 0.3 * rng.normal(size=N_PEOPLE)
        bed = write_expression_bed(
            tmp / f"{prefix}.bed.gz", [("chr1", TSS1 - 1, GENE_ID)], samples, y[None, :]
        )
        common = dict(
            vcfs=[vcf], fasta=fasta, annotation=tss, genes=[GENE], expression=bed,
            seq_len=SEQ_LEN, n_folds=1, tune_fraction=0.2, test_fraction=0.2, progress=False,
        )  # fmt: skip
        if prefix == "P":
            prep_dataset(out=tmp / "hap_ds", haplotypes=True, **common)
            prep_dataset(out=tmp / "snv_ds", **common)
        else:
            prep_dataset(out=tmp / "other_snv_ds", **common)
    return {"hap": tmp / "hap_ds", "snv": tmp / "snv_ds", "other_snv": tmp / "other_snv_ds",
            "tmp": tmp}  # fmt: skip


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    return _cohort(tmp_path_factory.mktemp("hapcohort"))


@pytest.fixture(scope="module")
def runs(cohort):
    """A haplotype-mode run (auto on the haplotype dataset) and a mean-one-hot run of the same
    dataset (data.haplotypes=false), both under one runs root."""
    root = cohort["tmp"] / "runs"
    config = tiny_config(*DETERMINISTIC, *SETTINGS)
    real = ft.build_model
    with pytest.MonkeyPatch.context() as mp:
        # a few steps from random weights leave a model blind to its input (BatchNorm statistics
        # of random init); calibrated first, its predictions differ between haplotypes
        mp.setattr(ft, "build_model", lambda c: calibrate_(real(c), SEQ_LEN).train())
        hap = ft.finetune(cohort["hap"], genes=[GENE], fold=0, config=config, out=root, name="hap")
        mean = ft.finetune(
            cohort["hap"], genes=[GENE], fold=0, out=root, name="mean",
            config=tiny_config(*DETERMINISTIC, *SETTINGS, "data.haplotypes=false"),
        )  # fmt: skip
    return {"root": root, "hap": hap, "mean": mean}


def _tiny_model(length: int, seed: int = 0):
    """A random tiny Variformer that reads its whole input (:func:`tests.fakes.calibrate_`)."""
    from variformer.model import Variformer

    torch.manual_seed(seed)
    hp = {**tiny_hparams(), "attn_dropout": 0.0, "pos_dropout": 0.0}
    return calibrate_(Variformer.from_hparams(**hp), length).eval()


def _forward(model, x: np.ndarray) -> float:
    """The model on one window (L, 4), alone in its batch."""
    with torch.no_grad():
        return float(model(torch.from_numpy(np.ascontiguousarray(x))[None])[0])


def _mean_of_haplotypes(model, ds, gene: str, samples) -> np.ndarray:
    """Two independent forwards per person on ds.haplotypes, averaged (the truth)."""
    return np.array(
        [np.mean([_forward(model, h) for h in ds.haplotypes(gene, s)]) for s in samples]
    )


# ---------------------------------------------------------------- the dataset accessor


def test_haplotype_sequences_batch_and_crop_the_haplotypes(cohort):
    ds = open_dataset(cohort["hap"])
    people = ds.samples[:5]
    whole = np.stack([ds.haplotypes(GENE, s) for s in people])  # (5, 2, L, 4)
    np.testing.assert_array_equal(ds.haplotype_sequences(GENE, people), whole)
    full = np.full((5, 2, SEQ_LEN, 4), np.nan, np.float32)  # whole windows, into a buffer
    assert ds.haplotype_sequences(GENE, people, out=full) is full
    np.testing.assert_array_equal(full, whole)
    buf = np.empty((5, 2, 128, 4), np.float32)
    got = ds.haplotype_sequences(GENE, people, start=192, end=320, out=buf)
    assert got is buf
    np.testing.assert_array_equal(buf, whole[:, :, 192:320])
    # the crop convention of .sequences: the same window positions, averaged there
    np.testing.assert_array_equal(
        ds.sequences(GENE, people, start=192, end=320), whole[:, :, 192:320].mean(axis=1)
    )
    assert any((h[0] != h[1]).any() for h in whole), "the cohort has heterozygous people"
    with pytest.raises(InputError, match="outside"):
        ds.haplotype_sequences(GENE, people, start=0, end=SEQ_LEN + 1)
    with pytest.raises(InputError, match="--haplotypes"):
        open_dataset(cohort["snv"]).haplotype_sequences(GENE, people)


# ---------------------------------------------------------------- the training system


@pytest.mark.filterwarnings("ignore:You are trying to `self.log")
def test_system_predicts_the_mean_of_two_haplotype_forwards_and_its_loss_is_on_it(cohort):
    from variformer.data import VariformerDataModule
    from variformer.system import VariformerSystem

    dm = VariformerDataModule(
        cohort["hap"], genes=[GENE], fold=0, batch_size=6, haplotypes="auto", seq_len=256
    )
    dm.setup("fit")
    assert dm.haplotypes is True
    loader = dm.train_dataloader()
    indices = next(iter(loader.batch_sampler))
    people = [loader.dataset.items.sample[i] for i in indices]
    x, y, _ = next(iter(loader))
    assert tuple(x.shape) == (6, 2, 256, 4)
    ds = open_dataset(cohort["hap"])
    truth_x = np.stack([ds.haplotypes(GENE, s)[:, 128:384] for s in people])  # TSS-centred crop
    np.testing.assert_array_equal(x.numpy(), truth_x)
    expr = ds.expression(GENE)
    np.testing.assert_allclose(y.numpy(), expr.loc[people].to_numpy(np.float32))

    model = _tiny_model(256)
    system = VariformerSystem(model, gene_names=[GENE], alpha=0.5).eval()
    with torch.no_grad():
        pred = system(x).numpy()
        loss = float(system.training_step((x, y, None), 0))
    # the truth: two separate forwards of the model per person, averaged
    want = np.array([np.mean([_forward(model, h) for h in hx]) for hx in truth_x])
    np.testing.assert_allclose(pred, want, rtol=1e-5, atol=1e-6)
    p, t = want.astype(np.float64), y.numpy().astype(np.float64)
    i, j = np.triu_indices(len(p), k=1)
    mse = np.mean((p - t) ** 2)
    pairwise = np.mean(((p[i] - p[j]) - (t[i] - t[j])) ** 2)
    assert loss == pytest.approx(0.5 * mse + 0.5 * pairwise, rel=1e-5)
    # the two haplotypes' predictions differ: one of them alone would not pass
    one = np.array([_forward(model, hx[0]) for hx in truth_x])
    assert np.abs(one - want).max() > 1e-2


# ---------------------------------------------------------------- finetune, evaluate


def test_a_haplotype_run_records_the_setting_and_predicts_the_mean_of_its_haplotypes(cohort, runs):
    from variformer.model import Variformer

    ds = open_dataset(cohort["hap"])
    for key, haplotypes in (("hap", True), ("mean", False)):
        result = runs[key]
        assert result.summary["haplotypes"] is haplotypes
        recorded = yaml.safe_load((result.run_dir / "config.yaml").read_text())
        assert recorded["data"]["haplotypes"] is haplotypes  # resolved, not "auto"
        inputs = json.loads((result.run_dir / "inputs.json").read_text())
        assert inputs["config"]["data"]["haplotypes"] is haplotypes
        model = Variformer.load(result.run_dir / "best.ckpt").eval()
        preds = read_run(result.run_dir).predictions
        people = list(preds["sample"])
        assert set(preds["split"]) == {"tune", "test"} and len(people) == 16
        if haplotypes:
            want = _mean_of_haplotypes(model, ds, GENE, people)
            first = [_forward(model, ds.haplotypes(GENE, s)[0]) for s in people]
            assert np.abs(want - first).max() > 1e-2  # the model reads its input
        else:  # the mean one-hot of the two haplotypes, one forward
            want = [_forward(model, ds.haplotypes(GENE, s).mean(axis=0)) for s in people]
        np.testing.assert_allclose(preds["predicted"], want, rtol=1e-5, atol=1e-6)
    assert not np.allclose(
        read_run(runs["hap"].run_dir).predictions["predicted"],
        read_run(runs["mean"].run_dir).predictions["predicted"],
    )


def test_evaluate_reads_the_mode_from_the_run(cohort, runs, capsys):
    out = cohort["tmp"] / "eval"
    code = cli(["evaluate", "--dataset", str(cohort["hap"]), "--runs", str(runs["root"]),
                "--out", str(out)])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    metrics = pd.read_csv(out / "metrics.tsv", sep="\t")
    assert set(metrics["model"]) == {"variformer", "variformer_haplotypes"}
    for model, key in (("variformer_haplotypes", "hap"), ("variformer", "mean")):
        row = metrics[(metrics["model"] == model) & (metrics["split"] == "test")].iloc[0]
        assert row["r2"] == pytest.approx(runs[key].summary["per_gene"][GENE]["test_r2"])
    # a haplotype-mode run cannot read an SNV-mode test cohort: one line, nothing scored
    code = cli(["evaluate", "--dataset", str(cohort["hap"]), "--runs", str(runs["root"]),
                "--test-dataset", str(cohort["other_snv"]), "--out", str(cohort["tmp"] / "eval2")])  # fmt: skip
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if "error" in line]
    assert code == 2 and len(errors) == 1 and "haplotype mode" in errors[0], err
    assert "prep --haplotypes" in errors[0]
    assert not (cohort["tmp"] / "eval2").exists()


def test_a_haplotype_run_in_the_test_cohort_is_scored_from_its_haplotypes(cohort, runs):
    from variformer.cross_cohort import cross_cohort_run
    from variformer.model import Variformer

    ds = open_dataset(cohort["hap"])
    run = read_run(runs["hap"].run_dir)
    got = cross_cohort_run(run, ds)
    model = Variformer.load(run.path).eval()
    want = _mean_of_haplotypes(model, ds, GENE, list(got["sample"]))
    np.testing.assert_allclose(got["predicted"], want, rtol=1e-5, atol=1e-6)


def test_ism_background_of_a_haplotype_run_scores_every_allele_on_both_haplotypes(
    cohort, runs, capsys
):
    """Exactness against bcftools windows is tests/test_variant_effects.py's; here the real
    trained run: every observed allele of its crop (SNVs, MNPs, indels) gets a finite score."""
    ds = open_dataset(cohort["hap"])
    out = cohort["tmp"] / "ism_background.tsv"
    code = cli(["ism", "--dataset", str(cohort["hap"]), "--run", str(runs["hap"].run_dir),
                "--background", ds.samples[0], "--out", str(out), "--device", "cpu"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    table = pd.read_csv(out, sep="\t", dtype={"chrom": str})
    v = ds.variants(GENE)
    crop = read_run(runs["hap"].run_dir).config["data"]["seq_len"] or ds.seq_len
    lo = ds.window(GENE).start0 + (ds.seq_len - crop) // 2
    inside = (v["pos"] - 1 < lo + crop) & (v["pos"] - 1 + v["ref"].str.len() > lo)
    assert set(zip(table["pos"], table["ref"], table["alt"])) == set(
        zip(v["pos"][inside], v["ref"][inside], v["alt"][inside])
    )
    assert (table["ref"].str.len() != table["alt"].str.len()).any()  # indels are scored
    assert np.isfinite(table["score"]).all() and (table["score"] != 0).any()


def test_haplotypes_true_on_an_snv_dataset_is_refused_with_one_line(cohort, capsys):
    out = cohort["tmp"] / "refused"
    code = cli(["finetune", "--dataset", str(cohort["snv"]), "--gene", GENE, "--fold", "0",
                "--config", "tiny", "--out", str(out), "data.haplotypes=true"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "data.haplotypes=true" in err and "prep --haplotypes" in err
    assert not out.exists() or not any(out.rglob("*.ckpt"))
    with pytest.raises(InputError, match="auto, true or false"):
        tiny_config("data.haplotypes=maybe")


def test_attributions_of_a_haplotype_run_use_both_haplotypes_of_each_person(cohort, runs):
    from variformer.analysis.attribution_profiles import attribution_table
    from variformer.model import Variformer

    ds = open_dataset(cohort["hap"])
    run = read_run(runs["hap"].run_dir)
    v = ds.variants(GENE)
    snv = v[(v["ref"].str.len() == 1) & (v["alt"].str.len() == 1)].iloc[:1]
    hsvs = snv.assign(model="variformer", gene=GENE)
    drivers = pd.DataFrame(columns=["model", "gene", "fold", "chrom", "pos", "ref", "alt"])
    table = attribution_table([run], ds, hsvs, drivers, flank=300, max_controls=0, max_people=3)
    personal = table[(table["background"] == "personal") & (table["group"] == "hsv")]
    # the truth: autograd of the model on each of the 3 people's 2 haplotype windows
    model = Variformer.load(run.path).eval()
    test = list(ds.split(0)["test"])[:3]
    x = torch.from_numpy(np.concatenate([ds.haplotypes(GENE, s) for s in test]))
    x.requires_grad_(True)
    model(x).sum().backward()
    gxi = (x.grad * x).detach().numpy().astype(np.float64).mean(axis=0)
    track = np.abs(gxi).max(axis=1)
    z = (track - track.mean()) / track.std()
    centre = int(snv["pos"].iloc[0]) - 1 - ds.window(GENE).start0
    want = z[centre + personal["offset"].to_numpy()]
    np.testing.assert_allclose(personal["attribution"], want, rtol=1e-4, atol=1e-5)
    mean_one_hot = torch.from_numpy(ds.sequences(GENE, test)).requires_grad_(True)
    model(mean_one_hot).sum().backward()
    other = np.abs((mean_one_hot.grad * mean_one_hot).detach().numpy().mean(axis=0)).max(axis=1)
    other = (other - other.mean()) / other.std()
    assert not np.allclose(other[centre + personal["offset"].to_numpy()], want, atol=1e-3)


# ---------------------------------------------------------------- exact resume


_SCRIPT = """
import os, signal, sys
import lightning as L
from tests.fakes import tiny_config
from variformer import finetune as ft
from variformer.interrupts import TrainingInterrupted

dataset, out = sys.argv[1], sys.argv[2]

class Send(L.Callback):
    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if (trainer.current_epoch, batch_idx) == (1, 2):  # mid-step: stops after micro-batch 4
            os.kill(os.getpid(), signal.SIGTERM)

try:
    ft.finetune(dataset, genes=[%r], fold=0, config=tiny_config(*%r), out=out, callbacks=[Send()])
except TrainingInterrupted as err:
    print(err, file=sys.stderr)
    sys.exit(err.exit_code)
"""


def test_a_haplotype_run_stopped_mid_epoch_resumes_exactly(cohort, tmp_path):
    from tests.fakes import same_run

    # 4 people per micro-batch, 2 per optimizer step: 6 micro-batches per epoch
    settings = (*DETERMINISTIC, *SETTINGS, "data.batch_size=4")
    whole = ft.finetune(
        cohort["hap"], genes=[GENE], fold=0, config=tiny_config(*settings), out=tmp_path / "whole"
    )
    script = _SCRIPT % (GENE, settings)
    stopped = subprocess.run(
        [sys.executable, "-c", script, str(cohort["hap"]), str(tmp_path)], cwd=ROOT,
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert stopped.returncode == 128 + signal.SIGTERM, stopped.stderr[-2000:]
    assert "in epoch 1 after 4 micro-batches" in stopped.stderr, stopped.stderr[-2000:]
    assert (tmp_path / GENE / "fold0.partial").is_dir()
    resumed = ft.finetune(
        cohort["hap"], genes=[GENE], fold=0, config=tiny_config(*settings), out=tmp_path
    )
    same_run(whole, resumed)
