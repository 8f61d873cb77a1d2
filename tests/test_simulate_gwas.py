"""`variformer simulate`'s GWAS: gwas.tsv recomputed from the VCF and the trait with scipy, and
the trait built from the causal gene's true genetic expression (truth.tsv's effects)."""

from __future__ import annotations

import hashlib
import json
import re

import cyvcf2
import numpy as np
import pandas as pd
import pytest
from scipy.stats import linregress

from core.errors import InputError
from data_prep.simulate import genetics, simulate_cohort
from data_prep.simulate.gwas import association
from variformer.cli import main

PEOPLE, GENES, SEQ_LEN, SEED = 200, 4, 16384, 9  # seed 9: one tri-allelic record
COLUMNS = [
    "variant_id", "rsid", "effect_allele", "non_effect_allele", "zscore", "pvalue", "sample_size",
]  # fmt: skip


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    out = tmp_path_factory.mktemp("gwas") / "cohort"
    return simulate_cohort(out, people=PEOPLE, genes=GENES, seq_len=SEQ_LEN, seed=SEED)


def _read(s):
    gwas = pd.read_csv(s.gwas, sep="\t", dtype={"rsid": str}, keep_default_na=False)
    trait = pd.read_csv(s.gwas_trait, sep="\t").set_index("sample")["trait"]
    return gwas, trait, json.loads(s.gwas_truth.read_text())


def _expected(vcf_path, trait: pd.Series):
    """One row per ALT of every VCF record whose dosage varies: linregress of the trait on it."""
    vcf = cyvcf2.VCF(str(vcf_path))
    y = trait.loc[vcf.samples].to_numpy(np.float64)
    rows, n_multi = [], 0
    for rec in vcf:
        gt = rec.genotype.array()[:, :2]
        n_multi += len(rec.ALT) > 1
        for k, alt in enumerate(rec.ALT, start=1):
            dos = (gt == k).sum(axis=1).astype(np.float64)
            if dos.min() == dos.max():
                continue
            fit = linregress(dos, y)
            chrom = rec.CHROM if rec.CHROM.startswith("chr") else "chr" + rec.CHROM
            vid = f"{chrom}_{rec.POS}_{rec.REF}_{alt}_b38"
            rows.append((vid, rec.ID or ".", alt, rec.REF, fit.slope / fit.stderr, fit.pvalue))
    cols = ["variant_id", "rsid", "effect_allele", "non_effect_allele", "z", "p"]
    return pd.DataFrame(rows, columns=cols), n_multi


def test_gwas_is_linregress_of_the_trait_on_every_alt_dosage(cohort):
    gwas, trait, truth = _read(cohort)
    assert list(gwas.columns) == COLUMNS
    want, n_multi = _expected(cohort.vcf, trait)
    assert n_multi >= 1  # the cohort has a multi-allelic record: one row per ALT is exercised
    # every record/ALT in VCF order, the same ids, rsids and alleles
    text = ["variant_id", "rsid", "effect_allele", "non_effect_allele"]
    pd.testing.assert_frame_equal(gwas[text], want[text])
    np.testing.assert_allclose(gwas["zscore"], want["z"], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(gwas["pvalue"], want["p"], rtol=1e-7, atol=1e-300)
    assert (gwas["sample_size"] == PEOPLE).all() and truth["sample_size"] == PEOPLE
    assert truth["n_tested"] == len(gwas)
    assert gwas["variant_id"].is_unique


def test_variant_ids_are_gtex_style_and_rsids_the_vcf_ids(cohort):
    gwas, _, _ = _read(cohort)
    assert gwas["variant_id"].str.fullmatch(r"chr\d+_\d+_[ACGT]_[ACGT]_b38").all()
    parts = gwas["variant_id"].str.split("_", expand=True)
    assert (parts[2] == gwas["non_effect_allele"]).all()
    assert (parts[3] == gwas["effect_allele"]).all()
    missing = (gwas["rsid"] == ".").mean()
    assert 0.05 < missing < 0.3  # the simulator writes '.' for ~15% of sites
    assert gwas.loc[gwas["rsid"] != ".", "rsid"].str.fullmatch(r"rs\d+").all()


def _causal_dosages(s, truth: pd.DataFrame, gene: str, samples: list[str]) -> np.ndarray:
    """ALT dosages of ``gene``'s causal SNVs (truth.tsv), read with cyvcf2, shape=(people, k)."""
    vcf = cyvcf2.VCF(str(s.vcf))
    order = [vcf.samples.index(x) for x in samples]
    cols = []
    for _, r in truth[truth["gene"] == gene].iterrows():
        (rec,) = [v for v in vcf(f"{r['chrom']}:{r['pos']}-{r['pos']}") if r["pos"] == v.POS]
        assert (rec.REF, rec.ALT[0]) == (r["ref"], r["alt"])
        cols.append((rec.genotype.array()[order, :2] == 1).sum(axis=1))
    return np.array(cols, dtype=np.float64).T


def test_trait_is_the_causal_genes_true_genetic_expression_plus_noise(cohort):
    _, trait, truth = _read(cohort)
    genes = pd.read_csv(cohort.truth_genes, sep="\t")
    # the default gene: the largest realized h2 (truth_genes.tsv)
    assert truth["gene"] == genes.loc[genes["h2_realized"].idxmax(), "gene"] == cohort.gwas_gene
    assert truth["gene_id"] == genes.loc[genes["h2_realized"].idxmax(), "gene_id"]
    assert truth["h2_trait"] == 0.5
    causal = pd.read_csv(cohort.truth, sep="\t")
    dos = _causal_dosages(cohort, causal, truth["gene"], list(trait.index))
    g = dos @ causal.loc[causal["gene"] == truth["gene"], "beta"].to_numpy()
    g = (g - g.mean()) / g.std()
    noise = trait.to_numpy() - g * np.sqrt(0.5)
    # what is left is standardized noise scaled to 1 - h2 (exactly, up to the files' rounding)
    assert noise.mean() == pytest.approx(0.0, abs=1e-4)
    assert noise.var() == pytest.approx(0.5, abs=1e-4)
    assert truth["h2_trait_realized"] == pytest.approx(
        np.var(g * np.sqrt(0.5)) / trait.var(ddof=0), abs=1e-4
    )


def _abs_z_at(gwas, chrom, causal_pos):
    pos = gwas["variant_id"].str.split("_").str[1].astype(int)
    on = gwas["variant_id"].str.startswith(f"{chrom}_")
    return gwas.loc[on & pos.isin(causal_pos), "zscore"].abs()


def _mean_causal_abs_z(s, gwas) -> dict[str, float]:
    causal = pd.read_csv(s.truth, sep="\t")
    genes = pd.read_csv(s.truth_genes, sep="\t").set_index("gene")
    return {
        gene: float(_abs_z_at(gwas, genes.loc[gene, "chrom"], rows["pos"]).mean())
        for gene, rows in causal.groupby("gene")
    }


def test_the_causal_genes_causal_snvs_stand_out(cohort):
    gwas, _, truth = _read(cohort)
    mean_z = _mean_causal_abs_z(cohort, gwas)
    assert len(mean_z) >= 3
    mine = mean_z.pop(truth["gene"])
    assert mine > 2 * max(mean_z.values()) and mine > 4
    top = gwas.loc[gwas["zscore"].abs().idxmax()]
    assert top["variant_id"].startswith(truth["chrom"] + "_") and top["pvalue"] < 5e-8


def _hashes(directory):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.iterdir())}


def test_gwas_options_change_only_the_gwas_files(cohort, tmp_path):
    genes = pd.read_csv(cohort.truth_genes, sep="\t")
    other = genes.sort_values("h2_realized")["gene"].iloc[-2]  # second-largest h2
    assert other != cohort.gwas_gene
    s = simulate_cohort(
        tmp_path / "c", people=PEOPLE, genes=GENES, seq_len=SEQ_LEN, seed=SEED,
        gwas_gene=other, gwas_h2=0.8,
    )  # fmt: skip
    gwas, _, truth = _read(s)
    assert (truth["gene"], truth["h2_trait"], s.gwas_gene) == (other, 0.8, other)
    mean_z = _mean_causal_abs_z(s, gwas)
    assert mean_z.pop(other) > max(mean_z.values())
    a, b = _hashes(cohort.out), _hashes(s.out)
    gwas_files = {"gwas.tsv", "gwas_trait.tsv", "gwas_truth.json"}
    assert set(a) == set(b) and gwas_files < set(a)
    assert {k for k in a if a[k] != b[k]} == gwas_files


def test_association_one_row_per_alt_and_monomorphic_alts_left_out():
    # site 0 is tri-allelic: ALT C varies, ALT T is carried once by every person (dosage 1
    # everywhere, monomorphic): left out; sites 1 and 2 (no id) are biallelic
    hap = np.array(
        [
            [1, 2, 0, 2, 2, 1, 2, 0, 1, 2, 2, 0],
            [0, 1, 1, 1, 0, 0, 1, 0, 0, 0, 1, 1],
            [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1],
        ],
        dtype=np.int8,
    )
    sites = {"5": genetics.Sites(np.array([9, 19, 29]), [["A", "C", "T"], ["G", "A"], ["T", "G"]], hap)}  # fmt: skip
    y = np.array([0.3, -1.2, 0.8, 2.0, -0.5, 0.1])
    table, n_mono = association(sites, ["rs1", "rs2", "."], y)
    assert list(table.columns) == COLUMNS and n_mono == 1
    assert list(table["variant_id"]) == ["chr5_10_A_C_b38", "chr5_20_G_A_b38", "chr5_30_T_G_b38"]
    assert list(table["rsid"]) == ["rs1", "rs2", "."]
    for i, (site, k) in enumerate([(0, 1), (1, 1), (2, 1)]):
        dos = (hap[site, 0::2] == k).astype(float) + (hap[site, 1::2] == k)
        fit = linregress(dos, y)
        assert table["zscore"][i] == pytest.approx(fit.slope / fit.stderr, rel=1e-10)
        assert table["pvalue"][i] == pytest.approx(fit.pvalue, rel=1e-9)
    assert (table["sample_size"] == 6).all()


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--gwas-gene", "NOPE"], r"--gwas-gene NOPE is not an expressed gene .*BTNL3"),
        (["--gwas-h2", "1.5"], r"--gwas-h2 must lie in \[0, 1\]"),
    ],
)
def test_bad_gwas_options_are_refused_before_writing(tmp_path, capsys, flags, message):
    out = tmp_path / "c"
    argv = ["simulate", "--out", str(out), "--people", "20", "--genes", "2", "--seq-len", "2048"]
    assert main([*argv, *flags]) == 2
    err = capsys.readouterr().err
    assert re.search(message, err) and len(err.strip().splitlines()) == 1
    assert not out.exists()
    with pytest.raises(InputError):
        simulate_cohort(out, people=20, genes=2, seq_len=2048, gwas_gene="NOPE")


def test_cli_writes_the_gwas_of_the_named_gene(tmp_path, capsys):
    out = tmp_path / "c"
    argv = ["simulate", "--out", str(out), "--people", "40", "--genes", "2", "--seq-len", "2048"]
    assert main([*argv, "--gwas-gene", "ZFP57", "--gwas-h2", "0.3"]) == 0
    assert "GWAS trait driven by ZFP57" in capsys.readouterr().out
    truth = json.loads((out / "gwas_truth.json").read_text())
    assert (truth["gene"], truth["h2_trait"]) == ("ZFP57", 0.3)
    assert len(pd.read_csv(out / "gwas_trait.tsv", sep="\t")) == 40
