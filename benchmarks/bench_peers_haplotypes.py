"""Peers side by side in haplotype mode: ``prep --haplotypes`` against GenVarLoader and
pyconsensus-rs on a phased cohort with indels.

Usage::

    python benchmarks/bench_peers_haplotypes.py [--people 670] [--genes 300] [--seq-len 49152]
        [--spacing 70] [--materialize-genes K] [--peer-python PYTHON] [--tools prep,gvl,pyconsensus]

The cohort is :func:`benchmarks.bench_haplotypes._cohort` (phased; SNVs, 1-30 bp insertions and
deletions, MNPs, multi-allelic records; one record every ``spacing`` bp on average). The
per-tool machinery is :mod:`benchmarks.bench_peers`' (each tool in its own process on one
thread, imports outside the timings, the same columns; the peers' setup is
:mod:`benchmarks.peer_tools`, shared with it); what differs is the end product: a
person's **two** haplotype windows as float32 one-hot, shape (32, 2, L, 4) per batch of 32
people of one gene.

- prep: ``prep_dataset(haplotypes=True)``, then TSS-anchored windows
  (:meth:`data_prep.haplotype_reader.HaplotypeStore.one_hot`: one-hot rows written directly).
- GenVarLoader: ``bcftools norm -f REF -m - -a`` (its input contract: left-aligned, bi-allelic,
  atomized records) + ``gvl.write`` on the
  same reference windows ``[start0, end0)`` with phased genotypes, then
  ``Dataset.open(...).with_seqs("haplotypes").with_len(L)`` (deterministic; anchored at the
  window's reference start, its own rule), bytes -> one-hot by one 16-byte-row lookup.
- pyconsensus-rs: its ``.cvcf`` cache + engine, then one ``Task`` per person x haplotype over
  ``[start0, end0 + pad)`` (``pad`` = 2 kb, so that deletions cannot leave it short), cut to
  L (anchored at ``start0`` like GenVarLoader), bytes -> one-hot by the same lookup.

Agreement: the anchoring rules differ (prep anchors at the TSS by bcftools' chain rule; the
peers at ``start0``), so windows are compared as crops of one haplotype: on every checked
gene x person x haplotype the shift between the two windows is found (a 64-mer of one found in
the other, shift at most L // 4), and the two must be identical over their whole common
stretch (``L - |shift|`` bases). The table says how many haplotypes agreed and the shortest
common stretch. (That the TSS lands where bcftools' chain puts it is tested against
``bcftools consensus -H 1/2`` in tests/test_haplotypes_oracle.py, not here.)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.bench_peers import _dir_bytes, _materialize, _peak_rss_mib, _plan, _run_worker
from benchmarks.peer_tools import gvl_prepared, gvl_warm_up, pyconsensus_engine

PAD = 2_000  # pyconsensus-rs: reference bases past end0, so that a haplotype still fills L


def _one_hot(raw: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Haplotype bytes (ASCII), uint8 shape=(n, 2, L) -> float32 one-hot ``out`` (n, 2, L, 4)."""
    from data_prep.genome import _LUT, ONE_HOT

    rows = np.ascontiguousarray(ONE_HOT).view(np.complex128).ravel()
    np.take(rows, _LUT[raw], out=out.view(np.complex128).reshape(raw.shape))
    return out


def _codes(one_hot: np.ndarray) -> np.ndarray:
    """float32 one-hot (..., 4) -> codes (A,C,G,T = 0..3, N = 4), uint8."""
    return np.where(one_hot.any(-1), one_hot.argmax(-1), 4).astype(np.uint8)


def _worker(tool: str, cohort: Path, work: Path) -> dict:
    sim = json.loads((cohort / "sim.json").read_text())
    seq_len = sim["seq_len"]
    work.mkdir(parents=True, exist_ok=True)
    result: dict = {"tool": tool}
    if tool == "prep":
        import cyvcf2  # noqa: F401  (imports are outside the timing, for every tool)
        import pysam  # noqa: F401

        from data_prep import open_dataset
        from data_prep.haplotype_reader import HaplotypeStore
        from data_prep.prep import prep_dataset

        t0 = time.perf_counter()
        prep_dataset(
            vcfs=[sim["vcf"]], fasta=sim["fasta"], annotation=sim["annotation"],
            genes=sim["genes"], seq_len=seq_len, out=work / "dataset", haplotypes=True,
            n_folds=1, tune_fraction=0.1, test_fraction=0.1, progress=False, force=True,
        )  # fmt: skip
        result["preprocess_s"] = time.perf_counter() - t0
        result["disk_bytes"] = _dir_bytes(work / "dataset")
        _, genes, _, people, cg, cp = _plan(work / "dataset")
        t0 = time.perf_counter()
        ds = open_dataset(work / "dataset")
        store = HaplotypeStore.of(ds)
        row_of = {s: i for i, s in enumerate(ds.samples)}
        open_s = time.perf_counter() - t0

        def make_batch(gi, batch, out):
            store.one_hot(gi, np.fromiter((row_of[s] for s in batch), np.int64), out=out)

    elif tool == "gvl":
        import genvarloader  # noqa: F401

        _, genes, windows, people, cg, cp = _plan(cohort / "prep_dataset")
        gvl_warm_up(sim["tiny"], chrom="chr1", start0=10_000, norm_fasta=True)
        # bcftools norm -f REF -c w -m - -a: left-aligned, bi-allelic, atomized records
        g, result["preprocess_s"], open_s, result["disk_bytes"] = gvl_prepared(
            sim["vcf"], sim["fasta"], windows, genes, work, seq_len, norm_fasta=sim["fasta"]
        )

        def make_batch(gi, batch, out):
            raw = np.asarray(g[gi, batch]).view(np.uint8).reshape(len(batch), 2, seq_len)
            _one_hot(raw, out)

    elif tool == "pyconsensus":
        from pyconsensus import Task

        _, genes, windows, people, cg, cp = _plan(cohort / "prep_dataset")
        engine, result["preprocess_s"], result["disk_bytes"] = pyconsensus_engine(
            sim["vcf"], sim["fasta"], work
        )
        open_s = 0.0

        def make_batch(gi, batch, out):
            w = windows[gi]
            tasks = [
                Task(w.chrom, w.start0 + 1, w.end0 + PAD, "v", genes[gi], s, h)
                for s in batch
                for h in "12"
            ]
            res = engine.consensus_many(tasks, threads=1)
            joined = b"".join(r.seq[:seq_len].ljust(seq_len, b"N") for r in res)
            raw = np.frombuffer(joined, dtype=np.uint8).reshape(len(batch), 2, seq_len)
            _one_hot(raw, out)

    else:
        raise SystemExit(f"unknown tool {tool}")

    limit = sim.get("materialize_genes")
    seconds, n, checked = _materialize(
        make_batch, genes, people, cg, cp, seq_len, limit, item=(2, seq_len, 4)
    )
    result.update(materialize_s=seconds + open_s, n_sequences=n, open_s=open_s)
    np.savez(work / "checked.npz", **{k: _codes(v) for k, v in checked.items()})
    result["peak_rss_mib"] = _peak_rss_mib()
    return result


def common_stretch(ours: np.ndarray, theirs: np.ndarray, *, k: int = 64) -> int:
    """Length of the stretch two windows of one haplotype share, or -1 if they disagree.

    ours, theirs : uint8 shape=(L,) codes. The shift is where a ``k``-mer at the start of one
    lies in the other (at most L // 4); the windows must then be equal over ``L - |shift|``.
    """
    length = len(ours)
    a, b = ours.tobytes(), theirs.tobytes()
    shift = b.find(a[:k], 0, length // 4 + k)
    if shift < 0:
        back = a.find(b[:k], 0, length // 4 + k)
        if back < 0:
            return -1
        shift = -back
    if shift >= 0:
        same = np.array_equal(ours[: length - shift], theirs[shift:])
    else:
        same = np.array_equal(ours[-shift:], theirs[: length + shift])
    return length - abs(shift) if same else -1


def _cohort(work: Path, people: int, genes: int, seq_len: int, spacing: int) -> Path:
    from benchmarks.bench_haplotypes import _cohort as phased_cohort

    cohort = work / "cohort"
    asked = {"people": people, "genes": genes, "seq_len": seq_len, "spacing": spacing}
    old = cohort / "sim.json"
    if old.exists() and json.loads(old.read_text()).get("asked") == asked:
        return cohort  # the same cohort from an earlier run (the generator is seeded)
    cohort.mkdir(parents=True, exist_ok=True)
    (work / "tiny").mkdir(exist_ok=True)
    fasta, vcf, tss, names, _, n_rec = phased_cohort(
        cohort, people=people, genes=genes, seq_len=seq_len, spacing=spacing
    )
    tiny_fa, tiny_vcf, *_ = phased_cohort(work / "tiny", people=10, genes=1, seq_len=1024, seed=1)
    meta = {
        "vcf": str(vcf), "fasta": str(fasta), "annotation": str(tss), "genes": names,
        "seq_len": seq_len, "records": n_rec, "tiny": {"vcf": str(tiny_vcf), "fasta": str(tiny_fa)},
        "asked": asked,
    }  # fmt: skip
    (cohort / "sim.json").write_text(json.dumps(meta))
    return cohort


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--people", type=int, default=670)
    ap.add_argument("--genes", type=int, default=300)
    ap.add_argument("--seq-len", type=int, default=49152)
    ap.add_argument("--spacing", type=int, default=70, help="mean bp between VCF records")
    ap.add_argument("--peer-python", default=sys.executable, help="python with the peers")
    ap.add_argument("--tools", default="prep,gvl,pyconsensus")
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--materialize-genes", type=int, default=None, metavar="K")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--cohort", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(_worker(args.worker, Path(args.cohort), Path(args.workdir))))
        return

    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench-peers-hap-"))
    t0 = time.perf_counter()
    cohort = _cohort(work, args.people, args.genes, args.seq_len, args.spacing)
    print(f"cohort written in {time.perf_counter() - t0:.0f} s", flush=True)
    sim = json.loads((cohort / "sim.json").read_text())
    sim["materialize_genes"] = args.materialize_genes
    (cohort / "sim.json").write_text(json.dumps(sim))
    for tool in args.tools.split(","):  # nothing left from an earlier run (caches, indexes)
        shutil.rmtree(work / tool, ignore_errors=True)
    load = [os.getloadavg()[0]]
    results = {"prep": _run_worker(sys.executable, "prep", cohort, work / "prep", __file__)}
    print(f"prep done: {results['prep']}", flush=True)
    # the peers read the windows from prep's dataset (coordinates only)
    (cohort / "prep_dataset").unlink(missing_ok=True)
    (cohort / "prep_dataset").symlink_to(work / "prep" / "dataset")
    for tool in [t for t in args.tools.split(",") if t != "prep"]:
        load.append(os.getloadavg()[0])
        results[tool] = _run_worker(args.peer_python, tool, cohort, work / tool, __file__)
        print(f"{tool} done: {results[tool]}", flush=True)
    load.append(os.getloadavg()[0])

    with np.load(work / "prep" / "checked.npz") as z:
        ours = {g: z[g] for g in z.files}
    same = {"prep": "(reference)"}
    for tool in [t for t in results if t != "prep"]:
        stretches = []
        with np.load(work / tool / "checked.npz") as z:
            for gene, mine in ours.items():
                theirs = z[gene]
                for p in range(mine.shape[0]):
                    for h in (0, 1):
                        stretches.append(common_stretch(mine[p, h], theirs[p, h]))
        good = [s for s in stretches if s >= 0]
        same[tool] = (
            f"{len(good)}/{len(stretches)} haplotypes identical over the common stretch "
            f"(>= {min(good) if good else 0:,} bp; {len(ours)} genes x {mine.shape[0]} people)"
        )

    vcf_mib = Path(sim["vcf"]).stat().st_size / 2**20
    names = {
        "prep": "Variformer prep --haplotypes",
        "gvl": "GenVarLoader (haplotypes)",
        "pyconsensus": "pyconsensus-rs (haplotypes)",
    }
    n_people, n_genes = args.people, args.genes
    print(
        f"\nmachine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; one thread per tool; load average before each tool "
        f"and after: {', '.join(f'{x:.1f}' for x in load)}"
    )
    print(
        f"cohort: {n_people} people x {n_genes} genes x {args.seq_len} bp, 2 haplotypes each "
        f"({n_people * n_genes:,} people x genes); {sim['records']:,} VCF records "
        f"(one per ~{args.spacing} bp), input VCF {vcf_mib:.1f} MiB\n"
    )
    print(
        "| tool | preprocessing (s) | open (s) | materialize (people/s, 2 x L x 4) "
        "| end to end (s) | disk (MiB) | peak RSS (MiB) | windows vs prep |\n"
        "|---|---|---|---|---|---|---|---|"
    )
    total = n_people * n_genes
    for tool, r in results.items():
        # the one-off opening counts once in end to end, not in the per-sequence rate
        rate = r["n_sequences"] / (r["materialize_s"] - r["open_s"])
        e2e = r["preprocess_s"] + r["open_s"] + total / rate
        note = (
            f" (materialized {r['n_sequences']:,} of {total:,}, extrapolated)"
            if r["n_sequences"] < total
            else ""
        )
        print(
            f"| {names[tool]} | {r['preprocess_s']:.2f} | {r['open_s']:.2f} | {rate:,.0f} "
            f"| {e2e:,.1f}{note} "
            f"| {r['disk_bytes'] / 2**20:.1f} | {r['peak_rss_mib']:.0f} | {same[tool]} |"
        )
    (work / "bench_peers_haplotypes.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
