"""``variformer ism`` on a small simulated dataset: a run, a pre-trained Enformer, resume, errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from enformer_pytorch import Enformer

from core.errors import InputError
from tests.fakes import ISM_CROP as CROP
from tests.fakes import ISM_SEQ_LEN as SEQ_LEN
from tests.fakes import calibrate_, copy_run
from variformer import cli
from variformer.analysis import ism
from variformer.analysis.gene_ism import COLUMNS, gene_snvs, write_ism_tsv
from variformer.enformer import load_enformer
from variformer.model import Variformer
from variformer.predict import CenterBins


def run_cli(*argv) -> int:
    return cli.main(["ism", *map(str, argv)])


def test_run_over_its_genes_writes_the_pinned_columns(ism_cohort, tmp_path, capsys):
    ds, out = ism_cohort["ds"], tmp_path / "ism.tsv"
    assert run_cli("--run", ism_cohort["run"], "--dataset", ism_cohort["path"], "--out", out) == 0
    table = pd.read_csv(out, sep="\t", dtype={"chrom": str, "id": str})
    assert list(table.columns) == list(COLUMNS)
    gene = ism_cohort["genes"][0]  # the run's own genes only
    assert set(table["gene"]) == {gene} and (table["fold"] == 1).all()
    # every SNV of the run's centre crop, with ds.variants' 1-based positions
    win = ds.window(gene)
    crop0 = win.start0 + SEQ_LEN // 2 - CROP // 2
    allv = ds.variants(gene)
    inside = allv[(allv["pos"] - 1 >= crop0) & (allv["pos"] - 1 < crop0 + CROP)]
    assert len(table) == len(inside) >= 3
    np.testing.assert_array_equal(table["pos"], inside["pos"])
    np.testing.assert_array_equal(table["alt"], inside["alt"])
    # tss_distance as the simulator's truth defines dist_to_tss
    truth = ism_cohort["truth"]
    joined = table.merge(truth[truth["gene"] == gene], on=["pos", "ref", "alt"])
    assert len(joined) > 0
    np.testing.assert_array_equal(joined["tss_distance"], joined["dist_to_tss"])
    # scores: naive ISM of the saved model on the cropped reference
    model = Variformer.load(ism_cohort["run"])
    seq = ds.reference(gene)[SEQ_LEN // 2 - CROP // 2 : SEQ_LEN // 2 + CROP // 2]
    var = pd.DataFrame({"pos0": inside["pos"] - 1 - crop0, "alt": inside["alt"]})
    naive = ism(model, seq, var, method="naive", device="cpu")
    assert np.abs(naive).max() > 1e-4
    np.testing.assert_allclose(table["score"], naive, atol=1e-4 * np.abs(naive).max())
    assert "wrote" in capsys.readouterr().out


def test_background_sample_and_bad_inputs(ism_cohort, tmp_path, capsys):
    ds, gene, out = ism_cohort["ds"], ism_cohort["genes"][0], tmp_path / "bg.tsv"
    sample = ds.samples[int((ds.dosages(gene) == 2).sum(axis=1).argmax())]  # some hom-ALT
    args = ("--run", ism_cohort["run"], "--dataset", ism_cohort["path"], "--gene", gene)
    assert run_cli(*args, "--background", sample, "--method", "naive", "--out", out) == 0
    table = pd.read_csv(out, sep="\t")
    snv = gene_snvs(ds, gene, seq_len=CROP)
    lo = SEQ_LEN // 2 - CROP // 2
    person = ds.sequences(gene, [sample], start=lo, end=lo + CROP)[0]
    eye = np.eye(4, dtype=np.float32)
    carried = np.all(person[snv["pos0"]] == eye[["ACGT".index(a) for a in snv["alt"]]], axis=1)
    np.testing.assert_array_equal(table["score"][carried], 0.0)  # homozygous ALT: identity
    assert carried.any() and (table["score"][~carried] != 0).any()
    # errors: one line, exit 2, nothing written
    for extra, message in [
        (("--gene", "NOPE"), "not in the dataset"),
        (("--gene", ism_cohort["genes"][1]), "was not trained on"),
        (("--background", "NOBODY"), "not a sample"),
        (("--batch-size", "0"), "--batch-size must be >= 1"),
    ]:
        bad = tmp_path / "bad.tsv"
        code = run_cli(
            "--run", ism_cohort["run"], "--dataset", ism_cohort["path"], *extra, "--out", bad
        )
        assert code == 2 and message in capsys.readouterr().err and not bad.exists()
    assert run_cli(*args, "--out", out) == 2  # exists without --force
    assert "--force" in capsys.readouterr().err
    assert run_cli(*args, "--out", out, "--force") == 0


def test_pretrained_enformer_track(ism_cohort, tmp_path):
    torch.manual_seed(2)
    enf = Enformer.from_hparams(
        dim=48,
        depth=1,
        heads=2,
        attn_dim_key=8,
        dim_divisible_by=4,
        output_heads={"human": 6},
        target_length=-1,
    )
    calibrate_(enf, SEQ_LEN)
    enf.save_pretrained(tmp_path / "enformer", safe_serialization=False)
    out = tmp_path / "enf.tsv"
    gene = ism_cohort["genes"][1]
    argv = ["--enformer", tmp_path / "enformer", "--track", 4, "--dataset", ism_cohort["path"]]
    assert run_cli(*argv, "--gene", gene, "--out", out) == 0
    table = pd.read_csv(out, sep="\t")
    assert (table["fold"] == -1).all() and len(table) == len(ism_cohort["ds"].variants(gene))
    model = CenterBins(load_enformer(tmp_path / "enformer"), track=4, head="human")
    snv = gene_snvs(ism_cohort["ds"], gene)
    naive = ism(model, ism_cohort["ds"].reference(gene), snv, method="naive", device="cpu")
    assert np.abs(naive).max() > 1e-6
    np.testing.assert_allclose(table["score"], naive, atol=1e-4 * np.abs(naive).max())
    assert run_cli(*argv, "--track", 6, "--out", tmp_path / "x.tsv") == 2


def test_interrupted_runs_resume_from_finished_genes(tmp_path):
    calls = []

    def table(gene, fail_on=None):
        calls.append(gene)
        if gene == fail_on:
            raise KeyboardInterrupt
        return pd.DataFrame(
            [[gene, 0, "1", 10, ".", "A", "C", 0.1, -5, 0.25]], columns=list(COLUMNS)
        )

    out, genes = tmp_path / "ism.tsv", ["A", "B", "C"]
    with pytest.raises(KeyboardInterrupt):
        write_ism_tsv(out, genes, lambda g: table(g, "C"), settings={"x": 1}, log=lambda m: None)
    assert not out.exists() and calls == ["A", "B", "C"]
    calls.clear()
    result = write_ism_tsv(out, genes, table, settings={"x": 1}, log=lambda m: None)
    assert calls == ["C"] and list(result["gene"]) == genes  # A and B were kept
    assert list(pd.read_csv(out, sep="\t")["gene"]) == genes
    assert not (tmp_path / ".ism.tsv.partial").exists()
    with pytest.raises(InputError, match="--force"):
        write_ism_tsv(out, genes, table, settings={"x": 1})
    # other settings: finished genes are not reused
    calls.clear()
    with pytest.raises(KeyboardInterrupt):
        write_ism_tsv(
            tmp_path / "o.tsv", genes, lambda g: table(g, "B"), settings={"x": 1}, log=print
        )
    calls.clear()
    write_ism_tsv(tmp_path / "o.tsv", genes, table, settings={"x": 2}, log=lambda m: None)
    assert calls == genes


def test_runs_root_merges_every_run_like_each_run_alone(ism_cohort, tmp_path, capsys):
    """`--runs RUNS [--fold K]` = the `--run` tables of each finished run, concatenated."""
    g0, g1 = ism_cohort["genes"]
    root = tmp_path / "runs"
    copy_run(ism_cohort["run"], root / g0 / "fold1", fold=1, genes=[g0])
    copy_run(ism_cohort["run"], root / g1 / "fold1", fold=1, genes=[g1])
    copy_run(ism_cohort["run"], root / g1 / "fold0", fold=0, genes=[g1])
    (root / g0 / "fold0.partial").mkdir()  # unfinished: skipped
    singles = []
    for run in (root / g0 / "fold1", root / g1 / "fold1"):
        out = tmp_path / f"{run.parent.name}.tsv"
        assert run_cli("--run", run, "--dataset", ism_cohort["path"], "--out", out) == 0
        singles.append(pd.read_csv(out, sep="\t", dtype={"chrom": str, "id": str}))
    merged = tmp_path / "ism" / "variformer.tsv"
    merged.parent.mkdir()
    assert (
        run_cli("--runs", root, "--fold", 1, "--dataset", ism_cohort["path"], "--out", merged) == 0
    )
    table = pd.read_csv(merged, sep="\t", dtype={"chrom": str, "id": str})
    pd.testing.assert_frame_equal(table, pd.concat(singles, ignore_index=True))
    # every fold: the fold-0 run of g1 joins with its own fold
    everything = tmp_path / "all.tsv"
    assert run_cli("--runs", root, "--dataset", ism_cohort["path"], "--out", everything) == 0
    table = pd.read_csv(everything, sep="\t", dtype={"chrom": str, "id": str})
    assert sorted(set(zip(table["gene"], table["fold"]))) == sorted({(g0, 1), (g1, 1), (g1, 0)})
    g1_folds = table[table["gene"] == g1]
    a, b = (
        g1_folds[g1_folds["fold"] == f].drop(columns="fold").reset_index(drop=True) for f in (0, 1)
    )
    pd.testing.assert_frame_equal(a, b)  # same model, same SNVs: same scores
    capsys.readouterr()


def test_runs_root_refusals(ism_cohort, tmp_path, capsys):
    g0, _ = ism_cohort["genes"]
    root = tmp_path / "runs"
    copy_run(ism_cohort["run"], root / g0 / "fold1", fold=1, genes=[g0])
    copy_run(ism_cohort["run"], root / "multi" / "fold1", fold=1, genes=[g0])
    cases = [
        (["--runs", root, "--fold", 1], f"{g0} has two runs on fold 1"),
        (["--runs", root, "--fold", 2], "no finished fine-tuning run of fold 2"),
        (["--runs", tmp_path / "nowhere"], "is not a directory of runs"),
        (["--run", root / g0 / "fold1", "--fold", 1], "--fold goes with --runs"),
    ]
    for argv, message in cases:
        out = tmp_path / "x.tsv"
        assert run_cli(*argv, "--dataset", ism_cohort["path"], "--out", out) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err
        assert not out.exists()


def test_ism_is_32_bit_by_default_and_the_record_says_which(ism_cohort, tmp_path):
    """bf16 only when asked (an ISM score is a difference of two close predictions): the
    default table equals an explicit 32-bit naive loop, the bf16 one does not, and each table's
    record (<out>.json) names its precision."""
    import json as _json

    ds, gene = ism_cohort["ds"], ism_cohort["genes"][0]
    base = ["--run", ism_cohort["run"], "--dataset", ism_cohort["path"], "--device", "cpu"]
    assert run_cli(*base, "--out", tmp_path / "a.tsv") == 0
    assert run_cli(*base, "--precision", "bf16-mixed", "--out", tmp_path / "b.tsv") == 0
    a = pd.read_csv(tmp_path / "a.tsv", sep="\t")
    b = pd.read_csv(tmp_path / "b.tsv", sep="\t")
    model = Variformer.load(ism_cohort["run"])
    snv = gene_snvs(ds, gene, seq_len=CROP)
    lo = SEQ_LEN // 2 - CROP // 2
    ref = ds.reference(gene)[lo : lo + CROP]
    fp32 = ism(model, ref, snv, method="naive", device="cpu", precision="32")
    scale = np.abs(fp32).max()
    np.testing.assert_allclose(a["score"], fp32, rtol=0, atol=1e-4 * scale)  # fast == naive
    assert np.abs(b["score"] - a["score"]).max() > 1e-2 * scale
    for name, precision in (("a.tsv", "32"), ("b.tsv", "bf16-mixed")):
        record = _json.loads((tmp_path / f"{name}.json").read_text())
        assert record["precision"] == precision
