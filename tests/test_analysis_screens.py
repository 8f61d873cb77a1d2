"""``variformer analyze`` computes the paper's quantities on fold 0 and reads no findings from
noise: each table is recomputed here from the written files with independent code
(:mod:`tests.reference`, numpy/scipy/sklearn), never by calling the code under test."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.metrics import r2_score

from data_prep import open_dataset
from tests.analysis_cohort import build
from tests.reference import authors_drivers


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    # 8 genes; the fake Variformer's predictions carry noise, so its drivers must be selected
    return build(tmp_path_factory.mktemp("screens"), genes=8, people=150, noise=0.3, seed=3)


def _analyze(cohort, out, **options):
    from variformer.analysis.analyze import AnalysisInputs, AnalysisOptions, analyze

    inputs = AnalysisInputs(
        cohort.dataset, cohort.ism, cohort.baselines, runs=cohort.runs,
        chromhmm=[cohort.sim.chromhmm], predictions=options.pop("predictions", ()),
    )  # fmt: skip
    opts = AnalysisOptions(motifs=False, attributions=False, **options)
    return analyze(inputs, out=cohort.root / out, options=opts)


@pytest.fixture(scope="module")
def every_gene(cohort):
    return _analyze(cohort, "an_all", min_r2=None)


def _read(analysis, name):
    return pd.read_csv(analysis.out / f"{name}.tsv", sep="\t", dtype={"chrom": str})


def test_drivers_are_the_authors_rule_on_every_gene_and_fold(every_gene, cohort):
    ds = open_dataset(cohort.dataset)
    ism = pd.read_csv(cohort.ism / "variformer.tsv", sep="\t", dtype={"chrom": str})
    written = _read(every_gene, "drivers")
    written = written[written["model"] == "variformer"]
    summary = _read(every_gene, "driver_summary").query("model == 'variformer'")
    checked = set()
    n_drivers = 0
    for (gene, fold), scores in ism.groupby(["gene", "fold"]):
        pred = pd.read_csv(cohort.runs / gene / f"fold{fold}" / "predictions.tsv", sep="\t")
        pred = pred[pred["split"] == "test"]
        x = ds.dosages(gene, list(pred["sample"].astype(str))).astype(float)
        v = ds.variants(gene)
        w = scores.set_index("pos")["score"].reindex(v["pos"]).to_numpy()
        want, rec = authors_drivers(x, pred["predicted"].to_numpy(), w)
        got = written[(written["gene"] == gene) & (written["fold"] == fold)]
        assert list(got["pos"]) == list(v["pos"].to_numpy()[want]), (gene, fold)
        for r, j in zip(got.itertuples(), want):
            assert (r.forward_contribution, r.snp_pcc, r.snp_p) == pytest.approx(rec[j], rel=1e-4)
        row = summary[(summary["gene"] == gene) & (summary["fold"] == fold)].iloc[0]
        if want:
            driver_sum = x[:, want] @ w[want]
            obs = pred["observed"].to_numpy()
            assert row["driver_pcc_observed"] == pytest.approx(
                stats.pearsonr(driver_sum, obs)[0], rel=1e-4
            )
            assert row["driver_r2_observed"] == pytest.approx(r2_score(obs, driver_sum), rel=1e-4)
        checked.add(gene)
        n_drivers += len(want)
    assert len(checked) >= 8 and n_drivers >= 8


def test_hsvs_signs_and_chromatin_are_fold_0s(every_gene, cohort):
    ism = pd.read_csv(cohort.ism / "variformer.tsv", sep="\t", dtype={"chrom": str})
    summ = pd.read_csv(cohort.baselines / "elastic_net" / "summary.tsv", sep="\t")
    k = summ[summ["fold"] == 0].set_index("gene")["n_nonzero"]
    hsvs = _read(every_gene, "hsvs")
    assert (hsvs["hsv_fold"].astype(str) == "0").all()
    agree = {}
    for gene in k.index:
        mine = ism[(ism["gene"] == gene) & (ism["fold"] == 0)].reset_index(drop=True)
        top = np.argsort(-mine["score"].abs().to_numpy(), kind="stable")[: k[gene]]
        got = hsvs[(hsvs["model"] == "variformer") & (hsvs["gene"] == gene)]
        assert set(got["pos"]) == set(mine["pos"].to_numpy()[top]), gene
        coef = pd.read_csv(
            cohort.baselines / "elastic_net" / gene / "fold0" / "coefficients.tsv", sep="\t"
        )
        j = coef[coef["coef"].abs() > 0.05].merge(mine, on="pos")
        j = j[j["score"] != 0]
        agree[gene] = (np.sign(j["coef"]) == np.sign(j["score"])).to_numpy()
    signs = _read(every_gene, "sign_agreement")
    pooled = signs[(signs["model"] == "variformer") & (signs["gene"] == "all")].iloc[0]
    allv = np.concatenate(list(agree.values()))
    assert pooled["n"] == len(allv) and pooled["n_agree"] == int(allv.sum())
    # ChromHMM: observed HSVs per state vs the state's share of the window's annotated bp
    bed = pd.read_csv(cohort.sim.chromhmm, sep="\t", header=None, usecols=[0, 1, 2, 3],
                      names=["chrom", "s", "e", "state"], dtype={"chrom": str})  # fmt: skip
    ds = open_dataset(cohort.dataset)
    chrom = _read(every_gene, "chromatin")
    for gene, h in hsvs[hsvs["model"] == "variformer"].groupby("gene"):
        win = ds.window(gene)
        seg = bed[(bed["chrom"].str.removeprefix("chr") == str(win.chrom).removeprefix("chr"))]
        lo, hi = np.maximum(seg["s"], win.start0), np.minimum(seg["e"], win.end0)
        bp = (
            pd.Series(np.clip(hi - lo, 0, None).to_numpy(), index=seg["state"])
            .groupby(level=0)
            .sum()
        )
        for state, n_bp in bp[bp > 0].items():
            s = seg[seg["state"] == state]
            inside = sum(((s["s"] < p) & (p <= s["e"])).any() for p in h["pos"])
            row = chrom[(chrom["model"] == "variformer") & (chrom["gene"] == gene)
                        & (chrom["state"] == state)].iloc[0]  # fmt: skip
            assert row["observed"] == pytest.approx(inside)
            assert row["expected"] == pytest.approx(n_bp / bp.sum() * len(h), rel=1e-5)


def test_gene_filter_and_constant_model(cohort, tmp_path):
    """A model whose predictions are constant and whose ISM scores are rounding noise is
    flagged and gets no findings; the default gene set is Variformer R2 > 0.2."""
    import shutil

    ism = tmp_path / "ism"
    shutil.copytree(cohort.ism, ism)
    vf = pd.read_csv(ism / "variformer.tsv", sep="\t")
    rng = np.random.default_rng(0)
    vf.assign(score=rng.normal(0, 3e-9, len(vf))).to_csv(ism / "flat.tsv", sep="\t", index=False)
    preds = []
    for gene_dir in sorted(cohort.runs.iterdir()):
        for fold_dir in sorted(gene_dir.iterdir()):
            p = pd.read_csv(fold_dir / "predictions.tsv", sep="\t")
            preds.append(p.assign(predicted=0.25, fold=int(fold_dir.name[4:])))
    flat_preds = tmp_path / "flat_predictions.tsv"
    pd.concat(preds).to_csv(flat_preds, sep="\t", index=False)
    c = cohort._replace(ism=ism, root=tmp_path)
    res = _analyze(c, "an", predictions=[("flat", flat_preds)])
    # the gene filter, recomputed with sklearn from the runs' predictions
    r2 = {}
    for gene_dir in sorted(cohort.runs.iterdir()):
        vals = []
        for fold_dir in sorted(gene_dir.iterdir()):
            p = pd.read_csv(fold_dir / "predictions.tsv", sep="\t").query("split == 'test'")
            vals.append(r2_score(p["observed"], p["predicted"]))
        r2[gene_dir.name] = float(np.mean(vals))
    passing = {g for g, v in r2.items() if v > 0.2}
    assert 0 < len(passing) < len(r2)
    meta = json.loads((res.out / "analysis.json").read_text())
    assert set(meta["genes_passing_r2"]) == passing
    assert meta["variformer_r2"] == pytest.approx(r2)
    assert any(
        f"{len(passing)}/{len(r2)} genes with Variformer R2 > 0.2" in n for n in meta["notes"]
    )
    for name in ("hsvs", "drivers", "sign_agreement", "chromatin"):
        t = _read(res, name)
        assert set(t.loc[t["gene"] != "all", "gene"]) <= passing, name
        assert "flat" not in set(t["model"]), name
    flat = [r for r in meta["learned"] if r["model"] == "flat"]
    assert flat and not any(r["learned"] for r in flat)
    assert all("flat" in r["learned_reason"] and "rounding" in r["learned_reason"] for r in flat)
    assert all(r["learned"] for r in meta["learned"] if r["model"] == "variformer")
    s = _read(res, "driver_summary")
    assert (s.loc[s["model"] == "flat", "status"] == "not learned").all()
    assert set(s.loc[s["model"] == "flat", "gene"]) == passing
    # the report states the filter count and lists the flagged model with its reason
    from variformer.report.html import build_report

    build_report(analysis=res.out, out=tmp_path / "report")
    page = (tmp_path / "report" / "index.html").read_text()
    assert f"{len(passing)}/{len(r2)} genes with Variformer R<sup>2</sup> &gt; 0.2" in page
    n_bad = sum(not r["learned"] for r in meta["learned"])
    assert f"{n_bad} model/gene/fold(s) learned nothing" in page
    assert "<td>flat</td>" in page and "test predictions are flat" in page
    assert "<b>fold 0</b>" in page


def test_hsv_fold_mean_is_labelled(cohort):
    res = _analyze(cohort, "an_mean", min_r2=None, hsv_fold="mean")
    summ = pd.read_csv(cohort.baselines / "elastic_net" / "summary.tsv", sep="\t")
    k = np.floor(summ.groupby("gene")["n_nonzero"].mean() + 0.5).astype(int)
    hsvs = _read(res, "hsvs")
    assert (hsvs["hsv_fold"] == "mean").all()
    assert (
        hsvs.groupby(["model", "gene"]).size()
        <= hsvs["gene"].map(k).groupby([hsvs["model"], hsvs["gene"]]).first()
    ).all()
    ism = pd.read_csv(cohort.ism / "variformer.tsv", sep="\t")
    gene = hsvs["gene"].iloc[0]
    mean = ism[ism["gene"] == gene].groupby("pos")["score"].mean()
    top = mean.abs().sort_values(ascending=False, kind="stable").index[: k[gene]]
    got = hsvs[(hsvs["model"] == "variformer") & (hsvs["gene"] == gene)]
    assert set(got["pos"]) == set(top)
    assert json.loads((res.out / "analysis.json").read_text())["hsv_fold"] == "mean"


def test_per_fold_prediction_files_of_a_fold_free_model(cohort, tmp_path):
    """Pre-trained Enformer's predictions do not depend on the fold: per-fold files without a
    ``fold`` column (each with its fold's tune and test people, as ``evaluate`` writes them)
    give the same drivers as one file with every person once."""
    ds = open_dataset(cohort.dataset)
    rng = np.random.default_rng(5)
    rows = []
    for gene in ds.genes:
        y = ds.expression(gene)
        people = [s for s in ds.samples if s in y.index]
        pred = dict(zip(people, y[people].to_numpy() + rng.normal(0, 1.0, len(people))))
        rows += [(s, gene, "test", float(y[s]), pred[s]) for s in people]
    every = pd.DataFrame(rows, columns=["sample", "gene", "split", "observed", "predicted"])
    one = tmp_path / "all.tsv"
    every.to_csv(one, sep="\t", index=False)
    files = []
    for fold in range(ds.n_folds):
        split = ds.split(fold)
        keep = set(split["test"]) | set(list(split["train"])[:20])  # its people, and others
        f = tmp_path / f"fold{fold}.tsv"
        every[every["sample"].isin(keep)].to_csv(f, sep="\t", index=False)
        files.append(("enformer", f))
    c = cohort._replace(root=tmp_path)
    split_files = _analyze(c, "an_files", predictions=files, min_r2=None)
    single = _analyze(c, "an_one", predictions=[("enformer", one)], min_r2=None)
    for name in ("drivers", "driver_summary"):
        a, b = (_read(r, name).query("model == 'enformer'") for r in (split_files, single))
        pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True))
    s = _read(split_files, "driver_summary").query("model == 'enformer'")
    assert len(s) == len(ds.genes) * ds.n_folds and (s["status"] != "no predictions").all()
