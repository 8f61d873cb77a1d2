"""Learning check: a tiny Variformer against the elastic net on the same simulated genes and splits.

Usage::

    python benchmarks/bench_learning.py [--people 300] [--seq-len 1024] [--h2 0.9 0.6 0.0] [--folds 0 1 2]

simulate -> prep -> for each gene and fold: elastic net (baselines) and a tiny Variformer from
random weights (configs/tiny.yaml, CPU), both scored on the fold's test people with sklearn's
r2_score and scipy's pearsonr. Prints a markdown table; record it in benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import pandas as pd


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--people", type=int, default=300)
    ap.add_argument("--seq-len", type=int, default=1024)
    ap.add_argument("--h2", type=float, nargs="+", default=[0.9, 0.6, 0.0])
    ap.add_argument("--folds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--config", default=str(Path(__file__).resolve().parents[1] / "configs" / "tiny.yaml")
    )
    ap.add_argument(
        "overrides", nargs="*", help="training config overrides, e.g. training.max_epochs=20"
    )
    args = ap.parse_args()

    from baselines.elastic_net import fit_linear
    from data_prep import open_dataset
    from data_prep.prep import prep_dataset
    from data_prep.simulate import simulate_cohort
    from variformer.config import load_config
    from variformer.finetune import finetune

    work = Path(tempfile.mkdtemp(prefix="bench-learning-"))
    sim = simulate_cohort(
        work / "cohort",
        people=args.people,
        genes=len(args.h2),
        seq_len=args.seq_len,
        h2=args.h2,
        seed=args.seed,
    )
    truth = pd.read_csv(sim.truth_genes, sep="\t")
    genes = list(truth["gene"])
    prep_dataset(
        vcfs=[sim.vcf],
        fasta=sim.fasta,
        annotation=sim.gtf,
        genes=genes,
        expression=sim.expression,
        seq_len=args.seq_len,
        out=work / "dataset",
        seed=args.seed,
        progress=False,
    )
    ds = open_dataset(work / "dataset")
    config = load_config(args.config, overrides=args.overrides)
    rows = []
    for gene, h2 in zip(genes, truth["h2_target"]):
        for fold in args.folds:
            en = fit_linear(ds, gene, fold, model="elastic_net", seed=args.seed)
            t0 = time.perf_counter()
            res = finetune(
                work / "dataset",
                genes=[gene],
                fold=fold,
                config=config,
                out=work / "runs",
                force=True,
            )
            vf = res.summary["per_gene"][gene]
            rows.append(
                dict(
                    gene=gene,
                    h2=h2,
                    fold=fold,
                    n_snvs=len(ds.variants(gene)),
                    n_test=en.n_test,
                    elastic_net_r2=en.r2,
                    variformer_r2=vf["test_r2"],
                    elastic_net_pcc=en.pcc,
                    variformer_pcc=vf["test_pcc"],
                    epochs=res.summary["epochs"],
                    train_s=time.perf_counter() - t0,
                )
            )
    table = pd.DataFrame(rows)
    print(
        f"\nmachine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(
        f"cohort: {args.people} people, seq_len {args.seq_len}, seed {args.seed}; config {Path(args.config).name} {' '.join(args.overrides)}\n"
    )
    print(
        table.to_markdown(index=False, floatfmt=".3f")
        if _has_tabulate()
        else table.to_string(index=False)
    )
    means = table.groupby(["gene", "h2"])[
        ["elastic_net_r2", "variformer_r2", "elastic_net_pcc", "variformer_pcc"]
    ].mean()
    print("\nmean over folds:\n")
    print(
        means.reset_index().to_markdown(index=False, floatfmt=".3f")
        if _has_tabulate()
        else means.to_string()
    )


def _has_tabulate() -> bool:
    try:
        import tabulate  # noqa: F401
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    main()
