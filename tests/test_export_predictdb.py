"""`variformer export predictdb`: the PredictDB schema, and every number recomputed from the
written files with independent code (sqlite3, cyvcf2 dosages, numpy/scipy/sklearn)."""

from __future__ import annotations

import gzip
import json
import sqlite3

import cyvcf2
import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats
from sklearn.metrics import r2_score

from tests.reference import authors_drivers, bh_adjust
from variformer.cli import main

WEIGHTS = [("rsid", "TEXT"), ("gene", "TEXT"), ("weight", "DOUBLE"), ("ref_allele", "CHARACTER"),
           ("eff_allele", "CHARACTER"), ("varID", "TEXT")]  # fmt: skip
EXTRA = [("gene", "TEXT"), ("genename", "TEXT"), ("n.snps.in.model", "INTEGER"),
         ("pred.perf.R2", "DOUBLE"), ("pred.perf.pval", "DOUBLE"), ("pred.perf.qval", "DOUBLE")]  # fmt: skip
INDEXES = {"weights_rsid": ("weights", ["rsid"]), "weights_gene": ("weights", ["gene"]),
           "weights_rsid_gene": ("weights", ["rsid", "gene"]),
           "gene_model_summary": ("extra", ["gene"])}  # fmt: skip
CROP = 2048


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    """A simulated 3-gene cohort, real elastic-net and ridge fits, and one saved tiny Variformer
    run (fold 0, BTNL3) with its predictions and its ISM table (``variformer ism --run``)."""
    import torch

    from baselines.run import run_baselines
    from data_prep import open_dataset
    from tests.datasets import simulated_dataset
    from tests.fakes import calibrate_, tiny_hparams
    from variformer.model import Variformer
    from variformer.predict import predict_people

    tmp = tmp_path_factory.mktemp("export")
    path, sim = simulated_dataset(tmp, people=150, genes=3, seq_len=4096, seed=3)
    for model in ("elastic_net", "ridge"):
        run_baselines(path, out=tmp / "BL", folds=[0, 1, 2], model=model, all_people=True,
                      log=lambda _: None)  # fmt: skip
    ds = open_dataset(path)
    torch.manual_seed(0)
    net = calibrate_(Variformer.from_hparams(**tiny_hparams(), train_batchnorm=True), CROP)
    run = tmp / "runs" / "BTNL3" / "fold0"
    run.mkdir(parents=True)
    net.save(run)
    (run / "summary.json").write_text(
        json.dumps({"kind": "finetune", "fold": 0, "genes": ["BTNL3"]})
    )
    (run / "config.yaml").write_text(yaml.safe_dump({"data": {"seq_len": CROP}}))
    split = ds.split(0)
    frames = []
    for name in ("tune", "test"):
        p = predict_people(net, ds, "BTNL3", split[name], seq_len=CROP)
        p = p.assign(split=name, observed=ds.expression("BTNL3").loc[split[name]].to_numpy())
        frames.append(p[["sample", "gene", "split", "observed", "predicted"]])
    pd.concat(frames).to_csv(run / "predictions.tsv", sep="\t", index=False)
    assert (
        main(
            [
                "ism",
                "--run",
                str(run),
                "--dataset",
                str(path),
                "--out",
                str(tmp / "ISM" / "variformer.tsv"),
            ]
        )
        == 0
    )
    return {"tmp": tmp, "path": path, "sim": sim, "ds": ds, "run": run}


def _export(cohort, *args) -> int:
    return main(["export", "predictdb", "--dataset", str(cohort["path"]), *args])


def _tables(db):
    con = sqlite3.connect(db)
    try:
        w = pd.read_sql_query("SELECT * FROM weights", con)
        e = pd.read_sql_query("SELECT * FROM extra", con)
    finally:
        con.close()
    return w, e


def _vcf_dosages(vcf, samples, var_ids) -> np.ndarray:
    """ALT dosages from the VCF itself (cyvcf2), columns in ``var_ids`` order (one per ALT)."""
    reader = cyvcf2.VCF(str(vcf), samples=list(samples))
    order = {s: i for i, s in enumerate(reader.samples)}
    rows = [order[s] for s in samples]
    found = {}
    for rec in reader:
        gt = rec.genotype.array()[:, :2]
        for k, alt in enumerate(rec.ALT, start=1):
            vid = f"chr{rec.CHROM.removeprefix('chr')}_{rec.POS}_{rec.REF}_{alt}_b38"
            found[vid] = (gt == k).sum(axis=1)[rows].astype(float)
    return np.column_stack([found[v] for v in var_ids])


def test_the_db_has_predictdbs_exact_schema_and_opens_with_plain_sqlite(cohort, capsys):
    out = cohort["tmp"] / "schema"
    assert (
        _export(
            cohort,
            "--baselines",
            str(cohort["tmp"] / "BL"),
            "--rsid-from",
            "varID",
            "--out",
            str(out),
        )
        == 0
    )
    con = sqlite3.connect(out / "elastic_net_fold0.db")
    for table, want in (("weights", WEIGHTS), ("extra", EXTRA)):
        assert [(r[1], r[2]) for r in con.execute(f"PRAGMA table_info({table})")] == want
    indexes = {}
    for table in ("weights", "extra"):
        for r in con.execute(f"PRAGMA index_list({table})"):
            indexes[r[1]] = (table, [c[2] for c in con.execute(f"PRAGMA index_info({r[1]})")])
    assert indexes == INDEXES
    con.close()
    with gzip.open(out / "elastic_net_fold0.txt.gz", "rt") as fh:
        assert fh.readline() == "GENE RSID1 RSID2 VALUE\n"


def test_elastic_net_weights_reproduce_its_predictions_and_performance(cohort):
    out = cohort["tmp"] / "en"
    assert (
        _export(
            cohort,
            "--baselines",
            str(cohort["tmp"] / "BL"),
            "--rsid-from",
            "varID",
            "--out",
            str(out),
        )
        == 0
    )
    w, e = _tables(out / "elastic_net_fold0.db")
    bl = cohort["tmp"] / "BL" / "elastic_net"
    assert (w["eff_allele"] != w["ref_allele"]).all() and (w["weight"] != 0).all()
    assert (w["rsid"] == w["varID"]).all()
    for gene in e["genename"]:
        gid = e.loc[e["genename"] == gene, "gene"].iloc[0]
        gw = w[w["gene"] == gid]
        d = bl / gene / "fold0"
        pred = pd.read_csv(d / "predictions.tsv", sep="\t", dtype={"sample": str})
        test = pred[pred["split"] == "test"]
        intercept = json.loads((d / "summary.json").read_text())["intercept"]
        x = _vcf_dosages(cohort["sim"].vcf, test["sample"], gw["varID"])
        np.testing.assert_allclose(
            intercept + x @ gw["weight"].to_numpy(), test["predicted"], rtol=0, atol=1e-9
        )
        row = e[e["genename"] == gene].iloc[0]
        assert row["n.snps.in.model"] == len(gw)
        assert row["pred.perf.R2"] == pytest.approx(
            r2_score(test["observed"], test["predicted"]), abs=1e-12
        )
        assert row["pred.perf.pval"] == pytest.approx(
            stats.pearsonr(test["predicted"], test["observed"]).pvalue, rel=1e-9
        )
    np.testing.assert_allclose(
        e["pred.perf.qval"], bh_adjust(e["pred.perf.pval"].to_numpy()), rtol=1e-12
    )


def test_covariance_is_that_of_the_fold_train_people(cohort):
    out = cohort["tmp"] / "cov"
    assert (
        _export(
            cohort,
            "--baselines",
            str(cohort["tmp"] / "BL"),
            "--model",
            "ridge",
            "--rsid-from",
            "varID",
            "--out",
            str(out),
        )
        == 0
    )
    w, _ = _tables(out / "ridge_fold0.db")
    cov = pd.read_csv(out / "ridge_fold0.txt.gz", sep=" ")
    splits = pd.read_csv(cohort["path"] / "splits.tsv", sep="\t", dtype={"sample": str})
    expr = pd.read_csv(cohort["path"] / "expression.tsv", sep="\t", index_col=0)
    for gid, gw in w.groupby("gene", sort=False):
        gene = cohort["ds"].genes[[cohort["ds"].gene_id(g) for g in cohort["ds"].genes].index(gid)]
        train = [
            s
            for s in splits.loc[splits["fold0"] == "train", "sample"]
            if pd.notna(expr.loc[gene, s])
        ]
        x = _vcf_dosages(cohort["sim"].vcf, train, gw["varID"])
        want = np.cov(x, rowvar=False, ddof=1)
        gc = cov[cov["GENE"] == gid]
        ids = list(gw["rsid"])
        assert len(gc) == len(ids) * (len(ids) + 1) // 2  # each pair once, diagonal included
        got = np.full((len(ids), len(ids)), np.nan)
        for a, b, v in zip(gc["RSID1"], gc["RSID2"], gc["VALUE"]):
            got[ids.index(a), ids.index(b)] = got[ids.index(b), ids.index(a)] = v
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)


def _surrogate_truth(cohort, keep=None, *, fold=0, run=None, ism_path=None):
    """ISM scores, and the surrogate's test R2 / p recomputed from the written tables."""
    ds, run = cohort["ds"], run or cohort["run"]
    ism = pd.read_csv(
        ism_path or cohort["tmp"] / "ISM" / "variformer.tsv", sep="\t", dtype={"chrom": str}
    )
    ism = ism[ism["fold"] == fold]
    ism["varID"] = [
        f"chr{c.removeprefix('chr')}_{p}_{r}_{a}_b38"
        for c, p, r, a in zip(ism["chrom"], ism["pos"], ism["ref"], ism["alt"])
    ]
    ism = ism[ism["score"] != 0] if keep is None else ism[ism["varID"].isin(keep)]
    pred = pd.read_csv(run / "predictions.tsv", sep="\t", dtype={"sample": str})
    test = pred[pred["split"] == "test"]
    expression = ds.expression("BTNL3")
    train = [s for s in ds.split(fold)["train"] if s in expression.index]
    w = ism["score"].to_numpy(float)
    x_train = _vcf_dosages(cohort["sim"].vcf, train, ism["varID"])
    b = np.mean(expression.loc[train].to_numpy() - x_train @ w)
    s = b + _vcf_dosages(cohort["sim"].vcf, test["sample"], ism["varID"]) @ w
    return ism, r2_score(test["observed"], s), stats.pearsonr(s, test["observed"]).pvalue


def test_variformer_surrogate_is_ism_score_times_dosage_with_its_own_r2(cohort):
    out = cohort["tmp"] / "vf"
    assert (
        _export(
            cohort, "--ism", str(cohort["tmp"] / "ISM"), "--rsid-from", "varID", "--out", str(out)
        )
        == 0
    )
    w, e = _tables(out / "variformer_ism_fold0.db")
    ism, want_r2, want_p = _surrogate_truth(cohort)
    assert list(w["varID"]) == list(ism["varID"])
    np.testing.assert_allclose(w["weight"], ism["score"].astype(float), rtol=0, atol=0)
    assert e["genename"].tolist() == ["BTNL3"]
    assert e["pred.perf.R2"].iloc[0] == pytest.approx(want_r2, abs=1e-9)
    assert e["pred.perf.pval"].iloc[0] == pytest.approx(want_p, rel=1e-7)


def test_drivers_surrogate_keeps_the_authors_drivers(cohort):
    out = cohort["tmp"] / "drivers"
    code = _export(cohort, "--ism", str(cohort["tmp"] / "ISM" / "variformer.tsv"), "--surrogate", "drivers",
                   "--rsid-from", "varID", "--out", str(out))  # fmt: skip
    ism_all = pd.read_csv(cohort["tmp"] / "ISM" / "variformer.tsv", sep="\t", dtype={"chrom": str})
    pred = pd.read_csv(cohort["run"] / "predictions.tsv", sep="\t", dtype={"sample": str})
    test = pred[pred["split"] == "test"]
    ids = [
        f"chr{c.removeprefix('chr')}_{p}_{r}_{a}_b38"
        for c, p, r, a in zip(ism_all["chrom"], ism_all["pos"], ism_all["ref"], ism_all["alt"])
    ]
    x = _vcf_dosages(cohort["sim"].vcf, test["sample"], ids)
    chosen, _ = authors_drivers(
        x, test["predicted"].to_numpy(float), ism_all["score"].to_numpy(float)
    )
    if not len(chosen):
        assert code == 2
        return
    assert code == 0
    w, e = _tables(out / "variformer_drivers_fold0.db")
    assert sorted(w["varID"]) == sorted(ids[i] for i in chosen)
    _, want_r2, _ = _surrogate_truth(cohort, keep=set(w["varID"]))
    assert e["pred.perf.R2"].iloc[0] == pytest.approx(want_r2, abs=1e-9)


def test_ids_without_rs_numbers_are_refused_in_rsid_mode(cohort, capsys):
    out = cohort["tmp"] / "rs"
    assert (
        _export(
            cohort, "--baselines", str(cohort["tmp"] / "BL"), "--model", "ridge", "--out", str(out)
        )
        == 2
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--rsid-from varID" in err[0] and "no id" in err[0]
    assert not out.exists() or not any(out.iterdir())


def test_a_retrained_run_is_refused_and_nothing_is_written(cohort, tmp_path, capsys):
    import shutil

    run = tmp_path / "runs" / "BTNL3" / "fold0"
    shutil.copytree(cohort["run"], run)
    ism = tmp_path / "ism.tsv"
    assert (
        main(["ism", "--run", str(run), "--dataset", str(cohort["path"]), "--out", str(ism)]) == 0
    )
    capsys.readouterr()
    model = next(p for p in run.iterdir() if p.suffix in (".pt", ".ckpt", ".safetensors"))
    model.write_bytes(model.read_bytes() + b"\0")  # retrained (any change of the weights file)
    assert _export(cohort, "--ism", str(ism), "--out", str(tmp_path / "o")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "retrained" in err[0]
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_the_all_people_refit_exports_with_its_pooled_cv_performance(cohort):
    out = cohort["tmp"] / "all"
    argv = ["--baselines", str(cohort["tmp"] / "BL"), "--fold", "all", "--rsid-from", "varID"]
    assert _export(cohort, *argv, "--out", str(out)) == 0
    w, e = _tables(out / "elastic_net_all.db")
    cov = pd.read_csv(out / "elastic_net_all.txt.gz", sep=" ")
    bl = cohort["tmp"] / "BL" / "elastic_net"
    expr = pd.read_csv(cohort["path"] / "expression.tsv", sep="\t", index_col=0)
    for gene in e["genename"]:
        gid = e.loc[e["genename"] == gene, "gene"].iloc[0]
        coefs = pd.read_csv(bl / gene / "all" / "coefficients.tsv", sep="\t", dtype={"chrom": str})
        coefs = coefs[coefs["coef"] != 0]
        gw = w[w["gene"] == gid]
        np.testing.assert_array_equal(gw["weight"].to_numpy(), coefs["coef"].to_numpy())
        pooled = pd.concat(
            pd.read_csv(bl / gene / f"fold{k}" / "predictions.tsv", sep="\t") for k in range(3)
        )
        test = pooled[pooled["split"] == "test"]
        row = e[e["genename"] == gene].iloc[0]
        assert row["pred.perf.R2"] == pytest.approx(
            r2_score(test["observed"], test["predicted"]), abs=1e-12
        )
        people = [s for s in expr.columns if pd.notna(expr.loc[gene, s])]
        x = _vcf_dosages(cohort["sim"].vcf, people, gw["varID"])
        gc = cov[(cov["GENE"] == gid) & (cov["RSID1"] == cov["RSID2"])]
        np.testing.assert_allclose(gc["VALUE"].to_numpy(), x.var(axis=0, ddof=1), rtol=1e-12)


def test_each_fold_of_a_runs_ism_table_is_exported_with_its_own_run(cohort, tmp_path):
    """An ISM table of two runs of one gene (folds 0 and 1): fold 1's surrogate is scored on
    fold 1's test people and intercept from fold 1's train people, not on fold 0's."""
    import shutil

    from variformer.model import Variformer
    from variformer.predict import predict_people

    ds, runs = cohort["ds"], tmp_path / "runs"
    shutil.copytree(cohort["run"], runs / "BTNL3" / "fold0")
    run1 = runs / "BTNL3" / "fold1"
    shutil.copytree(cohort["run"], run1)
    (run1 / "summary.json").write_text(
        json.dumps({"kind": "finetune", "fold": 1, "genes": ["BTNL3"]})
    )
    net, split = Variformer.load(run1), ds.split(1)
    frames = []
    for name in ("tune", "test"):
        p = predict_people(net, ds, "BTNL3", split[name], seq_len=CROP)
        p = p.assign(split=name, observed=ds.expression("BTNL3").loc[split[name]].to_numpy())
        frames.append(p[["sample", "gene", "split", "observed", "predicted"]])
    pd.concat(frames).to_csv(run1 / "predictions.tsv", sep="\t", index=False)
    ism = tmp_path / "ism.tsv"
    assert (
        main(["ism", "--runs", str(runs), "--dataset", str(cohort["path"]), "--out", str(ism)]) == 0
    )
    out = tmp_path / "out"
    for fold, run in ((0, runs / "BTNL3" / "fold0"), (1, run1)):
        argv = ["--ism", str(ism), "--fold", str(fold), "--rsid-from", "varID", "--out", str(out)]
        assert _export(cohort, *argv) == 0
        _, e = _tables(out / f"variformer_ism_fold{fold}.db")
        _, want_r2, want_p = _surrogate_truth(cohort, fold=fold, run=run, ism_path=ism)
        assert e["pred.perf.R2"].iloc[0] == pytest.approx(want_r2, abs=1e-9), fold
        assert e["pred.perf.pval"].iloc[0] == pytest.approx(want_p, rel=1e-7), fold
