"""``variformer prep --haplotypes`` on a synthetic phased cohort: prep time per gene, dataset
size, and haplotype materialization rate (read side). Prints a markdown table.

    python benchmarks/bench_haplotypes.py [--people 670] [--genes 4] [--seq-len 49152]

Records: one every ~70 bp (SNVs 80 %, insertions/deletions 1-30 bp 15 %, MNPs 5 %, a tenth
multi-allelic), allele frequencies from a U-shaped distribution, all calls phased.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def _cohort(tmp: Path, *, people: int, genes: int, seq_len: int, seed: int = 0, spacing: int = 70):
    """Reference, phased VCF (streamed, bgzipped, tabix-indexed) and TSS table.

    ``spacing``: mean distance between records (bp). Returns (fasta, vcf, tss.tsv, genes,
    samples, number of records).
    """
    import pysam

    from tests.genomes import random_sequence, write_fasta

    rng = np.random.default_rng(seed)
    gap = seq_len + 20_000
    length = genes * gap + 20_000
    seq = random_sequence(rng, length, lowercase=0.0, n_frac=0.0)
    fasta = write_fasta(tmp / "ref.fa", {"chr1": seq})
    samples = [f"P{i:04d}" for i in range(people)]
    # one 4-byte GT field per (allele 1, allele 2) in 0..2, indexed by 3 * a + b
    fields = np.array([f"{a}|{b}\t".encode() for a in range(3) for b in range(3)], dtype="S4")
    vcf = tmp / "cohort.vcf.gz"
    head = ["##fileformat=VCFv4.2", f"##contig=<ID=chr1,length={length}>"]
    head.append('##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">')
    head.append("\t".join(["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO",
                           "FORMAT", *samples]))  # fmt: skip
    n_records, p0 = 0, 100
    with pysam.BGZFile(str(vcf), "wb") as out:
        out.write(("\n".join(head) + "\n").encode())
        while True:
            p0 += int(rng.integers(1, 2 * spacing))
            if p0 >= length - 100:
                break
            ref, base = seq[p0], seq[p0]
            kind = rng.random()
            if kind < 0.8:
                alts = [str(rng.choice([b for b in "ACGT" if b != base]))]
            elif kind < 0.875:
                alts = [
                    base + random_sequence(rng, int(rng.integers(1, 31)), lowercase=0, n_frac=0)
                ]
            elif kind < 0.95:
                ref = seq[p0 : p0 + int(rng.integers(2, 32))]
                alts = [base]
            else:
                ref = seq[p0 : p0 + 2]
                alts = [random_sequence(rng, 2, lowercase=0, n_frac=0)]
            if rng.random() < 0.1 and len(ref) == 1:
                alts.append(base + "T")
            af = rng.beta(0.2, 0.8)
            g = (rng.random((people, 2)) < af).astype(int)
            if len(alts) == 2:
                g = g * rng.integers(1, 3, (people, 2))
            gts = bytearray(fields[3 * g[:, 0] + g[:, 1]].tobytes())
            gts[-1:] = b"\n"
            fixed = f"chr1\t{p0 + 1}\t.\t{ref}\t{','.join(alts)}\t.\tPASS\t.\tGT\t"
            out.write(fixed.encode() + bytes(gts))
            n_records += 1
    pysam.tabix_index(str(vcf), preset="vcf", force=True)
    lines = ["gene_name\tgene_id\tchrom\ttss\tstrand"]
    lines += [
        f"G{i}\tENSG{i:011d}.1\tchr1\t{10_000 + i * gap + seq_len // 2}\t+" for i in range(genes)
    ]
    (tmp / "tss.tsv").write_text("\n".join(lines) + "\n")
    return fasta, vcf, tmp / "tss.tsv", [f"G{i}" for i in range(genes)], samples, n_records


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--people", type=int, default=670)
    ap.add_argument("--genes", type=int, default=4)
    ap.add_argument("--seq-len", type=int, default=49152)
    ap.add_argument("--batch", type=int, default=32)
    args = ap.parse_args()
    from data_prep import open_dataset
    from data_prep.prep import prep_dataset

    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        fasta, vcf, ann, genes, samples, n_rec = _cohort(
            tmp, people=args.people, genes=args.genes, seq_len=args.seq_len
        )
        kw = dict(vcfs=[vcf], fasta=fasta, annotation=ann, genes=genes, seq_len=args.seq_len,
                  n_folds=1, tune_fraction=0.1, test_fraction=0.1, progress=False)  # fmt: skip
        t0 = time.perf_counter()
        s = prep_dataset(out=tmp / "hap", haplotypes=True, **kw)
        t_hap = time.perf_counter() - t0
        t0 = time.perf_counter()
        prep_dataset(out=tmp / "snv", **kw)
        t_snv = time.perf_counter() - t0
        size = sum(p.stat().st_size for p in (tmp / "hap").iterdir())
        ds = open_dataset(tmp / "hap")
        rng = np.random.default_rng(1)
        batches = [list(rng.choice(samples, args.batch, replace=False)) for _ in range(10)]
        ds.sequences(genes[0], batches[0])  # warm caches
        t0 = time.perf_counter()
        for i, b in enumerate(batches):
            ds.sequences(genes[i % len(genes)], b)
        t_read = time.perf_counter() - t0
        snv = open_dataset(tmp / "snv")
        snv.sequences(genes[0], batches[0])
        t0 = time.perf_counter()
        for i, b in enumerate(batches):
            snv.sequences(genes[i % len(genes)], b)
        t_read_snv = time.perf_counter() - t0
    n_seq = len(batches) * args.batch
    rows = [
        (
            "people x genes x seq_len",
            f"{args.people} x {args.genes} x {args.seq_len}",
            f"{n_rec} VCF records",
        ),
        (
            "prep --haplotypes",
            f"{t_hap:.2f} s",
            f"{t_hap / args.genes:.2f} s/gene; SNV mode {t_snv:.2f} s",
        ),
        ("alleles kept", f"{s.n_variants}", f"skipped {s.skipped}"),
        ("dataset size", f"{size / 2**20:.2f} MiB", ""),
        (
            "sequences() (mean of 2 haplotypes)",
            f"{n_seq / t_read:,.0f} seq/s",
            f"batch {args.batch}",
        ),
        ("sequences() SNV mode, same cohort", f"{n_seq / t_read_snv:,.0f} seq/s", ""),
    ]
    print("| measurement | value | note |\n|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]} |")


if __name__ == "__main__":
    main()
