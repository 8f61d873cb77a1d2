"""``attributions.tsv`` (Fig. S10): the right positions of the right windows, matched controls."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.runs import find_runs
from tests.fakes import ISM_CROP as CROP
from tests.fakes import ISM_SEQ_LEN as SEQ_LEN
from tests.fakes import copy_run
from variformer.analysis.attribution_profiles import ATTRIBUTION_COLUMNS, attribution_table
from variformer.analysis.attributions import gradient_x_input, standardized_attribution
from variformer.analysis.gene_ism import gene_snvs
from variformer.model import Variformer


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
