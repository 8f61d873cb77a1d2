"""The peers' one-time setup, shared by bench_peers.py (SNVs) and bench_peers_haplotypes.py.

GenVarLoader: ``bcftools norm`` (its input contract) + ``gvl.write`` over the windows, then
``Dataset.open(...).with_seqs("haplotypes").with_len(L)``; a warm-up on a tiny cohort first
compiles its numba kernels. pyconsensus-rs: its ``.cvcf`` cache + engine over a copy of the VCF
(so that the cache lands in the tool's work directory). Imports happen inside, so that the
project's environment never needs the peers.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path


def norm_args(fasta: str | None) -> list[str]:
    """``bcftools norm`` options: bi-allelic records (``-m -``); with ``fasta`` also
    left-aligned and atomized (``-f REF -c w -a``), GenVarLoader's contract for indels."""
    return ["-m", "-"] if fasta is None else ["-f", str(fasta), "-c", "w", "-m", "-", "-a"]


def gvl_write(vcf, windows, genes, work: Path, *, norm_fasta: str | None = None) -> None:
    """Normalize ``vcf`` into ``work/norm.vcf.gz`` and write GenVarLoader's dataset
    ``work/gvl`` over ``windows`` (``chrom, start0, end0``; named ``genes``)."""
    import genoray
    import genvarloader as gvl
    import polars as pl
    import pysam.bcftools

    norm = work / "norm.vcf.gz"
    pysam.bcftools.norm(
        *norm_args(norm_fasta), "-Oz", "-o", str(norm), "--write-index=tbi", str(vcf),
        catch_stdout=False,
    )  # fmt: skip
    bed = pl.DataFrame(
        {
            "chrom": [w.chrom for w in windows],
            "chromStart": [w.start0 for w in windows],
            "chromEnd": [w.end0 for w in windows],
            "name": list(genes),
            "strand": ["+"] * len(windows),
        }
    )
    gvl.write(work / "gvl", bed, variants=genoray.VCF(norm, phasing=False), overwrite=True)


def gvl_open(work: Path, fasta, seq_len: int):
    """GenVarLoader's dataset ``work/gvl``: both haplotypes, ``seq_len`` bp, deterministic."""
    import genvarloader as gvl

    g = gvl.Dataset.open(work / "gvl", reference=fasta, deterministic=True, rc_neg=False)
    return g.with_seqs("haplotypes").with_len(seq_len)


def gvl_warm_up(tiny: dict, *, chrom: str, start0: int, norm_fasta: bool) -> None:
    """Compile GenVarLoader's numba kernels on a tiny cohort (``tiny``: its vcf and fasta)."""
    from types import SimpleNamespace

    with tempfile.TemporaryDirectory() as d:
        window = SimpleNamespace(chrom=chrom, start0=start0, end0=start0 + 1024)
        fasta = tiny["fasta"] if norm_fasta else None
        gvl_write(tiny["vcf"], [window], ["tiny"], Path(d), norm_fasta=fasta)
        g = gvl_open(Path(d), tiny["fasta"], 1024)
        g[0, g.samples[:2]]


def gvl_prepared(vcf, fasta, windows, genes, work: Path, seq_len: int, *, norm_fasta=None):
    """GenVarLoader's preprocessing and opening, timed: ``(dataset, preprocess_s, open_s,
    disk_bytes)``; disk = the normalized VCF, its indexes and the dataset."""
    t0 = time.perf_counter()
    gvl_write(vcf, windows, genes, work, norm_fasta=norm_fasta)
    preprocess_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    g = gvl_open(work, fasta, seq_len)
    return g, preprocess_s, time.perf_counter() - t0, _dir_bytes(work)


def pyconsensus_engine(vcf, fasta, work: Path):
    """pyconsensus-rs's cache + engine over a copy of ``vcf`` in ``work``: ``(engine, seconds,
    bytes written)`` (the copy itself is neither timed nor counted)."""
    from pyconsensus import ConsensusEngine, build_cache

    copy = work / "cohort.vcf.gz"
    copy.write_bytes(Path(vcf).read_bytes())
    Path(str(copy) + ".tbi").write_bytes(Path(str(vcf) + ".tbi").read_bytes())
    before = _dir_bytes(work)
    t0 = time.perf_counter()
    build_cache([str(copy)], log_level="warn")
    engine = ConsensusEngine(str(fasta), {"v": str(copy)}, log_level="warn")
    return engine, time.perf_counter() - t0, _dir_bytes(work) - before


def _dir_bytes(*paths) -> int:
    total = 0
    for p in map(Path, paths):
        if p.is_file():
            total += p.stat().st_size
        elif p.is_dir():
            total += sum(q.stat().st_size for q in p.rglob("*") if q.is_file())
    return total
