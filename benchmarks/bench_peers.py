"""Peers side by side: prep (native engine), GenVarLoader, pyconsensus-rs and bcftools consensus.

Usage::

    python benchmarks/bench_peers.py [--people 670] [--genes 20] [--seq-len 49152]
                                     [--peer-python PYTHON] [--tools prep,gvl,pyconsensus,bcftools]
                                     [--materialize-genes K]

All tools get the same simulated cohort (``variformer simulate``: unphased VCF with
multi-allelic sites) and the same windows (prep's TSS-centred ``[start0, end0)``; the one that
runs off its contig's start is N-padded as prep does). Every tool runs in its own process, one
thread (``OMP/NUMBA/RAYON = 1``, ``threads=1``), and ends at the same thing the model eats:
the averaged float32 one-hot of a person's two haplotypes, shape (32, L, 4) per batch. The
script asserts that every tool gives prep's exact sequences on a sample of genes and people.

Columns (module imports are outside every timing): preprocessing (one-time work before any sequence: prep = VCF -> dataset; GenVarLoader
= ``bcftools norm -m -`` (it needs bi-allelic records) + ``gvl.write``; pyconsensus-rs = its
``.cvcf`` cache + engine; bcftools = one region FASTA per gene), materialization (sequences/s
over every person of every gene, batches of 32 people of one gene, opening included), end to
end (both, i.e. every sequence of the cohort once), disk (files the tool writes besides its
inputs) and peak RSS of the tool's process. bcftools is extrapolated from a sample of calls.
With ``--materialize-genes K`` every tool preprocesses the whole cohort but materializes every
person of only the first K genes (the rate is per sequence, so a 300-gene cohort need not take
each peer ~25 minutes); end to end is then preprocessing + all sequences at that rate, marked
as extrapolated.

GenVarLoader and pyconsensus-rs are not Variformer dependencies: install them into a separate
environment (``--peer-python``; see benchmarks/README.md) so that their pins (polars < 2,
numba) never touch the project's environment.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.peer_tools import (  # noqa: E402  (the repository root on the path first)
    _dir_bytes,
    gvl_prepared,
    gvl_warm_up,
    pyconsensus_engine,
)

BATCH = 32
ONE_CORE = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "NUMBA_NUM_THREADS": "1",
    "RAYON_NUM_THREADS": "1",
    "POLARS_MAX_THREADS": "1",
}


# ---------------------------------------------------------------- shared by the workers
def _peak_rss_mib() -> float:
    """This process's peak resident memory since its exec (MiB).

    ``VmHWM`` of the process's own address space, not ``getrusage``'s ``ru_maxrss``: on Linux
    that one keeps the high-water mark of the parent it was forked from across the exec, so a
    worker started by a driver that held more memory reported the driver's peak.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # not Linux


def _averaged_one_hot(raw: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Haplotype bytes, uint8 shape=(n, 2, L) -> averaged one-hot into ``out`` (n, L, 4)."""
    from data_prep.genome import _LUT, ONE_HOT

    rows = np.ascontiguousarray(ONE_HOT).view(np.complex128).ravel()
    codes = _LUT[raw]
    n, _, length = codes.shape
    np.take(rows, codes[:, 0], out=out.view(np.complex128).reshape(n, length))
    out += np.take(rows, codes[:, 1]).view(np.float32).reshape(n, length, 4)
    out *= 0.5
    return out


def _plan(dataset: Path):
    """Genes, windows, people and the checked sample, all from prep's dataset."""
    from data_prep import open_dataset

    ds = open_dataset(dataset)
    genes = list(ds.genes)
    windows = [ds.window(g) for g in genes]
    people = list(ds.samples)
    rng = np.random.default_rng(0)
    checked_genes = sorted(
        {0, 1, len(genes) - 1, int(np.argmax([len(ds.variants(g)) for g in genes]))}
    )
    checked_people = sorted(rng.choice(len(people), size=min(8, len(people)), replace=False))
    return ds, genes, windows, people, checked_genes, [people[i] for i in checked_people]


def _materialize(
    make_batch, genes, people, checked_genes, checked_people, seq_len, limit=None, *, item=None
):
    """Every person of every gene (or the first ``limit`` genes) in batches of BATCH.

    ``item``: one person's output shape, ``(seq_len, 4)`` unless given (haplotypes: ``(2,
    seq_len, 4)``). Returns (seconds, n, checked sequences).
    """
    item = item or (seq_len, 4)
    buf = np.empty((BATCH, *item), dtype=np.float32)
    t0 = time.perf_counter()
    n = 0
    for gi in range(min(limit or len(genes), len(genes))):
        for i in range(0, len(people), BATCH):
            batch = people[i : i + BATCH]
            make_batch(gi, batch, buf[: len(batch)])
            n += len(batch)
    seconds = time.perf_counter() - t0
    checked = {}
    for gi in checked_genes:
        out = np.empty((len(checked_people), *item), dtype=np.float32)
        make_batch(gi, checked_people, out)
        checked[genes[gi]] = out
    return seconds, n, checked


def _worker(tool: str, cohort: Path, work: Path) -> dict:
    sim = json.loads((cohort / "sim.json").read_text())
    seq_len = sim["seq_len"]
    work.mkdir(parents=True, exist_ok=True)
    result: dict = {"tool": tool}
    if tool == "prep":
        import cyvcf2  # noqa: F401  (imports are outside the timing, for every tool)
        import pysam

        from data_prep import open_dataset
        from data_prep.prep import prep_dataset

        t0 = time.perf_counter()
        prep_dataset(
            vcfs=[sim["vcf"]],
            fasta=sim["fasta"],
            annotation=sim["gtf"],
            genes=sim["genes"],
            seq_len=seq_len,
            out=work / "dataset",
            progress=False,
            force=True,
        )
        result["preprocess_s"] = time.perf_counter() - t0
        result["disk_bytes"] = _dir_bytes(work / "dataset")
        _, genes, _, people, cg, cp = _plan(work / "dataset")
        t0 = time.perf_counter()
        ds = open_dataset(work / "dataset")
        open_s = time.perf_counter() - t0

        def make_batch(gi, batch, out):
            ds.sequences(genes[gi], batch, out=out)

    elif tool == "gvl":
        import genvarloader  # noqa: F401

        _, genes, windows, people, cg, cp = _plan(cohort / "prep_dataset")
        tiny = json.loads((cohort / "sim.json").read_text())["tiny"]
        gvl_warm_up(tiny, chrom=tiny["chrom"], start0=0, norm_fasta=False)
        # bcftools norm -m - (bi-allelic records)
        g, result["preprocess_s"], open_s, result["disk_bytes"] = gvl_prepared(
            sim["vcf"], sim["fasta"], windows, genes, work, seq_len
        )

        def make_batch(gi, batch, out):
            raw = np.asarray(g[gi, batch]).view(np.uint8).reshape(len(batch), 2, seq_len)
            _averaged_one_hot(raw, out)

    elif tool == "pyconsensus":
        from pyconsensus import Task

        _, genes, windows, people, cg, cp = _plan(cohort / "prep_dataset")
        engine, result["preprocess_s"], result["disk_bytes"] = pyconsensus_engine(
            sim["vcf"], sim["fasta"], work
        )
        open_s = 0.0

        def make_batch(gi, batch, out):
            w = windows[gi]
            lo = max(w.start0, 0)
            tasks = [
                Task(w.chrom, lo + 1, w.end0, "v", genes[gi], s, h) for s in batch for h in "12"
            ]
            res = engine.consensus_many(tasks, threads=1)
            pad = b"N" * (lo - w.start0)
            joined = b"".join(pad + r.seq for r in res)
            raw = np.frombuffer(joined, dtype=np.uint8).reshape(len(batch), 2, seq_len)
            _averaged_one_hot(raw, out)

    elif tool == "bcftools":
        import pysam
        import pysam.bcftools

        _, genes, windows, people, cg, cp = _plan(cohort / "prep_dataset")
        fa = pysam.FastaFile(sim["fasta"])
        t0 = time.perf_counter()
        regions = []
        for w in windows:
            lo, hi = max(w.start0, 0), min(w.end0, fa.get_reference_length(w.chrom))
            path = work / f"{w.chrom}_{lo}.fa"
            path.write_text(f">{w.chrom}:{lo + 1}-{hi}\n{fa.fetch(w.chrom, lo, hi)}\n")
            regions.append((path, lo - w.start0, w.end0 - hi))
        result["preprocess_s"] = time.perf_counter() - t0
        result["disk_bytes"] = _dir_bytes(work)
        open_s = 0.0

        def make_batch(gi, batch, out):
            path, left, right = regions[gi]
            seqs = []
            for s in batch:
                for h in "12":
                    fasta = pysam.bcftools.consensus("-f", str(path), "-s", s, "-H", h, sim["vcf"])
                    body = "".join(fasta.split("\n")[1:]).upper()
                    seqs.append("N" * left + body + "N" * right)
            raw = np.frombuffer("".join(seqs).encode(), dtype=np.uint8)
            _averaged_one_hot(raw.reshape(len(batch), 2, seq_len), out)

        # every sequence would take hours: time a sample and extrapolate
        sample = people[: min(len(people), 16)]
        t0 = time.perf_counter()
        make_batch(0, sample, np.empty((len(sample), seq_len, 4), np.float32))
        per_seq = (time.perf_counter() - t0) / len(sample)
        checked = {}
        for gi in cg:
            out = np.empty((len(cp), seq_len, 4), dtype=np.float32)
            make_batch(gi, cp, out)
            checked[genes[gi]] = out
        result.update(
            materialize_s=per_seq * len(people) * len(genes),
            n_sequences=len(people) * len(genes),
            extrapolated_from=len(sample) * 2,
        )
        np.savez(work / "checked.npz", **checked)
        result["peak_rss_mib"] = _peak_rss_mib()
        return result
    else:
        raise SystemExit(f"unknown tool {tool}")

    limit = sim.get("materialize_genes")
    seconds, n, checked = _materialize(make_batch, genes, people, cg, cp, seq_len, limit)
    result.update(materialize_s=seconds + open_s, n_sequences=n, open_s=open_s)
    np.savez(work / "checked.npz", **checked)
    result["peak_rss_mib"] = _peak_rss_mib()
    return result


# ---------------------------------------------------------------- the driver
def _simulate(work: Path, people: int, genes: int, seq_len: int) -> Path:
    import pandas as pd

    from data_prep.simulate import simulate_cohort

    cohort = work / "cohort"
    sim = simulate_cohort(cohort, people=people, genes=genes, seq_len=seq_len, seed=7, force=True)
    tiny = simulate_cohort(work / "tiny", people=10, genes=1, seq_len=1024, seed=1, force=True)
    names = list(pd.read_csv(sim.truth_genes, sep="\t")["gene"])
    tiny_chrom = pd.read_csv(tiny.truth_genes, sep="\t")["chrom"].iloc[0]
    meta = {
        "vcf": str(sim.vcf),
        "fasta": str(sim.fasta),
        "gtf": str(sim.gtf),
        "genes": names,
        "seq_len": seq_len,
        "tiny": {"vcf": str(tiny.vcf), "fasta": str(tiny.fasta), "chrom": str(tiny_chrom)},
    }
    (cohort / "sim.json").write_text(json.dumps(meta))
    return cohort


def _run_worker(python: str, tool: str, cohort: Path, work: Path, script: str = __file__) -> dict:
    """Run ``script --worker tool`` in its own process on one thread; its last line's JSON."""
    env = {**os.environ, **ONE_CORE, "PYTHONPATH": str(ROOT)}
    cmd = [python, script, "--worker", tool, "--cohort", str(cohort), "--workdir", str(work)]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if out.returncode != 0:
        tail = "\n".join(out.stderr.strip().splitlines()[-15:])
        raise SystemExit(f"{tool} failed:\n{tail}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--people", type=int, default=670)
    ap.add_argument("--genes", type=int, default=20)
    ap.add_argument("--seq-len", type=int, default=49152)
    ap.add_argument(
        "--peer-python", default=sys.executable, help="python with genvarloader and pyconsensus"
    )
    ap.add_argument("--tools", default="prep,gvl,pyconsensus,bcftools")
    ap.add_argument("--workdir", default=None)
    ap.add_argument(
        "--materialize-genes", type=int, default=None, metavar="K", help="materialize K genes only"
    )
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--cohort", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(_worker(args.worker, Path(args.cohort), Path(args.workdir))))
        return

    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench-peers-"))
    cohort = _simulate(work, args.people, args.genes, args.seq_len)
    sim = json.loads((cohort / "sim.json").read_text())
    if args.materialize_genes:
        sim["materialize_genes"] = args.materialize_genes
        (cohort / "sim.json").write_text(json.dumps(sim))
    results = {"prep": _run_worker(sys.executable, "prep", cohort, work / "prep")}
    # the other tools read the windows from prep's dataset (coordinates only)
    (cohort / "prep_dataset").symlink_to(work / "prep" / "dataset")
    for tool in [t for t in args.tools.split(",") if t != "prep"]:
        results[tool] = _run_worker(args.peer_python, tool, cohort, work / tool)

    ds, genes, _, _, checked_genes, people = _plan(work / "prep" / "dataset")
    truth = {genes[gi]: ds.sequences(genes[gi], people) for gi in checked_genes}
    same = {}
    for tool in results:
        with np.load(work / tool / "checked.npz") as z:
            assert sorted(z.files) == sorted(truth), tool
            for gene in z.files:
                np.testing.assert_array_equal(
                    z[gene], truth[gene], err_msg=f"{tool} differs from prep on {gene}"
                )
        same[tool] = f"identical ({len(truth)} genes x {len(people)} people)"

    vcf_mib = Path(sim["vcf"]).stat().st_size / 2**20
    names = {
        "prep": "Variformer prep (native engine)",
        "gvl": "GenVarLoader",
        "pyconsensus": "pyconsensus-rs",
        "bcftools": "bcftools consensus (pysam)",
    }
    print(
        f"\nmachine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
        f"one thread per tool"
    )
    print(
        f"cohort: {len(ds.samples)} people x {len(ds.genes)} genes x {args.seq_len} bp "
        f"({len(ds.samples) * len(ds.genes):,} sequences); input VCF {vcf_mib:.1f} MiB\n"
    )
    print(
        "| tool | preprocessing (s) | materialize (seq/s) | end to end (s) | disk (MiB) "
        "| peak RSS (MiB) | sequences vs prep |\n|---|---|---|---|---|---|---|"
    )
    for tool, r in results.items():
        rate = r["n_sequences"] / r["materialize_s"]
        total = len(ds.samples) * len(ds.genes)
        e2e = r["preprocess_s"] + total / rate
        if "extrapolated_from" in r:
            note = f" (extrapolated from {r['extrapolated_from']} calls)"
        elif r["n_sequences"] < total:
            note = f" (materialized {r['n_sequences']:,} of {total:,}, extrapolated)"
        else:
            note = ""
        print(
            f"| {names[tool]} | {r['preprocess_s']:.2f} | {rate:,.0f}{note} | {e2e:.1f}{note} "
            f"| {r['disk_bytes'] / 2**20:.1f} | {r['peak_rss_mib']:.0f} | {same[tool]} |"
        )
    (work / "bench_peers.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
