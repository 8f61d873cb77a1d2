"""TWAS with the exported model: S-PrediXcan through pytwas on the simulated GWAS, every gene's z
recomputed with numpy from the written files, allele flips harmonized, bad inputs refused."""

from __future__ import annotations

import gzip
import sqlite3

import numpy as np
import pandas as pd
import pytest

from variformer.cli import main


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A simulated 5-gene cohort with its GWAS, elastic nets (fold 0) and their export."""
    from baselines.run import run_baselines
    from tests.datasets import simulated_dataset

    tmp = tmp_path_factory.mktemp("twas")
    path, sim = simulated_dataset(tmp, people=300, genes=5, seq_len=4096, seed=0)
    run_baselines(path, out=tmp / "BL", folds=[0], log=lambda _: None)
    out = tmp / "TW"
    argv = ["export", "predictdb", "--baselines", str(tmp / "BL"), "--dataset", str(path),
            "--rsid-from", "varID", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    return {"tmp": tmp, "path": path, "sim": sim, "db": out / "elastic_net_fold0.db",
            "cov": out / "elastic_net_fold0.txt.gz", "gwas": sim.out / "gwas.tsv"}  # fmt: skip


def _twas(ex, tmp, *extra, gwas=None) -> int:
    return main(["twas", "--db", str(ex["db"]), "--covariance", str(ex["cov"]),
                 "--gwas", str(gwas or ex["gwas"]), "--out", str(tmp / "twas.tsv"), *extra])  # fmt: skip


def _numpy_z(ex, gwas: pd.DataFrame) -> dict[str, float]:
    """z_g = sum_i w_i sigma_i z_i / sqrt(w' Gamma w) over model SNPs in the GWAS, alleles
    aligned by hand (an effect allele equal to the model's REF flips z), from the files."""
    con = sqlite3.connect(ex["db"])
    w = pd.read_sql_query("SELECT * FROM weights", con)
    extra = pd.read_sql_query("SELECT * FROM extra", con)
    con.close()
    with gzip.open(ex["cov"], "rt") as fh:
        cov = pd.read_csv(fh, sep=" ")
    g = gwas.set_index("variant_id")
    out = {}
    for gene, gw in w.groupby("gene"):
        gw = gw[gw["rsid"].isin(g.index)]
        ids = list(gw["rsid"])
        if not ids:
            continue
        z = np.array([
            g.loc[r, "zscore"] * (1 if g.loc[r, "effect_allele"] == e else -1)
            for r, e in zip(ids, gw["eff_allele"])
        ])  # fmt: skip
        gamma = np.zeros((len(ids), len(ids)))
        gc = cov[(cov["GENE"] == gene) & cov["RSID1"].isin(ids) & cov["RSID2"].isin(ids)]
        for a, b, v in zip(gc["RSID1"], gc["RSID2"], gc["VALUE"]):
            gamma[ids.index(a), ids.index(b)] = gamma[ids.index(b), ids.index(a)] = v
        wv = gw["weight"].to_numpy()
        name = extra.loc[extra["gene"] == gene, "genename"].iloc[0]
        out[name] = float(wv @ (np.sqrt(np.diag(gamma)) * z) / np.sqrt(wv @ gamma @ wv))
    return out


def test_the_causal_gene_ranks_first_and_z_matches_numpy(exported, tmp_path):
    import json

    assert _twas(exported, tmp_path) == 0
    res = pd.read_csv(tmp_path / "twas.tsv", sep="\t")
    truth = json.loads((exported["sim"].gwas_truth).read_text())
    assert res["gene_name"].iloc[0] == truth["gene"]
    gwas = pd.read_csv(exported["gwas"], sep="\t")
    want = _numpy_z(exported, gwas)
    got = dict(zip(res["gene_name"], res["zscore"]))
    assert set(got) == set(want)
    for gene, z in want.items():
        assert got[gene] == pytest.approx(z, rel=1e-5)  # pytwas reads z as float32, as MetaXcan


def test_flipped_gwas_alleles_are_harmonized_not_sign_flipped(exported, tmp_path):
    gwas = pd.read_csv(exported["gwas"], sep="\t")
    flip = np.arange(len(gwas)) % 2 == 0  # every other variant reported for its REF allele
    flipped = gwas.copy()
    flipped.loc[flip, ["effect_allele", "non_effect_allele"]] = gwas.loc[
        flip, ["non_effect_allele", "effect_allele"]
    ].to_numpy()
    flipped.loc[flip, "zscore"] = -gwas.loc[flip, "zscore"]
    path = tmp_path / "flipped.tsv"
    flipped.to_csv(path, sep="\t", index=False)
    assert _twas(exported, tmp_path, gwas=path) == 0
    got = pd.read_csv(tmp_path / "twas.tsv", sep="\t").set_index("gene_name")["zscore"]
    want = _numpy_z(exported, gwas)
    for gene, z in want.items():
        assert got[gene] == pytest.approx(z, rel=1e-5)


def _refused(capsys, code, *words):
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    for w in words:
        assert w in err[0], err[0]


def test_a_gwas_on_another_build_is_refused(exported, tmp_path, capsys):
    gwas = pd.read_csv(exported["gwas"], sep="\t")
    moved = gwas.assign(
        variant_id=[v.replace("_b38", "_b37").replace("chr", "chrX") for v in gwas["variant_id"]]
    )
    moved.to_csv(tmp_path / "b37.tsv", sep="\t", index=False)
    _refused(
        capsys,
        _twas(exported, tmp_path, gwas=tmp_path / "b37.tsv"),
        "shares no variant id",
        "build",
    )
    other = gwas.copy()  # same positions, other alleles at 5% of them (another assembly's REF)
    bad = np.arange(len(other)) % 20 == 0
    other.loc[bad, "non_effect_allele"] = [
        {"A": "C", "C": "G", "G": "T", "T": "A"}.get(a, "A")
        for a in other.loc[bad, "non_effect_allele"]
    ]
    other.to_csv(tmp_path / "other.tsv", sep="\t", index=False)
    _refused(
        capsys, _twas(exported, tmp_path, gwas=tmp_path / "other.tsv"), "other alleles", "build"
    )
    assert not (tmp_path / "twas.tsv").exists()


def test_duplicate_gwas_ids_missing_genes_and_a_foreign_covariance_are_refused(
    exported, tmp_path, capsys
):
    gwas = pd.read_csv(exported["gwas"], sep="\t")
    pd.concat([gwas, gwas.iloc[[3]]]).to_csv(tmp_path / "dup.tsv", sep="\t", index=False)
    _refused(capsys, _twas(exported, tmp_path, gwas=tmp_path / "dup.tsv"), "duplicate variant ids")
    _refused(capsys, _twas(exported, tmp_path, "--genes", "NOSUCHGENE"), "NOSUCHGENE", "not in")
    with gzip.open(exported["cov"], "rt") as fh:
        lines = fh.read().splitlines()
    gene = lines[1].split()[0]
    lines.insert(2, f"{gene} chr1_1_A_C_b38 chr1_1_A_C_b38 0.5")
    cov = tmp_path / "foreign.txt.gz"
    cov.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    code = main(["twas", "--db", str(exported["db"]), "--covariance", str(cov), "--gwas",
                 str(exported["gwas"]), "--out", str(tmp_path / "twas.tsv")])  # fmt: skip
    _refused(capsys, code, "chr1_1_A_C_b38", "not in the db's weights")
    assert not (tmp_path / "twas.tsv").exists()
