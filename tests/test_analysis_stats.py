"""The statistics of ``variformer analyze`` against scipy/sklearn and hand-computed examples."""

from __future__ import annotations

import math

import hypothesis.extra.numpy as hnp
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from core.errors import InputError
from data_prep.genome import Window
from tests.reference import authors_drivers
from variformer.analysis import chromatin, drivers, eqtl, hsv, signs

# ----------------------------------------------------------------------------- drivers


def test_forward_drivers_recovers_a_planted_linear_model():
    rng = np.random.default_rng(0)
    x = rng.binomial(2, 0.3, size=(80, 30)).astype(float)
    w = rng.normal(0, 0.02, 30)
    w[[4, 17]] = [1.0, -0.8]  # the two SNVs the predictions are made of
    w[9] = 2.0  # largest |weight| but absent from the predictions: must not be a driver
    y = x[:, [4, 17]] @ np.array([1.0, -0.8])
    found = drivers.forward_drivers(x, y, w)
    assert set(found["snv"]) == {4, 17}
    assert list(found["order"]) == [2, 3]  # rank by |weight|: SNV 9, then 4, then 17
    peartot = stats.pearsonr(x @ w, y).statistic
    assert found.attrs["peartot"] == pytest.approx(peartot)
    s1 = w[4] * x[:, 4]
    r1 = stats.pearsonr(s1, y, alternative="greater")
    assert found["r"].iloc[0] == pytest.approx(r1.statistic)
    assert found["forward_contribution"].iloc[0] == pytest.approx(r1.statistic / peartot)
    assert found["snp_pcc"].iloc[0] == pytest.approx(r1.statistic)
    assert found["snp_p"].iloc[0] == pytest.approx(r1.pvalue)
    r2 = stats.pearsonr(s1 + w[17] * x[:, 17], y).statistic
    assert found["forward_contribution"].iloc[1] == pytest.approx(r2 / peartot)
    assert found["gain"].iloc[1] == pytest.approx((r2 - r1.statistic) / peartot)


def test_forward_drivers_by_hand():
    # 3 people: the one-sided p of r has 1 df (Cauchy): p = 1/2 - arctan(r / sqrt(1 - r**2)) / pi
    x = np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 0.0]])
    y = np.array([0.0, 2.0, 1.0])
    # weights (1, .5): the sum over both SNVs [0, 1.5, 2] has peartot = 1.5 / sqrt(13 / 3)
    peartot = 1.5 / math.sqrt(13 / 3)
    out = drivers.forward_drivers(x, y, np.array([1.0, 0.5]), alpha=1.0)  # p < 1/2 needed
    assert list(out["snv"]) == [0, 1]
    # SNV 0: r = 1/2, p = 1/3; then both: r = peartot, forward contribution 1
    assert out["forward_contribution"].tolist() == pytest.approx([0.5 / peartot, 1.0])
    assert out["snp_p"].tolist() == pytest.approx([1 / 3, 1 / 6])
    assert out["snp_pcc"].tolist() == pytest.approx([0.5, math.sqrt(3) / 2])
    # p < 0.3 rejects SNV 0 (1/3); SNV 1 alone: r = sqrt(3)/2, forward contribution > 1
    out = drivers.forward_drivers(x, y, np.array([1.0, 0.5]), alpha=0.6)
    assert list(out["snv"]) == [1]
    assert out["forward_contribution"].iloc[0] == pytest.approx(math.sqrt(3) / 2 / peartot)
    # weights (-1, .5): peartot < 0, so a positively correlated SNV lowers the forward
    # contribution and is not a driver (the authors' rule, followed to the letter)
    assert drivers.forward_drivers(x, y, np.array([-1.0, 0.5]), alpha=1.0).empty


@settings(max_examples=40, deadline=None)
@given(
    x=hnp.arrays(np.float64, (12, 6), elements=st.sampled_from([0.0, 1.0, 2.0])),
    y=hnp.arrays(np.float64, 12, elements=st.floats(-3, 3, allow_nan=False, width=32)),
    w=hnp.arrays(np.float64, 6, elements=st.floats(-2, 2, allow_nan=False, width=32)),
    alpha=st.sampled_from([0.01, 0.5, 6.0]),
)
def test_forward_drivers_equal_the_authors_loop(x, y, w, alpha):
    found = drivers.forward_drivers(x, y, w, alpha=alpha)
    want, rec = authors_drivers(x, y, w, alpha=alpha)
    assert list(found["snv"]) == want
    for r in found.itertuples():
        assert (r.forward_contribution, r.snp_pcc, r.snp_p) == pytest.approx(rec[r.snv])


def test_forward_drivers_degenerate_inputs():
    x = np.ones((5, 3))
    assert drivers.forward_drivers(x, np.arange(5.0), np.ones(3)).empty  # constant dosages
    assert drivers.forward_drivers(np.eye(5, 3), np.ones(5), np.ones(3)).empty  # constant preds
    assert drivers.forward_drivers(np.zeros((5, 0)), np.arange(5.0), np.zeros(0)).empty


# ----------------------------------------------------------------------------- HSVs


def _weights(models, genes, n, rng):
    rows = []
    for m in models:
        for g in genes:
            for i in range(n):
                rows.append(
                    (
                        m,
                        g,
                        "chr1",
                        100 + i,
                        f"rs{i}",
                        "A",
                        "C",
                        rng.uniform(0, 0.5),
                        i * 10 - 50,
                        rng.normal(),
                    )
                )
    return pd.DataFrame(rows, columns=["model", "gene", "chrom", "pos", "id", "ref", "alt", "maf", "tss_distance", "weight"])  # fmt: skip


@settings(max_examples=30, deadline=None)
@given(
    w=hnp.arrays(np.float64, st.integers(1, 25), elements=st.sampled_from([0.0, -1.0, 0.5, 2.0, -3.0, 0.25])),
    k=st.integers(0, 30),
)  # fmt: skip
def test_select_hsvs_is_the_top_k_by_absolute_weight(w, k):
    df = _weights(["m"], ["G"], len(w), np.random.default_rng(0)).assign(weight=w)
    out = hsv.select_hsvs(df, pd.Series({"G": k}))
    assert len(out) == min(k, int((w != 0).sum()))
    chosen = set(out["pos"])
    rest = np.abs(df.loc[~df["pos"].isin(chosen), "weight"].to_numpy())
    if len(out):
        assert out["weight"].abs().min() >= rest.max(initial=0.0)
    assert list(out["rank"]) == list(range(1, len(out) + 1))
    assert (out["weight"].abs().diff().dropna() <= 0).all()


def test_hsv_counts_rounds_the_fold_mean_half_up():
    s = pd.DataFrame(
        {"model": ["elastic_net"] * 4 + ["ridge"], "gene": ["A", "A", "B", "B", "A"],
         "fold": [0, 1, 0, 1, 0], "n_nonzero": [1, 2, 3, 3, 99]}
    )  # fmt: skip
    assert hsv.hsv_counts(s).to_dict() == {"A": 2, "B": 3}
    with pytest.raises(InputError, match="lasso"):
        hsv.hsv_counts(s, model="lasso")


def test_compare_hsvs_matches_scipy():
    rng = np.random.default_rng(1)
    h = _weights(["a", "b"], ["G"], 40, rng)
    h.loc[h["model"] == "b", "maf"] += 0.2
    out = hsv.compare_hsvs(h).set_index(["feature", "model_a", "model_b"])
    x, y = h.loc[h.model == "a", "maf"], h.loc[h.model == "b", "maf"]
    row = out.loc[("maf", "a", "b")]
    assert row["mannwhitney_p"] == pytest.approx(stats.mannwhitneyu(x, y).pvalue)
    assert row["ks_p"] == pytest.approx(stats.ks_2samp(x, y).pvalue)
    assert row["median_b"] == pytest.approx(np.median(y))
    d = out.loc[("abs_tss_distance", "a", "b")]
    assert d["median_a"] == pytest.approx(np.median(np.abs(h.loc[h.model == "a", "tss_distance"])))


def test_hsv_jaccard_by_hand():
    h = pd.DataFrame(
        {"model": ["a", "a", "a", "b", "b"], "gene": ["G", "G", "H", "G", "H"],
         "chrom": "chr1", "pos": [1, 2, 5, 2, 6], "ref": "A", "alt": "C"}
    )  # fmt: skip
    j = hsv.hsv_jaccard(h).set_index("gene")
    assert j.loc["G", "jaccard"] == pytest.approx(1 / 2)  # {1,2} vs {2}
    assert j.loc["H", "jaccard"] == 0.0  # {5} vs {6}
    assert j.loc["all", "jaccard"] == pytest.approx(1 / 4)  # 1 shared of 4 distinct
    assert j.loc["all", "n_shared"] == 1


# ----------------------------------------------------------------------------- signs


def test_sign_agreement_by_hand_and_fisher():
    en = [0.5, -0.3, 0.2, -0.9, 0.04, 0.6, -0.1]
    vf = [1.0, -2.0, -0.1, -0.5, -9.0, 0.0, 0.3]
    rows = []
    for i, (a, b) in enumerate(zip(en, vf)):
        rows.append(("elastic_net", "G", "chr1", i + 1, "A", "C", a))
        rows.append(("variformer", "G", "chr1", i + 1, "A", "C", b))
    w = pd.DataFrame(rows, columns=["model", "gene", "chrom", "pos", "ref", "alt", "weight"])
    out = signs.sign_agreement(w).set_index("gene")
    # kept: |en| > 0.05 and vf != 0 -> SNVs 0,1,2,3,6 (4: |en| 0.04; 5: vf 0)
    # signs (en, vf): (+,+) (-,-) (+,-) (-,-) (-,+): agree 3 of 5
    r = out.loc["all"]
    assert (r["n"], r["n_agree"]) == (5, 3)
    assert (r["n_pos_pos"], r["n_pos_neg"], r["n_neg_pos"], r["n_neg_neg"]) == (1, 1, 1, 2)
    ref = stats.fisher_exact([[1, 1], [1, 2]])
    assert r["fisher_p"] == pytest.approx(ref.pvalue)
    assert r["odds_ratio"] == pytest.approx(ref.statistic)
    assert r["fraction"] == pytest.approx(0.6)


# ----------------------------------------------------------------------------- chromatin


def test_chromatin_enrichment_by_hand(tmp_path):
    bed = tmp_path / "s1.bed"
    bed.write_text(
        "track name=x\nchr1\t0\t250\t1_TssA\nchr1\t250\t1000\t18_Quies\nchr2\t0\t9\t1_TssA\n"
    )
    bed2 = tmp_path / "s2.bed"
    bed2.write_text("chr1\t0\t500\t1_TssA\nchr1\t500\t2000\t18_Quies\n")
    ann = {"s1": chromatin.read_chromhmm(bed), "s2": chromatin.read_chromhmm(bed2)}
    win = {"G": Window("chr1", 0, 1000, 500, "+")}
    h = pd.DataFrame(
        {"model": "m", "gene": "G", "chrom": "chr1", "pos": [11, 21, 401]}
    )  # 0-based 10, 20, 400
    out = chromatin.chromatin_enrichment(h, win, ann).set_index(["gene", "state"])
    # s1: TssA obs 2, exp 0.25*3; Quies obs 1, exp 0.75*3. s2: TssA obs 3, exp 1.5; Quies 0, 1.5
    tss = out.loc[("G", "1_TssA")]
    assert tss["observed"] == pytest.approx((2 + 3) / 2)
    assert tss["expected"] == pytest.approx((0.75 + 1.5) / 2)
    assert tss["log2_ratio"] == pytest.approx(math.log2((2.5 + 0.5) / (1.125 + 0.5)))
    q = out.loc[("G", "18_Quies")]
    assert (q["observed"], q["expected"]) == (pytest.approx(0.5), pytest.approx((2.25 + 1.5) / 2))
    assert out.loc[("all", "1_TssA"), "observed"] == pytest.approx(2.5)
    assert list(out.loc["G"].index) == ["1_TssA", "18_Quies"]  # numeric state order
    assert (out["n_hsvs"] == 3).all() and (out["n_samples"] == 2).all()


def test_read_chromhmm_errors(tmp_path):
    bad = tmp_path / "bad.bed"
    bad.write_text("chr1\t0\t10\n")
    with pytest.raises(InputError, match="chrom, start, end, state"):
        chromatin.read_chromhmm(bad)
    with pytest.raises(InputError, match="does not exist"):
        chromatin.read_chromhmm(tmp_path / "none.bed")


# ----------------------------------------------------------------------------- eQTL auROC


@settings(max_examples=40, deadline=None)
@given(
    d=hnp.arrays(np.int64, st.integers(2, 40), elements=st.integers(-500, 500)),
    data=st.data(),
)
def test_matched_negatives_properties(d, data):
    pos = np.asarray(data.draw(hnp.arrays(bool, len(d))))
    neg = eqtl.matched_negatives(d, pos, n_negatives=5, rng=np.random.default_rng(0))
    assert len(set(neg)) == len(neg)  # each SNV at most once
    assert not pos[neg].any()  # never a positive
    assert len(neg) == min(5 * pos.sum(), (~pos).sum())


def test_matched_negatives_pick_the_closest():
    d = np.array([0, 1, 2, 3, 100, 200, 300, 1000])
    pos = np.zeros(8, bool)
    pos[0] = True
    neg = eqtl.matched_negatives(d, pos, n_negatives=3)
    assert list(neg) == [1, 2, 3]


class _FakeDS:
    """The two dataset methods eqtl_auroc uses."""

    def __init__(self, n):
        self.genes = ["G"]
        self.v = pd.DataFrame({"chrom": "chr1", "pos": np.arange(1, n + 1), "id": ".", "ref": "A", "alt": "C", "af": 0.1, "maf": 0.1})  # fmt: skip

    def variants(self, gene):
        return self.v

    def window(self, gene):
        return Window("chr1", 0, 100, 50, "+")


def test_eqtl_auroc_matches_sklearn():
    from sklearn.metrics import average_precision_score, roc_auc_score

    ds = _FakeDS(60)
    rng = np.random.default_rng(3)
    w = pd.DataFrame({"model": "m", "gene": "G", "chrom": "chr1", "pos": np.arange(1, 61), "ref": "A", "alt": "C", "weight": rng.normal(size=60)})  # fmt: skip
    positives = pd.DataFrame({"gene": "G", "chrom": "1", "pos": [5, 30, 44]})  # no chr prefix
    per_model, per_gene = eqtl.eqtl_auroc(w, positives, ds, seed=7)
    dist = np.arange(60) - 50
    is_pos = np.isin(np.arange(1, 61), [5, 30, 44])
    neg = eqtl.matched_negatives(dist, is_pos, rng=np.random.default_rng(7))
    idx = np.r_[np.flatnonzero(is_pos), neg]
    y = np.r_[np.ones(3), np.zeros(len(neg))]
    s = np.abs(w["weight"].to_numpy()[idx])
    assert per_gene.loc[0, "auroc"] == pytest.approx(roc_auc_score(y, s))
    assert per_gene.loc[0, "aupr"] == pytest.approx(average_precision_score(y, s))
    assert per_model.to_dict("records")[0] == {
        "model": "m", "auroc": pytest.approx(roc_auc_score(y, s)),
        "aupr": pytest.approx(average_precision_score(y, s)), "n_pos": 3, "n_neg": 15,
    }  # fmt: skip
