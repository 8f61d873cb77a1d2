"""``variformer predict``: expression imputed for a genotype-only cohort.

Truths: each run's own ``predictions.tsv`` (the training cohort's test people predicted again
from the VCF must come out bit for bit the same); an elastic net recomputed in numpy from
dosages read with cyvcf2 here; coverage counted from the SNVs this test deletes from the VCF;
VCFs rewritten here to be on another build, share people, or have none.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cyvcf2
import numpy as np
import pandas as pd
import pytest

from baselines.run import run_baselines
from tests.datasets import simulated_dataset
from tests.fakes import tiny_config
from tests.genomes import rewrite_vcf
from variformer import finetune as ft
from variformer import impute
from variformer.cli import main as cli

SEQ_LEN = 1024
FOLDS = (0, 1)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """simulate -> prep (60 people, 2 genes, 1,024 bp) -> tiny runs of gene 1 (folds 0, 1) and
    elastic nets of both genes (3 folds)."""
    root = tmp_path_factory.mktemp("impute")
    dataset, sim = simulated_dataset(
        root, people=60, genes=2, seq_len=SEQ_LEN, seed=2, cohort="sim"
    )
    genes = list(pd.read_csv(sim.truth_genes, sep="\t")["gene"])
    quick = tiny_config("training.max_epochs=1", "training.limit_train_batches=2")
    for fold in FOLDS:
        ft.finetune(dataset, genes=[genes[0]], fold=fold, config=quick, out=root / "runs")
    run_baselines(dataset, out=root / "BL")
    return {"root": root, "dataset": dataset, "vcf": sim.vcf, "genes": genes}


def _predict(capsys, *args) -> tuple[int, str, str]:
    code = cli(["predict", *map(str, args), "--no-progress"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _long(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / impute.LONG_TSV, sep="\t", dtype={"sample": str, "gene": str})


def _subset(src: Path, dst: Path, samples: list[str]) -> Path:
    """``src`` restricted to ``samples`` by bcftools (sites without carriers kept)."""
    from pysam import bcftools

    bcftools.view("-s", ",".join(samples), "-Oz", "-o", str(dst), str(src), catch_stdout=False)
    bcftools.index("-t", str(dst))
    return dst


def _test_rows(run_dir: Path) -> pd.DataFrame:
    p = pd.read_csv(run_dir / "predictions.tsv", sep="\t", dtype={"sample": str})
    return p[p["split"] == "test"]


# ------------------------------------------------------------------ the run's own test people


def test_variformer_reproduces_each_runs_test_predictions_bitwise(trained, tmp_path, capsys):
    root, gene = trained["root"], trained["genes"][0]
    tested = [s for k in FOLDS for s in _test_rows(root / "runs" / gene / f"fold{k}")["sample"]]
    only_tested = _subset(trained["vcf"], tmp_path / "tested.vcf.gz", tested)
    for vcf, out in ((trained["vcf"], tmp_path / "all"), (only_tested, tmp_path / "tested")):
        code, _, err = _predict(capsys, "--runs", root / "runs", "--vcf", vcf, "--out", out,
                                "--device", "cpu")  # fmt: skip
        assert code == 0, err
        long = _long(out)
        for fold in FOLDS:
            run = _test_rows(root / "runs" / gene / f"fold{fold}")
            mine = long[(long["fold"] == fold)].set_index(["gene", "sample"])["predicted"]
            keys = list(zip(run["gene"], run["sample"]))
            assert len(keys) >= 5
            assert np.array_equal(mine.loc[keys].to_numpy(), run["predicted"].to_numpy())
    assert sorted(_long(tmp_path / "tested")["sample"].unique()) == sorted(tested)


def test_elastic_net_reproduces_each_fits_test_predictions(trained, tmp_path, capsys):
    root, out = trained["root"], tmp_path / "en"
    code, _, err = _predict(capsys, "--baselines", root / "BL", "--vcf", trained["vcf"],
                            "--out", out)  # fmt: skip
    assert code == 0, err
    long = _long(out).set_index(["model", "fold", "gene", "sample"])["predicted"]
    for gene in trained["genes"]:
        for fold in (0, 1, 2):
            run = _test_rows(root / "BL" / "elastic_net" / gene / f"fold{fold}")
            keys = [("elastic_net", fold, gene, s) for s in run["sample"]]
            assert np.array_equal(long.loc[keys].to_numpy(), run["predicted"].to_numpy())
    # the wide table is the mean over the three folds, gene rows x sample columns
    wide = pd.read_csv(out / impute.WIDE_TSV, sep="\t", index_col="gene")
    flat = _long(out)
    for gene in trained["genes"]:
        per_fold = np.stack(
            [flat[(flat["gene"] == gene) & (flat["fold"] == k)]["predicted"] for k in (0, 1, 2)]
        )
        np.testing.assert_allclose(wide.loc[gene].to_numpy(), per_fold.mean(axis=0), rtol=1e-15)
    assert list(wide.columns) == list(cyvcf2.VCF(str(trained["vcf"])).samples)


# ------------------------------------------------------------------ an independent elastic net


def _numpy_elastic_net(bl_fit: Path, vcf: Path, samples: list[str]) -> np.ndarray:
    """intercept + dosages @ coef, dosages counted from the GT alleles cyvcf2 reads."""
    coef = pd.read_csv(bl_fit / "coefficients.tsv", sep="\t", dtype={"chrom": str})
    coef = coef[coef["coef"] != 0]
    intercept = json.loads((bl_fit / "summary.json").read_text())["intercept"]
    reader = cyvcf2.VCF(str(vcf))
    column = {s: i for i, s in enumerate(reader.samples)}
    x = np.zeros((len(samples), len(coef)))
    for j, (chrom, pos, ref, alt) in enumerate(
        coef[["chrom", "pos", "ref", "alt"]].itertuples(index=False)
    ):
        for rec in reader(f"{chrom}:{pos}-{pos}"):
            if pos == rec.POS and ref == rec.REF and alt in rec.ALT:
                gt = rec.genotype.array()[:, :2]
                dose = (gt == rec.ALT.index(alt) + 1).sum(axis=1)
                x[:, j] = dose[[column[s] for s in samples]]
    return x @ coef["coef"].to_numpy() + intercept


def test_elastic_net_equals_numpy_on_the_vcf_and_coverage_counts_deleted_snvs(
    trained, tmp_path, capsys
):
    root, gene = trained["root"], trained["genes"][0]
    fit = root / "BL" / "elastic_net" / gene / "fold0"
    coef = pd.read_csv(fit / "coefficients.tsv", sep="\t")
    nonzero = coef[coef["coef"] != 0]
    gone = set(nonzero["pos"].iloc[:2])  # two of the model's SNVs deleted from the VCF
    filtered = rewrite_vcf(
        trained["vcf"], tmp_path / "filtered.vcf.gz",
        lambda line: None if not line.startswith("#") and int(line.split("\t")[1]) in gone else line,
    )  # fmt: skip
    out = tmp_path / "en"
    code, _, err = _predict(capsys, "--baselines", root / "BL", "--vcf", filtered, "--out", out,
                            "--fold", "0")  # fmt: skip
    assert code == 0, err
    long = _long(out)
    assert set(long["fold"]) == {0}
    for g in trained["genes"]:
        part = long[long["gene"] == g]
        expected = _numpy_elastic_net(root / "BL" / "elastic_net" / g / "fold0", filtered,
                                      list(part["sample"]))  # fmt: skip
        np.testing.assert_allclose(part["predicted"].to_numpy(), expected, rtol=1e-13, atol=1e-13)
    cov = pd.read_csv(out / impute.COVERAGE_TSV, sep="\t").set_index("gene")
    n = len(nonzero)
    assert cov.loc[gene, "n_model_snvs"] == n and cov.loc[gene, "n_found"] == n - 2
    assert cov.loc[gene, "fraction_found"] == pytest.approx((n - 2) / n)
    assert (n - 2) / n < impute.MIN_COVERAGE
    warning = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(warning) == 1 and gene in warning[0] and "80%" in warning[0], err
    # Variformer's SNVs are the training dataset's of the window: the same two are missing
    code, _, err = _predict(capsys, "--runs", root / "runs", "--vcf", filtered, "--out",
                            tmp_path / "vf", "--fold", "1")  # fmt: skip
    assert code == 0, err
    cov = pd.read_csv(tmp_path / "vf" / impute.COVERAGE_TSV, sep="\t")
    variants = pd.read_csv(trained["dataset"] / "variants.tsv", sep="\t")
    n_window = int((variants["gene"] == gene).sum())
    assert cov[["n_model_snvs", "n_found"]].values.tolist() == [[n_window, n_window - 2]]


def test_two_vcfs_of_different_people_give_the_same_predictions(trained, tmp_path, capsys):
    root = trained["root"]
    people = list(cyvcf2.VCF(str(trained["vcf"])).samples)
    a = _subset(trained["vcf"], tmp_path / "a.vcf.gz", people[:25])
    b = _subset(trained["vcf"], tmp_path / "b.vcf.gz", people[25:])
    args = ("--baselines", root / "BL", "--fold", "1")
    assert _predict(capsys, *args, "--vcf", trained["vcf"], "--out", tmp_path / "one")[0] == 0
    assert _predict(capsys, *args, "--vcf", a, "--vcf", b, "--out", tmp_path / "two")[0] == 0
    one, two = _long(tmp_path / "one"), _long(tmp_path / "two")
    pd.testing.assert_frame_equal(one, two)
    # the same person in two files is refused
    c = _subset(trained["vcf"], tmp_path / "c.vcf.gz", people[20:30])
    code, _, err = _predict(capsys, *args, "--vcf", a, "--vcf", c, "--out", tmp_path / "dup")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "in both" in err and people[20] in err
    assert not (tmp_path / "dup").exists()


# ------------------------------------------------------------------ bad input


def _shift(line: str, by: int) -> str:
    if line.startswith("#"):
        return line
    f = line.split("\t")
    f[1] = str(int(f[1]) + by)
    return "\t".join(f)


def _flip_ref(line: str) -> str:
    if line.startswith("#"):
        return line
    f = line.split("\t")
    # REF and ALT swapped: the REF disagrees with the reference at every SNV
    f[3], f[4] = f[4], f[3]
    return "\t".join(f)


def _rename(line: str) -> str:
    return line.replace("chr", "scaffold_")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda line: _shift(line, 5000), "no record inside any of the models' windows"),
        (_flip_ref, "another genome build"),
        (_rename, "no records on the contigs of the models' windows"),
    ],
    ids=["positions elsewhere", "REF mismatches", "other contigs"],
)
def test_a_vcf_on_another_build_is_refused(trained, tmp_path, capsys, edit, message):
    vcf = rewrite_vcf(trained["vcf"], tmp_path / "other.vcf.gz", edit)
    out = tmp_path / "out"
    code, _, err = _predict(capsys, "--baselines", trained["root"] / "BL", "--vcf", vcf,
                            "--out", out)  # fmt: skip
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and message in err, err
    assert not out.exists() and not (tmp_path / ".out.partial").exists()


def test_other_bad_inputs_are_one_line_each(trained, tmp_path, capsys):
    root = trained["root"]
    sites_only = rewrite_vcf(
        trained["vcf"], tmp_path / "sites.vcf.gz",
        lambda line: "\t".join(line.split("\t")[:8]) if not line.startswith("##") else line,
    )  # fmt: skip
    empty_runs = tmp_path / "empty_runs"
    empty_runs.mkdir()
    moved = tmp_path / "other_dataset"
    shutil.copytree(trained["dataset"], moved)
    splits = pd.read_csv(moved / "splits.tsv", sep="\t")
    splits["fold0"] = splits["fold0"].iloc[::-1].to_numpy()  # other people tested in fold 0
    splits.to_csv(moved / "splits.tsv", sep="\t", index=False)
    bl = ("--baselines", root / "BL")
    cases = [
        ((*bl, "--vcf", sites_only), "has no samples"),
        ((*bl, "--vcf", trained["vcf"], "--genes", "NOPE"), "NOPE are not in the models"),
        (("--runs", empty_runs, "--vcf", trained["vcf"]), "no finished fine-tuning run"),
        (
            (*bl, "--vcf", trained["vcf"], "--dataset", moved),
            "was made from the dataset with other splits",
        ),
        ((*bl, "--model", "lasso", "--vcf", trained["vcf"]), "no finished lasso baseline"),
    ]
    for args, message in cases:
        code, _, err = _predict(capsys, *args, "--out", tmp_path / "out")
        assert code == 2, (args, err)
        assert len(err.strip().splitlines()) == 1 and message in err, err
        assert not (tmp_path / "out").exists()
    # --dataset naming a copy of the models' own dataset (moved, say) is accepted
    same = tmp_path / "same_dataset"
    shutil.copytree(trained["dataset"], same)
    code, _, err = _predict(capsys, *bl, "--vcf", trained["vcf"], "--dataset", same, "--fold",
                            "2", "--out", tmp_path / "out")  # fmt: skip
    assert code == 0, err


# ------------------------------------------------------------------ resume


def test_an_interrupted_predict_resumes_to_the_same_bytes(trained, tmp_path, capsys, monkeypatch):
    args = ("--runs", trained["root"] / "runs", "--vcf", trained["vcf"], "--device", "cpu")
    assert _predict(capsys, *args, "--out", tmp_path / "straight")[0] == 0
    real = impute._predict_piece
    calls = []

    def stop_after_one(*a, **kw):
        if calls:
            raise KeyboardInterrupt
        calls.append(a[1])
        return real(*a, **kw)

    monkeypatch.setattr(impute, "_predict_piece", stop_after_one)
    code, _, err = _predict(capsys, *args, "--out", tmp_path / "resumed")
    assert code == 130, err
    assert not (tmp_path / "resumed").exists()
    assert len(list((tmp_path / ".resumed.partial").glob("piece-*.tsv"))) == 1

    def count(*a, **kw):
        calls.append(a[1])
        return real(*a, **kw)

    calls.clear()
    monkeypatch.setattr(impute, "_predict_piece", count)
    code, out, err = _predict(capsys, *args, "--out", tmp_path / "resumed")
    assert code == 0, err
    assert len(calls) == 1 and "1 piece(s) reused" in out  # only the unfinished piece ran
    for name in (impute.WIDE_TSV, impute.LONG_TSV, impute.COVERAGE_TSV):
        assert (tmp_path / "resumed" / name).read_bytes() == (
            tmp_path / "straight" / name
        ).read_bytes()
    assert not (tmp_path / ".resumed.partial").exists()
    # finished: a rerun is refused; --force redoes every piece
    assert _predict(capsys, *args, "--out", tmp_path / "resumed")[0] == 2
    calls.clear()
    assert _predict(capsys, *args, "--out", tmp_path / "resumed", "--force")[0] == 0
    assert len(calls) == 2


def test_models_found_through_their_provenance(trained, tmp_path, capsys):
    """A runs root whose recorded dataset is gone needs --dataset; two runs of one gene and
    fold are refused (the wide table holds one model per fold)."""
    runs, gene = trained["root"] / "runs", trained["genes"][0]
    moved = tmp_path / "moved_runs"
    shutil.copytree(runs / gene / "fold0", moved / gene / "fold0")
    summary = json.loads((moved / gene / "fold0" / "summary.json").read_text())
    summary["inputs"]["dataset"]["path"] = str(tmp_path / "gone")
    (moved / gene / "fold0" / "summary.json").write_text(json.dumps(summary))
    args = ("--runs", moved, "--vcf", trained["vcf"], "--device", "cpu")
    code, _, err = _predict(capsys, *args, "--out", tmp_path / "a")
    assert code == 2 and "is not there any more; pass --dataset" in err, err
    code, _, err = _predict(capsys, *args, "--dataset", trained["dataset"], "--out", tmp_path / "a")
    assert code == 0, err
    shutil.copytree(runs / gene / "fold0", moved / "again" / "fold0")
    code, _, err = _predict(capsys, *args, "--dataset", trained["dataset"], "--out", tmp_path / "b")
    assert code == 2 and f"{gene} has two models on fold 0" in err, err
