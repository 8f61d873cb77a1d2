"""The small two-contig cohort of the prep tests, and running ``variformer prep`` on it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.genomes import random_sequence, write_expression_bed, write_fasta, write_gtf, write_vcf
from variformer.cli import main as cli

SAMPLES = [f"GTEX-{i:04d}" for i in range(20)]


def two_gene_cohort(tmp_path: Path) -> dict:
    """Two contigs; GENE_P on + near chr1's start (window runs off it), GENE_M on - strand."""
    rng = np.random.default_rng(1)
    chr1 = random_sequence(rng, 3000, lowercase=0.2, n_frac=0.0)
    chr2 = random_sequence(rng, 2000, lowercase=0.0, n_frac=0.0)
    fasta = write_fasta(tmp_path / "ref.fa", {"chr1": chr1, "chr2": chr2})
    # GTF is 1-based: GENE_P starts at 101 -> tss0 100; GENE_M ends at 1500 -> tss0 1499
    gtf = write_gtf(
        tmp_path / "genes.gtf",
        [
            ("chr1", 101, 900, "+", "ENSG00000000001.5", "GENE_P", "protein_coding"),
            ("chr2", 1000, 1500, "-", "ENSG00000000002.3", "GENE_M", "protein_coding"),
            ("chr2", 1520, 1700, "-", "ENSG00000000003.1", "LNC1", "lncRNA"),
            ("chr2", 1540, 1800, "+", "ENSG00000000004.1", "CLOSE1", "protein_coding"),
        ],
    )
    b = lambda c, p: (chr1 if c == "chr1" else chr2)[p - 1].upper()  # noqa: E731
    alt = lambda c, p: "A" if b(c, p) != "A" else "C"  # noqa: E731
    gts_het = ["0/1"] + ["0/0"] * 19
    gts_hom = ["1/1", "0|1"] + ["0/0"] * 18
    gts_multi = ["1/2", "2/2", "0/1"] + ["./."] + ["0/0"] * 16
    others = [x for x in "ACGT" if x != b("chr2", 1490)]
    records = [
        ("1", 150, "rs1", b("chr1", 150), [alt("chr1", 150)], gts_het),
        ("1", 160, "rs2", b("chr1", 160), [alt("chr1", 160)], gts_hom),
        ("1", 170, ".", b("chr1", 170), [b("chr1", 170) + "G"], gts_het),  # indel: skipped
        ("1", 180, "sv1", b("chr1", 180), ["<DEL>"], gts_het),  # symbolic: skipped
        ("2", 1490, "rs3", b("chr2", 1490), others[:2], gts_multi),
    ]
    vcf = write_vcf(tmp_path / "cohort.vcf.gz", {"1": 3000, "2": 2000}, SAMPLES, records)
    expr = np.arange(40, dtype=float).reshape(2, 20) / 10
    bed = write_expression_bed(
        tmp_path / "expr.bed.gz",
        [("chr1", 100, "ENSG00000000001.5"), ("chr2", 1499, "ENSG00000000002.3")],
        SAMPLES,
        expr,
    )
    return {
        "tmp": tmp_path,
        "fasta": fasta,
        "gtf": gtf,
        "vcf": vcf,
        "bed": bed,
        "chr1": chr1,
        "chr2": chr2,
        "expr": expr,
        "others": others,
    }


def prep_cli(c, capsys, *extra, out=None, genes=("GENE_P", "GENE_M")):
    args = [
        "prep",
        "--vcf",
        str(c["vcf"]),
        "--fasta",
        str(c["fasta"]),
        "--annotation",
        str(c["gtf"]),
        "--genes",
        *genes,
        "--seq-len",
        "256",
        "--out",
        str(out or c["tmp"] / "out"),
        "--quiet",
        *extra,
    ]
    code = cli(args)
    captured = capsys.readouterr()
    return code, captured.err.strip(), captured.out


def assert_prep_error(c, capsys, pattern, *extra, out=None, genes=("GENE_P", "GENE_M")):
    code, err, _ = prep_cli(c, capsys, *extra, out=out, genes=genes)
    assert code == 2, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert pattern in err, err
    assert not (c["tmp"] / "out").exists()
    assert not any(p.name.startswith(".out.tmp") for p in c["tmp"].iterdir())
