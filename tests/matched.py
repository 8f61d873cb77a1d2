"""Independent checks of ``EVAL/summary.tsv`` against ``EVAL/metrics.tsv`` (matched folds),
recomputed with pandas here, never with :mod:`variformer.evaluation_summary`."""

from __future__ import annotations

import pandas as pd
import pytest


def matched_by_hand(metrics: pd.DataFrame) -> dict:
    """(gene, cohort) -> the folds every model and setting has: recomputed here from
    metrics.tsv, independently of variformer.evaluation_summary."""
    ok = metrics[
        (metrics["status"] == "ok")
        & (metrics["split"] == "test")
        & (metrics["train_fraction"] == 1)
    ]
    ok = ok.assign(cohort=ok["setting"].map(lambda s: "x" if s == "cross_cohort" else "in"))
    shared = {}
    for (gene, cohort), part in ok.groupby(["gene", "cohort"]):
        sets = [set(p["fold"]) for _, p in part.groupby(["model", "setting"])]
        shared[(gene, cohort)] = set.intersection(*sets)
    return shared


def check_summary_against_metrics(metrics: pd.DataFrame, summary: pd.DataFrame) -> None:
    """Every summary number is the plain mean over the folds it names, the same folds for the
    model and its elastic-net column, and those folds are the ones every model has."""
    ok = metrics[
        (metrics["status"] == "ok")
        & (metrics["split"] == "test")
        & (metrics["train_fraction"] == 1)
    ]
    shared = matched_by_hand(metrics)
    assert len(summary) == len(ok[["gene", "model", "setting"]].drop_duplicates())
    for row in summary.itertuples(index=False):
        cohort = "x" if row.setting == "cross_cohort" else "in"
        folds = shared[(row.gene, cohort)]
        stated = {int(k) for k in str(row.folds).split(",") if k}
        assert stated == folds and row.n_folds == len(folds)
        mine = ok[(ok["gene"] == row.gene) & (ok["model"] == row.model)]
        mine = mine[(mine["setting"] == row.setting) & mine["fold"].isin(folds)]
        assert sorted(mine["fold"]) == sorted(folds)
        en = ok[(ok["gene"] == row.gene) & (ok["model"] == "elastic_net")]
        en = en[(en["setting"] == ("cross_cohort" if cohort == "x" else "hop"))]
        en = en[en["fold"].isin(folds)]
        if not folds:
            assert pd.isna(row.r2) and pd.isna(row.elastic_net_r2)
            continue
        # plain means: a fold whose value is undefined (PCC of flat predictions) makes it NaN
        same = {"abs": 1e-12, "nan_ok": True}
        assert row.r2 == pytest.approx(mine["r2"].mean(skipna=False), **same)
        assert row.pcc == pytest.approx(mine["pcc"].mean(skipna=False), **same)
        if len(en):  # the elastic net on exactly the same folds
            assert sorted(en["fold"]) == sorted(folds)
            assert row.elastic_net_r2 == pytest.approx(en["r2"].mean(skipna=False), **same)
            assert row.elastic_net_pcc == pytest.approx(en["pcc"].mean(skipna=False), **same)
        else:
            assert pd.isna(row.elastic_net_r2)


def read_evaluation_tables(directory):
    metrics = pd.read_csv(
        directory / "metrics.tsv", sep="\t", keep_default_na=False, na_values=["NA"]
    )
    summary = pd.read_csv(
        directory / "summary.tsv", sep="\t", dtype={"folds": str}, keep_default_na=False,
        na_values=["NA"],
    )  # fmt: skip
    return metrics, summary
