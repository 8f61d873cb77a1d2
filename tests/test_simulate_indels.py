"""``variformer simulate --indels`` and ``variformer baselines --indels``.

Truths: pysam's FASTA and bcftools (view -v indels, norm -c e, consensus -H 1/-H 2), cyvcf2's
genotypes, the simulated truth tables, scikit-learn's ElasticNetCV on dosages read with
cyvcf2, and the file hashes the simulator wrote before ``--indels`` existed (commit 195e26b).
"""

from __future__ import annotations

import hashlib
import json

import cyvcf2
import numpy as np
import pandas as pd
import pysam
import pysam.bcftools
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.linear_model import ElasticNetCV
from sklearn.model_selection import KFold

from baselines import run as bl
from core.errors import InputError
from data_prep import open_dataset
from data_prep.genome import encode, one_hot
from data_prep.prep import prep_dataset
from data_prep.simulate import simulate_cohort
from tests.haplotype_cohort import oracle_window
from variformer import cli

PEOPLE, SEQ_LEN, GENES = 60, 4096, ["BTNL3", "ZFP57"]

# simulate_cohort(people=12, genes=2, seq_len=1024, seed=3) before --indels existed
GOLDEN = {
    "chromhmm.bed": "be71a61808498f8bfc2b138007576a2c1642ac24a5d1c2db1b4ca269068a6739",
    "cohort.vcf.gz": "b26df2b8476244ad9c4ff6247ac4a50e109b5cde51e6fe07df7a12e79ac4cfc9",
    "cohort.vcf.gz.tbi": "96020f10aed259bbfb67bfc4d856da3a241f7b072474a5eb97c2c142dec4dda4",
    "expression.bed.gz": "d81e56bc5bc5e282456d3eee23de4e95df8cc443a15d0db3837ad1e5cb0f3aec",
    "expression.bed.gz.tbi": "f9d06d0f8e5dd8be52383ce061816d466ff3df68f6ebb36676e3372d07bdd67e",
    "finemap.txt": "10f8b25cc4667b06cc6e46ec9f80bb92da6f26754ad2a2a50e34c584b71377ed",
    "genes.gtf": "939e2c36175bbabcc80455d32deab6fd5a0d0f8074c08671a545d6182f6355dc",
    "gwas.tsv": "274f63741d7038dde9b96fd7c80616587ef91d00580cb06c3759f2bb06180aca",
    "gwas_trait.tsv": "3a64ddb943cd400ee2c86375eb22abc255e3746dc07e57a24f7c14681eea7169",
    "gwas_truth.json": "fd2ade49a44e8bed6a048741b34bce19cb778c43685542a1fc92630db0135ad2",
    "planted_motifs.tsv": "fd19333339150e0b03df4d6f070bcf7e3b2a11087e193fbe9bf7990f55eac932",
    "ref.fa": "cf5b8d514660a5681c2956269796f01be7a097e48f13ecfa953ebd424ca23119",
    "ref.fa.fai": "f9a92912014939559448ffa1472ed3bed3c77ae5bdacbf31e48353a4b182862d",
    "signif_variant_gene_pairs.txt.gz": "2cb1e4cdaeaf3fb7b0698b64126884cf3cee48014629f02f9413b561a728cb1a",
    "truth.tsv": "bc2f6b40dcf6b9f423976a104b1206369e1b7aac409430d0b338744f0e0cf2a9",
    "truth_genes.tsv": "3e43dc8ced7fa3c686929e71df58f2bafd5918ae7889ed620e400e1afe63c053",
}  # fmt: skip


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    root = tmp_path_factory.mktemp("sim_indels")
    sim = simulate_cohort(
        root / "cohort", people=PEOPLE, genes=2, seq_len=SEQ_LEN, h2=[0.6, 0.4], seed=4,
        indels=True,
    )  # fmt: skip
    common = dict(
        vcfs=[sim.vcf], fasta=sim.fasta, annotation=sim.gtf, genes=GENES,
        expression=sim.expression, seq_len=SEQ_LEN, seed=0, progress=False,
    )  # fmt: skip
    prep_dataset(out=root / "hap", haplotypes=True, **common)
    snv = prep_dataset(out=root / "snv", **common)
    return sim, root / "hap", root / "snv", snv


def _records(vcf):
    """(chrom, pos, ref, alt, genotypes shape=(people, 2), phased) per record, by cyvcf2."""
    out = []
    for r in cyvcf2.VCF(str(vcf)):
        g = r.genotype.array()
        out.append((r.CHROM, r.POS, r.REF, r.ALT[0], g[:, :2], bool(g[:, 2].all())))
    return out


def test_without_indels_every_file_is_the_same_bytes(tmp_path):
    s = simulate_cohort(tmp_path / "c", people=12, genes=2, seq_len=1024, seed=3)
    got = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in s.out.iterdir()}
    assert got == GOLDEN
    assert s.n_indels == 0


def test_vcf_is_phased_normal_and_counts_its_indels(cohort):
    sim = cohort[0]
    fasta = pysam.FastaFile(str(sim.fasta))
    records = _records(sim.vcf)
    assert records and all(phased for *_, phased in records)  # every GT is a|b
    for chrom, pos, ref, alt, _, _ in records:
        assert fasta.fetch(chrom, pos - 1, pos - 1 + len(ref)) == ref
        if len(ref) != len(alt):
            assert ref[0] == alt[0] and 1 <= abs(len(ref) - len(alt)) <= 50  # anchored
    indels = [r for r in records if len(r[2]) != len(r[3])]
    n = pysam.bcftools.view("-H", "-v", "indels", str(sim.vcf)).count("\n")
    assert n == len(indels) == sim.n_indels
    assert 0.05 <= n / len(records) <= 0.35
    assert any(len(r[2]) > 1 for r in indels) and any(len(r[3]) > 1 for r in indels)
    # bcftools norm (left-align, REF check) changes nothing: every record is already normal
    body = pysam.bcftools.view("-H", str(sim.vcf))
    normed = pysam.bcftools.norm("-c", "e", "-f", str(sim.fasta), str(sim.vcf))
    assert "\n".join(x for x in normed.splitlines() if not x.startswith("#")) + "\n" == body


def test_causal_deletions_are_in_the_vcf_and_delete_their_motif(cohort):
    sim = cohort[0]
    truth = pd.read_csv(sim.truth, sep="\t")
    motifs = pd.read_csv(sim.motifs, sep="\t")
    deletions = truth[truth["motif_effect"] == "delete"]
    assert sorted(deletions["gene"]) == GENES  # one per heritable gene
    keys = {(c, p, r, a) for c, p, r, a, *_ in _records(sim.vcf)}
    for _, d in deletions.iterrows():
        assert (d["chrom"], d["pos"], d["ref"], d["alt"]) in keys
        assert d["alt"] == d["ref"][0] and len(d["ref"]) > 5
        planted = motifs[motifs["causal_pos1"].astype(str) == str(d["pos"])]
        assert len(planted) == 1  # the motif is exactly the deleted bases
        m = planted.iloc[0]
        assert (m["start0"], m["end0"]) == (d["pos"], d["pos"] + len(d["ref"]) - 1)
        assert f"{m['matrix_id']}:{m['tf']}" == d["motif"]
        assert d["beta"] < 0  # deleting an activator's site lowers expression


def test_expression_is_the_truth_applied_to_the_genotypes(cohort):
    sim = cohort[0]
    truth = pd.read_csv(sim.truth, sep="\t")
    genes = pd.read_csv(sim.truth_genes, sep="\t").set_index("gene")
    expr = pd.read_csv(sim.expression, sep="\t").set_index("gene_id")
    dosage = {(c, p, r, a): (g > 0).sum(axis=1) for c, p, r, a, g, _ in _records(sim.vcf)}
    for gene in GENES:
        mine = truth[truth["gene"] == gene]
        dos = np.stack(
            [dosage[(c, p, r, a)] for c, p, r, a in mine[["chrom", "pos", "ref", "alt"]].values],
            axis=1,
        ).astype(np.float64)
        genetic = dos @ mine["beta"].to_numpy()
        g = genes.loc[gene]
        assert genetic.var() == pytest.approx(g["h2_target"], rel=1e-3)
        freq = dos.mean(axis=0) / 2
        np.testing.assert_allclose(np.minimum(freq, 1 - freq), mine["maf"], atol=1e-5)
        y = expr.loc[g["gene_id"]].iloc[3:].to_numpy(np.float64)
        assert 0.5 * g["h2_target"] < np.corrcoef(genetic, y)[0, 1] ** 2 < g["h2_target"] + 0.15
        # the deletion is the gene's main effect
        k = int(np.flatnonzero((mine["motif_effect"] == "delete").to_numpy())[0])
        part = dos[:, k] * mine["beta"].iloc[k]
        assert part.var() > 0.3 * genetic.var()


def test_prep_haplotypes_equal_bcftools_consensus_and_snv_prep_drops_indels(cohort, tmp_path):
    sim, hap, snv, snv_summary = cohort
    ds = open_dataset(hap)
    truth = pd.read_csv(sim.truth, sep="\t")
    fa = pysam.FastaFile(str(sim.fasta))
    for gene in GENES:
        w = ds.window(gene)
        v = ds.variants(gene)
        d = truth[(truth["gene"] == gene) & (truth["motif_effect"] == "delete")].iloc[0]
        assert ((v["pos"] == d["pos"]) & (v["ref"] == d["ref"]) & (v["alt"] == d["alt"])).any()
        for s in ds.samples[:3]:
            got = ds.haplotypes(gene, s)
            for h in (1, 2):
                want = oracle_window(
                    sim.fasta, sim.vcf, w.chrom, fa.get_reference_length(w.chrom), s, h,
                    w.tss0, SEQ_LEN, tmp_path,
                )  # fmt: skip
                np.testing.assert_array_equal(got[h - 1], one_hot(encode(want)), f"{gene} {s}")
    # SNV mode on the same VCF: the indels are skipped and counted, none is a variant
    assert snv_summary.skipped["indel"] > 0
    for gene in GENES:
        v = open_dataset(snv).variants(gene)
        assert ((v["ref"].str.len() == 1) & (v["alt"].str.len() == 1)).all()


def _sklearn_reference(ds, sim, gene, fold, variants):
    """ElasticNetCV(l1_ratio=0.5, 5 shuffled folds) on the fold's train people, with dosages
    of ``variants`` (chrom, pos, ref, alt rows) read from the VCF with cyvcf2."""
    dosage = {(c, p, r, a): (g > 0).sum(axis=1) for c, p, r, a, g, _ in _records(sim.vcf)}
    samples = list(cyvcf2.VCF(str(sim.vcf)).samples)
    expr = ds.expression(gene)
    train = [s for s in ds.split(fold)["train"] if s in expr.index]
    rows = [samples.index(s) for s in train]
    keys = variants[["chrom", "pos", "ref", "alt"]].itertuples(index=False)
    x = np.stack([dosage[tuple(k)][rows] for k in keys], axis=1).astype(np.float64)
    keep = x.max(axis=0) != x.min(axis=0)
    ref = ElasticNetCV(l1_ratio=0.5, cv=KFold(5, shuffle=True, random_state=0), max_iter=2000).fit(
        x[:, keep], expr.loc[train].to_numpy(np.float64)
    )
    coef = np.zeros(x.shape[1])
    coef[keep] = ref.coef_
    return coef


def test_baselines_indels_fit_every_allele_as_elastic_net_cv(cohort, tmp_path):
    sim, hap, _, _ = cohort
    ds = open_dataset(hap)
    truth = pd.read_csv(sim.truth, sep="\t")
    out = tmp_path / "BL"
    rc = cli.main(["baselines", "--dataset", str(hap), "--folds", "0", "--engine", "sklearn",
                   "--indels", "--out", str(out), "--no-progress"])  # fmt: skip
    assert rc == 0
    for gene in GENES:
        d = out / "elastic_net" / gene / "fold0"
        coef = pd.read_csv(d / "coefficients.tsv", sep="\t", keep_default_na=False)
        # every allele whose REF bases overlap the reference window, SNV or not
        v, w = ds.variants(gene), ds.window(gene)
        inside = (v["pos"] - 1 < w.end0) & (v["pos"] - 1 + v["ref"].str.len() > w.start0)
        assert (~inside).any()  # the haplotype span reaches past the window
        want_rows = v[inside].reset_index(drop=True)[["chrom", "pos", "ref", "alt"]]
        pd.testing.assert_frame_equal(coef[["chrom", "pos", "ref", "alt"]], want_rows)
        assert (coef["ref"].str.len() != coef["alt"].str.len()).any()  # indel rows
        dl = truth[(truth["gene"] == gene) & (truth["motif_effect"] == "delete")].iloc[0]
        assert ((coef["pos"] == dl["pos"]) & (coef["ref"] == dl["ref"])).sum() == 1
        want = _sklearn_reference(ds, sim, gene, 0, coef)
        np.testing.assert_allclose(coef["coef"], want, rtol=0, atol=1e-10)
        assert (want != 0).any()
        assert json.loads((d / "summary.json").read_text())["options"]["indels"] is True


def test_baselines_default_is_snvs_and_option_changes_are_refused(cohort, tmp_path, capsys):
    sim, hap, snv, _ = cohort
    ds = open_dataset(hap)
    out = tmp_path / "BL"
    bl.run_baselines(hap, out=out, genes=["BTNL3"], folds=[0], engine="sklearn")
    d = out / "elastic_net" / "BTNL3" / "fold0"
    coef = pd.read_csv(d / "coefficients.tsv", sep="\t", keep_default_na=False)
    # the columns an SNV dataset of the same VCF has: comparable with SNV mode
    snvs = open_dataset(snv).variants("BTNL3")
    assert len(snvs) and (snvs["ref"].str.len() == 1).all()
    pd.testing.assert_frame_equal(
        coef[["chrom", "pos", "id", "ref", "alt"]], snvs[["chrom", "pos", "id", "ref", "alt"]]
    )
    np.testing.assert_allclose(
        coef["coef"], _sklearn_reference(ds, sim, "BTNL3", 0, coef), rtol=0, atol=1e-10
    )
    assert "indels" not in json.loads((d / "summary.json").read_text())["options"]
    with pytest.raises(InputError, match="--force"):  # another column choice, same --out
        bl.run_baselines(hap, out=out, genes=["BTNL3"], folds=[0], engine="sklearn", indels=True)
    bl.run_baselines(
        hap, out=out, genes=["BTNL3"], folds=[0], engine="sklearn", indels=True, force=True
    )
    again = pd.read_csv(d / "coefficients.tsv", sep="\t", keep_default_na=False)
    assert len(again) > len(coef) and (again["ref"].str.len() > 1).any()
    # an SNV dataset has no indels: one line, exit 2, nothing written
    argv = ["baselines", "--dataset", str(snv), "--indels", "--out", str(tmp_path / "B2")]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "SNV dataset" in err[0]
    assert not (tmp_path / "B2").exists()


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n_sites=st.integers(1, 60), fraction=st.floats(0.0, 1.0))
def test_background_indels_are_normal_records(seed, n_sites, fraction):
    """Whatever the sites and planted motifs: each indel is anchored, its REF is the
    reference, it cannot shift left, it deletes no other site and touches no motif."""
    from data_prep.simulate.genetics import Sites
    from data_prep.simulate.indels import scatter_indels

    rng = np.random.default_rng(seed)
    length = 400
    ref = rng.integers(0, 4, size=length).astype(np.int8)
    occupied = np.zeros(length, dtype=bool)
    for start in rng.integers(0, length - 12, size=3):
        occupied[start : start + 10] = True
    pos0 = np.sort(rng.choice(length, size=n_sites, replace=False))
    alleles = [["ACGT"[ref[p]], "ACGT"[(ref[p] + 1) % 4]] for p in pos0]
    hap = (rng.random((n_sites, 8)) < 0.3).astype(np.int8)
    sites = Sites(pos0.astype(np.int64), alleles, hap)
    text = "".join("ACGT"[b] for b in ref)
    made = scatter_indels(sites, ref, occupied, set(), rng, fraction=fraction)
    for k in range(n_sites):
        r, a = sites.alleles[k]
        p = int(pos0[k])
        if k not in made:
            assert (len(r), len(a)) == (1, 1)
            continue
        assert text[p : p + len(r)] == r and r[0] == a[0] and len(r) != len(a)
        assert 1 <= abs(len(r) - len(a)) <= 50 and min(len(r), len(a)) == 1
        assert not occupied[p : p + len(r) + (len(a) > 1)].any()
        if len(r) > 1:  # a deletion: no other site inside, ref[p] != ref[p + L]
            assert not ((pos0 > p) & (pos0 < p + len(r))).any()
            assert text[p] != text[p + len(r) - 1]
        else:  # an insertion: its last inserted base differs from the anchor
            assert a[-1] != r[0]
