"""Benchmark `variformer predict`: imputing a genotype-only cohort, against reading its VCF once.

Usage::

    python benchmarks/bench_predict.py [--people 5000] [--genes 20] [--seq-len 1024]
                                       [--train-people 300] [--device cpu]

Simulates one cohort (``variformer simulate``), preps its first ``--train-people`` people
with expression as the training dataset, trains a tiny multi-gene Variformer on fold 0 (one
epoch, two batches: the weights do not change the cost) and the fold-0 elastic nets, then times
on the whole cohort's VCF (``--people`` people x ``--genes`` genes) side by side in this run:
reading the VCF once with cyvcf2 (every record's genotypes: the lower limit of any reader),
building the genotype-only dataset on the training windows, and ``variformer predict`` with
the elastic nets and with the Variformer. Prints one markdown table; record it with the
machine in benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _cyvcf2_read(vcf: Path) -> tuple[float, int]:
    """Seconds to read every record's genotypes once with cyvcf2; records read."""
    import cyvcf2

    t0 = time.perf_counter()
    n = 0
    for rec in cyvcf2.VCF(str(vcf), threads=None):
        rec.genotype.array()
        n += 1
    return time.perf_counter() - t0, n


def _setup(work: Path, args) -> dict:
    import pandas as pd

    from baselines.run import run_baselines
    from data_prep.prep import prep_dataset
    from data_prep.simulate import simulate_cohort
    from tests.fakes import tiny_config
    from variformer import finetune as ft

    t0 = time.perf_counter()
    sim = simulate_cohort(work / "sim", people=args.people, genes=args.genes,
                          seq_len=args.seq_len, seed=0)  # fmt: skip
    simulate_s = time.perf_counter() - t0
    import cyvcf2

    people = list(cyvcf2.VCF(str(sim.vcf)).samples)[: args.train_people]
    (work / "train_people.txt").write_text("\n".join(people) + "\n")
    genes = list(pd.read_csv(sim.truth_genes, sep="\t")["gene"])
    prep_dataset(vcfs=[sim.vcf], fasta=sim.fasta, annotation=sim.gtf, genes=genes,
                 expression=sim.expression, samples_file=work / "train_people.txt",
                 seq_len=args.seq_len, out=work / "dataset", progress=False)  # fmt: skip
    config = tiny_config("training.max_epochs=1", "training.limit_train_batches=2",
                         f"data.eval_batch_size={args.batch_size}")  # fmt: skip
    ft.finetune(work / "dataset", genes=genes, fold=0, config=config, out=work / "runs",
                name="all", progress=False)  # fmt: skip
    run_baselines(work / "dataset", out=work / "BL", folds=[0])
    return {"vcf": sim.vcf, "genes": genes, "simulate_s": simulate_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=5000)
    parser.add_argument("--genes", type=int, default=20)
    parser.add_argument("--seq-len", type=int, default=1024)
    parser.add_argument("--train-people", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=64, help="Variformer batch size")
    parser.add_argument("--device", default=None, help="default: a GPU if there is one")
    args = parser.parse_args()

    import numpy as np
    import torch

    from data_prep import open_dataset
    from data_prep.genotype_dataset import build_genotype_dataset
    from variformer.impute import impute_expression

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        s = _setup(work, args)
        pieces = args.people * args.genes
        read_s, n_records = _cyvcf2_read(s["vcf"])
        training = open_dataset(work / "dataset")
        t0 = time.perf_counter()
        built = build_genotype_dataset(training, s["vcf"], work / "geno", genes=s["genes"])
        build_s = time.perf_counter() - t0
        walls = {}
        for name, source in (("elastic net", {"baselines": work / "BL"}),
                             ("Variformer (tiny)", {"runs": work / "runs"})):  # fmt: skip
            t0 = time.perf_counter()
            result = impute_expression(vcfs=[s["vcf"]], out=work / f"out-{len(walls)}",
                                       device=args.device, progress=False, **source)  # fmt: skip
            walls[name] = time.perf_counter() - t0
            assert result.wide.shape == (args.genes, args.people)
            assert np.isfinite(result.wide.to_numpy()).all()
        again_s, _ = _cyvcf2_read(s["vcf"])  # after: the machine's load may have changed
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    print(
        f"{args.people} people x {args.genes} genes ({n_records} VCF records, "
        f"{built.n_variants} SNV alleles carried), {args.seq_len}-bp windows, fold 0 only; "
        f"device {device}, torch {torch.__version__} ({torch.get_num_threads()} threads), "
        f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}; "
        f"simulate took {s['simulate_s']:.1f} s"
    )
    print()
    print("| step | wall | people x genes / s | / cyvcf2 read |")
    print("|---|---|---|---|")
    read = min(read_s, again_s)
    rows = [("read the VCF once with cyvcf2 (lower limit; best of before/after)", read),
            ("VCF -> genotype-only dataset on the training windows", build_s),
            *((f"`variformer predict`, {k} (whole command)", v) for k, v in walls.items())]  # fmt: skip
    for label, wall in rows:
        print(f"| {label} | {wall:.2f} s | {pieces / wall:,.0f} | {wall / read:.1f}x |")


if __name__ == "__main__":
    main()
