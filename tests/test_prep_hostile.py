"""`variformer prep` on hostile inputs: haploid calls, records without GT, short records, REF
mismatches on multi-allelic sites. Each either gives the right dataset (checked against
``pysam.bcftools`` or hand-computed values) or stops with one line, exit 2, nothing written."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pysam
import pysam.bcftools
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from data_prep import InputError, open_dataset
from data_prep.expression import missing_per_gene, read_expression_bed
from data_prep.genome import encode, one_hot
from data_prep.prep import prep_dataset
from tests.genomes import random_sequence, write_expression_bed, write_fasta, write_gtf, write_vcf
from tests.prep_cohort import SAMPLES
from tests.prep_cohort import assert_prep_error as prep_error
from tests.prep_cohort import prep_cli as _cli_prep
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


# ---------------- reference FASTA ----------------


def test_gzip_fasta_says_recompress_with_bgzip(chrx):
    import gzip

    from data_prep.genome import open_fasta

    gz = chrx["tmp"] / "ref.fa.gz"
    gz.write_bytes(gzip.compress(chrx["fasta"].read_bytes()))
    with pytest.raises(pysam.utils.SamtoolsError):  # samtools itself refuses plain gzip
        pysam.faidx(str(gz))
    for fai in (False, True):  # with or without an index beside it
        if fai:
            Path(f"{gz}.fai").write_bytes(Path(f"{chrx['fasta']}.fai").read_bytes())
        with pytest.raises(
            InputError, match=r"gzip-compressed, not bgzip.*re-compress it with bgzip"
        ):
            open_fasta(gz)
    bgz = chrx["tmp"] / "ref.bgz.fa.gz"
    pysam.tabix_compress(str(chrx["fasta"]), str(bgz))
    pysam.faidx(str(bgz))
    assert open_fasta(bgz).fetch("chrX", 0, 10) == chrx["seq"][:10]


def test_stale_fasta_index_is_named(chrx):
    """The FASTA rewritten after `samtools faidx` (other line width, or contigs in another
    order): the old index points at the wrong bytes; say so instead of reading them."""
    from data_prep.genome import open_fasta

    fasta, fai = chrx["fasta"], Path(f"{chrx['fasta']}.fai")
    seq = chrx["seq"]
    assert open_fasta(fasta).fetch("chrX", 100, 110) == seq[100:110]
    old_index = fai.read_bytes()
    fasta.write_text(">chrX\n" + "\n".join(seq[i : i + 50] for i in range(0, 600, 50)) + "\n")
    fai.write_bytes(old_index)  # rewritten with 50 bases per line, index still says 60
    with pytest.raises(InputError, match=r"does not match .*re-create it with `samtools faidx"):
        open_fasta(fasta)
    fasta.write_text(">chrY\nACGT\n>chrX\n" + "\n".join(seq[i : i + 60] for i in range(0, 600, 60)) + "\n")  # fmt: skip
    with pytest.raises(InputError, match="contig chrX is not where the index says"):
        open_fasta(fasta)
    pysam.faidx(str(fasta))
    assert open_fasta(fasta).fetch("chrX", 100, 110) == seq[100:110]


# ---------------- expression BED ----------------


def test_expression_inf_and_duplicate_gene_rows(cohort, capsys):
    bed = cohort["tmp"] / "bad.bed"
    ids = [("chr1", 100, "ENSG00000000001.5"), ("chr2", 1499, "ENSG00000000002.3")]
    values = np.zeros((2, len(SAMPLES)))
    values[1, 3] = np.inf
    write_expression_bed(bed, ids, SAMPLES, values)
    prep_error(cohort, capsys, "1 infinite values (first: gene ENSG00000000002.3, sample GTEX-0003)", "--expression", str(bed))  # fmt: skip
    write_expression_bed(bed, [*ids, ids[0]], SAMPLES, np.zeros((3, len(SAMPLES))))
    prep_error(cohort, capsys, "gene ENSG00000000001.5 has 2 rows", "--expression", str(bed))
    values[1, 3] = np.nan  # NA stays missing (reported per gene by prep)
    write_expression_bed(bed, ids, SAMPLES, values)
    assert np.isnan(read_expression_bed(bed).iloc[1, 3])
    assert missing_per_gene(read_expression_bed(bed)) == {"ENSG00000000002.3": 1}


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    lengths=st.lists(st.integers(1, 300), min_size=1, max_size=4),
    widths=st.tuples(st.integers(1, 80), st.integers(1, 80)),
    shuffle=st.booleans(),
    describe=st.booleans(),
    seed=st.integers(0, 2**16),
)
# one 3-base line re-wrapped to width 1: the index's first line then holds a newline
@example(lengths=[3], widths=(3, 1), shuffle=False, describe=False, seed=0)
def test_fasta_index_is_trusted_only_when_it_fits(lengths, widths, shuffle, describe, seed):
    """Index a FASTA, rewrite it (other width, maybe other contig order): open_fasta either
    refuses or reads the true bases, never wrong ones."""
    import tempfile

    from data_prep.genome import open_fasta

    rng = np.random.default_rng(seed)
    contigs = {f"c{i}": random_sequence(rng, n, n_frac=0.0) for i, n in enumerate(lengths)}

    def write(path, order, width):
        with open(path, "w") as fh:
            for name in order:
                fh.write(f">{name}{' some description' if describe else ''}\n")
                s = contigs[name]
                fh.write("".join(s[i : i + width] + "\n" for i in range(0, len(s), width)))

    with tempfile.TemporaryDirectory() as d:
        fasta = Path(d) / "ref.fa"
        write(fasta, list(contigs), widths[0])
        pysam.faidx(str(fasta))
        fa = open_fasta(fasta)
        assert all(fa.fetch(c) == s for c, s in contigs.items())
        fa.close()
        order = list(contigs)[::-1] if shuffle else list(contigs)
        write(fasta, order, widths[1])  # the old .fai stays
        try:
            fa = open_fasta(fasta)
        except InputError as err:
            assert "samtools faidx" in str(err)
            return
        assert all(fa.fetch(c) == s for c, s in contigs.items())


# ---------------- annotation ----------------


def test_gencode_par_y_copies_pick_the_chrx_gene(tmp_path):
    """GENCODE v26 lists PAR genes twice: <id> on chrX and <id>_PAR_Y on chrY (GTEx uses chrX)."""
    from data_prep.annotation import read_annotation, resolve_genes

    gtf = write_gtf(
        tmp_path / "g.gtf",
        [
            ("chrX", 1000, 2000, "+", "ENSG00000182378.13", "PLCXD1", "protein_coding"),
            ("chrY", 1000, 2000, "+", "ENSG00000182378.13_PAR_Y", "PLCXD1", "protein_coding"),
            ("chr1", 500, 900, "+", "ENSG00000000005.1", "TWIN", "protein_coding"),
            ("chr1", 700, 990, "-", "ENSG00000000005.2", "TWIN2", "protein_coding"),
        ],
    )
    ann = read_annotation(gtf)
    for name in ("PLCXD1", "ENSG00000182378", "ENSG00000182378.13"):
        got = resolve_genes(ann, [name])
        assert list(got["chrom"]) == ["chrX"] and list(got["gene_id"]) == ["ENSG00000182378.13"]
    assert list(resolve_genes(ann, ["ENSG00000182378.13_PAR_Y"])["chrom"]) == ["chrY"]
    with pytest.raises(InputError, match=r"^gene id 'ENSG00000000005' names several genes"):
        resolve_genes(ann, ["ENSG00000000005"])


def test_duplicate_gtf_gene_record_is_named(tmp_path):
    from data_prep.annotation import read_annotation

    gtf = write_gtf(
        tmp_path / "g.gtf", [("chr1", 100, 200, "+", "ENSG1.1", "G1", "protein_coding")]
    )
    lines = gtf.read_text().splitlines()
    gtf.write_text("\n".join([*lines, lines[1]]) + "\n")  # the gene line once more
    with pytest.raises(InputError, match=r"g\.gtf:4: the gene record of ENSG1\.1 is an exact duplicate of line 2"):  # fmt: skip
        read_annotation(gtf)


# ---------------- the VCFs as a whole (cohort) ----------------


def _rewrite_vcf(src: Path, dst: Path, edit) -> Path:
    """bgzip + index ``edit(lines)`` of a VCF's text."""
    lines = pysam.BGZFile(str(src)).read().decode().splitlines()
    plain = dst.with_suffix("")
    plain.write_text("\n".join(edit(lines)) + "\n")
    pysam.tabix_compress(str(plain), str(dst), force=True)
    pysam.tabix_index(str(dst), preset="vcf", force=True)
    return dst


def _drop_header_name(lines, k):
    i = next(i for i, ln in enumerate(lines) if ln.startswith("#CHROM"))
    fields = lines[i].split("\t")
    del fields[9 + k]
    return [*lines[:i], "\t".join(fields), *lines[i + 1 :]]


def test_header_that_lost_a_sample_name_stops_prep(cohort, capsys):
    """Deleting a middle name from #CHROM shifts every later genotype onto the wrong person;
    htslib reads it without a word (checked here), so prep must count the columns."""
    import cyvcf2

    bad = _rewrite_vcf(cohort["vcf"], cohort["tmp"] / "lost.vcf.gz", lambda ln: _drop_header_name(ln, 5))  # fmt: skip
    rec = next(iter(cyvcf2.VCF(str(bad))))
    assert len(rec.genotypes) == len(SAMPLES) - 1  # htslib silently ignores the extra column
    prep_error(dict(cohort, vcf=bad), capsys, "has 20 sample columns but the #CHROM header names 19 samples")  # fmt: skip
    extra = _rewrite_vcf(
        cohort["vcf"], cohort["tmp"] / "extra.vcf.gz",
        lambda ln: [x + "\tGTEX-9999" if x.startswith("#CHROM") else x for x in ln],
    )  # fmt: skip
    prep_error(dict(cohort, vcf=extra), capsys, "has 20 sample columns but the #CHROM header names 21 samples")  # fmt: skip


def _extra_column_on_last_contig(lines):
    records = [i for i, ln in enumerate(lines) if not ln.startswith("#")]
    last = lines[records[-1]].split("\t")[0]
    first = next(i for i in records if lines[i].split("\t")[0] == last)
    assert lines[records[0]].split("\t")[0] != last  # the damage is not on the first contig
    return [x + "\t0|0" if i == first else x for i, x in enumerate(lines)]


def test_extra_sample_column_on_a_later_contig_is_found_with_a_csi_index(cohort, capsys):
    """The column count is checked at every contig's first record through the .csi too."""
    bad = _rewrite_vcf(cohort["vcf"], cohort["tmp"] / "later.vcf.gz", _extra_column_on_last_contig)
    Path(f"{bad}.tbi").unlink()
    pysam.tabix_index(str(bad), preset="vcf", force=True, csi=True)
    assert Path(f"{bad}.csi").is_file()
    prep_error(dict(cohort, vcf=bad), capsys, "has 21 sample columns but the #CHROM header names 20 samples")  # fmt: skip


def test_vcf_without_records_is_refused(cohort, capsys):
    empty = _rewrite_vcf(cohort["vcf"], cohort["tmp"] / "empty.vcf.gz", lambda ln: [x for x in ln if x.startswith("#")])  # fmt: skip
    prep_error(dict(cohort, vcf=empty), capsys, "has no records")


def test_contig_with_no_records_needs_allow_no_variants(cohort, capsys):
    """Per-chromosome VCFs share one header listing every contig; leaving one out used to give
    its genes the reference sequence for everyone."""
    part = cohort["tmp"] / "chr1.vcf.gz"
    pysam.bcftools.view("-r", "1", "-Oz", "-o", str(part), str(cohort["vcf"]), catch_stdout=False)
    pysam.bcftools.index("-t", str(part))
    c = dict(cohort, vcf=part)
    prep_error(c, capsys, "contig chr2 (gene GENE_M) has no records in any VCF")
    code, _, out = _cli_prep(c, capsys, "--allow-no-variants")
    assert code == 0
    ds = open_dataset(cohort["tmp"] / "out")
    assert len(ds.variants("GENE_M")) == 0 and len(ds.variants("GENE_P")) == 2
    assert "genes without variants: GENE_M" in out


def test_stale_vcf_index_is_refused(cohort, capsys):
    """Records added after indexing are invisible through the old index."""
    import os
    import shutil

    stale = cohort["tmp"] / "stale.vcf.gz"
    shutil.copy(cohort["vcf"], stale)
    shutil.copy(f"{cohort['vcf']}.tbi", f"{stale}.tbi")
    t = os.stat(stale).st_mtime
    os.utime(f"{stale}.tbi", (t - 60, t - 60))
    prep_error(dict(cohort, vcf=stale), capsys, "stale.vcf.gz.tbi is older than")
    os.utime(f"{stale}.tbi", (t + 60, t + 60))
    assert _cli_prep(dict(cohort, vcf=stale), capsys)[0] == 0


def _subprocess_prep(c, vcf, timeout=120):
    """The CLI in a child process: a hang shows as a timeout instead of stopping the suite."""
    import os
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "variformer.cli", "prep", "--vcf", str(vcf), "--fasta",
           str(c["fasta"]), "--annotation", str(c["gtf"]), "--genes", "GENE_P", "GENE_M",
           "--seq-len", "256", "--out", str(c["tmp"] / "out"), "--quiet"]  # fmt: skip
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)


@pytest.mark.parametrize("damage", ["truncated", "corrupt_block"])
def test_damaged_bgzf_never_hangs(tmp_path, damage):
    """A VCF cut in the middle (index beside it) used to hang prep in bgzf_seek; a block with
    flipped bytes inside an otherwise complete file must end in a clear error too."""
    rng = np.random.default_rng(3)
    seq = random_sequence(rng, 60_000, lowercase=0.0, n_frac=0.0)
    fasta = write_fasta(tmp_path / "ref.fa", {"chr1": seq})
    gtf = write_gtf(tmp_path / "g.gtf", [("chr1", 40_001, 41_000, "+", "ENSG1.1", "GENE_P", "protein_coding"),
                                         ("chr1", 50_001, 51_000, "+", "ENSG2.1", "GENE_M", "protein_coding")])  # fmt: skip
    samples = [f"S{i}" for i in range(100)]
    recs = []
    for p in range(1, 60_000, 40):
        b = seq[p - 1]
        gts = ["/".join(map(str, rng.integers(0, 2, 2))) for _ in samples]
        recs.append(("chr1", p, ".", b, ["A" if b != "A" else "C"], gts))
    vcf = write_vcf(tmp_path / "v.vcf.gz", {"chr1": 60_000}, samples, recs)
    data = bytearray(vcf.read_bytes())
    bad = tmp_path / "bad.vcf.gz"
    if damage == "truncated":
        data = data[: int(len(data) * 0.7)]
    else:
        for frac in (0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95):  # EOF block left intact
            at = int(len(data) * frac)
            data[at : at + 300] = bytes(x ^ 0x5A for x in data[at : at + 300])
    bad.write_bytes(bytes(data))
    Path(f"{bad}.tbi").write_bytes(Path(f"{vcf}.tbi").read_bytes())
    c = {"tmp": tmp_path, "fasta": fasta, "gtf": gtf}
    r = _subprocess_prep(c, bad)
    assert r.returncode == 2, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert ("truncated" if damage == "truncated" else "corrupt") in r.stderr
    assert not (tmp_path / "out").exists()


def test_test_samples_listing_everyone(cohort, capsys):
    (cohort["tmp"] / "all.txt").write_text("\n".join(SAMPLES) + "\n")
    prep_error(cohort, capsys, "--test-samples lists 20 of the 20 people", "--test-samples", str(cohort["tmp"] / "all.txt"))  # fmt: skip


# ---------------- options and summary ----------------


def test_filter_not_pass_is_counted_and_pass_only_skips_it(chrx, capfd):
    seq = chrx["seq"]
    a250, a260 = _alts(seq, 250, 1)[0], _alts(seq, 260, 1)[0]
    lines = [
        *HEADER,
        '##FILTER=<ID=LowQual,Description="low">',
        "\t".join([*COLUMNS, "P1", "P2", "P3"]),
    ]
    lines += [
        f"chrX\t250\t.\t{seq[249]}\t{a250}\t.\tLowQual\t.\tGT\t0/1\t1/1\t0/0",
        f"chrX\t260\t.\t{seq[259]}\t{a260}\t.\tPASS\t.\tGT\t0/1\t0/0\t0/0",
    ]
    plain = chrx["tmp"] / "f.vcf"
    plain.write_text("\n".join(lines) + "\n")
    vcf = chrx["tmp"] / "f.vcf.gz"
    pysam.tabix_compress(str(plain), str(vcf))
    pysam.tabix_index(str(vcf), preset="vcf")
    assert _consensus(chrx, vcf, "P2", "1")[249] == a250  # bcftools applies filtered records
    for engine in ("native", "bcftools"):
        code, err, out = _cli(chrx, capfd, vcf, "--engine", engine)
        assert code == 0, err
        assert "FILTER not PASS: 1 SNV alleles applied" in out
        assert list(open_dataset(chrx["tmp"] / "out").variants("XG")["pos"]) == [250, 260]
        (chrx["tmp"] / "out").rename(chrx["tmp"] / f"all_{engine}")
        code, err, out = _cli(chrx, capfd, vcf, "--engine", engine, "--pass-only")
        assert code == 0, err
        assert "filter_not_pass 1" in out
        assert list(open_dataset(chrx["tmp"] / "out").variants("XG")["pos"]) == [260]
        (chrx["tmp"] / "out").rename(chrx["tmp"] / f"pass_{engine}")


def test_vcf_flag_takes_several_paths(cohort, capsys, tmp_path):
    """The README's `--vcf cohort.chr{1..22}.vcf.gz` expands to several paths after one flag."""
    parts = []
    for contig in ("1", "2"):
        part = tmp_path / f"chr{contig}.vcf.gz"
        pysam.bcftools.view("-r", contig, "-Oz", "-o", str(part), str(cohort["vcf"]), catch_stdout=False)  # fmt: skip
        pysam.bcftools.index("-t", str(part))
        parts.append(str(part))
    code, err, _ = _cli_prep(dict(cohort, vcf=parts[0]), capsys, "--vcf", parts[1])
    assert code == 0, err  # --vcf a --vcf b still works
    (cohort["tmp"] / "out").rename(cohort["tmp"] / "repeated")
    args = ["prep", "--vcf", *parts, "--fasta", str(cohort["fasta"]), "--annotation",
            str(cohort["gtf"]), "--genes", "GENE_P", "GENE_M", "--seq-len", "256", "--out",
            str(cohort["tmp"] / "out"), "--quiet"]  # fmt: skip
    assert cli(args) == 0, capsys.readouterr().err
    a, b = open_dataset(cohort["tmp"] / "repeated"), open_dataset(cohort["tmp"] / "out")
    for g in a.genes:
        assert a.variants(g).equals(b.variants(g)) and len(a.variants(g))


@pytest.mark.parametrize("kind", ["dangling_symlink", "read_only", "under_a_file"])
def test_unwritable_out_fails_before_any_work(cohort, capsys, kind, monkeypatch):
    import os

    import data_prep.prep as prep_mod

    calls = []
    monkeypatch.setattr(prep_mod, "read_annotation", lambda *a, **k: calls.append(1))
    base = cohort["tmp"]
    if kind == "dangling_symlink":
        out = base / "link"
        out.symlink_to(base / "nowhere")
        pattern = "dangling symlink"
    elif kind == "read_only":
        if os.geteuid() == 0:
            pytest.skip("root writes into read-only directories")
        (base / "ro").mkdir()
        (base / "ro").chmod(0o555)
        out, pattern = base / "ro" / "ds", "cannot write"
    else:
        (base / "afile").write_text("x")
        out, pattern = base / "afile" / "ds", "is a file, not a directory"
    code, err, _ = _cli_prep(cohort, capsys, out=out)
    assert code == 2 and pattern in err and len(err.splitlines()) == 1, err
    assert not calls  # nothing was read before the check


def test_header_without_gt_line_is_read_with_a_warning(chrx, capfd):
    seq = chrx["seq"]
    a250 = _alts(seq, 250, 1)[0]
    header = [ln for ln in HEADER if "ID=GT" not in ln]
    vcf = write_text_vcf(chrx["tmp"] / "nogthdr.vcf.gz", ["P1", "P2", "P3"], [(250, ".", seq[249], a250, "GT", ["0/1", "1/1", "0/0"])], header=header)  # fmt: skip
    code, err, _ = _cli(chrx, capfd, vcf)
    assert code == 0, err
    assert err.startswith("variformer prep: warning:") and "lacks a ##FORMAT=<ID=GT>" in err
    assert len(err.splitlines()) == 1, err
    np.testing.assert_array_equal(open_dataset(chrx["tmp"] / "out").dosages("XG"), [[1], [2], [0]])
    (chrx["tmp"] / "out").rename(chrx["tmp"] / "first")
    sites_only = write_text_vcf(chrx["tmp"] / "dponly.vcf.gz", ["P1", "P2", "P3"], [(250, ".", seq[249], a250, "DP", ["3", "4", "5"])], header=header)  # fmt: skip
    _assert_error(chrx, capfd, sites_only, "has no GT FORMAT field (header and records)")


def test_expression_na_is_reported_per_gene(cohort, capsys):
    values = np.arange(40, dtype=float).reshape(2, 20)
    values[1, [2, 5]] = np.nan
    bed = write_expression_bed(
        cohort["tmp"] / "na.bed",
        [("chr1", 100, "ENSG00000000001.5"), ("chr2", 1499, "ENSG00000000002.3")],
        SAMPLES,
        values,
    )
    code, err, out = _cli_prep(cohort, capsys, "--expression", str(bed))
    assert code == 0, err
    assert "people without expression (NA), per gene: GENE_M 2" in out
    ds = open_dataset(cohort["tmp"] / "out")
    assert ds.meta["summary"]["expression_missing"] == {"GENE_M": 2}


def test_prep_help_explains_split_options(capsys):
    with pytest.raises(SystemExit):
        cli(["prep", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for flag in ("--tune-fraction", "--test-fraction", "--seed", "--pass-only", "--allow-no-variants"):  # fmt: skip
        assert f"{flag} " in text
    assert "fraction of people in each fold's tune set" in text
    assert "fraction of people in each fold's test set" in text
    assert "seed of the train/tune/test assignment" in text
