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
        "model": "m", "negatives": "any-snv", "auroc": pytest.approx(roc_auc_score(y, s)),
        "aupr": pytest.approx(average_precision_score(y, s)), "n_pos": 3, "n_neg": 15,
    }  # fmt: skip


# ----------------------------------------------------------------------------- FM-eQTL pool

POOL_HEADER = (
    "variant_id\tgene_id\ttss_distance\tma_samples\tma_count\tmaf\tpval_nominal\tslope\t"
    "slope_se\tpval_nominal_threshold\tmin_pval_nominal\tpval_beta\n"
)


def _pool_file(path, rows, *, gz=True):
    """A GTEx v8 signif_variant_gene_pairs table of (variant_id, gene_id, tss_distance) rows."""
    import gzip

    text = POOL_HEADER + "".join(
        f"{v}\t{g}\t{d}\t12\t13\t0.1\t1e-6\t0.5\t0.1\t1e-4\t1e-9\t1e-7\n" for v, g, d in rows
    )
    if gz:
        with gzip.open(path, "wt") as fh:
            fh.write(text)
    else:
        path.write_text(text)
    return path


class _PoolDS:
    """The dataset methods the FM-eQTL path uses: path (genes.tsv), genes, variants, window."""

    def __init__(self, root, windows, snvs):
        self.path, self.genes, self._windows, self._snvs = root, list(windows), windows, snvs
        ids = {"G": "ENSG00000000001.5", "H": "ENSG00000000002.3", "K": "ENSG00000000003.1"}
        pd.DataFrame({"gene": self.genes, "gene_id": [ids[g] for g in self.genes]}).to_csv(
            root / "genes.tsv", sep="\t", index=False
        )

    def variants(self, gene):
        pos, ref, alt = zip(*self._snvs[gene])
        w = self._windows[gene]
        return pd.DataFrame({"chrom": w.chrom, "pos": pos, "id": ".", "ref": ref, "alt": alt, "af": 0.2, "maf": 0.2})  # fmt: skip

    def window(self, gene):
        return self._windows[gene]


def test_read_eqtls_gtex_gzip_and_plain(tmp_path):
    ds = _PoolDS(tmp_path, {"G": Window("chr1", 0, 2000, 1000, "+")}, {"G": [(1011, "A", "C")]})
    rows = [
        ("chr1_1011_A_C_b38", "ENSG00000000001.9", 10),  # other version: matched unversioned
        ("1_990_G_T_b38", "ENSG00000000001", -11),  # no chr, no version
        ("chr1_1030_AT_A_b38", "ENSG00000000001.5", 29),  # an indel: read, never an SNV
        ("chr1_1011_A_C_b38", "ENSG00000099999.1", 10),  # not a dataset gene: left out
        ("chrUn_KI270742v1_5_C_G_b38", "G", 7),  # contig with underscores, gene by name
    ]
    for gz in (True, False):
        got = eqtl.read_eqtls(_pool_file(tmp_path / f"p{gz}.txt.gz", rows, gz=gz), ds)
        assert list(got.columns) == ["gene", "chrom", "pos", "ref", "alt", "tss_distance"]
        assert got.values.tolist() == [
            ["G", "1", 990, "G", "T", -11],
            ["G", "1", 1011, "A", "C", 10],
            ["G", "1", 1030, "AT", "A", 29],
            ["G", "Un_KI270742v1", 5, "C", "G", 7],
        ]
        assert got["pos"].dtype == np.int64 and got["tss_distance"].dtype == np.int64


@pytest.mark.parametrize(
    "content, message",
    [
        (POOL_HEADER.replace("tss_distance\t", ""), r"lacks column\(s\) tss_distance"),
        ("variant_id\tgene_id\n", r"lacks column\(s\) tss_distance"),
        (POOL_HEADER + "rs123\tG\t5\t1\t1\t.1\t1\t1\t1\t1\t1\t1\n", r"1 variant_id.*'rs123'"),
        (POOL_HEADER + "chr1_12a_A_G_b38\tG\t5\t1\t1\t.1\t1\t1\t1\t1\t1\t1\n", "variant_id"),
        (POOL_HEADER + "chr1_12_A_G_b38\tG\tfar\t1\t1\t.1\t1\t1\t1\t1\t1\t1\n", "tss_distance"),
        ("", "cannot read"),
    ],
)
def test_read_eqtls_hostile_inputs_give_one_clear_line(tmp_path, content, message):
    ds = _PoolDS(tmp_path, {"G": Window("chr1", 0, 2000, 1000, "+")}, {"G": [(1011, "A", "C")]})
    path = tmp_path / "pool.txt"
    path.write_text(content)
    with pytest.raises(InputError, match=message) as err:
        eqtl.read_eqtls(path, ds)
    assert "\n" not in str(err.value) and str(path) in str(err.value)


def test_read_eqtls_unreadable(tmp_path):
    ds = _PoolDS(tmp_path, {"G": Window("chr1", 0, 2000, 1000, "+")}, {"G": [(1011, "A", "C")]})
    (tmp_path / "cut.gz").write_bytes(b"\x1f\x8b\x08\x00garbage")
    for path in (tmp_path / "cut.gz", tmp_path / "absent.txt.gz"):
        with pytest.raises(InputError, match="cannot read --eqtls") as err:
            eqtl.read_eqtls(path, ds)
        assert "\n" not in str(err.value)


# A hand-made pool. G (+ strand, TSS 1-based 1001) has fine-mapped SNVs at GTEx tss_distance
# +10 and -500 (each with its own neighbourhood of non-fine-mapped eQTLs, so the nearest ones
# do not depend on the order positives are served in), one fine-mapped position the window lacks,
# and pool rows that are not SNVs of the window. H (- strand) has a fine-mapped SNV that is not
# significant (absent from the pool): its distance comes from the window. K has a positive but
# no non-fine-mapped eQTL: skipped.
# |abs(d) - 10| = 1, 2, 3, 4, 5, 7, 8, 9, 10, 11, 12: the site at +10 has two ALT alleles, i.e.
# two positives, which take the ten nearest; the last is left over
_G_NEAR_10 = [-11, 8, 13, -6, 15, 17, -18, 1, 20, -21, 22]
_G_NEAR_500 = [-505, 490, 520, -470, 540, 560]
_H_NEAR_100 = [-95, 104, -112, 90, -75, 130]  # 5, 4, 12, 10, 25, 30 from 100
_H_NEAR_300 = [-305, 290, 320, -335, 260, 250]


def _hand_made(tmp_path):
    windows = {
        "G": Window("chr1", 0, 2000, 1000, "+"),
        "H": Window("chr2", 4000, 6000, 5000, "-"),
        "K": Window("chr3", 0, 2000, 1000, "+"),
    }
    pos1 = {g: (lambda d, w=w: int(w.tss0) + 1 + d) for g, w in windows.items()}  # GTEx distance
    snvs = {
        "G": [(pos1["G"](d), "A", "C") for d in [10, -500, *_G_NEAR_10, *_G_NEAR_500, 700]],
        "H": [(pos1["H"](d), "G", "A") for d in [-100, 300, *_H_NEAR_100, *_H_NEAR_300]],
        "K": [(pos1["K"](5), "C", "T"), (pos1["K"](50), "C", "T")],
    }
    snvs["G"].append((pos1["G"](10), "A", "T"))  # a second ALT at the fine-mapped site
    ds = _PoolDS(tmp_path, windows, snvs)
    rows = [(f"chr1_{pos1['G'](d)}_A_C_b38", "ENSG00000000001.5", d) for d in [10, -500, *_G_NEAR_10, *_G_NEAR_500]]  # fmt: skip
    rows += [
        (f"chr1_{pos1['G'](9)}_AT_A_b38", "ENSG00000000001.5", 9),  # indel: unobserved
        (f"chr1_{pos1['G'](12)}_A_C_b38", "ENSG00000000001.5", 12),  # not an SNV there
        (f"chr1_{pos1['G'](-500)}_A_G_b38", "ENSG00000000001.5", -500),  # other allele
    ]
    rows += [(f"chr2_{pos1['H'](d)}_G_A_b38", "ENSG00000000002.3", d) for d in [-100, *_H_NEAR_100, *_H_NEAR_300]]  # fmt: skip
    rows += [(f"chr3_{pos1['K'](5)}_C_T_b38", "ENSG00000000003.1", 5)]
    pool = _pool_file(tmp_path / "signif.txt.gz", rows)
    fm = tmp_path / "caviar.txt"
    fm_rows = [("ENSG00000000001.5", "1", pos1["G"](d)) for d in (10, -500, 900)]  # 900: no SNV
    fm_rows += [("ENSG00000000002", "2", pos1["H"](d)) for d in (-100, 300)]
    fm_rows += [("ENSG00000000003.1", "3", pos1["K"](5))]
    fm.write_text("TISSUE\tGENE\teQTL\tCHROM\tPOS\tProbability\n" + "".join(f"Whole_Blood\t{g}\t{c}_{p}\t{c}\t{p}\t0.5\n" for g, c, p in fm_rows))  # fmt: skip
    return ds, pool, fm


def _nearest_five(pool_file, fm_file, ds):
    """Independent transcription: the k fine-mapped SNV alleles of a window at one |tss_distance|
    take the 5k non-fine-mapped pool SNVs of the gene nearest in |tss_distance| (the hand-made
    neighbourhoods neither tie nor overlap, so the order positives are served in is moot)."""
    pool = pd.read_csv(pool_file, sep="\t", compression="gzip")
    parts = pool["variant_id"].str.split("_", expand=True)
    pool = pool.assign(chrom=parts[0], pos=parts[1].astype(int), ref=parts[2], alt=parts[3])
    genes = pd.read_csv(ds.path / "genes.tsv", sep="\t")
    pool["gene"] = pool["gene_id"].map(dict(zip(genes["gene_id"], genes["gene"])))
    fm = pd.read_csv(fm_file, sep="\t")
    fm["gene"] = (
        fm["GENE"]
        .str.split(".")
        .str[0]
        .map(dict(zip(genes["gene_id"].str.split(".").str[0], genes["gene"])))
    )
    pos_keys, neg_keys = set(), set()
    for gene in ds.genes:
        w, v = ds.window(gene), ds.variants(gene)
        seen = set(zip(v["pos"], v["ref"], v["alt"]))
        fm_pos = set(fm.loc[fm["gene"] == gene, "POS"])
        observed = np.array([k in seen for k in zip(pool["pos"], pool["ref"], pool["alt"])])
        mine = pool[(pool["gene"] == gene).to_numpy() & observed]
        cand = mine[~mine["pos"].isin(fm_pos)]
        d_pool = dict(zip(mine["pos"], mine["tss_distance"]))
        alleles = {}  # |distance| -> number of positive alleles there
        for p, r, a in sorted(seen):
            if p in fm_pos:
                pos_keys.add((gene, p, r, a))
                d = abs(d_pool.get(p, p - (w.tss0 + 1)))
                alleles[d] = alleles.get(d, 0) + 1
        for d, k in alleles.items():
            gap = np.abs(np.abs(cand["tss_distance"].to_numpy()) - d)
            for i in np.argsort(gap, kind="stable")[: 5 * k]:
                c = cand.iloc[i]
                neg_keys.add((gene, int(c["pos"]), c["ref"], c["alt"]))
    return pos_keys, neg_keys


def test_fm_eqtl_negatives_and_auroc_match_an_independent_transcription(tmp_path):
    from sklearn.metrics import average_precision_score, roc_auc_score

    ds, pool_file, fm_file = _hand_made(tmp_path)
    pool = eqtl.read_eqtls(pool_file, ds)
    sets = eqtl.eqtl_sets(eqtl.read_finemap(fm_file, ds), pool, ds, seed=3)
    assert (sets.n_pos_unobserved, sets.n_pool_unobserved) == (1, 3)
    want_pos, want_neg = _nearest_five(pool_file, fm_file, ds)
    keys = lambda t: set(zip(t["gene"], t["pos"], t["ref"], t["alt"]))  # noqa: E731
    assert keys(sets.positives) == want_pos and keys(sets.negatives) == want_neg
    assert len(sets.negatives) == len(want_neg) == 15 + 10  # G: 3 positive alleles, H: 2; K: 0
    # H's non-significant positive took its distance from the window (GTEx sign, - strand)
    h = sets.positives[sets.positives["gene"] == "H"].set_index("pos")["tss_distance"]
    assert h.to_dict() == {4901: -100, 5301: 300}

    rng = np.random.default_rng(0)
    rows = []
    for gene in ds.genes:
        v = ds.variants(gene)
        for model in ("m1", "m2"):
            keep = rng.random(len(v)) < (1.0 if model == "m1" else 0.7)  # m2 misses some: 0
            rows += [(model, gene, ds.window(gene).chrom, p, r, a, rng.normal())
                     for (p, r, a), k in zip(zip(v["pos"], v["ref"], v["alt"]), keep) if k]  # fmt: skip
    w = pd.DataFrame(rows, columns=["model", "gene", "chrom", "pos", "ref", "alt", "weight"])
    per_model, per_gene = eqtl.eqtl_auroc(w, sets.positives, ds, negatives=sets.negatives)
    assert list(per_gene.columns) == list(eqtl.GENE_COLUMNS)
    assert set(per_gene["gene"]) == {"G", "H"} and set(per_gene["negatives"]) == {"eqtl"}
    expect = {}
    for (model, gene), r in per_gene.set_index(["model", "gene"]).iterrows():
        mine = w[(w["model"] == model) & (w["gene"] == gene)]
        score = dict(zip(zip(mine["pos"], mine["ref"], mine["alt"]), mine["weight"].abs()))
        pos = sorted(k[1:] for k in want_pos if k[0] == gene)
        neg = sorted(k[1:] for k in want_neg if k[0] == gene)
        y = np.r_[np.ones(len(pos)), np.zeros(len(neg))]
        s = np.array([score.get(k, 0.0) for k in pos + neg])
        assert r["auroc"] == pytest.approx(roc_auc_score(y, s))
        assert r["aupr"] == pytest.approx(average_precision_score(y, s))
        assert (r["n_pos"], r["n_neg"]) == (len(pos), len(neg))
        expect.setdefault(model, []).append((roc_auc_score(y, s), average_precision_score(y, s)))
    for _, r in per_model.iterrows():
        assert r["negatives"] == "eqtl"
        assert r["auroc"] == pytest.approx(np.mean([a for a, _ in expect[r["model"]]]))
        assert r["aupr"] == pytest.approx(np.mean([b for _, b in expect[r["model"]]]))


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_eqtl_negatives_properties(data):
    n_pool = data.draw(st.integers(0, 30))
    genes = data.draw(st.lists(st.sampled_from("AB"), min_size=n_pool, max_size=n_pool))
    dist = data.draw(st.lists(st.integers(-50, 50), min_size=n_pool, max_size=n_pool))
    pool = pd.DataFrame({"gene": genes, "chrom": "1", "pos": np.arange(n_pool) + 1, "ref": "A", "alt": "C", "tss_distance": dist})  # fmt: skip
    fm = data.draw(st.lists(st.integers(0, max(0, n_pool - 1)), max_size=4, unique=True)) if n_pool else []  # fmt: skip
    positives = pool.iloc[fm]
    neg = eqtl.eqtl_negatives(positives, pool, n_negatives=3, seed=data.draw(st.integers(0, 9)))
    assert not neg.duplicated(subset=["gene", "pos"]).any()
    assert not set(zip(neg["gene"], neg["pos"])) & set(zip(positives["gene"], positives["pos"]))
    assert set(zip(neg["gene"], neg["pos"], neg["tss_distance"])) <= set(zip(pool["gene"], pool["pos"], pool["tss_distance"]))  # fmt: skip
    for g in "AB":
        n_pos = int((positives["gene"] == g).sum())
        n_free = int(((pool["gene"] == g) & ~pool["pos"].isin(positives["pos"])).sum())
        assert int((neg["gene"] == g).sum()) == (min(3 * n_pos, n_free) if n_pos else 0)
    if len(positives) == 1:  # one positive: exactly the three nearest in |distance| (any ties)
        p = positives.iloc[0]
        free = pool[(pool["gene"] == p["gene"]) & (pool["pos"] != p["pos"])]
        gap = lambda t: np.sort(np.abs(np.abs(t["tss_distance"]) - abs(p["tss_distance"])))  # noqa: E731
        assert list(gap(neg)) == list(gap(free)[:3])


def test_fm_eqtl_sets_on_a_simulated_cohort(tmp_path):
    """simulate -> prep -> the cohort's finemap.txt and signif pairs, read against the dataset."""
    from data_prep import open_dataset
    from tests.datasets import simulated_dataset

    path, sim = simulated_dataset(tmp_path, people=150, genes=3, seq_len=4096)
    ds = open_dataset(path)
    pool, fm = eqtl.read_eqtls(sim.eqtls, ds), eqtl.read_finemap(sim.finemap, ds)
    assert len(pool) == len(pd.read_csv(sim.eqtls, sep="\t")) > 0  # every gene id maps
    for gene, rows in pool.groupby("gene"):  # the simulator's TSS is the dataset's
        assert (rows["tss_distance"] == rows["pos"] - (ds.window(gene).tss0 + 1)).all()
    sets = eqtl.eqtl_sets(fm, pool, ds)
    assert (sets.n_pos_unobserved, sets.n_pool_unobserved) == (0, 0)  # same windows, all SNVs
    keys = lambda t: set(zip(t["gene"], t["pos"], t["ref"], t["alt"]))  # noqa: E731
    assert keys(sets.negatives) <= keys(pool)
    assert not set(zip(sets.negatives["gene"], sets.negatives["pos"])) & set(zip(fm["gene"], fm["pos"]))  # fmt: skip
    assert len(sets.negatives) > 0
    v = {g: ds.variants(g) for g in ds.genes}
    w = pd.concat([v[g].assign(model="m", gene=g, weight=np.arange(len(v[g]))) for g in ds.genes])
    _, per_gene = eqtl.eqtl_auroc(w, sets.positives, ds, negatives=sets.negatives)
    for _, r in per_gene.iterrows():
        assert r["n_pos"] == (sets.positives["gene"] == r["gene"]).sum()
        assert r["n_neg"] == (sets.negatives["gene"] == r["gene"]).sum() <= 5 * r["n_pos"]
