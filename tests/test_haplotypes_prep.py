"""`variformer prep --haplotypes` end to end: the dataset's haplotypes equal bcftools consensus
-H 1/-H 2 (TSS-anchored), sequence() is their mean, variants() lists indels as in the VCF,
symbolic and * alleles are skipped with a count, unphased genotypes are refused."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import cyvcf2
import numpy as np
import pysam
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.errors import InputError
from data_prep import open_dataset
from data_prep.genome import encode, one_hot
from data_prep.prep import prep_dataset
from tests.genomes import random_sequence, write_fasta, write_vcf
from tests.haplotype_cohort import cohorts, edge_cohort, oracle_window
from tests.prep_cohort import assert_prep_error, prep_cli, two_gene_cohort

# 1-based TSS, strand: the edge cases' centre, a TSS inside an edited stretch, the contig's ends
GENES = {"MID": (301, "+"), "EDGE": (263, "-"), "START": (3, "+"), "END": (598, "-")}


def _annotation(tmp):
    lines = ["gene_name\tgene_id\tchrom\ttss\tstrand"]
    lines += [f"{g}\tENSG{i:011d}.1\tchr1\t{t}\t{s}" for i, (g, (t, s)) in enumerate(GENES.items())]
    (tmp / "tss.tsv").write_text("\n".join(lines) + "\n")
    return tmp / "tss.tsv"


def _prep(tmp, vcf, fasta, **kw):
    return prep_dataset(
        vcfs=[vcf], fasta=fasta, annotation=_annotation(tmp), genes=list(GENES), seq_len=128,
        out=tmp / "ds", n_folds=1, tune_fraction=0.3, test_fraction=0.3, progress=False, **kw,
    )  # fmt: skip


def test_prep_haplotypes_equal_bcftools_consensus(tmp_path):
    fasta, vcf, samples, with_odd = edge_cohort(tmp_path, np.random.default_rng(3), symbolic=True)
    summary = _prep(tmp_path, with_odd, fasta, haplotypes=True)
    # symbolic and * alleles are skipped and counted; bcftools sees the VCF without them
    assert summary.skipped["symbolic"] > 0
    ds = open_dataset(tmp_path / "ds").prepare()  # as the training loader does before forking
    assert json.loads((tmp_path / "ds" / "dataset.json").read_text())["version"] == 3
    length = pysam.FastaFile(str(fasta)).get_reference_length("chr1")
    for gene, (tss1, _) in GENES.items():
        for s in samples:
            haps = ds.haplotypes(gene, s)
            assert haps.shape == (2, 128, 4) and haps.dtype == np.float32
            for h in (1, 2):
                want = oracle_window(fasta, vcf, "chr1", length, s, h, tss1 - 1, 128, tmp_path)
                np.testing.assert_array_equal(haps[h - 1], one_hot(encode(want)), f"{gene} {s} {h}")
            np.testing.assert_array_equal(ds.sequence(gene, s), haps.mean(axis=0))
        buf = np.empty((3, 64, 4), np.float32)  # a crop into a buffer, as the loader asks
        assert ds.sequences(gene, samples[:3], start=32, end=96, out=buf) is buf
        for k, s in enumerate(samples[:3]):
            np.testing.assert_array_equal(buf[k], ds.haplotypes(gene, s)[:, 32:96].mean(axis=0))


def test_variants_list_indels_as_in_the_vcf(tmp_path):
    fasta, vcf, _ = edge_cohort(tmp_path, np.random.default_rng(4))
    _prep(tmp_path, vcf, fasta, haplotypes=True)
    ds = open_dataset(tmp_path / "ds")
    in_vcf = {(r.POS, r.REF, a) for r in cyvcf2.VCF(str(vcf)) for a in r.ALT}
    v = ds.variants("MID")
    rows = set(zip(v["pos"], v["ref"], v["alt"]))
    assert rows <= in_vcf
    kinds = {(len(r) > len(a), len(r) < len(a), len(r) == len(a) > 1) for _, r, a in rows}
    assert {(True, False, False), (False, True, False), (False, False, True)} <= kinds
    long_ins = [a for _, r, a in rows if len(a) - len(r) >= 40]
    assert long_ins, "the 40- and 90-bp insertions are listed with their whole ALT"
    # dosages count the haplotypes that apply an allele (0/1/2)
    assert set(np.unique(ds.dosages("MID"))) <= {0.0, 1.0, 2.0}


def test_missing_error_names_the_record(tmp_path):
    fasta, vcf, _ = edge_cohort(tmp_path, np.random.default_rng(3))  # 5 % of alleles are "."
    with pytest.raises(InputError, match=r"missing genotype at chr1:\d+ .*--missing ref"):
        _prep(tmp_path, vcf, fasta, haplotypes=True, missing="error")


def test_unphased_genotypes_refused_with_one_line(tmp_path, capsys):
    c = two_gene_cohort(tmp_path)
    assert_prep_error(c, capsys, "unphased genotype at 1:150", "--haplotypes")
    code, err, _ = prep_cli(c, capsys)  # SNV mode still accepts them
    assert code == 0, err


def test_haplotypes_refuse_the_bcftools_engine_and_snv_datasets_have_none(tmp_path, capsys):
    fasta, vcf, samples = edge_cohort(tmp_path, np.random.default_rng(5))
    with pytest.raises(InputError, match="native engine"):
        _prep(tmp_path, vcf, fasta, haplotypes=True, engine="bcftools")
    _prep(tmp_path, vcf, fasta)
    ds = open_dataset(tmp_path / "ds")
    meta = json.loads((tmp_path / "ds" / "dataset.json").read_text())
    assert meta["version"] == 1 and "mode" not in meta and "haplotypes" not in meta["options"]
    assert not (tmp_path / "ds" / "spans.npy").exists()
    with pytest.raises(InputError, match="--haplotypes"):
        ds.haplotypes("MID", samples[0])


def test_ref_mismatch_is_an_error_or_skipped_and_claims_nothing(tmp_path):
    rng = np.random.default_rng(9)
    seq = random_sequence(rng, 600, lowercase=0.0, n_frac=0.0)
    fasta = write_fasta(tmp_path / "ref.fa", {"chr1": seq})
    wrong = "".join("A" if b != "A" else "C" for b in seq[289:295])  # REF disagreeing with FASTA
    good = [
        ("chr1", 292, "ins", seq[291], [seq[291] + "TTTT"], ["1|0", "0|1", "0|0", "1|1"]),
        ("chr1", 300, "snv", seq[299], ["A" if seq[299] != "A" else "G"], ["1|1", "0|1"] * 2),
    ]
    bad = [("chr1", 290, "bad", wrong, [wrong[0]], ["1|1"] * 4)]
    samples = ["A1", "A2", "A3", "A4"]
    vcf_bad = write_vcf(tmp_path / "bad.vcf.gz", {"chr1": 600}, samples, good + bad)
    vcf_good = write_vcf(tmp_path / "good.vcf.gz", {"chr1": 600}, samples, good)
    with pytest.raises(InputError, match=r"alleles have a REF that disagrees .* chr1:290 REF="):
        _prep(tmp_path, vcf_bad, fasta, haplotypes=True)
    assert not (tmp_path / "ds").exists()
    s = _prep(tmp_path, vcf_bad, fasta, haplotypes=True, ref_mismatch="drop")
    assert s.skipped["ref_mismatch"] == 4  # once per gene whose span reads it
    ds = open_dataset(tmp_path / "ds")
    for s_ in samples:
        for h in (1, 2):
            want = oracle_window(fasta, vcf_good, "chr1", 600, s_, h, 300, 128, tmp_path)
            np.testing.assert_array_equal(ds.haplotypes("MID", s_)[h - 1], one_hot(encode(want)))


@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    cohort=cohorts(min_samples=3),
    strands=st.lists(st.sampled_from("+-"), min_size=2, max_size=2),
    bcf=st.booleans(),
)
def test_prep_on_random_records_equals_bcftools(cohort, strands, bcf):
    """Through prep and the dataset: random records of every kind, TSSs anywhere on the contig
    (windows running off its ends), text VCF or BCF."""
    seq, records, samples, tss0, _ = cohort
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        fasta = write_fasta(tmp / "ref.fa", {"chr1": seq})
        vcf = write_vcf(tmp / "r.vcf.gz", {"chr1": len(seq)}, samples, records)
        vcf_in = (
            write_vcf(tmp / "r.bcf", {"chr1": len(seq)}, samples, records, bcf=True) if bcf else vcf
        )
        tss = [tss0, len(seq) // 3]
        lines = ["gene_name\tgene_id\tchrom\ttss\tstrand"]
        lines += [
            f"G{i}\tENSG{i:011d}.1\tchr1\t{t + 1}\t{s}"
            for i, (t, s) in enumerate(zip(tss, strands))
        ]
        (tmp / "tss.tsv").write_text("\n".join(lines) + "\n")
        prep_dataset(
            vcfs=[vcf_in], fasta=fasta, annotation=tmp / "tss.tsv", genes=["G0", "G1"],
            seq_len=128, out=tmp / "ds", n_folds=1, tune_fraction=0.34, test_fraction=0.34,
            progress=False, haplotypes=True,
        )  # fmt: skip
        ds = open_dataset(tmp / "ds")
        for g, t in zip(["G0", "G1"], tss):
            for s in samples:
                got = ds.haplotypes(g, s)
                for h in (1, 2):
                    want = oracle_window(fasta, vcf, "chr1", len(seq), s, h, t, 128, tmp)
                    np.testing.assert_array_equal(got[h - 1], one_hot(encode(want)))


def test_simulated_cohort_phased_with_indels_equals_bcftools(tmp_path):
    """The embedded simulated cohort: refused as written (unphased), then phased (any phase
    will do) and given random indels, MNPs and multi-allelic records: every person's two
    haplotypes equal bcftools consensus."""
    from data_prep.simulate import simulate_cohort

    sim = simulate_cohort(tmp_path / "sim", people=20, genes=2, seq_len=2048, seed=0)
    kw = dict(annotation=sim.gtf, genes=["BTNL3", "ZFP57"], seq_len=2048, n_folds=1,
              tune_fraction=0.2, test_fraction=0.2, progress=False, haplotypes=True)  # fmt: skip
    with pytest.raises(InputError, match="unphased genotype at chr5:"):
        prep_dataset(vcfs=[sim.vcf], fasta=sim.fasta, out=tmp_path / "no", **kw)
    fa = pysam.FastaFile(str(sim.fasta))
    contigs = {c: fa.fetch(c).upper() for c in fa.references}
    fasta = write_fasta(tmp_path / "ref.fa", contigs)
    vcf_in = cyvcf2.VCF(str(sim.vcf))
    samples = list(vcf_in.samples)
    records = [
        (r.CHROM, r.POS, r.ID or ".", r.REF, r.ALT,
         ["|".join("." if a < 0 else str(a) for a in g[:2]) for g in r.genotypes])
        for r in vcf_in
    ]  # fmt: skip
    rng = np.random.default_rng(2)
    for chrom, seq in contigs.items():
        for _ in range(40):
            p0 = int(rng.integers(0, len(seq) - 12))
            ref = seq[p0 : p0 + int(rng.integers(1, 10))]
            alts = list(dict.fromkeys(a for a in (_alt(rng, ref) for _ in range(2)) if a != ref))
            gts = [
                "|".join(str(int(rng.integers(0, len(alts) + 1))) for _ in range(2))
                for _ in samples
            ]
            records.append((chrom, p0 + 1, ".", ref, alts, gts))
    vcf = write_vcf(
        tmp_path / "phased.vcf.gz", {c: len(s) for c, s in contigs.items()}, samples, records
    )
    prep_dataset(vcfs=[vcf], fasta=fasta, out=tmp_path / "ds", **kw)
    ds = open_dataset(tmp_path / "ds")
    n_indel = 0
    for gene in ("BTNL3", "ZFP57"):
        w = ds.window(gene)
        v = ds.variants(gene)
        n_indel += int((v["ref"].str.len() != v["alt"].str.len()).sum())
        for s in samples:
            got = ds.haplotypes(gene, s)
            for h in (1, 2):
                want = oracle_window(
                    fasta, vcf, w.chrom, len(contigs[w.chrom]), s, h, w.tss0, 2048, tmp_path
                )
                np.testing.assert_array_equal(
                    got[h - 1], one_hot(encode(want)), f"{gene} {s} -H {h}"
                )
    assert n_indel > 10


def _alt(rng, ref: str) -> str:
    """A random insertion, deletion, MNP or SNV allele for ``ref``."""
    kind = int(rng.integers(0, 4))
    if kind == 0:
        return ref + "".join(rng.choice(list("ACGT"), int(rng.integers(1, 20))))
    if kind == 1 and len(ref) > 1:
        return ref[: int(rng.integers(1, len(ref)))]
    if kind == 2:
        return "".join(rng.choice(list("ACGT"), len(ref)))
    return "".join(rng.choice(list("ACGT"), 1)) + ref[1:]
