"""Fig. S10's statistics: the seeded gene draw, the mean over replicates, bootstrap intervals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.errors import InputError
from variformer.analysis.attribution_stats import (
    SUMMARY_COLUMNS,
    bootstrap_ci,
    per_snv_attributions,
    pick_genes,
    summarize_attributions,
)


def test_pick_genes_is_seeded_at_most_n_and_a_subset():
    pool = [f"G{i:02d}" for i in range(42)]
    a = pick_genes(pool, 15, seed=0)
    assert len(a) == 15 == len(set(a)) and set(a) <= set(pool) and a == sorted(a)
    assert pick_genes(pool[::-1], 15, seed=0) == a  # the pool's order does not matter
    assert pick_genes(pool + pool[:3], 15, seed=0) == a  # nor duplicates
    assert pick_genes(pool, 15, seed=1) != a
    # the stated convention: default_rng(seed).choice on the sorted pool
    idx = np.random.default_rng(0).choice(42, size=15, replace=False)
    assert a == sorted(pool[i] for i in idx)
    assert pick_genes(pool[:4], 15, seed=0) == pool[:4]  # fewer pass: all of them
    assert pick_genes(pool, None) == pool and pick_genes([], 15) == []
    with pytest.raises(InputError):
        pick_genes(pool, 0)


def _table(rng, *, models=("variformer", "enformer"), n_snvs=7, folds=(0, 1, 2)) -> pd.DataFrame:
    rows = []
    for model in models:
        for group in ("hsv", "hsv_control"):
            for s in range(n_snvs):
                for fold in folds[: 1 + s % len(folds)]:  # SNVs seen in 1..3 replicates
                    for offset in (-2, -1, 0, 1, 2):
                        if s == 0 and offset == 2:  # at the window's edge: no +2
                            continue
                        rows.append((model, "G1", fold, "reference", group, "1", 100 + 10 * s,
                                     "A", "C", offset, rng.normal(group == "hsv")))  # fmt: skip
    cols = ["model", "gene", "fold", "background", "group", "chrom", "pos", "ref", "alt",
            "offset", "attribution"]  # fmt: skip
    return pd.DataFrame(rows, columns=cols)


def test_per_snv_values_are_the_mean_over_replicates():
    t = _table(np.random.default_rng(0))
    per = per_snv_attributions(t)
    for r in per.sample(20, random_state=0).itertuples():
        rows = t[(t.model == r.model) & (t.group == r.group) & (t.pos == r.pos)]
        rows = rows[rows.offset == r.offset]
        assert r.n_folds == len(rows) and np.isclose(r.attribution, rows["attribution"].mean())


def test_bootstrap_ci_recomputed_with_numpy():
    """Each cell's interval: its per-SNV values (fold means) sorted by SNV key, resampled with
    a fresh default_rng(seed), percentiles of the resample means."""
    t = _table(np.random.default_rng(1))
    s = summarize_attributions(t, n_boot=1000, seed=3)
    assert list(s.columns) == SUMMARY_COLUMNS
    assert len(s) == 2 * 2 * 5
    for r in s.itertuples():
        cell = t[(t.model == r.model) & (t.group == r.group) & (t.offset == r.offset)]
        by_snv: dict[int, list[float]] = {}
        for pos, v in zip(cell["pos"], cell["attribution"]):
            by_snv.setdefault(int(pos), []).append(float(v))
        v = np.array([np.mean(by_snv[p]) for p in sorted(by_snv)])
        idx = np.random.default_rng(3).integers(0, len(v), size=(1000, len(v)))
        lo, hi = np.percentile(v[idx].mean(axis=1), [2.5, 97.5])
        assert r.n_snvs == len(v) == (6 if r.offset == 2 else 7)
        np.testing.assert_allclose([r.mean, r.ci_low, r.ci_high], [v.mean(), lo, hi], atol=1e-12)
        assert bootstrap_ci(v, seed=3) == pytest.approx((lo, hi), abs=1e-12)
    assert (s["ci_low"] <= s["mean"]).all() and (s["mean"] <= s["ci_high"]).all()


def test_bootstrap_ci_covers_the_mean_about_95_percent_of_the_time():
    rng = np.random.default_rng(7)
    n_cells, n = 300, 40
    t = pd.DataFrame(
        {
            "model": "m", "group": "hsv", "gene": "G", "chrom": "1", "ref": "A", "alt": "C",
            "pos": np.tile(np.arange(n), n_cells), "offset": np.repeat(np.arange(n_cells), n),
            "attribution": rng.normal(2.0, 1.0, n * n_cells),
        }
    )  # fmt: skip
    s = summarize_attributions(t, seed=0)
    covered = ((s["ci_low"] <= 2.0) & (s["ci_high"] >= 2.0)).mean()
    assert 0.89 <= covered <= 0.99
    width = (s["ci_high"] - s["ci_low"]).mean()
    assert width == pytest.approx(2 * 1.96 / np.sqrt(n), rel=0.15)


def test_minimal_tables_and_bad_settings():
    t = pd.DataFrame({"model": "m", "group": "driver", "offset": 0, "attribution": [1.0, 3.0]})
    s = summarize_attributions(t)
    assert s.loc[0, "n_snvs"] == 2 and s.loc[0, "mean"] == 2.0
    assert 1.0 <= s.loc[0, "ci_low"] <= s.loc[0, "ci_high"] <= 3.0
    one = summarize_attributions(t.iloc[:1])
    assert one.loc[0, ["mean", "ci_low", "ci_high"]].tolist() == [1.0, 1.0, 1.0]
    assert summarize_attributions(t.iloc[:0]).empty
    with pytest.raises(InputError):
        summarize_attributions(t, n_boot=0)
