"""Write small FASTA / VCF / GTF / expression-BED files for tests (real formats, real indexes)."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pysam


def write_fasta(path, contigs: dict[str, str], *, width: int = 60) -> Path:
    path = Path(path)
    with open(path, "w") as fh:
        for name, seq in contigs.items():
            fh.write(f">{name}\n")
            for i in range(0, len(seq), width):
                fh.write(seq[i : i + width] + "\n")
    pysam.faidx(str(path))
    return path


def write_vcf(
    path, contigs: dict[str, int], samples: list[str], records, *, bcf: bool = False
) -> Path:
    """records: iterable of (chrom, pos1, id, ref, alts (list), genotypes (list of GT strings))."""
    path = Path(path)
    lines = ["##fileformat=VCFv4.2"]
    lines += [f"##contig=<ID={c},length={n}>" for c, n in contigs.items()]
    lines.append('##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">')
    lines.append(
        "\t".join(
            ["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO", "FORMAT", *samples]
        )
    )
    order = {c: i for i, c in enumerate(contigs)}
    for chrom, pos1, vid, ref, alts, gts in sorted(records, key=lambda r: (order[r[0]], r[1])):
        lines.append(
            "\t".join([chrom, str(pos1), vid, ref, ",".join(alts), ".", "PASS", ".", "GT", *gts])
        )
    plain = path.with_suffix("") if path.suffix == ".gz" else path.with_name(path.name + ".txt")
    plain.write_text("\n".join(lines) + "\n")
    if bcf:
        from pysam import bcftools

        bcftools.view("-Ob", "-o", str(path), str(plain), catch_stdout=False)
        bcftools.index(str(path))
    else:
        pysam.tabix_compress(str(plain), str(path), force=True)
        pysam.tabix_index(str(path), preset="vcf", force=True)
    plain.unlink()
    return path


def write_gtf(path, genes) -> Path:
    """genes: iterable of (chrom, start1, end1, strand, gene_id, gene_name, gene_type)."""
    rows = []
    for chrom, s, e, strand, gid, name, gtype in genes:
        attrs = f'gene_id "{gid}"; gene_type "{gtype}"; gene_name "{name}";'
        rows.append(f"{chrom}\tSIM\tgene\t{s}\t{e}\t.\t{strand}\t.\t{attrs}")
        rows.append(
            f'{chrom}\tSIM\ttranscript\t{s}\t{e}\t.\t{strand}\t.\t{attrs} transcript_id "{gid}-T1";'
        )
    Path(path).write_text("##description: test\n" + "\n".join(rows) + "\n")
    return Path(path)


def write_expression_bed(path, genes, samples, values: np.ndarray) -> Path:
    """genes: iterable of (chrom, tss0, gene_id); values shape=(n_genes, n_samples)."""
    lines = ["\t".join(["#chr", "start", "end", "gene_id", *samples])]
    for (chrom, tss0, gid), row in zip(genes, values):
        lines.append("\t".join([chrom, str(tss0), str(tss0 + 1), gid, *(f"{v:.6g}" for v in row)]))
    plain = Path(str(path).removesuffix(".gz"))
    plain.write_text("\n".join(lines) + "\n")
    if str(path).endswith(".gz"):
        pysam.tabix_compress(str(plain), str(path), force=True)
        plain.unlink()
    return Path(path)


def random_sequence(
    rng: np.random.Generator, n: int, *, lowercase: float = 0.1, n_frac: float = 0.02
) -> str:
    bases = np.array(list("ACGT"))[rng.integers(0, 4, n)]
    lower = rng.random(n) < lowercase
    bases = np.where(lower, np.char.lower(bases), bases)
    bases = np.where(rng.random(n) < n_frac, "N", bases)
    return "".join(bases)


def rewrite_vcf(src: Path, dst: Path, edit) -> Path:
    """A bgzipped, indexed copy of the VCF ``src`` with each line passed through ``edit``
    (None drops it)."""
    with gzip.open(src, "rt") as fh:
        lines = [edit(line.rstrip("\n")) for line in fh]
    plain = dst.with_suffix("")
    plain.write_text("".join(f"{x}\n" for x in lines if x is not None))
    pysam.tabix_compress(str(plain), str(dst), force=True)
    pysam.tabix_index(str(dst), preset="vcf", force=True)
    plain.unlink()
    return dst
