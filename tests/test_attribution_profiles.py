"""``attributions.tsv`` (Fig. S10): the right positions of the right windows, matched controls,
Enformer on the same folds, and ``variformer analyze``'s step (gene draw, summary)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from core.runs import find_runs
from tests.fakes import ISM_CROP as CROP
from tests.fakes import ISM_SEQ_LEN as SEQ_LEN
from tests.fakes import copy_run, save_tiny_enformer
from variformer.analysis.attribution_profiles import (
    ATTRIBUTION_COLUMNS,
    analysis_attributions,
    attribution_table,
)
from variformer.analysis.attribution_stats import SUMMARY_COLUMNS, pick_genes
from variformer.analysis.attributions import gradient_x_input, standardized_attribution
from variformer.analysis.gene_ism import gene_snvs
from variformer.enformer import load_enformer
from variformer.model import Variformer
from variformer.predict import CenterBins, load_enformer_track


@pytest.fixture(scope="module")
def table(ism_cohort, tmp_path_factory):
    ds, (g0, _g1) = ism_cohort["ds"], ism_cohort["genes"]
    root = tmp_path_factory.mktemp("attr") / "runs"
    copy_run(ism_cohort["run"], root / g0 / "fold1", fold=1, genes=[g0])
    copy_run(ism_cohort["run"], root / g0 / "fold0", fold=0, genes=[g0])
    snvs = gene_snvs(ds, g0, seq_len=CROP)
    assert len(snvs) >= 6
    hsvs = snvs.iloc[[1, 4]].assign(model="variformer", gene=g0)
    other = snvs.iloc[[2]].assign(model="elastic_net", gene=g0)  # another model's: ignored
    drivers = pd.concat([snvs.iloc[[3]].assign(fold=1), snvs.iloc[[5]].assign(fold=0)]).assign(
        model="variformer", gene=g0
    )
    runs = list(find_runs(root))
    t = attribution_table(
        runs, ds, pd.concat([hsvs, other]), drivers, flank=5, max_controls=3, max_people=4
    )
    return {"t": t, "snvs": snvs, "hsvs": hsvs, "drivers": drivers, "gene": g0, "runs": runs}


def test_columns_groups_and_folds(table):
    t, g0 = table["t"], table["gene"]
    assert list(t.columns) == ATTRIBUTION_COLUMNS
    assert set(t["model"]) == {"variformer"} and set(t["gene"]) == {g0}
    assert set(t["background"]) == {"reference", "personal"}
    targets = t[t["offset"] == 0]
    hsv_pos = set(table["hsvs"]["pos"])
    for fold in (0, 1):
        f = targets[targets["fold"] == fold]
        assert set(f.loc[f["group"] == "hsv", "pos"]) == hsv_pos  # HSVs in every run
        d = table["drivers"]
        assert set(f.loc[f["group"] == "driver", "pos"]) == set(d.loc[d["fold"] == fold, "pos"])
    assert set(t["offset"]) <= set(range(-5, 6))


def test_values_are_the_standardized_track_at_the_snv_and_its_flanks(table, ism_cohort):
    ds, t, g0 = ism_cohort["ds"], table["t"], table["gene"]
    model = Variformer.load(ism_cohort["run"])
    start = SEQ_LEN // 2 - CROP // 2
    ref = ds.reference(g0)[start : start + CROP][None]
    people = list(ds.split(1)["test"])[:4]
    personal = ds.sequences(g0, people, start=start, end=start + CROP)
    tracks = {
        "reference": standardized_attribution(gradient_x_input(model, ref)),
        "personal": standardized_attribution(gradient_x_input(model, personal)),
    }
    assert not np.allclose(tracks["reference"], tracks["personal"])
    pos0 = dict(zip(table["snvs"]["pos"], table["snvs"]["pos0"]))
    rows = t[t["fold"] == 1]
    for bg, track in tracks.items():
        r = rows[rows["background"] == bg]
        expected = [track[pos0[p] + o] for p, o in zip(r["pos"], r["offset"])]
        np.testing.assert_allclose(r["attribution"], expected, rtol=1e-4, atol=1e-4)


def test_controls_are_matched_non_targets(table):
    t, snvs = table["t"], table["snvs"].set_index("pos")
    at = t[(t["offset"] == 0) & (t["background"] == "reference")]
    for kind, maf_tol in (("hsv", 0.005), ("driver", 0.10)):
        for fold, f in at.groupby("fold"):
            targets = f.loc[f["group"] == kind, "pos"]
            controls = f.loc[f["group"] == f"{kind}_control", "pos"]
            assert not set(controls) & set(targets)
            for c in controls:  # each control matches at least one target (TSS and MAF)
                ok = [
                    abs(snvs.loc[c, "tss_distance"] - snvs.loc[p, "tss_distance"]) <= 2500
                    and abs(snvs.loc[c, "maf"] - snvs.loc[p, "maf"]) <= maf_tol
                    for p in targets
                ]
                assert any(ok), (kind, fold, c)
            assert len(controls) <= 3 * len(targets)


def test_no_runs_for_the_genes_gives_an_empty_table(table, ism_cohort):
    empty = attribution_table(
        table["runs"], ism_cohort["ds"], table["hsvs"].iloc[:0], table["drivers"].iloc[:0]
    )
    assert empty.empty and list(empty.columns) == ATTRIBUTION_COLUMNS


# ---------------------------------------------------------------- Enformer, the analyze step


def _independent_track(model, X: np.ndarray) -> np.ndarray:
    """The paper's standardized attribution from a plain autograd pass: gradient x input, mean
    over the backgrounds, |.|, max over the bases, z-score over the window's positions."""
    x = torch.from_numpy(np.asarray(X, dtype=np.float32)).requires_grad_(True)
    model.eval()
    (g,) = torch.autograd.grad(model(x).sum(), x)
    gxi = (g * x).detach().double().numpy().mean(axis=0)
    track = np.abs(gxi).max(axis=1)
    assert track.std() > 0
    return (track - track.mean()) / track.std()


@pytest.fixture(scope="module")
def with_enformer(table, ism_cohort, tmp_path_factory):
    ds, g0, snvs = ism_cohort["ds"], table["gene"], table["snvs"]
    enf_dir = save_tiny_enformer(tmp_path_factory.mktemp("enf") / "enformer", CROP)
    enformer = load_enformer_track(enf_dir, track=4)
    hsvs = snvs.iloc[[0, 3]].assign(model="enformer", gene=g0)  # one set for every fold
    drivers = pd.concat([snvs.iloc[[1]].assign(fold=0), snvs.iloc[[4]].assign(fold=1)]).assign(
        model="enformer", gene=g0
    )
    t = attribution_table(
        table["runs"], ds, pd.concat([table["hsvs"], hsvs]),
        pd.concat([table["drivers"], drivers]), enformer=enformer, flank=5, max_controls=3,
        max_people=4,
    )  # fmt: skip
    return {"t": t, "dir": enf_dir, "hsvs": hsvs, "drivers": drivers, "model": enformer}


def test_enformer_rows_on_the_same_folds_windows_and_people(with_enformer, table, ism_cohort):
    t, g0 = with_enformer["t"], table["gene"]
    assert set(t["model"]) == {"variformer", "enformer"}
    enf = t[t["model"] == "enformer"]
    assert set(zip(enf["fold"], enf["background"])) == {
        (f, b) for f in (0, 1) for b in ("reference", "personal")
    }
    at = enf[enf["offset"] == 0]
    d = with_enformer["drivers"]
    for fold in (0, 1):
        f = at[at["fold"] == fold]
        assert set(f.loc[f["group"] == "hsv", "pos"]) == set(with_enformer["hsvs"]["pos"])
        assert set(f.loc[f["group"] == "driver", "pos"]) == set(d.loc[d["fold"] == fold, "pos"])
    # Variformer's rows are those of the table without Enformer (same seed, same controls)
    vf = t[t["model"] == "variformer"].reset_index(drop=True)
    pd.testing.assert_frame_equal(vf, table["t"].reset_index(drop=True))
    # the values: Enformer's track on fold 0's test people (personal) and on the reference
    ds, start = ism_cohort["ds"], SEQ_LEN // 2 - CROP // 2
    model = CenterBins(load_enformer(with_enformer["dir"]), track=4, head="human")
    people = list(ds.split(0)["test"])[:4]
    tracks = {
        "personal": _independent_track(
            model, ds.sequences(g0, people, start=start, end=start + CROP)
        ),
        "reference": _independent_track(model, ds.reference(g0)[start : start + CROP][None]),
    }
    pos0 = dict(zip(table["snvs"]["pos"], table["snvs"]["pos0"]))
    for bg, track in tracks.items():
        r = enf[(enf["fold"] == 0) & (enf["background"] == bg)]
        expected = [track[pos0[p] + o] for p, o in zip(r["pos"], r["offset"])]
        np.testing.assert_allclose(r["attribution"], expected, rtol=1e-4, atol=1e-4)
    # the reference track does not depend on the fold
    ref = enf[(enf["background"] == "reference") & (enf["group"] == "hsv")]
    a, b = (ref[ref["fold"] == f].set_index(["pos", "offset"])["attribution"] for f in (0, 1))
    pd.testing.assert_series_equal(a.sort_index(), b.sort_index())


def test_variformer_standardization_recomputed_independently(table, ism_cohort):
    ds, t, g0 = ism_cohort["ds"], table["t"], table["gene"]
    model = Variformer.load(ism_cohort["run"])
    start = SEQ_LEN // 2 - CROP // 2
    people = list(ds.split(0)["test"])[:4]
    track = _independent_track(model, ds.sequences(g0, people, start=start, end=start + CROP))
    pos0 = dict(zip(table["snvs"]["pos"], table["snvs"]["pos0"]))
    r = t[(t["fold"] == 0) & (t["background"] == "personal")]
    expected = [track[pos0[p] + o] for p, o in zip(r["pos"], r["offset"])]
    np.testing.assert_allclose(r["attribution"], expected, rtol=1e-4, atol=1e-4)


def test_controls_obey_the_window_tss_and_maf_bounds(with_enformer, ism_cohort, table):
    """Recomputed from the dataset: each control lies in the run's crop of the same gene's
    window, within 2.5 kb of a target's TSS distance and within the MAF bound; each target
    with any candidate got at least one control, and none is a target of its group."""
    ds, g0, t = ism_cohort["ds"], table["gene"], with_enformer["t"]
    win, v = ds.window(g0), ds.variants(g0).set_index("pos")
    sign = -1 if win.strand == "-" else 1
    crop0 = win.start0 + SEQ_LEN // 2 - CROP // 2
    at = t[(t["offset"] == 0) & (t["background"] == "reference")]
    assert set(at["gene"]) == {g0}
    assert {"hsv_control", "driver_control"} <= set(at["group"])  # the bounds are exercised
    for (model, fold), f in at.groupby(["model", "fold"]):
        for kind, maf_tol in (("hsv", 0.005), ("driver", 0.10)):
            targets = sorted(set(f.loc[f["group"] == kind, "pos"]))
            controls = set(f.loc[f["group"] == f"{kind}_control", "pos"])
            assert not controls & set(targets)

            def match(c, p, maf_tol=maf_tol):
                dist = sign * (c - 1 - win.tss0) - sign * (p - 1 - win.tss0)
                return abs(dist) <= 2500 and abs(v.loc[c, "maf"] - v.loc[p, "maf"]) <= maf_tol

            for c in controls:
                assert crop0 < c <= crop0 + CROP
                assert any(match(c, p) for p in targets), (model, fold, kind, c)
            inside = [c for c in v.index if crop0 < c <= crop0 + CROP and c not in targets]
            for p in targets:
                if any(match(c, p) for c in inside):
                    assert any(match(c, p) for c in controls), (model, fold, kind, p)


def test_the_analyze_step_draws_genes_loads_enformer_and_summarizes(
    with_enformer, table, ism_cohort, tmp_path
):
    from types import SimpleNamespace

    ds, g0 = ism_cohort["ds"], table["gene"]
    runs = tmp_path / "runs"
    for run in table["runs"]:
        copy_run(run.path, runs / run.path.relative_to(run.path.parents[1]), fold=run.fold,
                 genes=[g0])  # fmt: skip
    hsvs = pd.concat([table["hsvs"], with_enformer["hsvs"]])
    drivers = pd.concat([table["drivers"], with_enformer["drivers"]])
    inp = SimpleNamespace(runs=runs, enformer=with_enformer["dir"], enformer_track=4)
    genes = list(ds.genes)
    seeds = {pick_genes(genes, 1, seed=s)[0]: s for s in range(20)}  # a seed drawing each gene
    assert len(seeds) == 2

    def step(seed):
        opt = SimpleNamespace(attributions=True, attribution_genes=1, attribution_flank=5,
                              seed=seed, device="cpu")  # fmt: skip
        notes: list[str] = []
        attr, summary = analysis_attributions(inp, opt, ds, hsvs, drivers, genes, notes)
        return attr, summary, notes

    other = next(g for g in genes if g != g0)  # no HSVs or drivers there: nothing, and said so
    attr, summary, notes = step(seeds[other])
    assert attr.empty and summary.empty
    assert f"1 of 2 passing gene(s) drawn at random (seed {seeds[other]}): {other}" in notes[0]
    assert any("no variformer rows" in n for n in notes)
    assert any("no enformer rows" in n for n in notes)
    seed = seeds[g0]
    attr, summary, notes = step(seed)
    assert set(attr["model"]) == {"variformer", "enformer"} and set(attr["gene"]) == {g0}
    assert list(summary.columns) == SUMMARY_COLUMNS
    pairs = set(zip(summary["model"], summary["group"]))
    groups = ("hsv", "hsv_control", "driver", "driver_control")
    assert {(m, g) for m in ("variformer", "enformer") for g in ("hsv", "driver")} <= pairs
    assert ("enformer", "hsv_control") in pairs
    assert pairs <= {(m, g) for m in ("variformer", "enformer") for g in groups}
    # the summary recomputed from the per-SNV table as written (6 significant digits)
    path = tmp_path / "attributions.tsv"
    attr.to_csv(path, sep="\t", index=False, float_format="%.6g")
    written = pd.read_csv(path, sep="\t", dtype={"chrom": str, "gene": str})
    for r in summary[summary["offset"] == 0].itertuples():
        cell = written[(written.model == r.model) & (written.group == r.group)]
        cell = cell[(cell.background == r.background) & (cell.offset == 0)]
        v = cell.groupby(["gene", "chrom", "pos", "ref", "alt"])["attribution"].mean().to_numpy()
        idx = np.random.default_rng(seed).integers(0, len(v), size=(1000, len(v)))
        lo, hi = np.percentile(v[idx].mean(axis=1), [2.5, 97.5])
        np.testing.assert_allclose([r.mean, r.ci_low, r.ci_high], [v.mean(), lo, hi], atol=1e-5)


def test_analyze_flags(tmp_path):
    import argparse

    from variformer.commands.analyze import add_arguments

    p = argparse.ArgumentParser()
    add_arguments(p)
    base = ["--dataset", "D", "--ism", "I", "--baselines", "B", "--out", "O"]
    a = p.parse_args(base)
    assert (a.enformer, a.track, a.attribution_genes) == (None, 4950, 15)
    a = p.parse_args([*base, "--enformer", "E", "--track", "4", "--attribution-genes", "all"])
    assert (a.enformer, a.track, a.attribution_genes) == ("E", 4, None)
    with pytest.raises(SystemExit):
        p.parse_args([*base, "--attribution-genes", "0"])
