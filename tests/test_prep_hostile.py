"""`variformer prep` on hostile inputs: haploid calls, records without GT, short records, REF
mismatches on multi-allelic sites. Each either gives the right dataset (checked against
``pysam.bcftools`` or hand-computed values) or stops with one line, exit 2, nothing written."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pysam
import pysam.bcftools
import pytest

from data_prep import open_dataset
from data_prep.genome import encode, one_hot
from data_prep.prep import prep_dataset
from tests.genomes import random_sequence, write_fasta, write_gtf
from variformer.cli import main as cli

HEADER = [
    "##fileformat=VCFv4.2",
    "##contig=<ID=chrX,length=600>",
    '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
    '##FORMAT=<ID=DP,Number=1,Type=Integer,Description="Depth">',
]
COLUMNS = ["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO", "FORMAT"]


def write_text_vcf(path: Path, samples, rows, *, header=HEADER) -> Path:
    """rows: (pos1, id, ref, alt, format, [sample fields]) as written, column counts unchecked."""
    lines = [*header, "\t".join(COLUMNS + list(samples))]
    for pos1, vid, ref, alt, fmt, fields in rows:
        lines.append("\t".join(["chrX", str(pos1), vid, ref, alt, ".", "PASS", ".", fmt, *fields]))
    plain = path.with_suffix("")
    plain.write_text("\n".join(lines) + "\n")
    pysam.tabix_compress(str(plain), str(path), force=True)
    pysam.tabix_index(str(path), preset="vcf", force=True)
    return path


@pytest.fixture()
def chrx(tmp_path: Path):
    rng = np.random.default_rng(7)
    seq = random_sequence(rng, 600, lowercase=0.0, n_frac=0.0)
    fasta = write_fasta(tmp_path / "ref.fa", {"chrX": seq})
    gtf = write_gtf(
        tmp_path / "g.gtf", [("chrX", 301, 400, "+", "ENSG9.1", "XG", "protein_coding")]
    )
    return {"tmp": tmp_path, "seq": seq, "fasta": fasta, "gtf": gtf}


def _alts(seq: str, pos1: int, k: int) -> list[str]:
    return [b for b in "ACGT" if b != seq[pos1 - 1]][:k]


def _prep(c, vcf, out="ds", **kw):
    return prep_dataset(
        vcfs=[vcf],
        fasta=c["fasta"],
        annotation=c["gtf"],
        genes=["XG"],
        seq_len=256,
        out=c["tmp"] / out,
        n_folds=1,
        tune_fraction=0.34,
        test_fraction=0.34,
        progress=False,
        **kw,
    )


def _consensus(c, vcf: Path, sample: str, hap: str) -> str:
    out = pysam.bcftools.consensus("-f", str(c["fasta"]), "-s", sample, "-H", hap, str(vcf))
    return "".join(out.split("\n")[1:])


def test_haploid_calls_are_the_persons_only_haplotype(chrx):
    """Males' chrX: bcftools consensus applies GT=1 with -H 1 only (-H 2 keeps REF, checked
    here); the dataset shows a hemizygous ALT at full weight, dosage 2, and AF counts one
    allele per haploid call (hand-computed)."""
    seq, samples = chrx["seq"], ["M1", "F1", "M2"]
    a150, a160, a170 = _alts(seq, 250, 1)[0], _alts(seq, 260, 2), _alts(seq, 270, 1)[0]
    vcf = write_text_vcf(
        chrx["tmp"] / "x.vcf.gz",
        samples,
        [
            (250, "rs150", seq[249], a150, "GT", ["1", "0/1", "0"]),
            (260, "rs160", seq[259], ",".join(a160), "GT", ["2", "1/2", "."]),
            (270, "rs170", seq[269], a170, "GT", ["1", "0", "1"]),  # every call haploid
        ],
    )
    # what bcftools consensus does with a haploid call
    assert _consensus(chrx, vcf, "M1", "1")[249] == a150
    assert _consensus(chrx, vcf, "M1", "2")[249] == seq[249]
    for engine in ("native", "bcftools"):
        _prep(chrx, vcf, out=engine, engine=engine)
        ds = open_dataset(chrx["tmp"] / engine)
        start0 = ds.window("XG").start0
        x = ds.sequences("XG", samples)
        hap1 = {s: one_hot(encode(_consensus(chrx, vcf, s, "1")[start0 : start0 + 256])) for s in samples}  # fmt: skip
        # a haploid person's sequence is his -H 1 consensus at full weight
        np.testing.assert_array_equal(x[0], hap1["M1"])
        np.testing.assert_array_equal(x[2], hap1["M2"])
        col = "ACGT".index
        assert x[0, 249 - start0, col(a150)] == 1.0 and x[1, 249 - start0, col(a150)] == 0.5
        v = ds.variants("XG")
        assert list(v["pos"]) == [250, 260, 260, 270]
        assert list(v["alt"]) == [a150, *sorted(a160), a170]
        np.testing.assert_array_equal(
            ds.dosages("XG"),
            [
                [2, 0 if a160[1] > a160[0] else 2, 2 if a160[1] > a160[0] else 0, 2],
                [1, 1, 1, 0],
                [0, 0, 0, 2],
            ],
        )
        # alleles present: 1 + 2 + 1 = 4 per site except 270 (1 + 1 + 1 = 3)
        af = {(p, a): f for p, a, f in zip(v["pos"], v["alt"], v["af"])}
        assert af[(250, a150)] == 2 / 4  # M1's one allele + F1's one
        assert af[(260, a160[0])] == 1 / 4 and af[(260, a160[1])] == 2 / 4
        assert af[(270, a170)] == pytest.approx(2 / 3)
    a, b = (chrx["tmp"] / "native"), (chrx["tmp"] / "bcftools")
    for name in ("variants.tsv", "carriers.npz"):
        assert (a / name).read_bytes() == (b / name).read_bytes()


def _cli(c, capfd, vcf, *extra):
    out = c["tmp"] / "out"
    code = cli(
        ["prep", "--vcf", str(vcf), "--fasta", str(c["fasta"]), "--annotation", str(c["gtf"]),
         "--genes", "XG", "--seq-len", "256", "--out", str(out), "--quiet", "--folds", "1",
         "--tune-fraction", "0.34", "--test-fraction", "0.34", *extra]
    )  # fmt: skip
    captured = capfd.readouterr()
    return code, captured.err.strip(), captured.out


def _assert_error(c, capfd, vcf, pattern, *extra):
    code, err, _ = _cli(c, capfd, vcf, *extra)
    assert code == 2, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert pattern in err, err
    assert not (c["tmp"] / "out").exists()
    assert not [p for p in c["tmp"].iterdir() if p.name.startswith(".out.")]


@pytest.mark.parametrize("engine", ["native", "bcftools"])
def test_record_without_gt_is_skipped_and_counted(chrx, capfd, engine):
    """bcftools consensus applies nothing for a record whose FORMAT lacks GT: the same here,
    counted in the summary; with --missing error it is refused."""
    seq = chrx["seq"]
    a150, a160 = _alts(seq, 250, 1)[0], _alts(seq, 260, 1)[0]
    vcf = write_text_vcf(
        chrx["tmp"] / "nogt.vcf.gz",
        ["P1", "P2", "P3"],
        [
            (250, ".", seq[249], a150, "DP", ["3", "4", "5"]),
            (260, ".", seq[259], a160, "GT:DP", ["0/1:3", "1/1:4", "0/0:5"]),
        ],
    )
    assert _consensus(chrx, vcf, "P1", "1")[249] == seq[249]  # bcftools: nothing applied
    code, err, out = _cli(chrx, capfd, vcf, "--engine", engine)
    assert code == 0, err
    assert "no_genotype 1" in out
    ds = open_dataset(chrx["tmp"] / "out")
    assert list(ds.variants("XG")["pos"]) == [260]
    np.testing.assert_array_equal(ds.dosages("XG"), [[1], [2], [0]])
    (chrx["tmp"] / "out").rename(chrx["tmp"] / "first")
    _assert_error(chrx, capfd, vcf, "record chrX:250 has no GT", "--missing", "error", "--engine", engine)  # fmt: skip


@pytest.mark.parametrize("engine", ["native", "bcftools"])
def test_multiallelic_ref_mismatch_counts_each_allele(chrx, capfd, engine):
    seq = chrx["seq"]
    wrong = _alts(seq, 250, 1)[0]  # REF that disagrees with the FASTA
    alts = [b for b in "ACGT" if b != wrong][:2]
    a160 = _alts(seq, 260, 1)[0]
    vcf = write_text_vcf(
        chrx["tmp"] / "mm.vcf.gz",
        ["P1", "P2", "P3"],
        [
            (250, "bad", wrong, ",".join(alts), "GT", ["1/2", "0/1", "0/0"]),
            (260, "ok", seq[259], a160, "GT", ["0/1", "0/0", "0/0"]),
        ],
    )
    _assert_error(chrx, capfd, vcf, "2 SNVs have a REF that disagrees with the FASTA (first: chrX:250 REF=", "--engine", engine)  # fmt: skip
    code, err, _ = _cli(chrx, capfd, vcf, "--engine", engine, "--drop-ref-mismatch")
    assert code == 0, err
    ds = open_dataset(chrx["tmp"] / "out")
    assert ds.meta["summary"]["skipped_alleles"] == {"ref_mismatch": 2}
    assert list(ds.variants("XG")["pos"]) == [260]


def test_record_with_too_few_sample_columns_stops_prep(chrx, capfd):
    seq = chrx["seq"]
    a150, a160 = _alts(seq, 250, 1)[0], _alts(seq, 260, 1)[0]
    vcf = write_text_vcf(
        chrx["tmp"] / "short.vcf.gz",
        ["P1", "P2", "P3"],
        [
            (250, ".", seq[249], a150, "GT", ["0/1", "1/1", "0/0"]),
            (260, ".", seq[259], a160, "GT", ["0/1", "1/1"]),  # P3's column is missing
        ],
    )
    with pytest.raises(pysam.utils.SamtoolsError):  # bcftools refuses it too
        pysam.bcftools.view("-H", str(vcf))
    capfd.readouterr()  # bcftools' own complaint
    for engine in ("native", "bcftools"):
        _assert_error(chrx, capfd, vcf, "chrX:", "--engine", engine)
