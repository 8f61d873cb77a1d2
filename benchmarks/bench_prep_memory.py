"""Peak memory of `variformer prep` against the number of people (bounded memory check).

Usage::

    python benchmarks/bench_prep_memory.py [--people 2000] [--genes 5] [--seq-len 49152]
                                           [--subsets 250,500,1000,2000]

Simulates one cohort, then runs prep in a fresh process on growing subsets of its people
(``--samples``), same genes, and prints prep's peak RSS next to the size of what prep
must hold per gene (the people x SNV-alleles carrier matrix, 1 byte each) and the dataset.
Peak RSS should grow with people only by about the genotype data itself.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _prep_rss(args: list[str]) -> tuple[float, float]:
    """(wall s, peak RSS MiB) of prep run in a fresh process (imports included in RSS).

    The peak is the process's own VmHWM (/proc): ``ru_maxrss`` can carry the parent's peak
    across fork + exec on Linux, which made every row read the simulator's memory.
    """
    code = (
        "import resource, sys, time; from variformer.cli import main; t = time.perf_counter(); "
        f"rc = main({args!r}); dt = time.perf_counter() - t; "
        "hwm = [ln for ln in open('/proc/self/status') if ln.startswith('VmHWM')]; "
        "peak = int(hwm[0].split()[1]) if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss; "
        "print('BENCH', dt, peak / 1024); sys.exit(rc)"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
    )
    if out.returncode != 0:
        raise SystemExit(f"prep failed: {out.stderr.strip().splitlines()[-1]}")
    _, dt, rss = next(ln for ln in out.stdout.splitlines() if ln.startswith("BENCH")).split()
    return float(dt), float(rss)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--people", type=int, default=2000)
    ap.add_argument("--genes", type=int, default=5)
    ap.add_argument("--seq-len", type=int, default=49152)
    ap.add_argument("--subsets", default="250,500,1000,2000")
    ap.add_argument("--workdir", default=None)
    args = ap.parse_args()

    import pandas as pd

    from data_prep import open_dataset
    from data_prep.simulate import simulate_cohort

    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench-prep-mem-"))
    sim = simulate_cohort(
        work / "cohort",
        people=args.people,
        genes=args.genes,
        seq_len=args.seq_len,
        seed=7,
        force=True,
    )
    genes = list(pd.read_csv(sim.truth_genes, sep="\t")["gene"])
    import cyvcf2

    everyone = list(cyvcf2.VCF(str(sim.vcf)).samples)
    print(
        f"\nmachine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(f"cohort: {args.people} people simulated, {len(genes)} genes x {args.seq_len} bp\n")
    print(
        "| people | prep wall (s) | peak RSS (MiB) | largest gene's carriers (MiB) "
        "| all genes' carriers (MiB) | dataset (MiB) |\n|---|---|---|---|---|---|"
    )
    rows = []
    for n in [int(x) for x in args.subsets.split(",")]:
        listed = work / f"people{n}.txt"
        listed.write_text("\n".join(everyone[:n]) + "\n")
        out = work / f"ds{n}"
        wall, rss = _prep_rss(
            [
                "prep", "--vcf", str(sim.vcf), "--fasta", str(sim.fasta),
                "--annotation", str(sim.gtf), "--seq-len", str(args.seq_len),
                "--samples", str(listed), "--out", str(out), "--quiet", "--force",
                "--genes", *genes,
            ]
        )  # fmt: skip
        ds = open_dataset(out)
        per_gene = [len(ds.variants(g)) * n for g in ds.genes]
        size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
        rows.append((n, wall, rss, max(per_gene), sum(per_gene), size))
        print(
            f"| {n:,} | {wall:.1f} | {rss:.0f} | {max(per_gene) / 2**20:.1f} "
            f"| {sum(per_gene) / 2**20:.1f} | {size / 2**20:.1f} |"
        )
    (work / "bench_prep_memory.json").write_text(json.dumps(rows))


if __name__ == "__main__":
    main()
