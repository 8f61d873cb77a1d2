"""Tests for baselines.elastic_net against direct scikit-learn / scipy fits on a fake dataset."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.feature_selection import VarianceThreshold
from sklearn.linear_model import ElasticNetCV, LassoCV, RidgeCV
from sklearn.metrics import r2_score
from sklearn.model_selection import KFold
from sklearn.pipeline import make_pipeline

from baselines.elastic_net import RIDGE_ALPHAS, fit_linear, fit_linear_many
from core.errors import InputError

CAUSAL = {"G1": [3, 11, 17], "G2": [0, 5]}
EFFECTS = {"G1": [0.8, -0.6, 0.5], "G2": [0.7, -0.7]}


class FakeDataset:
    """The slice of the dataset API the baselines use, over simulated genotypes.

    G1: 25 variants (3 causal), column 7 constant in everyone, column 8 constant among train
    people only. G2: 12 variants, 2 causal. NOVAR: no variants. FLAT: 4 variants all hom-ref.
    """

    def __init__(self, n=240, seed=0):
        rng = np.random.default_rng(seed)
        self.samples = [f"P{i:03d}" for i in range(n)]
        self.genes = ["G1", "G2", "NOVAR", "FLAT"]
        self.n_folds = 2
        self._dos, self._var, self._expr = {}, {}, {}
        # fold 0: first 60% train, next 20% tune, last 20% test; fold 1 rotates by 20%
        idx = np.arange(n)
        self._folds = [idx, np.roll(idx, n // 5)]
        self._train_rank = [rng.permutation(int(0.6 * n)) for _ in range(2)]
        n_var = {"G1": 25, "G2": 12, "NOVAR": 0, "FLAT": 4}
        for gene, v in n_var.items():
            maf = rng.uniform(0.1, 0.5, size=v)
            dos = rng.binomial(2, maf, size=(n, v)).astype(np.float32)
            y = rng.normal(scale=0.5, size=n)
            if gene == "G1":
                dos[:, 7] = 0
                train0 = self._folds[0][: int(0.6 * n)]
                dos[train0, 8] = 1  # varies only outside the fold-0 train set
            if gene == "FLAT":
                dos[:] = 0
            for col, beta in zip(CAUSAL.get(gene, []), EFFECTS.get(gene, [])):
                y += beta * dos[:, col]
            self._dos[gene] = dos
            self._var[gene] = pd.DataFrame(
                {
                    "chrom": "chr1",
                    "pos": 1000 * (self.genes.index(gene) + 1) + np.arange(v) * 7 + 1,
                    "id": ".",
                    "ref": "A",
                    "alt": "G",
                    "af": maf,
                    "maf": np.minimum(maf, 1 - maf),
                }
            )
            self._expr[gene] = pd.Series(y, index=self.samples, name=gene)
        # one test person has no expression: the baseline must leave them out
        for gene in self._expr:
            self._expr[gene] = self._expr[gene].drop(self.samples[-1])

    def variants(self, gene):
        return self._var[gene].copy()

    def dosages(self, gene, samples=None):
        if samples is None:
            return self._dos[gene].copy()
        rows = [self.samples.index(s) for s in samples]
        return self._dos[gene][rows]

    def expression(self, gene):
        return self._expr[gene].copy()

    def split(self, fold, *, train_fraction=1.0):
        order = self._folds[fold]
        n = len(order)
        train = [self.samples[i] for i in order[: int(0.6 * n)]]
        train = [train[r] for r in np.argsort(self._train_rank[fold])]
        keep = math.ceil(train_fraction * len(train) - 1e-9)
        return {
            "train": train[:keep],
            "tune": [self.samples[i] for i in order[int(0.6 * n) : int(0.8 * n)]],
            "test": [self.samples[i] for i in order[int(0.8 * n) :]],
        }


@pytest.fixture(scope="module")
def ds():
    return FakeDataset()


def direct_fit(ds, gene, fold, estimator, *, train_fraction=1.0):
    """The paper's pipeline written out by hand on the same split."""
    split = ds.split(fold, train_fraction=train_fraction)
    expr = ds.expression(gene)
    train = [s for s in split["train"] if s in expr.index]
    test = [s for s in split["test"] if s in expr.index]
    pipe = make_pipeline(VarianceThreshold(), estimator)
    pipe.fit(ds.dosages(gene, train).astype(float), expr.loc[train].to_numpy())
    pred = pipe.predict(ds.dosages(gene, test).astype(float))
    return pipe, test, expr.loc[test].to_numpy(), pred


def folds_for(seed=0, cv=5):
    """The internal CV folds fit_linear uses by default (seed 0, 5 shuffled folds)."""
    return KFold(n_splits=cv, shuffle=True, random_state=seed)


def test_metrics_match_sklearn_and_scipy(ds):
    fit = fit_linear(ds, "G1", 0)
    est = ElasticNetCV(l1_ratio=0.5, cv=folds_for(), max_iter=2000, random_state=0)
    pipe, test, obs, pred = direct_fit(ds, "G1", 0, est)
    test_rows = fit.predictions[fit.predictions["split"] == "test"]
    assert list(test_rows["sample"]) == test
    assert "P239" not in set(fit.predictions["sample"])  # no expression -> not evaluated
    np.testing.assert_allclose(test_rows["predicted"], pred, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(test_rows["observed"], obs)
    assert fit.r2 == pytest.approx(r2_score(obs, pred), rel=1e-9)
    assert fit.pcc == pytest.approx(stats.pearsonr(obs, pred)[0], rel=1e-9)
    assert fit.n_train == 144 and fit.n_test == len(test) == 47
    assert fit.r2 > 0.5  # the simulated signal is strong
    # tune people are predicted too, with the same model
    tune = ds.split(0)["tune"]
    tune_rows = fit.predictions[fit.predictions["split"] == "tune"]
    assert list(tune_rows["sample"]) == tune
    np.testing.assert_allclose(tune_rows["predicted"], pipe.predict(ds.dosages("G1", tune)))
    assert set(fit.predictions["gene"]) == {"G1"}


def test_causal_coefficients_are_the_largest(ds):
    for gene in ("G1", "G2"):
        fit = fit_linear(ds, gene, 0)
        keys = fit.coefficients.index
        top = fit.coefficients.abs().sort_values(ascending=False).index[: len(CAUSAL[gene])]
        assert set(top) == {keys[i] for i in CAUSAL[gene]}
        # signs of the causal effects are recovered
        got = fit.coefficients.iloc[CAUSAL[gene]].to_numpy()
        assert np.all(np.sign(got) == np.sign(EFFECTS[gene]))


def test_coefficients_cover_all_variants_and_zero_variance_gets_zero(ds):
    variants = ds.variants("G1")
    for model in ("elastic_net", "lasso", "ridge"):
        fit = fit_linear(ds, "G1", 0, model=model)
        expected_keys = [f"chr1:{p}:A:G" for p in variants["pos"]]
        assert list(fit.coefficients.index) == expected_keys
        assert fit.coefficients.iloc[7] == 0.0  # constant in everyone
        assert fit.coefficients.iloc[8] == 0.0  # constant among the train people
    # ridge weights every variant that varies
    ridge = fit_linear(ds, "G1", 0, model="ridge").coefficients
    assert np.count_nonzero(ridge.to_numpy()) == len(ridge) - 2


@pytest.mark.parametrize(
    ("model", "estimator"),
    [
        ("elastic_net", lambda f: ElasticNetCV(l1_ratio=0.5, cv=f, max_iter=2000, random_state=0)),
        ("lasso", lambda f: LassoCV(cv=f, max_iter=2000, random_state=0)),
        ("ridge", lambda f: RidgeCV(alphas=RIDGE_ALPHAS, cv=f)),
    ],
)
def test_model_switch_matches_the_named_estimator(ds, model, estimator):
    fit = fit_linear(ds, "G2", 1, model=model)
    pipe, _, obs, pred = direct_fit(ds, "G2", 1, estimator(folds_for()))
    support = pipe.named_steps["variancethreshold"].get_support()
    np.testing.assert_allclose(fit.coefficients.to_numpy()[support], pipe[-1].coef_, atol=1e-10)
    assert fit.model == model
    assert fit.r2 == pytest.approx(r2_score(obs, pred), rel=1e-9)


def test_models_differ_and_l1_ratio_is_used(ds):
    lasso = fit_linear(ds, "G1", 0, model="lasso").coefficients
    enet = fit_linear(ds, "G1", 0, model="elastic_net").coefficients
    ridge = fit_linear(ds, "G1", 0, model="ridge").coefficients
    assert not np.allclose(lasso, enet) and not np.allclose(enet, ridge)
    # l1_ratio=1 is the lasso (same folds, same alpha grid rule)
    enet1 = fit_linear(ds, "G1", 0, model="elastic_net", l1_ratio=1.0).coefficients
    np.testing.assert_allclose(enet1, lasso, atol=1e-8)
    # lasso is sparser than ridge
    assert np.count_nonzero(lasso.to_numpy()) < np.count_nonzero(ridge.to_numpy())


def test_train_fraction_subsets_train_only(ds):
    full = fit_linear(ds, "G2", 0)
    half = fit_linear(ds, "G2", 0, train_fraction=0.5)
    assert half.n_train == math.ceil(0.5 * 144) == 72
    assert half.n_test == full.n_test
    pd.testing.assert_frame_equal(
        half.predictions[["sample", "split", "observed"]],
        full.predictions[["sample", "split", "observed"]],
    )
    # the fit really used the nested subset
    est = ElasticNetCV(l1_ratio=0.5, cv=folds_for(), max_iter=2000, random_state=0)
    _, _, obs, pred = direct_fit(ds, "G2", 0, est, train_fraction=0.5)
    assert half.r2 == pytest.approx(r2_score(obs, pred), rel=1e-9)


@pytest.mark.parametrize("gene", ["NOVAR", "FLAT"])
def test_no_usable_variants_predicts_train_mean(ds, gene):
    fit = fit_linear(ds, gene, 0)
    train = ds.split(0)["train"]
    mean = ds.expression(gene).loc[train].mean()
    np.testing.assert_allclose(fit.predictions["predicted"], mean)
    assert fit.r2 <= 0
    assert np.isnan(fit.pcc)
    assert len(fit.coefficients) == len(ds.variants(gene))
    assert (fit.coefficients == 0).all()


def test_fit_linear_many_summary(ds):
    table = fit_linear_many(ds, ["G2", "NOVAR"], [0, 1], model="lasso")
    assert list(table[["gene", "fold"]].itertuples(index=False, name=None)) == [
        ("G2", 0),
        ("G2", 1),
        ("NOVAR", 0),
        ("NOVAR", 1),
    ]
    assert (table["model"] == "lasso").all()
    single = fit_linear(ds, "G2", 1, model="lasso")
    row = table.iloc[1]
    assert row["r2"] == pytest.approx(single.r2) and row["pcc"] == pytest.approx(single.pcc)
    assert row["n_nonzero"] == np.count_nonzero(single.coefficients.to_numpy())
    assert row["n_variants"] == 12
    tune = single.predictions[single.predictions["split"] == "tune"]
    assert row["r2_tune"] == pytest.approx(r2_score(tune["observed"], tune["predicted"]))


def test_bad_model_is_input_error(ds):
    with pytest.raises(InputError, match="unknown linear model"):
        fit_linear(ds, "G1", 0, model="svm")
