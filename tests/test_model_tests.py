"""``model_tests.tsv``: the between-model tests behind the stars of Figs. 3a, 3b, 3d and S8.

The end-to-end tests recompute every row from the written ``hsvs.tsv``, ``motifs.tsv``,
``drivers.tsv``, the dataset and the ChromHMM BED with independent scipy code (Fisher's exact
test, Mann-Whitney U, Benjamini-Hochberg by hand); the permutation test is checked on hand-made
windows whose p-value is known exactly (hypergeometric) or bounded.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from data_prep import open_dataset
from data_prep.genome import Window
from tests.analysis_cohort import build
from tests.reference import bh_adjust

KEYS = ["gene", "chrom", "pos", "ref", "alt"]
COLUMNS = [
    "analysis", "variants", "maf_filter", "state", "model_a", "model_b", "n_genes", "n_a", "n_b",
    "value_a", "value_b", "test", "statistic", "p", "p_adj", "stars", "hsv_fold",
]  # fmt: skip
ISM_MODELS = {"variformer", "enformer"}


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    return build(tmp_path_factory.mktemp("model_tests"), genes=4)


@pytest.fixture(scope="module")
def analysis(cohort):
    from variformer.analysis.analyze import AnalysisInputs, AnalysisOptions, analyze

    inputs = AnalysisInputs(
        cohort.dataset, cohort.ism, cohort.baselines, runs=cohort.runs,
        chromhmm=[cohort.sim.chromhmm],
    )  # fmt: skip
    opts = AnalysisOptions(min_r2=None, motif_method="log", attributions=False, permutations=300)
    return analyze(inputs, out=cohort.root / "an", options=opts)


def _read(analysis, name) -> pd.DataFrame:
    return pd.read_csv(
        analysis.out / f"{name}.tsv", sep="\t", dtype={"chrom": str, "gene": str, "state": str},
        keep_default_na=False, na_values=["NA"],
    )  # fmt: skip


@pytest.fixture(scope="module")
def written(analysis):
    return _read(analysis, "model_tests")


def _stars(p_adj: float) -> str:
    if math.isnan(p_adj):
        return ""
    for cut, s in ((1e-4, "****"), (1e-3, "***"), (1e-2, "**"), (0.05, "*")):
        if p_adj < cut:
            return s
    return "ns"


def _matched(v: pd.DataFrame, a: str, b: str):
    genes = sorted(set(v.loc[v["model"] == a, "gene"]) & set(v.loc[v["model"] == b, "gene"]))
    on = v["gene"].isin(genes)
    return genes, v[on & (v["model"] == a)], v[on & (v["model"] == b)]


# ---------------------------------------------------------------- end to end, recomputed


def test_table_layout(analysis, written):
    assert list(written.columns) == COLUMNS
    assert analysis.model_tests is not None and len(analysis.model_tests) == len(written)
    assert set(written["analysis"]) == {"motif_rate", "chromatin", "hsv_maf", "hsv_tss_distance"}
    assert set(written["variants"]) == {"hsv", "driver"}
    assert sorted(set(written["maf_filter"])) == [0.0, 0.01, 0.05]
    tests = {"motif_rate": {"fisher"}, "chromatin": {"permutation"}}
    tests |= {"hsv_maf": {"mannwhitney"}, "hsv_tss_distance": {"mannwhitney"}}
    for analysis_name, want in tests.items():
        assert set(written.loc[written["analysis"] == analysis_name, "test"]) == want
    assert (written.loc[written["analysis"] != "chromatin", "state"] == "").all()
    assert (written.loc[written["analysis"] == "chromatin", "state"] != "").all()
    models = sorted(_read(analysis, "hsvs")["model"].unique())
    pairs = {tuple(p) for p in itertools.combinations(models, 2)}
    mw = written[written["analysis"] == "hsv_maf"]
    assert {(r.model_a, r.model_b) for r in mw.itertuples()} == pairs


def test_motif_rates_are_fishers_exact_test_on_matched_genes(analysis, written):
    hsvs, hits = _read(analysis, "hsvs"), _read(analysis, "motifs")
    drivers = _read(analysis, "drivers")
    linear = hsvs[~hsvs["model"].isin(ISM_MODELS)]
    groups = {"hsv": hsvs, "driver": pd.concat([drivers, linear], ignore_index=True)}
    hit_keys = set(zip(*(hits[c] for c in KEYS)))
    rows = written[written["analysis"] == "motif_rate"]
    assert len(rows) and (rows["test"] == "fisher").all()
    n_checked = 0
    for r in rows.itertuples():
        v = groups[r.variants]
        v = v[v["maf"] >= r.maf_filter].drop_duplicates(["model", *KEYS])
        genes, x, y = _matched(v, r.model_a, r.model_b)
        ha = sum(k in hit_keys for k in zip(*(x[c] for c in KEYS)))
        hb = sum(k in hit_keys for k in zip(*(y[c] for c in KEYS)))
        assert (r.n_genes, r.n_a, r.n_b) == (len(genes), len(x), len(y))
        res = stats.fisher_exact([[ha, len(x) - ha], [hb, len(y) - hb]])
        assert r.p == pytest.approx(res.pvalue, rel=1e-5)
        assert r.value_a == pytest.approx(ha / len(x), rel=1e-5)
        assert r.value_b == pytest.approx(hb / len(y), rel=1e-5)
        n_checked += ha > 0 and hb > 0
    assert n_checked > 5  # tables with hits on both sides, not only trivial ones


def test_maf_and_tss_distance_are_two_sided_mann_whitney(analysis, written):
    hsvs = _read(analysis, "hsvs")
    hsvs = hsvs.assign(abs_tss_distance=hsvs["tss_distance"].abs())
    column = {"hsv_maf": "maf", "hsv_tss_distance": "abs_tss_distance"}
    rows = written[written["analysis"].isin(column)]
    for r in rows.itertuples():
        h = hsvs[hsvs["maf"] >= r.maf_filter]
        genes, x, y = _matched(h, r.model_a, r.model_b)
        x, y = x[column[r.analysis]].to_numpy(float), y[column[r.analysis]].to_numpy(float)
        assert (r.n_genes, r.n_a, r.n_b) == (len(genes), len(x), len(y))
        mw = stats.mannwhitneyu(x, y, alternative="two-sided")
        assert r.p == pytest.approx(mw.pvalue, rel=1e-5)
        assert r.statistic == pytest.approx(mw.statistic, rel=1e-5)
        assert r.value_a == pytest.approx(np.median(x), rel=1e-5)


def test_bh_within_each_family_and_stars(written):
    for _, fam in written.groupby(["analysis", "variants", "maf_filter"]):
        want = bh_adjust(fam["p"].to_numpy(float))
        np.testing.assert_allclose(fam["p_adj"].to_numpy(float), want, rtol=1e-4)
    assert list(written["stars"]) == [_stars(p) for p in written["p_adj"]]
    assert written["p"].notna().all()  # every model has HSVs in these genes: every test ran


def test_maf_filter_removes_the_rare_hsvs(analysis, written):
    hsvs = _read(analysis, "hsvs")
    assert (hsvs["maf"] < 0.05).any() and (hsvs["maf"] >= 0.05).any()  # the filter bites
    alone = written[(written["analysis"] == "chromatin") & (written["model_b"] == "window_snvs")]
    for f in (0.0, 0.01, 0.05):
        kept = hsvs[hsvs["maf"] >= f]
        per_model = kept.groupby("model").size()
        rows = alone[alone["maf_filter"] == f].drop_duplicates("model_a")
        for r in rows.itertuples():  # each model's own test: all its kept HSVs
            assert r.n_a == per_model.get(r.model_a, 0), (f, r.model_a)
        mw = written[(written["analysis"] == "hsv_maf") & (written["maf_filter"] == f)]
        assert (mw[["value_a", "value_b"]] >= f).all().all()
    shrunk = alone.groupby("maf_filter")["n_a"].sum()
    assert shrunk[0.05] < shrunk[0.0]


def _bed_state(bed: pd.DataFrame, chrom: str, pos1: np.ndarray) -> np.ndarray:
    """The state of each 1-based position in a non-overlapping BED ('' outside segments)."""
    b = bed[bed["chrom"] == chrom].sort_values("start0")
    i = np.searchsorted(b["start0"].to_numpy(), pos1 - 1, side="right") - 1
    inside = (i >= 0) & (pos1 - 1 < b["end0"].to_numpy()[np.maximum(i, 0)])
    return np.where(inside, b["state"].to_numpy()[np.maximum(i, 0)], "")


def test_chromatin_counts_against_the_windows_snvs(analysis, written, cohort):
    """Each model's row: observed = chromatin.tsv's (one sample: HSVs in the state) and
    expected = sum over genes of n_hsvs x the share of the window's SNVs (same MAF filter) in
    the state, recomputed from the dataset's variants and the BED."""
    ds = open_dataset(cohort.dataset)
    bed = pd.read_csv(cohort.sim.chromhmm, sep="\t", header=None, usecols=[0, 1, 2, 3],
                      names=["chrom", "start0", "end0", "state"], dtype={"chrom": str})  # fmt: skip
    hsvs, chrom = _read(analysis, "hsvs"), _read(analysis, "chromatin")
    pooled = chrom[chrom["gene"] == "all"].set_index(["model", "state"])["observed"]
    rows = written[(written["analysis"] == "chromatin") & (written["model_b"] == "window_snvs")]
    for f in (0.0, 0.05):
        for r in rows[rows["maf_filter"] == f].itertuples():
            h = hsvs[(hsvs["model"] == r.model_a) & (hsvs["maf"] >= f)]
            observed = expected = 0.0
            for gene, hg in h.groupby("gene"):
                v = ds.variants(gene)
                v = v[v["maf"] >= f]
                observed += (
                    _bed_state(bed, hg["chrom"].iloc[0], hg["pos"].to_numpy()) == r.state
                ).sum()
                expected += len(hg) * (_bed_state(bed, v["chrom"].iloc[0], v["pos"].to_numpy()) == r.state).mean()  # fmt: skip
            assert r.value_a == pytest.approx(observed)
            assert r.value_b == pytest.approx(expected, rel=1e-5)
            if f == 0:
                assert r.value_a == pytest.approx(pooled[(r.model_a, r.state)])
            assert 1 / 301 <= r.p <= 1


def test_report_shows_stars_and_fig_s8(analysis, tmp_path):
    from variformer.report.html import build_report

    res = build_report(analysis=analysis.out, out=tmp_path / "rep")
    assert {"fig_s8_motif_rates.png", "fig_s8_chromatin.png"} <= set(res.figures)
    page = (tmp_path / "rep" / "index.html").read_text()
    assert "Fig. S8" in page and "model_tests.tsv" in page


def test_brackets_carry_the_tables_stars(analysis, written):
    from variformer.report import analysis_figures as af

    hsvs = _read(analysis, "hsvs")
    fig = af.hsv_maf(hsvs, None, written)
    drawn = sorted(t.get_text() for t in fig.axes[0].texts)
    rows = written[(written["analysis"] == "hsv_maf") & (written["maf_filter"] == 0)]
    assert drawn == sorted(rows["stars"])
    summary = _read(analysis, "motif_summary")
    fig = af.motif_rates(summary, written)
    hsv_ax = fig.axes[0]
    texts = [t.get_text() for t in hsv_ax.texts if "/" not in t.get_text()]
    rows = written[(written["analysis"] == "motif_rate") & (written["variants"] == "hsv")]
    assert sorted(texts) == sorted(rows.loc[rows["maf_filter"] == 0, "stars"])


# ---------------------------------------------------------------- hand-made windows


def _toy(genes: dict, hsv_idx: dict, maf: dict | None = None):
    """Windows whose SNV i sits alone in a 50-bp ChromHMM bin: ``genes`` gene -> states of
    its SNVs; ``hsv_idx`` (model, gene) -> indices of that model's HSVs."""
    snvs, hsvs, segs, windows = [], [], [], {}
    for g, (gene, states) in enumerate(genes.items()):
        start0 = 100_000 * g
        windows[gene] = Window("chr1", start0, start0 + 50 * len(states), start0 + 25, "+")
        pos1 = start0 + 50 * np.arange(len(states)) + 1
        m = np.full(len(states), 0.2) if maf is None or gene not in maf else np.asarray(maf[gene])
        snvs.append(pd.DataFrame({"gene": gene, "chrom": "chr1", "pos": pos1, "maf": m}))
        segs.append(pd.DataFrame({"chrom": "chr1", "start0": pos1 - 1, "end0": pos1 + 49,
                                  "state": states}))  # fmt: skip
    snvs = pd.concat(snvs, ignore_index=True)
    for (model, gene), idx in hsv_idx.items():
        v = snvs[snvs["gene"] == gene].iloc[list(idx)]
        hsvs.append(v.assign(model=model, ref="A", alt="G", tss_distance=v["pos"] - 26))
    ann = {"sample": pd.concat(segs, ignore_index=True)}
    return pd.concat(hsvs, ignore_index=True), snvs, windows, ann


def _chromatin(hsvs, snvs, windows, ann, n, **kw):
    from variformer.analysis.model_tests import model_tests

    t = model_tests(hsvs, snvs=snvs, windows=windows, annotations=ann, n_permutations=n, **kw)
    return t[t["analysis"] == "chromatin"].set_index(["maf_filter", "model_a", "model_b", "state"])


def _close(p_hat: float, p: float, n: int) -> bool:
    return abs(p_hat - p) <= 5 * math.sqrt(p * (1 - p) / n) + 2 / n


def test_hsvs_in_the_rare_state_get_the_smallest_p():
    """100 SNVs, 5 in TssA, the 5 HSVs are those: a random draw of 5 hits all 5 with
    probability 1/C(100,5) ~ 1e-8, so p = 1 / (1 + n) and the enrichment is 5 / 0.25 = 20."""
    states = ["1_TssA"] * 5 + ["18_Quies"] * 95
    t = _chromatin(*_toy({"G1": states}, {("m1", "G1"): range(5)}), 500, maf_filters=(0,))
    r = t.loc[(0.0, "m1", "window_snvs", "1_TssA")]
    assert r["p"] == pytest.approx(1 / 501) and r["statistic"] == pytest.approx(20.0)
    assert (r["value_a"], r["value_b"], r["n_a"], r["n_b"]) == (5, pytest.approx(0.25), 5, 100)
    assert t.loc[(0.0, "m1", "window_snvs", "18_Quies"), "p"] == pytest.approx(1 / 501)


def test_hsvs_equal_to_every_snv_give_p_one():
    states = ["1_TssA"] * 3 + ["9_EnhA1"] * 4 + ["18_Quies"] * 13
    t = _chromatin(*_toy({"G1": states}, {("m1", "G1"): range(20)}), 200, maf_filters=(0,))
    assert (t["p"] == 1.0).all() and np.allclose(t["statistic"], 1.0)


def test_per_model_p_is_the_hypergeometric_tail_over_genes():
    """Two genes drawn separately: S = X1 + X2, X1 ~ H(40, 10, 8), X2 ~ H(30, 3, 6); observed
    5 + 2 = 7 against a mean of 2.6, so the two-sided p is P(|S - 2.6| >= 4.4) = P(S >= 7)."""
    g1 = ["1_TssA"] * 10 + ["18_Quies"] * 30
    g2 = ["1_TssA"] * 3 + ["18_Quies"] * 27
    hsv = {("m1", "G1"): [*range(5), 10, 11, 12], ("m1", "G2"): [0, 1, 3, 4, 5, 6]}
    n = 20_000
    t = _chromatin(*_toy({"G1": g1, "G2": g2}, hsv), n, maf_filters=(0,))
    x1 = stats.hypergeom(40, 10, 8).pmf(np.arange(9))
    x2 = stats.hypergeom(30, 3, 6).pmf(np.arange(7))
    s = np.convolve(x1, x2)
    exact = s[7:].sum()
    r = t.loc[(0.0, "m1", "window_snvs", "1_TssA")]
    assert r["value_b"] == pytest.approx(2.6) and r["value_a"] == 7
    assert _close(r["p"], exact, n), (r["p"], exact)
    # Quies counts are 14 - S: the same event, the same draws
    assert t.loc[(0.0, "m1", "window_snvs", "18_Quies"), "p"] == r["p"]


def test_between_models_permutes_labels_within_genes():
    """a's 5 HSVs all in TssA, b's 5 all outside: re-labelled, a's TssA count A ~ H(10, 5, 5),
    D = (2A - 5) / 5 with mean 0, observed 1; p = P(A = 5) + P(A = 0) = 2 / 252."""
    states = ["1_TssA"] * 5 + ["18_Quies"] * 15
    hsv = {("a", "G1"): range(5), ("b", "G1"): range(5, 10)}
    n = 20_000
    t = _chromatin(*_toy({"G1": states}, hsv), n, maf_filters=(0,))
    r = t.loc[(0.0, "a", "b", "1_TssA")]
    assert (r["value_a"], r["value_b"], r["statistic"]) == (1.0, 0.0, 1.0)
    assert _close(r["p"], 2 / 252, n), r["p"]
    same = _chromatin(*_toy({"G1": states}, {("a", "G1"): range(5), ("b", "G1"): range(5)}), 200,
                      maf_filters=(0,))  # fmt: skip
    assert (same.xs(("a", "b"), level=("model_a", "model_b"))["p"] == 1.0).all()


def test_pairs_use_only_genes_where_both_models_have_hsvs():
    from variformer.analysis.model_tests import model_tests

    states = ["1_TssA"] * 5 + ["18_Quies"] * 15
    hsv = {("a", "G1"): range(4), ("b", "G1"): range(4, 8), ("a", "G2"): range(10)}
    hsvs, snvs, windows, ann = _toy({"G1": states, "G2": states}, hsv)
    hits = hsvs[["gene", "chrom", "pos", "ref", "alt"]].iloc[:2]
    t = model_tests(hsvs, hits=hits, snvs=snvs, windows=windows, annotations=ann,
                    n_permutations=50, maf_filters=(0,))  # fmt: skip
    pairs = t[t["model_b"] == "b"]
    assert (pairs["n_genes"] == 1).all() and (pairs["n_a"] == 4).all() and (pairs["n_b"] == 4).all()
    alone = t[(t["model_a"] == "a") & (t["model_b"] == "window_snvs")]
    assert (alone["n_genes"] == 2).all() and (alone["n_a"] == 14).all()


def test_maf_filter_applies_to_the_null_snvs_too():
    """Rare SNVs (MAF 0.001) are all Quies: once removed, the common TssA HSVs are expected
    from the common SNVs only (5 of 10), so the enrichment falls from 4 to 2."""
    states = ["1_TssA"] * 5 + ["18_Quies"] * 15
    maf = {"G1": [0.3] * 10 + [0.001] * 10}
    t = _chromatin(*_toy({"G1": states}, {("m", "G1"): range(5)}, maf), 100,
                   maf_filters=(0, 0.01))  # fmt: skip
    assert t.loc[(0.0, "m", "window_snvs", "1_TssA"), "statistic"] == pytest.approx(4.0)
    r = t.loc[(0.01, "m", "window_snvs", "1_TssA")]
    assert (r["statistic"], r["n_b"]) == (pytest.approx(2.0), 10)


def test_each_test_has_its_own_seeded_draws():
    states = ["1_TssA"] * 6 + ["18_Quies"] * 34
    hsv = {("a", "G1"): [0, 1, 2, 10, 11], ("b", "G1"): [3, 12, 13, 14, 15]}
    toy = _toy({"G1": states}, hsv)
    one = _chromatin(*toy, 300, maf_filters=(0,), seed=7)
    assert one.equals(_chromatin(*toy, 300, maf_filters=(0,), seed=7))
    more = {**hsv, ("c", "G1"): [4, 5, 20, 21, 22]}
    with_c = _chromatin(*_toy({"G1": states}, more), 300, maf_filters=(0,), seed=7)
    for key in one.index:  # a third model changes neither a's nor b's nor a-vs-b's draws
        assert with_c.loc[key, "p"] == one.loc[key, "p"]


def test_adjust_and_stars_by_hand():
    from variformer.analysis.model_tests import adjust, significance_stars

    p = [0.01, 0.04, 0.03, np.nan, 0.5, 1e-6, 0.002]
    fam = ["x", "x", "x", "x", "x", "y", "y"]
    df = pd.DataFrame({"analysis": fam, "variants": "hsv", "maf_filter": 0.0, "p": p})
    out = adjust(df)
    want = np.concatenate([bh_adjust(p[:5]), bh_adjust(p[5:])])
    np.testing.assert_allclose(out["p_adj"], want)
    assert list(out["stars"]) == [_stars(v) for v in want]
    assert [significance_stars(v) for v in (1e-4, 9.9e-5, 0.05, 0.0499, np.nan)] == [
        "***", "****", "ns", "*", "",
    ]  # fmt: skip
