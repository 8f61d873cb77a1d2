"""Benchmark `variformer prep`: speed against the bcftools engine, size, materialization rate, memory.

Usage::

    python benchmarks/bench_prep.py [--people 670] [--genes 8] [--seq-len 49152] [--skip-bcftools]

Prints one table (markdown). Every ratio is measured side by side in this one run; record the
output with the machine it ran on in benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

# one core for the materialization measurement: set before numpy spins up thread pools
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")


def _prep_in_subprocess(args: list[str]) -> tuple[float, float]:
    """Run prep in a fresh process; returns (wall seconds, peak RSS MiB) of that process."""
    code = (
        "import resource, sys, time; from variformer.cli import main; t = time.perf_counter(); "
        f"rc = main({args!r}); dt = time.perf_counter() - t; "
        "print('BENCH', dt, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024); sys.exit(rc)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"prep failed: {out.stderr.strip().splitlines()[-1]}")
    line = next(ln for ln in out.stdout.splitlines() if ln.startswith("BENCH"))
    _, dt, rss = line.split()
    return float(dt), float(rss)


def _dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _rate(fn, *, min_seconds: float = 2.0) -> float:
    """Calls per second of ``fn`` after one warm-up call."""
    fn()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < min_seconds:
        fn()
        n += 1
    return n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--people", type=int, default=670)
    ap.add_argument("--genes", type=int, default=8)
    ap.add_argument("--seq-len", type=int, default=49152)
    ap.add_argument("--batch", type=int, default=32, help="people per materialization call")
    ap.add_argument("--skip-bcftools", action="store_true")
    ap.add_argument("--workdir", default=None)
    args = ap.parse_args()

    from data_prep import open_dataset
    from data_prep.simulate import simulate_cohort

    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench-prep-"))
    sim = simulate_cohort(
        work / "cohort",
        people=args.people,
        genes=args.genes,
        seq_len=args.seq_len,
        seed=7,
        force=True,
    )
    import pandas as pd

    genes = list(pd.read_csv(sim.truth_genes, sep="\t")["gene"])
    base = [
        "prep",
        "--vcf",
        str(sim.vcf),
        "--fasta",
        str(sim.fasta),
        "--annotation",
        str(sim.gtf),
        "--expression",
        str(sim.expression),
        "--seq-len",
        str(args.seq_len),
        "--quiet",
        "--force",
        "--genes",
        *genes,
    ]
    t_native, rss_native = _prep_in_subprocess([*base, "--out", str(work / "native")])
    rows = [
        (
            "prep, native engine (VCF -> dataset)",
            f"{t_native:.2f} s",
            f"peak RSS {rss_native:.0f} MiB",
        )
    ]
    if not args.skip_bcftools:
        t_bcf, rss_bcf = _prep_in_subprocess(
            [*base, "--out", str(work / "bcftools"), "--engine", "bcftools"]
        )
        rows.append(
            (
                "prep, bcftools engine (bcftools consensus per person x haplotype)",
                f"{t_bcf:.2f} s",
                f"peak RSS {rss_bcf:.0f} MiB",
            )
        )
        rows.append(("speed-up native vs bcftools", f"{t_bcf / t_native:.0f}x", "target >= 100x"))
        a, b = open_dataset(work / "native"), open_dataset(work / "bcftools")
        same = all(
            np.array_equal(a.dosages(g), b.dosages(g)) and a.variants(g).equals(b.variants(g))
            for g in a.genes
        )
        rows.append(("engines give identical datasets", str(same), ""))

    ds = open_dataset(work / "native")
    n_people, n_genes = len(ds.samples), len(ds.genes)
    size = _dir_size(work / "native")
    materialized = n_people * n_genes * args.seq_len * 4 * 4
    rows.append(
        (
            "dataset size on disk",
            f"{size / 2**20:.2f} MiB",
            f"{n_genes} genes x {n_people} people, {sum(len(ds.variants(g)) for g in ds.genes)} SNV alleles",
        )
    )
    rows.append(("materialized averaged one-hot (float32)", f"{materialized / 2**30:.2f} GiB", ""))
    rows.append(("size ratio", f"{materialized / size:.0f}x smaller", "target >= 500x"))

    # materialization: batches of people of one gene into a reused buffer, one core
    gene = max(ds.genes, key=lambda g: len(ds.variants(g)))
    rng = np.random.default_rng(0)
    buf = np.empty((args.batch, args.seq_len, 4), dtype=np.float32)
    batches = [
        [str(s) for s in rng.choice(ds.samples, size=args.batch, replace=False)] for _ in range(16)
    ]
    it = iter(range(10**9))
    seq_rate = args.batch * _rate(lambda: ds.sequences(gene, batches[next(it) % 16], out=buf))
    seq_rate_alloc = args.batch * _rate(lambda: ds.sequences(gene, batches[next(it) % 16]))
    src = np.random.default_rng(1).random((args.batch, args.seq_len, 4), dtype=np.float32)
    dst = np.empty_like(src)
    copy_rate = args.batch * _rate(lambda: np.copyto(dst, src))
    mb = args.seq_len * 4 * 4 / 2**20
    rows.append(
        (
            f"materialize sequences ({gene}: {len(ds.variants(gene))} SNVs; batch {args.batch}, into a buffer)",
            f"{seq_rate:,.0f} seq/s",
            f"{seq_rate * mb / 1024:.1f} GiB/s; target >= 10,000 seq/s",
        )
    )
    rows.append(
        (
            "materialize sequences (fresh array each call)",
            f"{seq_rate_alloc:,.0f} seq/s",
            f"{seq_rate_alloc * mb / 1024:.1f} GiB/s",
        )
    )
    rows.append(
        (
            "memory copy of the same bytes (np.copyto)",
            f"{copy_rate:,.0f} seq/s",
            f"{copy_rate * mb / 1024:.1f} GiB/s; materialize/copy = {seq_rate / copy_rate:.2f}",
        )
    )

    print(
        f"\nmachine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(f"cohort: {n_people} people, {n_genes} genes, seq_len {args.seq_len}\n")
    print("| measurement | value | note |\n|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]} |")
    (work / "bench_prep.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
