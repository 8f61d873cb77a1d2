"""Elastic nets for many genes x 3 folds: the plain per-gene ElasticNetCV loop vs ours.

Genotypes: msprime coalescent haplotypes (human-like LD and allele-frequency spectrum) of
``--people`` diploids over ``--genes`` 49,152-bp windows, thinned per gene to a random number
of SNVs in ``--snvs`` (default 200-1000); expression = a few causal SNVs at a random h2 in
[0, 0.5] plus noise. Splits: ``data_prep.splits.make_splits`` (3 folds, 80/10/10); every model
is fit on the fold's train people (inner 5-fold CV picks the penalty) and scored on its test
people, as ``variformer baselines`` does.

Side by side in one run, on the same ``--compare`` genes x 3 folds:

- ``plain``: ``make_pipeline(VarianceThreshold(), ElasticNetCV(l1_ratio=0.5, cv=KFold(5,
  shuffle=True, random_state=0), max_iter=2000))``, one gene-fold after another (the paper's
  pipeline as a user would write it);
- ``plain + precompute``: the same with ``ElasticNetCV(precompute=True)`` (coordinate descent
  on the Gram matrix, one Gram per inner fold);
- ``enet_cv, whole grid``: :func:`baselines.penalized.enet_cv` with ``patience=None`` (Gram
  matrices of the inner folds by subtraction from one ``X.T @ X``; exactly ElasticNetCV);
- ``enet_cv, early stop``: the same with ``variformer baselines``' default
  ``patience=PATIENCE`` (the inner folds walk the grid together and stop once the held-out MSE
  has risen clearly above its minimum), 1 process and ``--jobs`` joblib processes.

Then ``--agree`` more genes x 3 folds: the early-stopped path against the whole grid (the
reference, equal to ElasticNetCV above), both with ``--jobs`` processes: how often the chosen
alpha differs, and the largest |R2 difference|. Then the early-stopped path over all
``--genes`` x 3 folds (the 10-minute target). Prints markdown tables.

    python benchmarks/bench_baselines.py                       # 300 genes, 670 people
    python benchmarks/bench_baselines.py --genes 60 --compare 6   # scaled down
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from baselines.penalized import PATIENCE, enet_cv
from data_prep.splits import make_splits

WINDOW = 49_152


def simulate(genes: int, people: int, snvs: tuple[int, int], seed: int):
    """Per gene: (dosages float64 (people, p), expression (people,)) from msprime haplotypes."""
    import msprime

    rng = np.random.default_rng(seed)
    ts = msprime.sim_ancestry(
        samples=people,
        ploidy=2,
        population_size=10_000,
        sequence_length=WINDOW * genes,
        recombination_rate=1e-8,
        random_seed=seed + 1,
    )
    ts = msprime.sim_mutations(ts, rate=6e-8, random_seed=seed + 2, discrete_genome=True)
    pos = ts.tables.sites.position
    g = ts.genotype_matrix()  # (sites, 2 * people), 0 = ancestral
    dosage = (g[:, 0::2] > 0).astype(np.int8) + (g[:, 1::2] > 0)  # any derived allele = ALT
    out = []
    for k in range(genes):
        idx = np.flatnonzero((pos >= k * WINDOW) & (pos < (k + 1) * WINDOW))
        idx = idx[dosage[idx].sum(axis=1) > 0]
        want = int(rng.integers(snvs[0], snvs[1] + 1))
        if len(idx) > want:
            idx = np.sort(rng.choice(idx, want, replace=False))
        x = dosage[idx].T.astype(np.float64)
        h2 = rng.uniform(0, 0.5)
        common = np.flatnonzero(x.mean(axis=0) / 2 > 0.05)
        causal = rng.choice(common, min(3, len(common)), replace=False)
        genetic = x[:, causal] @ rng.normal(size=len(causal))
        genetic = (genetic - genetic.mean()) / (genetic.std() + 1e-12)
        y = np.sqrt(h2) * genetic + np.sqrt(1 - h2) * rng.normal(size=people)
        out.append((x, y))
    return out


def r2(obs, pred):
    return 1.0 - np.sum((obs - pred) ** 2) / np.sum((obs - obs.mean()) ** 2)


def fit_plain(x, y, train, test, *, precompute="auto"):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.feature_selection import VarianceThreshold
    from sklearn.linear_model import ElasticNetCV
    from sklearn.model_selection import KFold
    from sklearn.pipeline import make_pipeline

    est = ElasticNetCV(
        l1_ratio=0.5,
        cv=KFold(5, shuffle=True, random_state=0),
        max_iter=2000,
        precompute=precompute,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        pipe = make_pipeline(VarianceThreshold(), est).fit(x[train], y[train])
    return r2(y[test], pipe.predict(x[test])), pipe[-1].alpha_


def fit_ours(x, y, train, test, *, patience=None):
    xt = x[train]
    keep = np.ptp(xt, axis=0) > 0  # VarianceThreshold
    if not keep.any():
        return r2(y[test], np.full(len(test), y[train].mean())), np.nan
    fit = enet_cv(
        xt[:, keep], y[train], l1_ratio=0.5, cv=5, seed=0, max_iter=2000, patience=patience
    )
    return r2(y[test], x[test][:, keep] @ fit.coef + fit.intercept), fit.alpha


def fit_early(x, y, train, test):
    return fit_ours(x, y, train, test, patience=PATIENCE)


def fit_precompute(x, y, train, test):
    return fit_plain(x, y, train, test, precompute=True)


def gene_folds(method, x, y, folds):
    return [method(x, y, tr, te) for tr, te in folds]


def run(method, data, folds, jobs=1):
    started = time.perf_counter()
    if jobs == 1:
        r = [gene_folds(method, x, y, folds) for x, y in data]
    else:
        from joblib import Parallel, delayed

        r = Parallel(n_jobs=jobs)(delayed(gene_folds)(method, x, y, folds) for x, y in data)
    r = np.asarray(r)  # (genes, folds, [r2, alpha])
    return time.perf_counter() - started, r[..., 0], r[..., 1]


def same_alpha(a, b) -> str:
    same = np.isclose(a, b, rtol=1e-9) | (np.isnan(a) & np.isnan(b))
    return f"{int(same.sum())}/{same.size}"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--genes", type=int, default=300)
    p.add_argument("--people", type=int, default=670)
    p.add_argument("--compare", type=int, default=20, help="genes for the side-by-side table")
    p.add_argument(
        "--agree", type=int, default=0, help="more genes: early stop against the whole grid"
    )
    p.add_argument("--snvs", type=int, nargs=2, default=(200, 1000))
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    started = time.perf_counter()
    data = simulate(args.genes, args.people, tuple(args.snvs), args.seed)
    sim_s = time.perf_counter() - started
    samples = [f"P{i}" for i in range(args.people)]
    splits = make_splits(samples, n_folds=3, seed=0)
    folds = [
        (
            np.flatnonzero(splits[f"fold{k}"] == "train"),
            np.flatnonzero(splits[f"fold{k}"] == "test"),
        )
        for k in range(3)
    ]
    n_snvs = np.array([x.shape[1] for x, _ in data])
    print(
        f"# {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"load average {os.getloadavg()[0]:.1f}; {args.genes} genes x 3 folds, "
        f"{args.people} people ({len(folds[0][0])} train / {len(folds[0][1])} test), "
        f"SNVs per gene {n_snvs.min()}-{n_snvs.max()} (median {int(np.median(n_snvs))}); "
        f"simulated in {sim_s:.0f} s\n"
    )
    sub = data[: args.compare]
    fits = 3 * len(sub)
    rows = []
    t_plain, r_plain, a_plain = run(fit_plain, sub, folds)
    rows.append(("plain ElasticNetCV loop", t_plain, r_plain, a_plain))
    t, r, a = run(fit_precompute, sub, folds)
    rows.append(("plain loop, precompute=True (Gram per inner fold)", t, r, a))
    t, r, a = run(fit_ours, sub, folds)
    rows.append(("enet_cv, whole grid, 1 process", t, r, a))
    t, r, a = run(fit_early, sub, folds)
    rows.append((f"enet_cv, early stop (patience {PATIENCE}), 1 process", t, r, a))
    t, r, a = run(fit_early, sub, folds, jobs=args.jobs)
    rows.append((f"enet_cv, early stop, {args.jobs} joblib processes", t, r, a))
    print(f"## side by side: {len(sub)} genes x 3 folds = {fits} fits\n")
    print(
        "| method | wall s | s per fit | speed-up vs plain | same alpha as plain "
        "| max abs R2 diff vs plain |"
    )
    print("|---|---|---|---|---|---|")
    for name, t, r, a in rows:
        diff = float(np.max(np.abs(r - r_plain)))
        print(
            f"| {name} | {t:.1f} | {t / fits:.2f} | {t_plain / t:.1f}x | "
            f"{same_alpha(a, a_plain)} | {diff:.1e} |"
        )
    if args.agree:
        more = data[args.compare : args.compare + args.agree]
        t_ref, r_ref, a_ref = run(fit_ours, more, folds, jobs=args.jobs)
        t, r, a = run(fit_early, more, folds, jobs=args.jobs)
        diff = np.abs(r - r_ref)
        print(f"\n## early stop against the whole grid: {len(more)} more genes x 3 folds\n")
        print("| method | wall s | same alpha as whole grid | max abs R2 diff | mean abs R2 diff |")
        print("|---|---|---|---|---|")
        print(f"| enet_cv, whole grid ({args.jobs} processes) | {t_ref:.1f} | reference | | |")
        print(
            f"| enet_cv, early stop ({args.jobs} processes) | {t:.1f} | {same_alpha(a, a_ref)} "
            f"| {diff.max():.1e} | {diff.mean():.1e} |"
        )
    if args.genes > args.compare:
        t, r, _ = run(fit_early, data, folds, jobs=args.jobs)
        total = 3 * len(data)
        est = t_plain / fits * total
        print(f"\n## all {len(data)} genes x 3 folds = {total} fits\n")
        print("| method | wall s | s per fit | note |")
        print("|---|---|---|---|")
        print(
            f"| enet_cv, early stop, {args.jobs} joblib processes | {t:.0f} | {t / total:.2f} "
            f"| mean test R2 {r.mean():.3f} |"
        )
        print(
            f"| plain loop (extrapolated from the side-by-side genes) | ~{est:.0f} "
            f"| {t_plain / fits:.2f} | not run |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
