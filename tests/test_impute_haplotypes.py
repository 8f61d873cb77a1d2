"""``variformer predict`` with runs trained on a ``prep --haplotypes`` dataset, and
``slurm baselines --indels``.

Truths: each run's own ``predictions.tsv`` (the training cohort's test people predicted again
from the training VCF must come out bit for bit the same); ``bcftools consensus -H 1/-H 2``
windows of the new people (tests/haplotype_cohort.py) fed to the model here, one window per
forward; the allele this test deletes from the VCF; the script an array task runs.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pysam
import pytest
import torch

from data_prep.genome import encode, one_hot
from data_prep.prep import prep_dataset
from tests.fakes import calibrate_, tiny_config
from tests.genomes import (
    random_sequence,
    rewrite_vcf,
    write_expression_bed,
    write_fasta,
    write_vcf,
)
from tests.haplotype_cohort import oracle_window
from variformer import finetune as ft
from variformer.cli import main as cli

GENE, GENE_ID, TSS1 = "HAPP", "ENSG00000000077.1", 1500  # TSS 1-based on chr1 (+ strand)
CONTIG_LEN, SEQ_LEN, N_TRAIN, N_NEW = 3000, 512, 40, 8
CAUSAL = 1490  # the deletion across the TSS, deleted from the new VCF in one test
DETERMINISTIC = ("model.hparams.attn_dropout=0.0", "model.hparams.pos_dropout=0.0")
SETTINGS = ("training.max_epochs=1", "training.early_stopping=false", "data.batch_size=8")


def _records(seq: str) -> list:
    """(pos1, REF, [ALT]): SNVs, an MNP, deletions and insertions around the TSS, and a
    deletion overlapping a later SNV (bcftools' overlap rule decides which one applies)."""

    def ref(p1, n=1):
        return seq[p1 - 1 : p1 - 1 + n]

    def other(p1):
        return "A" if ref(p1) != "A" else "C"

    return [
        (1330, ref(1330), [other(1330)]),
        (1380, ref(1380, 12), [ref(1380)]),  # 11-bp deletion upstream
        (1420, ref(1420), [ref(1420) + "GATTACA" * 3]),  # 21-bp insertion upstream
        (1460, ref(1460), [other(1460)]),
        (CAUSAL, ref(CAUSAL, 7), [ref(CAUSAL)]),  # 6-bp deletion across the TSS
        (1530, ref(1530, 2), ["TG" if ref(1530, 2) != "TG" else "CA"]),  # MNP
        (1560, ref(1560), [ref(1560) + "CC"]),
        (1600, ref(1600), [other(1600)]),
        (1650, ref(1650, 6), [ref(1650)]),  # a deletion ...
        (1652, ref(1652), [other(1652)]),  # ... over this SNV
        (2600, ref(2600, 3), [ref(2600)]),  # outside the window, inside the stored span
    ]


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    """Training people P (a haplotype and an SNV dataset, 2 folds), new people Q (own VCF),
    and two tiny runs under one root: fold 0 in haplotype mode, fold 1 on the mean one-hot."""
    tmp = tmp_path_factory.mktemp("impute_haps")
    rng = np.random.default_rng(77)
    seq = random_sequence(rng, CONTIG_LEN, lowercase=0.0, n_frac=0.0)
    fasta = write_fasta(tmp / "ref.fa", {"chr1": seq})
    recs = _records(seq)
    vcfs, copies = {}, None
    for prefix, n in (("P", N_TRAIN), ("Q", N_NEW)):
        samples = [f"{prefix}{i:03d}" for i in range(n)]
        records = []
        for i, (p1, r, alts) in enumerate(recs):
            haps = rng.random((n, 2)) < rng.uniform(0.25, 0.5)
            if prefix == "Q" and p1 == CAUSAL:  # Q000 carries it on haplotype 1 only, Q001 not
                haps[0], haps[1] = (True, False), (False, False)
            if prefix == "P" and p1 == CAUSAL:
                copies = haps.sum(axis=1)
            records.append(("chr1", p1, f"v{i}", r, alts, [f"{int(a)}|{int(b)}" for a, b in haps]))
        vcfs[prefix] = write_vcf(tmp / f"{prefix}.vcf.gz", {"chr1": CONTIG_LEN}, samples, records)
    y = 1.0 * copies + 0.3 * rng.normal(size=N_TRAIN)
    bed = write_expression_bed(
        tmp / "P.bed.gz", [("chr1", TSS1 - 1, GENE_ID)], [f"P{i:03d}" for i in range(N_TRAIN)],
        y[None, :],
    )  # fmt: skip
    tss = tmp / "tss.tsv"
    tss.write_text(f"gene_name\tgene_id\tchrom\ttss\tstrand\n{GENE}\t{GENE_ID}\tchr1\t{TSS1}\t+\n")
    common = dict(
        vcfs=[vcfs["P"]], fasta=fasta, annotation=tss, genes=[GENE], expression=bed,
        seq_len=SEQ_LEN, n_folds=2, tune_fraction=0.2, test_fraction=0.2, progress=False,
    )  # fmt: skip
    prep_dataset(out=tmp / "hap_ds", haplotypes=True, **common)
    prep_dataset(out=tmp / "snv_ds", **common)
    runs = tmp / "runs"
    real = ft.build_model
    with pytest.MonkeyPatch.context() as mp:
        # calibrated BatchNorms and attention: the predictions depend on the input
        mp.setattr(ft, "build_model", lambda c: calibrate_(real(c), SEQ_LEN).train())
        for fold, mode in ((0, "auto"), (1, "false")):
            config = tiny_config(*DETERMINISTIC, *SETTINGS, f"data.haplotypes={mode}")
            ft.finetune(tmp / "hap_ds", genes=[GENE], fold=fold, config=config, out=runs)
    return {"tmp": tmp, "fasta": fasta, "vcf": vcfs["P"], "new": vcfs["Q"],
            "hap": tmp / "hap_ds", "snv": tmp / "snv_ds", "runs": runs}  # fmt: skip


def _predict(capsys, *args) -> tuple[int, str]:
    code = cli(["predict", *map(str, args), "--device", "cpu", "--no-progress"])
    return code, capsys.readouterr().err


def _long(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "predicted_expression_long.tsv", sep="\t", dtype={"sample": str})


def _window_alleles(dataset: Path) -> pd.DataFrame:
    """The training dataset's applied alleles whose REF overlaps the reference window."""
    v = pd.read_csv(dataset / "variants.tsv", sep="\t", keep_default_na=False)
    g = pd.read_csv(dataset / "genes.tsv", sep="\t").iloc[0]
    lo, hi = v["pos"] - 1, v["pos"] - 1 + v["ref"].str.len()
    return v[(lo < g["end0"]) & (hi > g["start0"])]


# ---------------------------------------------------------------- the runs' own test people


def test_each_run_reproduces_its_test_predictions_bitwise_from_the_training_vcf(cohort, capsys):
    out = cohort["tmp"] / "own"
    code, err = _predict(capsys, "--runs", cohort["runs"], "--vcf", cohort["vcf"], "--out", out)
    assert code == 0, err
    long = _long(out)
    assert dict(zip(long["fold"], long["model"])) == {0: "variformer_haplotypes", 1: "variformer"}
    for fold in (0, 1):
        run = pd.read_csv(cohort["runs"] / GENE / f"fold{fold}" / "predictions.tsv", sep="\t")
        test = run[run["split"] == "test"]
        mine = long[long["fold"] == fold].set_index("sample")["predicted"]
        assert len(test) >= 5
        assert np.array_equal(mine.loc[test["sample"]].to_numpy(), test["predicted"].to_numpy())
    # every allele of the window is in the training VCF; indels and the MNP among them
    alleles = _window_alleles(cohort["hap"])
    assert (alleles["ref"].str.len() != alleles["alt"].str.len()).sum() >= 5
    assert (alleles["pos"] == 2600).sum() == 0  # the span's allele outside the window
    cov = pd.read_csv(out / "coverage.tsv", sep="\t")
    assert cov["n_model_snvs"].tolist() == [len(alleles)] * 2
    assert cov["n_found"].tolist() == [len(alleles)] * 2


# ---------------------------------------------------------------- new people with indels


def _oracle(cohort, vcf: Path, samples, tmp: Path, model, *, haplotypes: bool) -> np.ndarray:
    """Each person's ``bcftools consensus -H 1/-H 2`` windows through ``model``, one window
    per forward: the mean of the two predictions, or the prediction of their mean one-hot."""
    tss0 = TSS1 - 1
    values = []
    for s in samples:
        pair = [
            one_hot(encode(oracle_window(cohort["fasta"], vcf, "chr1", CONTIG_LEN, s, h, tss0,
                                         SEQ_LEN, tmp)))
            for h in (1, 2)
        ]  # fmt: skip
        xs = pair if haplotypes else [(pair[0] + pair[1]) / 2]
        with torch.no_grad():
            values.append(np.mean([float(model(torch.from_numpy(x)[None])[0]) for x in xs]))
    return np.array(values)


def test_a_new_persons_indel_changes_the_prediction_as_bcftools_consensus_says(
    cohort, tmp_path, capsys
):
    from variformer.model import Variformer

    new = cohort["new"]
    dropped = rewrite_vcf(
        new, tmp_path / "no_causal.vcf.gz",
        lambda line: None if line.split("\t")[1:2] == [str(CAUSAL)] else line,
    )  # fmt: skip
    got = {}
    for name, vcf in (("with", new), ("without", dropped)):
        code, err = _predict(capsys, "--runs", cohort["runs"], "--vcf", vcf, "--out",
                             tmp_path / name)  # fmt: skip
        assert code == 0, err
        got[name] = _long(tmp_path / name).set_index(["fold", "sample"])["predicted"]
    samples = [f"Q{i:03d}" for i in range(N_NEW)]
    for fold in (0, 1):
        model = Variformer.load(cohort["runs"] / GENE / f"fold{fold}").eval()
        for name, vcf in (("with", new), ("without", dropped)):
            want = _oracle(cohort, vcf, samples, tmp_path, model, haplotypes=fold == 0)
            mine = got[name].loc[fold].loc[samples].to_numpy()
            np.testing.assert_allclose(mine, want, rtol=1e-5, atol=1e-6)
        # the carrier of the deletion changes, the non-carrier does not
        with_, without = got["with"].loc[fold], got["without"].loc[fold]
        assert abs(with_["Q000"] - without["Q000"]) > 1e-4
        assert with_["Q001"] == pytest.approx(without["Q001"], rel=1e-6, abs=1e-7)
    cov = pd.read_csv(tmp_path / "without" / "coverage.tsv", sep="\t")
    n = len(_window_alleles(cohort["hap"]))
    assert cov["n_model_snvs"].tolist() == [n, n] and cov["n_found"].tolist() == [n - 1, n - 1]


def test_an_unphased_vcf_or_an_snv_dataset_is_refused_with_one_line(cohort, tmp_path, capsys):
    def unphase(line: str) -> str:
        if line.startswith("#") or line.split("\t")[1] != str(CAUSAL):
            return line
        return line.replace("1|0", "1/0", 1)  # Q000's heterozygous call, unphased

    unphased = rewrite_vcf(cohort["new"], tmp_path / "unphased.vcf.gz", unphase)
    out = tmp_path / "out"
    code, err = _predict(capsys, "--runs", cohort["runs"], "--vcf", unphased, "--out", out)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "unphased genotype" in err and f"chr1:{CAUSAL}" in err and "Q000" in err
    assert not out.exists() and not (tmp_path / ".out.partial").exists()
    code, err = _predict(capsys, "--runs", cohort["runs"], "--vcf", cohort["new"], "--dataset",
                         cohort["snv"], "--out", out)  # fmt: skip
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "haplotype mode" in err and "SNV-mode dataset" in err
    assert not out.exists() and not (tmp_path / ".out.partial").exists()


def test_an_elastic_net_with_indels_reproduces_its_test_predictions(cohort, tmp_path, capsys):
    from baselines.run import run_baselines

    run_baselines(cohort["hap"], out=tmp_path / "BL", folds=[0], indels=True, progress=False)
    fit = tmp_path / "BL" / "elastic_net" / GENE / "fold0"
    coef = pd.read_csv(fit / "coefficients.tsv", sep="\t", keep_default_na=False)
    assert (coef["ref"].str.len() != coef["alt"].str.len()).any()
    code, err = _predict(capsys, "--baselines", tmp_path / "BL", "--vcf", cohort["vcf"],
                         "--out", tmp_path / "en")  # fmt: skip
    assert code == 0, err
    run = pd.read_csv(fit / "predictions.tsv", sep="\t")
    test = run[run["split"] == "test"]
    mine = _long(tmp_path / "en").set_index("sample")["predicted"]
    assert np.array_equal(mine.loc[test["sample"]].to_numpy(), test["predicted"].to_numpy())


def test_records_and_windows_past_the_stored_span(cohort, tmp_path):
    """A new record reaching out of the stored span is skipped; a window that needs reference
    past it gets N there and is said so; everything else is bcftools consensus."""
    from data_prep import open_dataset
    from data_prep.genotype_dataset import build_genotype_dataset

    seq = pysam.FastaFile(str(cohort["fasta"])).fetch("chr1")
    genes = pd.read_csv(cohort["hap"] / "genes.tsv", sep="\t").iloc[0]
    span0 = int(genes["span0"])
    big = (span0 + 11, seq[span0 + 10 : 1300])  # REF reaches into the window: pulls bases in
    past = (span0 - 20, seq[span0 - 21 : span0 + 9])  # starts before the span
    records = [("chr1", p, f"d{i}", r, [r[0]], gt)
               for i, ((p, r), gt) in enumerate([(big, ["1|0", "0|0"]), (past, ["0|0", "0|1"])])]  # fmt: skip
    vcf = write_vcf(tmp_path / "R.vcf.gz", {"chr1": CONTIG_LEN}, ["R0", "R1"], records)
    lines = []
    build_genotype_dataset(open_dataset(cohort["hap"]), vcf, tmp_path / "ds", genes=[GENE],
                           log=lines.append)  # fmt: skip
    ds = open_dataset(tmp_path / "ds")
    skipped = json.loads((tmp_path / "ds" / "dataset.json").read_text())["summary"]
    assert skipped["skipped_alleles"] == {"beyond_span": 1, "outside_span": 1}
    assert len(lines) == 1 and "1 haplotype window(s) reach past the reference span" in lines[0]
    # R0's haplotype 1 lost len(REF) - 1 bases before the TSS: its window starts that much
    # further left, before the span, and the first span0 - start bases are N
    start = (TSS1 - 1) - (len(big[1]) - 1) - SEQ_LEN // 2
    n_missing = span0 - start
    assert 0 < n_missing < SEQ_LEN // 2
    for s, hap in (("R0", 1), ("R0", 2), ("R1", 1), ("R1", 2)):
        want = encode(oracle_window(cohort["fasta"], vcf, "chr1", CONTIG_LEN, s, hap, TSS1 - 1,
                                    SEQ_LEN, tmp_path))  # fmt: skip
        got = ds._haplotype_codes(GENE, [s])[0, hap - 1]
        if (s, hap) == ("R0", 1):
            assert (got[:n_missing] == 4).all() and (want[:n_missing] != 4).all()
            got, want = got[n_missing:], want[n_missing:]
        np.testing.assert_array_equal(got, want)


# ---------------------------------------------------------------- slurm baselines --indels


def test_slurm_baselines_passes_indels_to_every_task(cohort, tmp_path, capsys):
    out, jobs = tmp_path / "BL", tmp_path / "jobs"
    argv = ["slurm", "baselines", "--dataset", str(cohort["hap"]), "--genes", GENE,
            "--folds", "0", "--out", str(out), "--job-dir", str(jobs), "--cpus", "1"]  # fmt: skip
    assert cli([*argv, "--indels"]) == 0, capsys.readouterr().err
    (sub,) = jobs.glob("*-elastic_net")
    script = sub / "baselines_array.sbatch"
    env = {**os.environ, "SLURM_ARRAY_TASK_ID": "0", "SLURM_CPUS_PER_TASK": "1"}
    echoed = subprocess.run(["bash", str(script)], capture_output=True, text=True, check=True,
                            env={**env, "VARIFORMER": "echo"})  # fmt: skip
    words = echoed.stdout.strip().splitlines()[-2].split()
    assert words[0] == "baselines" and "--indels" in words
    # the task really fits every allele of the window
    subprocess.run(["bash", str(script)], capture_output=True, text=True, check=True, env=env)
    fit = out / "elastic_net" / GENE / "fold0"
    assert json.loads((fit / "summary.json").read_text())["options"]["indels"] is True
    coef = pd.read_csv(fit / "coefficients.tsv", sep="\t", keep_default_na=False)
    window = _window_alleles(cohort["hap"])
    assert (
        coef[["pos", "ref", "alt"]].values.tolist() == window[["pos", "ref", "alt"]].values.tolist()
    )
    # without --indels those fits are made from other options: refused before writing
    capsys.readouterr()
    assert cli(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--force" in err[0], err
    assert len(list(jobs.glob("*-elastic_net"))) == 1
    # an SNV dataset has no indels: refused at submission
    argv[3] = str(cohort["snv"])
    assert cli([*argv, "--indels", "--job-dir", str(tmp_path / "jobs2")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "SNV dataset" in err[0], err
    assert not (tmp_path / "jobs2").exists()
