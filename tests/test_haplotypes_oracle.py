"""Haplotype mode against ``bcftools consensus -H 1/-H 2`` (pysam's bcftools): every person's two
TSS-anchored windows equal bcftools' whole-contig consensus, cropped around the TSS base that
bcftools' own chain file (``-c``) locates."""

from __future__ import annotations

import tempfile
from pathlib import Path

import cyvcf2
import numpy as np
import pysam
import pysam.bcftools
from hypothesis import HealthCheck, given, settings

from data_prep.genome import Window, encode
from data_prep.haplotype_genes import gene_haplotypes
from tests.genomes import random_sequence, write_fasta, write_vcf
from tests.haplotype_cohort import cohorts, edge_cohort, oracle_window

SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))


def _check_all(fasta, vcf, contig, samples, tss0, seq_len, tmp, *, flank=4):
    fa = pysam.FastaFile(str(fasta))
    length = fa.get_reference_length(contig)
    v = cyvcf2.VCF(str(vcf))
    win = Window(contig, tss0 - seq_len // 2, tss0 - seq_len // 2 + seq_len, tss0, "+")
    gh = gene_haplotypes(
        v, contig, fa, contig, win, sample_index=np.arange(len(samples)), flank=flank
    )
    for si, sample in enumerate(samples):
        for hap in (1, 2):
            want = oracle_window(fasta, vcf, contig, length, sample, hap, tss0, seq_len, tmp)
            got = gh.haplotype(si, hap - 1)
            np.testing.assert_array_equal(got, encode(want), err_msg=f"{sample} -H {hap}")
    return gh


# ---- hand-written edge cases ----


def test_edge_cases_equal_bcftools_consensus():
    for seed in range(3):
        rng = np.random.default_rng(seed)
        with tempfile.TemporaryDirectory() as d:
            tmp = Path(d)
            fasta, vcf, samples = edge_cohort(tmp, rng)
            for tss0, seq_len in [(300, 128), (300, 64), (262, 32), (270, 16), (236, 8)]:
                _check_all(fasta, vcf, "chr1", samples, tss0, seq_len, tmp)


def test_whole_contig_windows_and_tiny_flanks():
    """Windows running off both contig ends, built from a flank that must grow many times."""
    rng = np.random.default_rng(7)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        fasta, vcf, samples = edge_cohort(tmp, rng)
        for tss0 in (0, 5, 300, 599):
            _check_all(fasta, vcf, "chr1", samples, tss0, 1024, tmp, flank=1)


# ---- random records ----


@SETTINGS
@given(cohort=cohorts())
def test_random_records_equal_bcftools_consensus(cohort):
    seq, records, samples, tss0, seq_len = cohort
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        fasta = write_fasta(tmp / "ref.fa", {"chr1": seq})
        vcf = write_vcf(tmp / "r.vcf.gz", {"chr1": len(seq)}, samples, records)
        _check_all(fasta, vcf, "chr1", samples, tss0, seq_len, tmp, flank=2)


def test_haploid_calls_are_both_haplotypes():
    """A haploid GT (chrX of a male) is the person's only haplotype: both windows equal
    bcftools consensus -H 1 (bcftools leaves -H 2 the reference; see data_prep.haplotypes)."""
    rng = np.random.default_rng(11)
    seq = random_sequence(rng, 300, lowercase=0.0, n_frac=0.0)
    records = []
    for i, p0 in enumerate(range(20, 280, 23)):
        alts = [seq[p0] + "GAT", "A" if seq[p0] != "A" else "C"]
        if i % 3 == 0:
            alts = [seq[p0]]
            ref = seq[p0 : p0 + 4]
        else:
            ref = seq[p0]
        haploid = str(int(rng.integers(0, len(alts) + 1)))
        records.append(("chrX", p0 + 1, f"x{i}", ref, alts, [haploid, f"{i % 2}|1"]))
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        fasta = write_fasta(tmp / "ref.fa", {"chrX": seq})
        vcf = write_vcf(tmp / "x.vcf.gz", {"chrX": len(seq)}, ["MALE", "FEMALE"], records)
        fa = pysam.FastaFile(str(fasta))
        win = Window("chrX", 150 - 64, 150 + 64, 150, "+")
        gh = gene_haplotypes(
            cyvcf2.VCF(str(vcf)), "chrX", fa, "chrX", win, sample_index=np.arange(2)
        )
        want = encode(oracle_window(fasta, vcf, "chrX", len(seq), "MALE", 1, 150, 128, tmp))
        assert not np.array_equal(want, encode(seq[86:214]))  # the haploid alleles do apply
        np.testing.assert_array_equal(gh.haplotype(0, 0), want)
        np.testing.assert_array_equal(gh.haplotype(0, 1), want)
        assert (gh.variants.an == 3).all()  # one allele for the haploid call, two for the other


def test_indel_classes_equal_htslib(tmp_path):
    """bcftools' anchored-indel exception rests on htslib's variant type: ``bcftools view -v
    indels`` on one random REF/ALT pair per record is the oracle."""
    from data_prep.haplotypes import _htslib_indel

    rng = np.random.default_rng(0)
    pairs = []
    for _ in range(1500):
        r, a = ("".join(rng.choice(list("ACGTacgt"), int(rng.integers(1, 6)))) for _ in range(2))
        if r.upper() != a.upper() and (r, a) not in pairs:
            pairs.append((r, a))
    lines = ["##fileformat=VCFv4.2", "##contig=<ID=c,length=100000>"]
    lines.append("#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO")
    lines += [f"c\t{i + 1}\tv{i}\t{r}\t{a}\t.\t.\t." for i, (r, a) in enumerate(pairs)]
    (tmp_path / "x.vcf").write_text("\n".join(lines) + "\n")
    out = pysam.bcftools.view("-H", "-v", "indels", str(tmp_path / "x.vcf"))
    indels = {ln.split("\t")[2] for ln in out.splitlines() if ln}
    assert 100 < len(indels) < len(pairs)
    assert [f"v{i}" in indels for i in range(len(pairs))] == [_htslib_indel(r, a) for r, a in pairs]
