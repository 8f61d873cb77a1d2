"""Where the simulated genes sit: chromosome-named contigs, GENCODE-style genes, a background reference.

Coordinates: ``tss0`` 0-based; GTF ``start1``/``end1`` 1-based inclusive. TSS is GTF
``start - 1`` on + and ``end - 1`` on -.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["LNCRNA_NAME", "Gene", "background", "contig_order", "layout"]

# Paper genes first (BTNL3 is the demo's fine-tuning gene), then blood eQTL genes.
# (symbol, chromosome, strand)
_GENE_TABLE = (
    ("BTNL3", "chr5", "+"), ("ZFP57", "chr6", "-"), ("PPIF", "chr10", "+"),
    ("ERAP2", "chr5", "+"), ("GSTM3", "chr1", "-"), ("CHI3L2", "chr1", "+"),
    ("THNSL2", "chr2", "+"), ("PEX6", "chr6", "-"), ("POMZP3", "chr7", "-"),
    ("UTS2", "chr1", "-"), ("FAM118A", "chr22", "+"), ("CYP4F11", "chr19", "-"),
    ("NQO2", "chr6", "+"), ("CRYBB2", "chr22", "+"), ("IRF5", "chr7", "+"),
    ("ITGB3", "chr17", "+"), ("CD52", "chr1", "+"), ("LILRA3", "chr19", "-"),
    ("FCGR2B", "chr1", "+"), ("CTSW", "chr11", "+"), ("GBP3", "chr1", "-"),
    ("PILRB", "chr7", "+"), ("NUDT2", "chr9", "+"), ("AMFR", "chr16", "-"),
    ("MTHFS", "chr15", "-"), ("ACCS", "chr11", "+"), ("SPATA20", "chr17", "+"),
    ("THEM4", "chr1", "-"), ("ADI1", "chr2", "-"), ("CPNE1", "chr20", "-"),
)  # fmt: skip
_GENE_IDS = {
    "BTNL3": "ENSG00000168903.11",
    "ZFP57": "ENSG00000204644.10",
    "PPIF": "ENSG00000108179.14",
    "ERAP2": "ENSG00000164308.17",
}
LNCRNA_NAME = "LINC01938"


class Gene(NamedTuple):
    name: str
    gene_id: str
    gene_type: str
    chrom: str
    strand: str
    tss0: int
    start1: int  # GTF gene start, 1-based inclusive
    end1: int  # GTF gene end, 1-based inclusive
    h2: float
    edge: bool


def contig_order(chroms) -> dict[str, int]:
    """Natural chromosome order (chr1, chr2, ..., chr10) of the distinct names in ``chroms``."""
    return {c: i for i, c in enumerate(sorted(set(chroms), key=lambda c: int(c[3:])))}


def _names(n_genes: int) -> list[tuple[str, str, str]]:
    names = []
    for i in range(n_genes):
        if i < len(_GENE_TABLE):
            names.append(_GENE_TABLE[i])
        else:
            names.append((f"SIMG{i + 1:04d}", f"chr{i % 22 + 1}", "+-"[i % 2]))
    return names


def gene_names(n_genes: int) -> list[str]:
    """The expressed genes ``variformer simulate --genes n_genes`` writes (any seed)."""
    return [name for name, _, _ in _names(n_genes)]


def layout(n_genes: int, seq_len: int, h2: list[float], rng: np.random.Generator):
    """Place genes on chromosome-named contigs; returns (genes incl. lncRNA, {contig: length})."""
    names = _names(n_genes)
    edge = 1 if n_genes > 1 else 0  # this gene's window runs off its contig's start (prep pads N)
    by_chrom: dict[str, list[int]] = {}
    for i, (_, chrom, _) in enumerate(names):
        by_chrom.setdefault(chrom, []).append(i)
    by_chrom[names[edge][1]].sort(key=lambda i: i != edge)
    half, flank = seq_len // 2, max(500, seq_len // 16)
    genes: list[Gene] = []
    lengths: dict[str, int] = {}
    for chrom in contig_order(by_chrom):
        cursor = flank
        members = by_chrom[chrom] + ([-1] if chrom == names[0][1] else [])
        for i in members:
            glen = int(rng.integers(max(200, seq_len // 24), seq_len // 3))
            if i == -1:  # a lncRNA without expression: exercises prep's protein-coding filter
                tss0, strand = cursor + seq_len // 8, "-"
                glen = max(200, seq_len // 16)
                cursor = tss0 + seq_len // 4
                name, gid, gtype, gh2 = LNCRNA_NAME, f"ENSG{299000 + n_genes:011d}.1", "lncRNA", 0.0
            else:
                name, _, strand = names[i]
                tss0 = half - seq_len // 8 if i == edge else cursor + half
                cursor = tss0 + half + int(rng.integers(seq_len // 16, seq_len // 8 + 1))
                gid = _GENE_IDS.get(name, f"ENSG{200000 + 37 * i:011d}.{i * 7 % 15 + 1}")
                gtype, gh2 = "protein_coding", h2[i]
            start1, end1 = (tss0 + 1, tss0 + glen) if strand == "+" else (tss0 - glen + 2, tss0 + 1)
            genes.append(Gene(name, gid, gtype, chrom, strand, tss0, start1, end1, gh2, i == edge))
        lengths[chrom] = cursor + flank
    return genes, lengths


def background(length: int, tss0s: list[int], rng: np.random.Generator) -> np.ndarray:
    """Human-like base composition: 41% GC, CpG depleted by deamination, CpG islands at promoters.

    Returns
    -------
    np.ndarray, shape=(length,), int8 codes 0-3
    """
    seq = rng.choice(4, size=length, p=[0.295, 0.205, 0.205, 0.295]).astype(np.int8)
    for tss0 in tss0s:  # GC-rich promoter island, laid down before CpG decay spares it
        lo, hi = max(0, tss0 - 600), min(length, tss0 + 400)
        seq[lo:hi] = rng.choice(4, size=hi - lo, p=[0.175, 0.325, 0.325, 0.175])
    island = np.zeros(length, dtype=bool)
    for tss0 in tss0s:
        island[max(0, tss0 - 600) : tss0 + 400] = True
    # Methylated CpGs decay to TpG / CpA; observed/expected CpG ends near the human ~0.25.
    cg = np.flatnonzero((seq[:-1] == 1) & (seq[1:] == 2) & ~island[:-1])
    decay = cg[rng.random(cg.size) < 0.75]
    to_tg = rng.random(decay.size) < 0.5
    seq[decay[to_tg]] = 3
    seq[decay[~to_tg] + 1] = 0
    return seq
