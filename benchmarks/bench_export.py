"""`variformer export predictdb` (and `twas`) at GTEx scale, beside reading the VCF once.

Builds (or reuses, in ``--workdir``) a simulated cohort of ``--people`` x ``--genes`` windows of
``--seq-len`` bp: ``simulate`` -> ``prep`` -> ``baselines`` (elastic net and ridge, fold 0).
Then, side by side in one run:

- ``cyvcf2, read the VCF once``: every record's genotypes (the lower limit of anything that
  reads dosages from the VCF);
- ``export predictdb, elastic net``: weights + covariance of its (sparse) model SNPs;
- ``export predictdb, ridge``: every SNV of every window in the model (the dense worst case:
  the covariance has v (v + 1) / 2 rows per gene);
- ``twas`` on the elastic-net export, when the cohort has ``gwas.tsv``.

Prints a markdown table (seconds, rows written) and the machine.

    python benchmarks/bench_export.py                                  # 670 people x 300 genes
    python benchmarks/bench_export.py --people 200 --genes 20 --seq-len 8192   # scaled down
"""

from __future__ import annotations

import argparse
import gzip
import os
import platform
import sqlite3
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _cli(*argv: str) -> None:
    from variformer.cli import main

    code = main([str(a) for a in argv])
    if code:
        raise SystemExit(f"variformer {argv[0]} failed with {code}")


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def _read_vcf(vcf: Path) -> int:
    import cyvcf2

    n = 0
    for rec in cyvcf2.VCF(str(vcf)):
        rec.genotype.array()
        n += 1
    return n


def _rows(db: Path, cov: Path) -> tuple[int, int]:
    con = sqlite3.connect(db)
    (w,) = con.execute("SELECT count(*) FROM weights").fetchone()
    con.close()
    with gzip.open(cov, "rt") as fh:
        c = sum(1 for _ in fh) - 1
    return w, c


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--people", type=int, default=670)
    ap.add_argument("--genes", type=int, default=300)
    ap.add_argument("--seq-len", type=int, default=49_152)
    ap.add_argument("--workdir", default="bench_export_work")
    args = ap.parse_args()
    work = Path(args.workdir)
    cohort, data, bl = work / "cohort", work / "data", work / "BL"
    setup = {}
    if not (cohort / "cohort.vcf.gz").is_file():
        setup["simulate"] = _timed(lambda: _cli("simulate", "--out", cohort, "--people", args.people,
                                                "--genes", args.genes, "--seq-len", args.seq_len))  # fmt: skip
    if not (data / "dataset.json").is_file():
        genes = work / "genes.txt"
        import pandas as pd

        names = pd.read_csv(cohort / "truth_genes.tsv", sep="\t")["gene"]
        genes.write_text("\n".join(names) + "\n")
        setup["prep"] = _timed(lambda: _cli(
            "prep", "--vcf", cohort / "cohort.vcf.gz", "--fasta", cohort / "ref.fa",
            "--annotation", cohort / "genes.gtf", "--expression", cohort / "expression.bed.gz",
            "--genes-file", genes, "--seq-len", args.seq_len, "--out", data, "--no-progress",
        ))  # fmt: skip
    for model in ("elastic_net", "ridge"):
        if not (bl / model / "summary.tsv").is_file():
            setup[f"baselines {model}"] = _timed(lambda m=model: _cli(
                "baselines", "--dataset", data, "--folds", "0", "--model", m, "--out", bl,
                "--jobs", str(os.cpu_count() or 1), "--no-progress",
            ))  # fmt: skip
    out = work / "TW"
    rows = []
    n_records = 0

    def read():
        nonlocal n_records
        n_records = _read_vcf(cohort / "cohort.vcf.gz")

    rows.append(("cyvcf2, read the VCF once", _timed(read), f"{n_records} records", ""))
    for model in ("elastic_net", "ridge"):
        t = _timed(lambda m=model: _cli(
            "export", "predictdb", "--baselines", bl, "--model", m, "--dataset", data,
            "--rsid-from", "varID", "--out", out, "--force",
        ))  # fmt: skip
        w, c = _rows(out / f"{model}_fold0.db", out / f"{model}_fold0.txt.gz")
        rows.append((f"export predictdb, {model}", t, f"{w} weights", f"{c} covariance rows"))
    gwas = cohort / "gwas.tsv"
    if gwas.is_file():
        t = _timed(lambda: _cli(
            "twas", "--db", out / "elastic_net_fold0.db", "--covariance",
            out / "elastic_net_fold0.txt.gz", "--gwas", gwas, "--out", work / "twas.tsv", "--force",
        ))  # fmt: skip
        rows.append(("twas (S-PrediXcan via pytwas), elastic net", t, "", ""))
    print(f"\n{args.people} people x {args.genes} genes x {args.seq_len} bp; "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")  # fmt: skip
    if setup:
        print("set-up (not compared): " + ", ".join(f"{k} {v:.1f} s" for k, v in setup.items()))
    base = rows[0][1]
    print("\n| step | seconds | x VCF read | written | |\n|---|---:|---:|---|---|")
    for name, t, a, b in rows:
        print(f"| {name} | {t:.2f} | {t / base:.1f} | {a} | {b} |")


if __name__ == "__main__":
    main()
