"""`variformer prep`: the dataset API against hand-computed values, and every bad-input path."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from data_prep import InputError, open_dataset
from data_prep.prep import prep_dataset
from tests.genomes import random_sequence, write_expression_bed, write_fasta, write_gtf, write_vcf
from tests.prep_cohort import SAMPLES, assert_prep_error, prep_cli


def _prep(c, **kw):
    args = dict(
        vcfs=[c["vcf"]],
        fasta=c["fasta"],
        annotation=c["gtf"],
        genes=["GENE_P", "GENE_M"],
        seq_len=256,
        out=c["tmp"] / "ds",
        expression=c["bed"],
        progress=False,
    )
    args.update(kw)
    return prep_dataset(**args)


def test_dataset_api_hand_computed(cohort):
    s = _prep(cohort)
    assert s.n_genes == 2 and s.n_samples == 20 and s.n_variants == 4
    assert s.skipped == {"indel": 1, "symbolic": 1}
    ds = open_dataset(cohort["tmp"] / "ds")
    assert ds.genes == ["GENE_P", "GENE_M"] and ds.samples == SAMPLES and ds.seq_len == 256
    # windows: TSS at index seq_len // 2, strand-aware TSS
    assert ds.window("GENE_P") == (("chr1", 100 - 128, 100 + 128, 100, "+"))
    assert ds.window("GENE_M") == (("chr2", 1499 - 128, 1499 + 128, 1499, "-"))
    # reference: N-padding before chr1's start, then the FASTA (upper-cased), forward strand
    ref = ds.reference("GENE_P")
    assert (ref[:28] == 0).all()
    expect = cohort["chr1"][:228].upper()
    assert "".join("ACGT"[i] for i in ref[28:].argmax(1)) == expect
    # person 0 is het at 150 -> 0.5/0.5; person 0 hom-alt at 160 -> 1; person 1 '0|1' at 160 -> 0.5
    seq0 = ds.sequence("GENE_P", SAMPLES[0])
    off150, off160 = 149 - (100 - 128), 159 - (100 - 128)
    col = lambda base: "ACGT".index(base)  # noqa: E731
    r150, a150 = cohort["chr1"][149].upper(), ("A" if cohort["chr1"][149].upper() != "A" else "C")
    assert seq0[off150, col(r150)] == 0.5 and seq0[off150, col(a150)] == 0.5
    a160 = "A" if cohort["chr1"][159].upper() != "A" else "C"
    assert seq0[off160, col(a160)] == 1.0 and seq0[off160].sum() == 1.0
    assert ds.sequence("GENE_P", SAMPLES[1])[off160, col(a160)] == 0.5
    # everyone else equals the reference
    np.testing.assert_array_equal(ds.sequence("GENE_P", SAMPLES[5]), ref)
    # multi-allelic 1/2 -> 0.5 ALT1 + 0.5 ALT2 and no REF; 2/2 -> ALT2; missing -> REF
    off = 1489 - (1499 - 128)
    alt1, alt2 = cohort["others"][:2]
    seqs = ds.sequences("GENE_M", SAMPLES[:4])
    assert seqs.shape == (4, 256, 4) and seqs.dtype == np.float32
    assert (
        seqs[0, off, col(alt1)] == 0.5
        and seqs[0, off, col(alt2)] == 0.5
        and seqs[0, off].sum() == 1
    )
    assert seqs[1, off, col(alt2)] == 1.0
    np.testing.assert_array_equal(seqs[3], ds.reference("GENE_M"))
    # variants and dosages
    v = ds.variants("GENE_M")
    assert list(v.columns) == ["chrom", "pos", "id", "ref", "alt", "af", "maf"]
    assert (
        list(v["alt"]) == [alt1, alt2]
        and list(v["pos"]) == [1490, 1490]
        and list(v["chrom"]) == ["chr2"] * 2
    )
    d = ds.dosages("GENE_M")
    assert d.shape == (20, 2)
    np.testing.assert_array_equal(d[:4], [[1, 1], [0, 2], [1, 0], [0, 0]])
    assert np.allclose(v["af"], [2 / 40, 3 / 40]) and np.allclose(v["maf"], v["af"])
    np.testing.assert_array_equal(ds.dosages("GENE_P", [SAMPLES[1], SAMPLES[0]]), [[0, 1], [1, 2]])
    # expression by sample, matched through the versioned gene id
    e = ds.expression("GENE_M")
    assert list(e.index) == SAMPLES and np.allclose(e.to_numpy(), cohort["expr"][1])
    # gene lookup by Ensembl id with or without version
    assert ds.window("ENSG00000000002") == ds.window("GENE_M") == ds.window("ENSG00000000002.3")


def test_splits_are_stored_and_nested(cohort):
    _prep(cohort)
    ds = open_dataset(cohort["tmp"] / "ds")
    assert ds.n_folds == 3
    tests = []
    for k in range(3):
        sp = ds.split(k)
        assert sorted(sp["train"] + sp["tune"] + sp["test"]) == sorted(SAMPLES)
        assert (len(sp["train"]), len(sp["tune"]), len(sp["test"])) == (16, 2, 2)
        tests.append(set(sp["test"]))
        quarter, half = (
            ds.split(k, train_fraction=0.25)["train"],
            ds.split(k, train_fraction=0.5)["train"],
        )
        assert (
            len(quarter) == 4 and len(half) == 8 and set(quarter) <= set(half) <= set(sp["train"])
        )
        assert ds.split(k, train_fraction=0.5)["test"] == sp["test"]
    assert not (tests[0] & tests[1]) and not (tests[0] & tests[2]) and not (tests[1] & tests[2])
    with pytest.raises(InputError, match="fold 3 does not exist"):
        ds.split(3)


def test_external_test_cohort(cohort):
    (cohort["tmp"] / "test.txt").write_text("\n".join(SAMPLES[:5]) + "\n")
    _prep(cohort, test_samples_file=cohort["tmp"] / "test.txt", n_folds=2)
    ds = open_dataset(cohort["tmp"] / "ds")
    for k in range(2):
        sp = ds.split(k)
        assert (
            sorted(sp["test"]) == sorted(SAMPLES[:5])
            and len(sp["tune"]) == 2
            and len(sp["train"]) == 13
        )
    assert ds.split(0)["tune"] != ds.split(1)["tune"]


def test_gene_filters(cohort):
    s = _prep(
        cohort,
        genes=["GENE_P", "LNC1", "CLOSE1", "GENE_M"],
        expression=None,
        protein_coding_only=True,
        drop_close_tss_bp=64,
    )
    # LNC1 is lncRNA. TSSs (0-based): GENE_M '-' 1499, LNC1 '-' 1699, CLOSE1 '+' 1539:
    # CLOSE1 and GENE_M are 40 bp apart, so both go; LNC1 still counts as a neighbour.
    assert s.dropped_genes["not_protein_coding"] == ["LNC1"]
    ds = open_dataset(cohort["tmp"] / "ds")
    assert s.dropped_genes["tss_within_64bp"] == ["CLOSE1", "GENE_M"]
    assert ds.genes == ["GENE_P"] and not ds.has_expression


def test_contig_naming_is_harmonized_and_bcf_works(cohort, tmp_path):
    """FASTA says chr1, VCF says 1 (fixture); also a BCF input gives the same dataset."""
    import pysam.bcftools

    _prep(cohort)
    bcf = tmp_path / "cohort.bcf"
    pysam.bcftools.view("-Ob", "-o", str(bcf), str(cohort["vcf"]), catch_stdout=False)
    pysam.bcftools.index(str(bcf))
    _prep(cohort, vcfs=[bcf], out=tmp_path / "ds_bcf")
    a, b = open_dataset(cohort["tmp"] / "ds"), open_dataset(tmp_path / "ds_bcf")
    np.testing.assert_array_equal(a.sequences("GENE_M", SAMPLES), b.sequences("GENE_M", SAMPLES))


@pytest.mark.parametrize("seq_len", [49152, 196608])
def test_full_window_lengths(tmp_path, seq_len):
    rng = np.random.default_rng(0)
    chrom = random_sequence(rng, 120_000, lowercase=0.0, n_frac=0.0)
    fasta = write_fasta(tmp_path / "ref.fa", {"chr7": chrom})
    gtf = write_gtf(
        tmp_path / "g.gtf", [("chr7", 60_001, 70_000, "+", "ENSG1.1", "G1", "protein_coding")]
    )
    pos = 60_001 + 5_000
    alt = "A" if chrom[pos - 1] != "A" else "C"
    vcf = write_vcf(
        tmp_path / "v.vcf.gz",
        {"chr7": 120_000},
        ["a", "b", "c"],
        [("chr7", pos, ".", chrom[pos - 1], [alt], ["1/1", "0/1", "0/0"])],
    )
    prep_dataset(
        vcfs=[vcf],
        fasta=fasta,
        annotation=gtf,
        genes=["G1"],
        seq_len=seq_len,
        out=tmp_path / "ds",
        progress=False,
        n_folds=1,
        tune_fraction=0.34,
        test_fraction=0.34,
    )
    ds = open_dataset(tmp_path / "ds")
    x = ds.sequences("G1", ["a", "b", "c"])
    assert x.shape == (3, seq_len, 4)
    assert ds.window("G1").tss0 - ds.window("G1").start0 == seq_len // 2
    off = pos - 1 - ds.window("G1").start0
    assert x[0, off, "ACGT".index(alt)] == 1 and x[1, off, "ACGT".index(alt)] == 0.5
    # off the contig (before 0, past 120 kb) all N (zeros); on it every row sums to 1
    genomic = np.arange(ds.window("G1").start0, ds.window("G1").end0)
    on = (genomic >= 0) & (genomic < 120_000)
    assert (x[:, ~on] == 0).all() and (x[:, on].sum(-1) == 1).all()


# ---------------- bad input: one line, exit 2, nothing written ----------------


def test_cli_success_summary(cohort, capsys):
    code, _, out = prep_cli(cohort, capsys)
    assert code == 0 and "2 genes, 20 people, 4 SNV alleles kept" in out
    assert "indel 1" in out and "symbolic 1" in out


def test_ref_mismatch_is_an_error_or_dropped(cohort, capsys):
    c = dict(cohort)
    seq = list(c["chr1"])
    seq[149] = "A" if seq[149].upper() != "A" else "C"  # FASTA now disagrees with rs1's REF
    seq[159] = "A" if seq[159].upper() != "A" else "C"
    c["fasta"] = write_fasta(c["tmp"] / "ref2.fa", {"chr1": "".join(seq), "chr2": c["chr2"]})
    assert_prep_error(c, capsys, "2 SNVs have a REF that disagrees with the FASTA (first: 1:150")
    code, _, _ = prep_cli(c, capsys, "--drop-ref-mismatch")
    assert code == 0
    ds = open_dataset(c["tmp"] / "out")
    assert (
        len(ds.variants("GENE_P")) == 0
        and ds.meta["summary"]["skipped_alleles"]["ref_mismatch"] == 2
    )


def test_existing_output_needs_force(cohort, capsys):
    assert prep_cli(cohort, capsys)[0] == 0
    code, err, _ = prep_cli(cohort, capsys)
    assert code == 2 and "already exists; pass --force" in err
    assert prep_cli(cohort, capsys, "--force")[0] == 0


def test_missing_index_and_files(cohort, capsys):
    Path(str(cohort["vcf"]) + ".tbi").unlink()
    assert_prep_error(cohort, capsys, "has no index")
    assert_prep_error(dict(cohort, vcf=cohort["tmp"] / "nope.vcf.gz"), capsys, "VCF/BCF not found")
    Path(str(cohort["fasta"]) + ".fai").unlink()
    assert_prep_error(cohort, capsys, "has no .fai index")


def test_truncated_vcf(cohort, capsys, tmp_path):
    bad = tmp_path / "trunc.vcf.gz"
    data = cohort["vcf"].read_bytes()
    bad.write_bytes(data[: len(data) - 40])
    shutil.copy(str(cohort["vcf"]) + ".tbi", str(bad) + ".tbi")
    assert_prep_error(dict(cohort, vcf=bad), capsys, "truncated")
    plain = tmp_path / "plain.vcf.gz"
    plain.write_text("##fileformat=VCFv4.2\n")
    Path(str(plain) + ".tbi").write_text("")
    assert_prep_error(dict(cohort, vcf=plain), capsys, "not bgzip-compressed")


def test_unknown_gene_suggests(cohort, capsys):
    assert_prep_error(
        cohort,
        capsys,
        "gene 'GENE_Q' is not in the annotation (did you mean GENE_P",
        genes=("GENE_Q",),
    )


def test_samples_missing_and_duplicates(cohort, capsys):
    (cohort["tmp"] / "s.txt").write_text("GTEX-0001\nNOPE-1\n")
    assert_prep_error(cohort, capsys, "1 samples from", "--samples", str(cohort["tmp"] / "s.txt"))
    (cohort["tmp"] / "s.txt").write_text("GTEX-0001\nGTEX-0001\n")
    assert_prep_error(
        cohort, capsys, "lists 'GTEX-0001' twice", "--samples", str(cohort["tmp"] / "s.txt")
    )
    dup = write_vcf(cohort["tmp"] / "dup.vcf.gz", {"1": 3000}, ["A", "A"], [])
    assert_prep_error(dict(cohort, vcf=dup), capsys, "duplicate sample")
    # expression lacks a requested sample
    (cohort["tmp"] / "s.txt").write_text("GTEX-0001\n")
    bed = write_expression_bed(
        cohort["tmp"] / "e2.bed",
        [("chr1", 100, "ENSG00000000001.5"), ("chr2", 1499, "ENSG00000000002.3")],
        ["GTEX-0002"],
        np.zeros((2, 1)),
    )
    assert_prep_error(
        cohort,
        capsys,
        "have no expression column",
        "--samples",
        str(cohort["tmp"] / "s.txt"),
        "--expression",
        str(bed),
    )


def test_missing_genotype_policy(cohort, capsys):
    assert_prep_error(cohort, capsys, "missing genotype at 2:1490", "--missing", "error")
    assert prep_cli(cohort, capsys, "--missing", "ref")[0] == 0


def test_bad_seq_len(cohort, capsys):
    assert_prep_error(cohort, capsys, "multiple of 128", "--seq-len", "1000")


def test_sample_subset_and_expression_intersection(cohort):
    # the expression file holds 15 of the 20 people (in another order): the dataset keeps those 15 in VCF order
    keep = SAMPLES[:15][::-1]
    bed = write_expression_bed(
        cohort["tmp"] / "e15.bed.gz",
        [("chr1", 100, "ENSG00000000001"), ("chr2", 1499, "ENSG00000000002")],
        keep,
        np.arange(30, dtype=float).reshape(2, 15),
    )
    summary = _prep(cohort, expression=bed)
    assert summary.dropped_samples == {
        "genotyped_without_expression": 5,
        "expression_without_genotypes": 0,
    }
    ds = open_dataset(cohort["tmp"] / "ds")
    assert ds.samples == SAMPLES[:15]
    assert ds.dosages("GENE_M").shape == (15, 2)
    e = ds.expression("GENE_P")
    assert (
        e.index.tolist() == SAMPLES[:15] and e[SAMPLES[0]] == 14.0
    )  # SAMPLES[0] is the last column
    # people without any carrier among those kept lose the allele: only the first 3 carry rs3's alleles
    assert pd.Series(ds.dosages("GENE_M").sum(0)).tolist() == [2.0, 3.0]


def test_sequence_crops_equal_slices_of_the_full_window(cohort):
    _prep(cohort)
    ds = open_dataset(cohort["tmp"] / "ds")
    full = ds.sequences("GENE_M", SAMPLES)
    for start, end in [(0, 256), (64, 192), (120, 121), (118, 140), (200, 256)]:
        np.testing.assert_array_equal(
            ds.sequences("GENE_M", SAMPLES, start=start, end=end), full[:, start:end]
        )
    with pytest.raises(InputError, match="outside"):
        ds.sequences("GENE_M", SAMPLES, start=10, end=300)


def test_malformed_vcf_record(cohort, capsys, tmp_path):
    import pysam

    text = pysam.BGZFile(str(cohort["vcf"])).read().decode().splitlines()
    body = [i for i, ln in enumerate(text) if not ln.startswith("#")]
    text[body[0]] = text[body[0]].replace("0/1", "foo/bar", 1)
    (tmp_path / "bad.vcf").write_text("\n".join(text) + "\n")
    pysam.tabix_compress(str(tmp_path / "bad.vcf"), str(tmp_path / "bad.vcf.gz"))
    pysam.tabix_index(str(tmp_path / "bad.vcf.gz"), preset="vcf")
    assert_prep_error(
        dict(cohort, vcf=tmp_path / "bad.vcf.gz"), capsys, "malformed VCF record in 1:"
    )


def test_interrupted_run_leaves_nothing(cohort, monkeypatch):
    import data_prep.prep as prep_mod

    def boom(tmp_dir, **kw):
        tmp_dir.mkdir(parents=True, exist_ok=True)
        (tmp_dir / "genes.tsv").write_text("half")
        raise KeyboardInterrupt

    monkeypatch.setattr(prep_mod, "write_dataset", boom)
    with pytest.raises(KeyboardInterrupt):
        _prep(cohort)
    assert not (cohort["tmp"] / "ds").exists()
    assert not [p for p in cohort["tmp"].iterdir() if p.name.startswith(".ds.tmp")]
    with pytest.raises(InputError, match="not a variformer dataset"):
        open_dataset(cohort["tmp"] / "ds")


def test_per_chromosome_vcfs_equal_one_vcf(cohort, capsys, tmp_path):
    """`--vcf chr1.vcf.gz --vcf chr2.vcf.gz` gives the same dataset as one whole-genome VCF."""
    import pysam.bcftools

    parts = []
    for contig in ("1", "2"):
        part = tmp_path / f"chr{contig}.vcf.gz"
        pysam.bcftools.view(
            "-r", contig, "-Oz", "-o", str(part), str(cohort["vcf"]), catch_stdout=False
        )
        pysam.bcftools.index("-t", str(part))
        parts.append(part)
    _prep(cohort)
    _prep(cohort, vcfs=parts, out=tmp_path / "split")
    a, b = open_dataset(cohort["tmp"] / "ds"), open_dataset(tmp_path / "split")
    for g in a.genes:
        np.testing.assert_array_equal(a.sequences(g, SAMPLES), b.sequences(g, SAMPLES))
        assert a.variants(g).equals(b.variants(g))
    # a contig with records in two files is ambiguous; files with different samples are refused
    assert_prep_error(dict(cohort), capsys, "has records in several VCFs", "--vcf", str(parts[0]))
    other = write_vcf(tmp_path / "other.vcf.gz", {"2": 2000}, SAMPLES[::-1], [])
    assert_prep_error(dict(cohort), capsys, "different samples", "--vcf", str(other))


def test_cli_gene_flags_and_no_torch(cohort):
    """`--gene X`, `--genes X Y` and `--genes-file F` select the same genes; prep never loads torch."""
    import subprocess
    import sys

    (cohort["tmp"] / "genes.txt").write_text("GENE_M\n# a comment\nGENE_P\n")
    base = ["prep", "--vcf", str(cohort["vcf"]), "--fasta", str(cohort["fasta"]),
            "--annotation", str(cohort["gtf"]), "--seq-len", "256", "--no-progress"]  # fmt: skip
    script = (
        "import sys; from variformer.cli import main; rc = main(sys.argv[1:]); "
        "assert 'torch' not in sys.modules, 'prep imported torch'; sys.exit(rc)"
    )
    flags = {
        "one": ["--gene", "GENE_M"],
        "two": ["--genes", "GENE_P", "GENE_M"],
        "file": ["--genes-file", str(cohort["tmp"] / "genes.txt")],
    }
    for name, genes in flags.items():
        argv = [*base, *genes, "--out", str(cohort["tmp"] / name)]
        run = subprocess.run([sys.executable, "-c", script, *argv], capture_output=True, text=True)
        assert run.returncode == 0, run.stderr
    assert open_dataset(cohort["tmp"] / "one").genes == ["GENE_M"]
    assert open_dataset(cohort["tmp"] / "two").genes == ["GENE_P", "GENE_M"]
    assert open_dataset(cohort["tmp"] / "file").genes == ["GENE_M", "GENE_P"]


def test_dataset_and_fake_follow_gene_dataset_like(cohort):
    """The real dataset and the tests' in-memory fake both satisfy GeneDatasetLike, consistently:
    at each SNV the averaged one-hot moves dosage/2 from REF to ALT (1-based pos, window start0)."""
    from data_prep import GeneDatasetLike
    from tests.fakes import FakeDataset

    _prep(cohort)
    for ds in (open_dataset(cohort["tmp"] / "ds"), FakeDataset(n_samples=12, seq_len=512)):
        assert isinstance(ds, GeneDatasetLike)
        people = ds.samples[::-1][:6]
        for gene in ds.genes:
            var, dos = ds.variants(gene), ds.dosages(gene, people)
            assert dos.shape == (len(people), len(var))
            np.testing.assert_array_equal(
                dos, ds.dosages(gene)[[ds.samples.index(p) for p in people]]
            )
            seq, ref = ds.sequences(gene, people), ds.reference(gene)
            assert seq.shape == (len(people), ds.seq_len, 4)
            for j, v in enumerate(var.itertuples()):
                off = v.pos - 1 - ds.window(gene).start0
                r, a = "ACGT".index(v.ref), "ACGT".index(v.alt)
                assert ref[off, r] == 1
                if (var["pos"] == v.pos).sum() == 1:  # one ALT at this site
                    np.testing.assert_allclose(seq[:, off, a], dos[:, j] / 2)
                    np.testing.assert_allclose(seq[:, off, r], 1 - dos[:, j] / 2)
