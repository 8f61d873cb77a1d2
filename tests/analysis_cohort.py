"""A small simulated cohort with every input ``variformer analyze`` reads, built for tests.

- dataset: ``variformer simulate`` + ``prep`` (real files, known truth);
- baselines: elastic net and ridge per gene and fold written in the ``variformer baselines``
  layout by plain scikit-learn here (independent of the ``baselines`` package);
- ISM tables: ``variformer.tsv`` (per fold: the true effects of causal SNVs plus small noise on
  the rest, so a good model is known) and ``enformer.tsv`` (fold -1: noise only);
- runs: Variformer test predictions = dosages @ its fold's ISM scores + the train people's mean
  offset (a linear model, so the drivers are known: the causal SNVs with large effects).
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
from sklearn.linear_model import ElasticNetCV, RidgeCV

from data_prep import open_dataset
from data_prep.genome import tss_distance
from data_prep.prep import prep_dataset
from data_prep.simulate import simulate_cohort


class Cohort(NamedTuple):
    root: Path
    sim: object
    dataset: Path
    ism: Path
    baselines: Path
    runs: Path


def _fit(model: str, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    keep = x.std(axis=0) > 0
    coef = np.zeros(x.shape[1])
    if model == "elastic_net":
        est = ElasticNetCV(l1_ratio=0.5, cv=3, alphas=20, max_iter=2000, random_state=0)
    else:
        est = RidgeCV(alphas=np.logspace(-2, 4, 13))
    est.fit(x[:, keep], y)
    coef[keep] = est.coef_
    return coef, float(est.intercept_)


def build(
    root,
    *,
    people: int = 200,
    seq_len: int = 16384,
    seed: int = 0,
    genes: int = 4,
    noise: float = 0.0,
) -> Cohort:
    """The cohort; ``noise`` adds that many standard deviations of the fake Variformer's own
    predictions as Gaussian noise (so its drivers are not simply the causal SNVs)."""
    root = Path(root)
    sim = simulate_cohort(root / "sim", people=people, genes=genes, seq_len=seq_len, seed=seed)
    genes = list(pd.read_csv(sim.truth_genes, sep="\t")["gene"])
    prep_dataset(
        vcfs=[sim.vcf], fasta=sim.fasta, annotation=sim.gtf, expression=sim.expression,
        genes=genes, out=root / "ds", seq_len=seq_len, protein_coding_only=True, progress=False,
    )  # fmt: skip
    ds = open_dataset(root / "ds")
    truth = pd.read_csv(sim.truth, sep="\t", dtype={"chrom": str})
    rng = np.random.default_rng(seed)
    bl, runs, ism_dir = root / "bl", root / "runs", root / "ism"
    ism_dir.mkdir()
    summary = {"elastic_net": [], "ridge": []}
    vf_rows, enf_rows = [], []
    for gene in ds.genes:
        v = ds.variants(gene)
        dist = tss_distance(v["pos"], ds.window(gene))
        t = truth[truth["gene"] == gene]
        beta = dict(zip(zip(t["chrom"], t["pos"], t["ref"], t["alt"]), t["beta"]))
        true_w = np.array([beta.get(k, 0.0) for k in zip(v["chrom"], v["pos"], v["ref"], v["alt"])])
        y_all = ds.expression(gene)
        base = v[["chrom", "pos", "id", "ref", "alt", "maf"]].assign(tss_distance=dist, gene=gene)
        enf_rows.append(base.assign(fold=-1, score=rng.normal(0, 0.02, len(v))))
        for fold in range(ds.n_folds):
            split = ds.split(fold)
            train = [s for s in split["train"] if s in y_all.index]
            test = [s for s in split["test"] if s in y_all.index]
            x_tr, x_te = ds.dosages(gene, train), ds.dosages(gene, test)
            for model in summary:
                coef, icpt = _fit(model, x_tr, y_all[train].to_numpy())
                d = bl / model / gene / f"fold{fold}"
                d.mkdir(parents=True)
                v[["chrom", "pos", "id", "ref", "alt"]].assign(coef=coef).to_csv(
                    d / "coefficients.tsv", sep="\t", index=False
                )
                pred = x_te @ coef + icpt
                pd.DataFrame(
                    {
                        "sample": test,
                        "gene": gene,
                        "split": "test",
                        "observed": y_all[test].to_numpy(),
                        "predicted": pred,
                    }
                ).to_csv(d / "predictions.tsv", sep="\t", index=False)
                summary[model].append(
                    {"gene": gene, "fold": fold, "model": model, "test_r2": np.nan, "test_pcc": np.nan,
                     "n_train": len(train), "n_test": len(test), "n_snvs": len(v), "n_nonzero": int((coef != 0).sum())}
                )  # fmt: skip
            score = true_w + rng.normal(0, 0.01, len(v))
            offset = float(y_all[train].mean() - (x_tr @ score).mean())
            pred_vf = x_te @ score + offset
            pred_vf = pred_vf + rng.normal(0, noise * (pred_vf.std() + 1e-9), len(pred_vf))
            vf_rows.append(base.assign(fold=fold, score=score))
            d = runs / gene / f"fold{fold}"
            d.mkdir(parents=True)
            pd.DataFrame(
                {
                    "sample": test,
                    "gene": gene,
                    "split": "test",
                    "observed": y_all[test].to_numpy(),
                    "predicted": pred_vf,
                }
            ).to_csv(d / "predictions.tsv", sep="\t", index=False)
    for model, rows in summary.items():
        pd.DataFrame(rows).to_csv(bl / model / "summary.tsv", sep="\t", index=False)
    cols = ["gene", "fold", "chrom", "pos", "id", "ref", "alt", "maf", "tss_distance", "score"]
    pd.concat(vf_rows)[cols].to_csv(ism_dir / "variformer.tsv", sep="\t", index=False)
    pd.concat(enf_rows)[cols].to_csv(ism_dir / "enformer.tsv", sep="\t", index=False)
    return Cohort(root, sim, root / "ds", ism_dir, bl, runs)
