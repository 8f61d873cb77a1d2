"""A phased cohort full of indel edge cases, and ``bcftools consensus`` as the haplotype oracle."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pysam
import pysam.bcftools
from hypothesis import strategies as st

from tests.genomes import random_sequence, write_fasta, write_vcf


def consensus(fasta: Path, region: str, vcf: Path, sample: str, hap: int, tmp: Path):
    """bcftools consensus of a faidx region: (sequence, chain blocks)."""
    region_fa = tmp / "region.fa"
    pysam.faidx(str(fasta), region, "-o", str(region_fa))
    chain = tmp / "out.chain"
    out = pysam.bcftools.consensus(
        "-f", str(region_fa), "-s", sample, "-H", str(hap), "-c", str(chain), str(vcf)
    )
    seq = "".join(ln for ln in out.split("\n")[1:] if not ln.startswith(">")).upper()
    return seq, chain.read_text()


def chain_position(chain: str, p: int) -> int:
    """The consensus position of reference base ``p`` (0-based in the region) by a UCSC chain
    (lines ``size dt dq``): exact in an aligned block; in a gap (an edited stretch) its start
    plus ``p``'s offset, clamped to the gap's end on the consensus."""
    t = q = 0
    for line in chain.strip().splitlines()[1:]:
        parts = [int(x) for x in line.split()]
        if t <= p < t + parts[0]:
            return q + (p - t)
        t, q = t + parts[0], q + parts[0]
        if len(parts) == 3:
            dt, dq = parts[1], parts[2]
            if t <= p < t + dt:
                return q + min(p - t, dq)
            t, q = t + dt, q + dq
    raise AssertionError(f"{p} is beyond the chain")


def oracle_window(fasta, vcf, contig, length, sample, hap, tss0, seq_len, tmp) -> str:
    seq, chain = consensus(fasta, f"{contig}:1-{length}", vcf, sample, hap, tmp)
    lo = chain_position(chain, tss0) - seq_len // 2
    return "".join(seq[i] if 0 <= i < len(seq) else "N" for i in range(lo, lo + seq_len))


def edge_cohort(tmp: Path, rng, *, symbolic: bool = False):
    """A 600-bp contig; TSS at 300, window 128 bp ([236, 364)). Every record is phased and
    carried in random combinations by 10 people.

    Returns ``(fasta, vcf, samples)``; with ``symbolic`` also a second VCF holding the same
    records plus records whose every ALT is symbolic (``<DEL>``, ``<INS>``) or ``*``."""
    seq = random_sequence(rng, 600, lowercase=0.0, n_frac=0.0)
    fasta = write_fasta(tmp / "ref.fa", {"chr1": seq})

    def ref(p1, n=1):
        return seq[p1 - 1 : p1 - 1 + n]

    recs = []

    def add(p1, r, alts):
        recs.append((p1, r, alts))

    add(200, ref(200, 50), [ref(200)])  # long deletion upstream, spanning into the flank
    add(220, ref(220), ["A" if ref(220) != "A" else "C"])  # an SNV inside that deletion
    add(230, ref(230, 12), [ref(230)])  # a deletion across the window's left edge (236)
    add(240, ref(240), [ref(240) + "ACGTTGCA" * 5])  # a 40-bp insertion upstream
    add(260, ref(260, 3), [ref(260)])  # deletion, then an insertion on its last deleted base
    add(262, ref(262), [ref(262) + "TTT"])
    add(262, ref(262), [ref(262) + "GG"])  # insertion after insertion: bcftools skips it
    add(270, ref(270), ["T" if ref(270) != "T" else "G"])  # SNV, then a deletion at the same base
    add(270, ref(270, 4), [ref(270)])
    add(280, ref(280, 2), ["GT" if ref(280, 2) != "GT" else "CA"])  # MNP + insertion on its end
    add(281, ref(281), [ref(281) + "AAAA"])
    add(290, ref(290, 20), [ref(290)])  # a deletion spanning an SNV and an indel
    add(295, ref(295), ["C" if ref(295) != "C" else "A"])
    add(300, ref(300, 3), [ref(300)])  # ... and the TSS base (301 1-based = tss0 300) in it
    add(301, ref(301), ["A" if ref(301) != "A" else "C", ref(301) + "CCC"])  # SNV/ins at TSS
    add(301, ref(301, 3), ["TTTTT" if ref(301) != "T" else "GGGGG"])  # complex at the TSS
    add(305, ref(305, 3), [ref(305), ref(305, 3)[::-1] if ref(305, 3)[::-1] != ref(305, 3) else "AAA", ref(305, 3) + "GATTACA"])  # fmt: skip
    add(330, ref(330), [ref(330) + "CAT" * 30])  # a 90-bp insertion downstream
    add(355, ref(355, 20), [ref(355)])  # a deletion across the right edge (364)
    add(362, ref(362), [ref(362) + "GGGG"])  # insertion at the right edge
    add(400, ref(400, 2), ["TT" if ref(400, 2) != "TT" else "AA"])
    samples = [f"P{i}" for i in range(10)]
    records = []
    for i, (p1, r, alts) in enumerate(recs):
        gts = []
        for _ in samples:
            a = [str(int(rng.integers(0, len(alts) + 1))) for _ in range(2)]
            a = [x if rng.random() > 0.05 else "." for x in a]
            gts.append("|".join(a))
        records.append(("chr1", p1, f"r{i}", r, alts, gts))
    vcf = write_vcf(tmp / "edge.vcf.gz", {"chr1": len(seq)}, samples, records)
    if not symbolic:
        return fasta, vcf, samples
    odd = [(250, ref(250), ["<DEL>"]), (296, ref(296), ["<INS>", "*"]), (320, ref(320), ["*"])]
    for i, (p1, r, alts) in enumerate(odd):
        gts = [
            "|".join(str(int(rng.integers(0, len(alts) + 1))) for _ in range(2)) for _ in samples
        ]
        records.append(("chr1", p1, f"sv{i}", r, alts, gts))
    with_odd = write_vcf(tmp / "edge_symbolic.vcf.gz", {"chr1": len(seq)}, samples, records)
    return fasta, vcf, samples, with_odd


def _random_alt(rng, ref: str) -> str:
    """An ALT of a random kind for ``ref``: SNV (one base changed), anchored insertion,
    anchored deletion, MNP, or complex (any length, any first base)."""

    def bases(k):
        return random_sequence(rng, k, lowercase=0.0, n_frac=0.0)

    kind = rng.choice(["snv", "ins", "del", "mnp", "complex"])
    if kind == "del" and len(ref) > 1:
        return ref[: int(rng.integers(1, len(ref)))]
    if kind == "mnp":
        return bases(len(ref))
    if kind == "complex":
        return bases(int(rng.integers(1, 8)))
    if kind == "snv":
        i = int(rng.integers(0, len(ref)))
        return ref[:i] + str(rng.choice([b for b in "ACGT" if b != ref[i]])) + ref[i + 1 :]
    return ref + bases(int(rng.integers(1, 25)))  # insertion (also for "del" on a 1-bp REF)


@st.composite
def cohorts(draw, min_samples: int = 1):
    """A random contig, sorted phased records of every kind (overlapping freely), a TSS and a
    window length: ``(seq, records, samples, tss0, seq_len)``."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    length = draw(st.integers(60, 300))
    seq = random_sequence(rng, length, lowercase=0.0, n_frac=0.0)
    recs = []
    for _ in range(draw(st.integers(1, 25))):
        p0 = int(rng.integers(0, length - 1))
        rlen = 1 if rng.random() < 0.5 else int(rng.integers(2, 12))
        ref = seq[p0 : min(p0 + rlen, length)]
        alts = []
        for _a in range(int(rng.integers(1, 4))):
            alt = _random_alt(rng, ref)
            if alt != ref and alt not in alts:
                alts.append(alt)
        if alts:
            recs.append((p0 + 1, ref, alts))
    n_samples = draw(st.integers(min_samples, 4))
    samples = [f"S{i}" for i in range(n_samples)]
    records = []
    for i, (p1, ref, alts) in enumerate(recs):
        gts = []
        for _ in samples:
            a = [str(int(rng.integers(0, len(alts) + 1))) for _ in range(2)]
            a = [x if rng.random() > 0.1 else "." for x in a]
            gts.append("|".join(a))
        records.append(("chr1", p1, f"r{i}", ref, alts, gts))
    tss0 = draw(st.integers(0, length - 1))
    seq_len = draw(st.sampled_from([8, 32, 64, 256]))
    return seq, records, samples, tss0, seq_len
