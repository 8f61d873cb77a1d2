"""The native engine against bcftools itself: sequences identical to `bcftools consensus -H 1/-H 2`,
and both engines writing the same dataset byte for byte."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pysam
import pysam.bcftools
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from data_prep import open_dataset
from data_prep.genome import encode, one_hot
from data_prep.prep import prep_dataset
from tests.genomes import random_sequence, write_fasta, write_vcf

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))


def _random_cohort(
    rng, tmp: Path, *, n_samples, n_records, messy: bool, vcf_naming: str, bcf: bool = False
):
    """Random reference + VCF of SNVs, multi-allelic sites (1-3 ALTs) and duplicate positions.
    With ``messy`` it also holds indels, symbolic alleles, missing, phased and haploid genotypes."""
    lengths = {"chr1": int(rng.integers(200, 700)), "chr2": int(rng.integers(150, 400))}
    contigs = {c: random_sequence(rng, n) for c, n in lengths.items()}
    fasta = write_fasta(tmp / "ref.fa", contigs)
    samples = [f"S{i}" for i in range(n_samples)]
    records = []
    for _ in range(n_records):
        chrom = str(rng.choice(list(contigs)))
        pos1 = int(rng.integers(1, lengths[chrom] + 1))
        base = contigs[chrom][pos1 - 1].upper()
        while base == "N":  # no record on an N (a skipped one could leave the VCF empty)
            pos1 = int(rng.integers(1, lengths[chrom] + 1))
            base = contigs[chrom][pos1 - 1].upper()
        others = [b for b in "ACGT" if b != base]
        n_alt = int(rng.integers(1, 4))
        alts = list(rng.choice(others, size=min(n_alt, 3), replace=False))
        ref = base
        if messy and rng.random() < 0.15:
            alts.append(str(rng.choice([base + "T", "<DEL>", "*"])))
        if messy and rng.random() < 0.05 and pos1 < lengths[chrom]:
            ref = base + contigs[chrom][pos1].upper().replace("N", "A")  # a deletion record
            alts = [base]
        gts = []
        for _s in range(n_samples):
            if messy and rng.random() < 0.05:
                gts.append(str(rng.integers(0, len(alts) + 1)))  # haploid
                continue
            a = [str(rng.integers(0, len(alts) + 1)) for _ in range(2)]
            if messy:
                a = ["." if rng.random() < 0.08 else x for x in a]
            sep = "|" if (messy and rng.random() < 0.5) else "/"
            gts.append(sep.join(a))
        records.append((chrom, pos1, f"v{len(records)}", ref, alts, gts))
    vcf_contigs = {("chr" + c[3:] if vcf_naming == "chr" else c[3:]): n for c, n in lengths.items()}
    records = [(("chr" + r[0][3:]) if vcf_naming == "chr" else r[0][3:], *r[1:]) for r in records]
    vcf = write_vcf(
        tmp / ("cohort.bcf" if bcf else "cohort.vcf.gz"), vcf_contigs, samples, records, bcf=bcf
    )
    return fasta, vcf, contigs, samples


def _genes(rng, tmp: Path, contigs, n_genes: int = 3):
    lines = ["gene_name\tgene_id\tchrom\ttss\tstrand"]
    for i in range(n_genes):
        chrom = str(rng.choice(list(contigs)))
        tss1 = int(rng.integers(1, len(contigs[chrom]) + 1))
        lines.append(f"G{i}\tENSG{i:011d}.1\t{chrom}\t{tss1}\t{rng.choice(['+', '-'])}")
    (tmp / "tss.tsv").write_text("\n".join(lines) + "\n")
    return tmp / "tss.tsv", [f"G{i}" for i in range(n_genes)]


@SETTINGS
@given(
    seed=st.integers(0, 2**32 - 1),
    n_samples=st.integers(3, 6),
    n_records=st.integers(1, 40),  # a header-only VCF is refused (tested in test_prep_hostile)
    seq_len=st.sampled_from([128, 256, 384]),
    vcf_naming=st.sampled_from(["chr", "bare"]),
    bcf=st.booleans(),
)
# several ALT alleles at one position across records: once written in different orders
@example(seed=53962, n_samples=4, n_records=16, seq_len=128, vcf_naming="chr", bcf=False)
def test_native_engine_equals_bcftools_engine(seed, n_samples, n_records, seq_len, vcf_naming, bcf):
    rng = np.random.default_rng(seed)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        fasta, vcf, contigs, samples = _random_cohort(
            rng,
            tmp,
            n_samples=n_samples,
            n_records=n_records,
            messy=True,
            vcf_naming=vcf_naming,
            bcf=bcf,
        )
        ann, genes = _genes(rng, tmp, contigs)
        kw = dict(
            vcfs=[vcf],
            fasta=fasta,
            annotation=ann,
            genes=genes,
            seq_len=seq_len,
            n_folds=1,
            tune_fraction=0.34,
            test_fraction=0.34,
            progress=False,
            allow_no_variants=True,  # random records may miss a gene's contig
        )
        prep_dataset(out=tmp / "native", engine="native", **kw)
        prep_dataset(out=tmp / "bcftools", engine="bcftools", **kw)
        a, b = open_dataset(tmp / "native"), open_dataset(tmp / "bcftools")
        for g in genes:
            np.testing.assert_array_equal(a.sequences(g, samples), b.sequences(g, samples))
            np.testing.assert_array_equal(a.dosages(g), b.dosages(g))
            assert a.variants(g).equals(b.variants(g))
            assert a.window(g) == b.window(g)
            v = a.variants(g)  # canonical order: position, then ALT in A, C, G, T order
            assert list(zip(v["pos"], v["alt"])) == sorted(zip(v["pos"], v["alt"]))
        # the same dataset byte for byte; dataset.json differs only in the engine's name
        files = sorted(p.name for p in (tmp / "native").iterdir())
        assert files == sorted(p.name for p in (tmp / "bcftools").iterdir())
        for name in files:
            x, y = (tmp / "native" / name).read_bytes(), (tmp / "bcftools" / name).read_bytes()
            if name == "dataset.json":
                x = x.replace(b'"engine": "native"', b'"engine": "bcftools"')
            assert x == y, name


def _consensus_onehot(
    fasta: Path, vcf: Path, sample: str, contig: str, vcf_contig: str, start0: int, end0: int
) -> np.ndarray:
    """Averaged one-hot of bcftools consensus -H 1 and -H 2 over a whole contig, windowed here."""
    fa = pysam.FastaFile(str(fasta))
    length = fa.get_reference_length(contig)
    region = tmp_fa = fasta.parent / f"{contig}_{sample}.fa"
    tmp_fa.write_text(f">{vcf_contig}:1-{length}\n{fa.fetch(contig)}\n")
    haps = []
    for h in ("1", "2"):
        out = pysam.bcftools.consensus("-f", str(region), "-s", sample, "-H", h, str(vcf))
        seq = "".join(out.split("\n")[1:]).upper()
        assert len(seq) == length
        lo, hi = max(start0, 0), min(end0, length)
        window = "N" * (lo - start0) + seq[lo : max(lo, hi)] + "N" * (end0 - max(hi, lo))
        haps.append(one_hot(encode(window)))
    return (haps[0] + haps[1]) / 2


@SETTINGS
@given(
    seed=st.integers(0, 2**32 - 1),
    n_samples=st.integers(3, 5),
    n_records=st.integers(1, 40),  # a header-only VCF is refused (tested in test_prep_hostile)
    seq_len=st.sampled_from([128, 256]),
    vcf_naming=st.sampled_from(["chr", "bare"]),
)
def test_sequences_equal_plain_bcftools_consensus(seed, n_samples, n_records, seq_len, vcf_naming):
    """An SNV-only VCF straight into `bcftools consensus` on the whole contig: the oracle,
    independent of both engines' code (multi-allelic sites and duplicate positions included)."""
    rng = np.random.default_rng(seed)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        fasta, vcf, contigs, samples = _random_cohort(
            rng, tmp, n_samples=n_samples, n_records=n_records, messy=False, vcf_naming=vcf_naming
        )
        ann, genes = _genes(rng, tmp, contigs)
        prep_dataset(
            vcfs=[vcf],
            fasta=fasta,
            annotation=ann,
            genes=genes,
            seq_len=seq_len,
            out=tmp / "ds",
            n_folds=1,
            tune_fraction=0.34,
            test_fraction=0.34,
            progress=False,
            allow_no_variants=True,
        )
        ds = open_dataset(tmp / "ds")
        for g in genes:
            w = ds.window(g)
            vcf_contig = ("chr" + w.chrom[3:]) if vcf_naming == "chr" else w.chrom[3:]
            for s in samples:
                expected = _consensus_onehot(fasta, vcf, s, w.chrom, vcf_contig, w.start0, w.end0)
                np.testing.assert_array_equal(ds.sequence(g, s), expected)
