"""``variformer baselines --all-people``: each gene refitted on every person, for weight exports.

Truths: scikit-learn's ElasticNetCV on all people's dosages (constant columns dropped), and the
outputs of evaluate / analyze's readers / select-genes before the fits on all people existed.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import ElasticNetCV
from sklearn.model_selection import KFold

from baselines import run as bl
from core.errors import InputError
from core.runs import find_runs
from tests.datasets import simulated_dataset
from variformer import cli

GENES = ["BTNL3", "ZFP57", "PPIF"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """simulate -> prep: 150 people, 3 genes (h2 0.6, 0.4, 0.25), 4,096-bp windows, 3 folds."""
    root = tmp_path_factory.mktemp("all_people")
    h2 = [0.6, 0.4, 0.25]
    return simulated_dataset(root, people=150, genes=3, seq_len=4096, h2=h2, seed=2)[0]


def _reference(dataset, gene, seed=0):
    """ElasticNetCV(l1_ratio=0.5, 5 shuffled folds) on every person's dosages, by hand."""
    from data_prep import open_dataset

    ds = open_dataset(dataset)
    expr = ds.expression(gene)
    people = [s for s in ds.samples if s in expr.index]
    x = np.asarray(ds.dosages(gene, people), dtype=np.float64)
    keep = x.max(axis=0) != x.min(axis=0)
    ref = ElasticNetCV(
        l1_ratio=0.5, cv=KFold(5, shuffle=True, random_state=seed), max_iter=2000
    ).fit(x[:, keep], expr.loc[people].to_numpy(np.float64))
    coef = np.zeros(x.shape[1])
    coef[keep] = ref.coef_
    return ref, coef, len(people)


@pytest.mark.parametrize(("engine", "atol"), [("sklearn", 1e-10), ("gram", 1e-7)])
def test_fit_on_all_people_is_elastic_net_cv_on_everyone(dataset, tmp_path, engine, atol):
    out = tmp_path / "BL"
    bl.run_baselines(dataset, out=out, folds=[0], engine=engine, all_people=True)
    for gene in GENES:
        ref, coef, n = _reference(dataset, gene)
        got = bl.read_all_people(out / "elastic_net", gene)
        np.testing.assert_allclose(got.coefficients["coef"], coef, rtol=0, atol=atol)
        assert got.intercept == pytest.approx(ref.intercept_, abs=atol)
        assert got.alpha == pytest.approx(ref.alpha_, rel=1e-12)
        assert got.n_train == n == 150
        assert (coef != 0).sum() > 0  # real fits, not the all-zero model


def test_layout_summary_resume_and_force(dataset, tmp_path):
    out = tmp_path / "BL"
    first = bl.run_baselines(dataset, out=out, genes=GENES[:2], folds=[1], all_people=True)
    assert sorted(first.fitted, key=str) == sorted(
        [(g, k) for g in GENES[:2] for k in (1, "all")], key=str
    )
    for gene in GENES[:2]:
        d = out / "elastic_net" / gene / "all"
        assert sorted(p.name for p in d.iterdir()) == [
            "coefficients.tsv", "config.yaml", "inputs.json", "summary.json",
        ]  # fmt: skip
        s = json.loads((d / "summary.json").read_text())
        coef = pd.read_csv(d / "coefficients.tsv", sep="\t", keep_default_na=False)
        assert list(coef.columns) == list(bl.COEFFICIENT_COLUMNS)
        assert (s["kind"], s["fold"], s["gene"], s["model"]) == (
            "baseline",
            "all",
            gene,
            "elastic_net",
        )
        assert s["n_train"] == 150 and s["n_snvs"] == len(coef)
        assert s["n_nonzero"] == int((coef["coef"] != 0).sum())
        assert s["options"]["engine"] == "gram" and s["inputs"]["dataset"]["sha256"]
        assert json.loads((d / "inputs.json").read_text())["fold"] == "all"
        assert "test_r2" not in s  # no held-out people
    # summary.tsv: the folds only
    table = pd.read_csv(out / "elastic_net" / "summary.tsv", sep="\t")
    assert sorted(zip(table["gene"], table["fold"])) == [(g, 1) for g in GENES[:2]]
    assert not list(out.rglob("*.partial"))
    # a rerun skips; --force refits
    again = bl.run_baselines(dataset, out=out, genes=GENES[:2], folds=[1], all_people=True)
    assert again.fitted == [] and ("BTNL3", "all") in again.skipped
    stamp = (out / "elastic_net" / "BTNL3" / "all" / "summary.json").stat().st_mtime_ns
    forced = bl.run_baselines(
        dataset, out=out, genes=["BTNL3"], folds=[1], all_people=True, force=True
    )
    assert ("BTNL3", "all") in forced.fitted
    assert (out / "elastic_net" / "BTNL3" / "all" / "summary.json").stat().st_mtime_ns != stamp
    # other options: the published fit on all people is refused, not silently kept
    with pytest.raises(InputError, match="pass --force"):
        bl.run_baselines(dataset, out=out, genes=["BTNL3"], folds=[], all_people=True, seed=1)


def test_evaluate_analyze_and_select_genes_are_unchanged_by_fits_on_all_people(
    dataset, tmp_path, capsys
):
    """evaluate's metrics, select-genes' lists, summary.tsv, find_runs and the three readers
    through which analyze sees BL (weights.collect_*) are the same with the fits on all people."""
    from data_prep import open_dataset
    from variformer.analysis.weights import (
        collect_baseline_summary,
        collect_coefficients,
        collect_predictions,
    )

    out = tmp_path / "BL"
    bl.run_baselines(dataset, out=out, folds=[0, 1, 2])

    def observed(tag):
        ev = tmp_path / f"EVAL_{tag}"
        argv = ["evaluate", "--dataset", str(dataset), "--baselines", str(out)]
        assert cli.main([*argv, "--out", str(ev), "--no-progress"]) == 0
        sel = tmp_path / f"sel_{tag}"
        argv = ["select-genes", "--baselines", str(out), "--out", str(sel)]
        assert cli.main([*argv, "--per-bin", "1", "--min-test-r2", "0"]) == 0
        return {
            "summary.tsv": (out / "elastic_net" / "summary.tsv").read_bytes(),
            "metrics": pd.read_csv(ev / "metrics.tsv", sep="\t"),
            "selection": sorted((p.name, p.read_bytes()) for p in sel.iterdir()),
            "runs": [(r.path, r.fold) for r in find_runs(out, kind="baseline")],
            "coefficients": collect_coefficients(out),
            "predictions": collect_predictions(out, dataset=open_dataset(dataset)),
            "bl_summary": collect_baseline_summary(out),
        }

    before = observed("before")
    bl.run_baselines(dataset, out=out, folds=[0, 1, 2], all_people=True)
    assert all((out / "elastic_net" / g / "all" / "summary.json").is_file() for g in GENES)
    after = observed("after")
    capsys.readouterr()
    assert before["summary.tsv"] == after["summary.tsv"]
    assert before["runs"] == after["runs"] and len(after["runs"]) == 9
    assert before["selection"] == after["selection"]
    for key in ("metrics", "coefficients", "predictions", "bl_summary"):
        pd.testing.assert_frame_equal(before[key], after[key])


def test_cli_and_slurm_pass_the_flag(dataset, tmp_path, capsys):
    out = tmp_path / "BL"
    argv = ["baselines", "--dataset", str(dataset), "--gene", "PPIF", "--fold", "0"]
    assert cli.main([*argv, "--all-people", "--out", str(out)]) == 0
    assert "fitted 1 gene-folds and 1 all-people fits" in capsys.readouterr().out
    assert bl.read_all_people(out / "elastic_net", "PPIF").n_train == 150
    argv = ["slurm", "baselines", "--dataset", str(dataset), "--genes", "PPIF", "BTNL3"]
    argv += ["--job-dir", str(tmp_path / "jobs"), "--out", str(out), "--cpus", "1", "--all-people"]
    assert cli.main(argv) == 0
    (sub,) = (tmp_path / "jobs").glob("*-elastic_net")
    script = (sub / "baselines_array.sbatch").read_text()
    assert "--no-progress --all-people" in script
    from variformer.slurm_status import job_status

    states = {(s.gene, s.fold): s.state for s in job_status(tmp_path / "jobs")}
    assert set(states) == {(g, k) for g in ("PPIF", "BTNL3") for k in ("0", "1", "2", "all")}


def test_reading_a_fit_that_is_not_there(dataset, tmp_path, capsys):
    with pytest.raises(InputError, match=r"no fit of PPIF on all people .*--all-people"):
        bl.read_all_people(tmp_path / "BL" / "elastic_net", "PPIF")


def test_a_killed_fit_on_all_people_leaves_nothing_complete(dataset, tmp_path, monkeypatch):
    import baselines.all_people as ap

    out = tmp_path / "BL"

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(ap, "write_summary", killed)
    with pytest.raises(KeyboardInterrupt):
        bl.run_baselines(dataset, out=out, genes=["PPIF"], folds=[], all_people=True)
    assert not (out / "elastic_net" / "PPIF" / "all").exists()
    monkeypatch.undo()
    done = bl.run_baselines(dataset, out=out, genes=["PPIF"], folds=[], all_people=True)
    assert done.fitted == [("PPIF", "all")]
    assert bl.read_all_people(out / "elastic_net", "PPIF").n_train == 150
