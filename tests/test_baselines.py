"""``variformer baselines``, ``select-genes`` and ``slurm baselines`` on simulated cohorts.

Truths: scikit-learn's ElasticNetCV / LassoCV (the shared-Gram path must give the same
fits), sklearn/scipy metrics recomputed from the written files, the simulated h2.
"""

from __future__ import annotations

import json
import os
import subprocess

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from sklearn.linear_model import ElasticNetCV, LassoCV
from sklearn.metrics import r2_score
from sklearn.model_selection import KFold

from baselines import run as bl
from baselines.elastic_net import fit_linear
from baselines.penalized import PATIENCE, enet_cv, stop_index
from baselines.select import select_genes
from core.errors import InputError
from tests.datasets import simulated_dataset
from variformer import cli, slurm

H2 = [0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.0, 0.0]


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    """simulate -> prep: 600 people, 8 genes of known h2, 4,096-bp windows, 3 folds."""
    dataset, sim = simulated_dataset(
        tmp_path_factory.mktemp("cohort"), people=600, genes=len(H2), seq_len=4096, h2=H2, seed=1
    )
    return dataset, pd.read_csv(sim.truth_genes, sep="\t")


@pytest.fixture(scope="module")
def published(cohort, tmp_path_factory):
    """Elastic nets for every gene and fold, written by run_baselines."""
    dataset, _ = cohort
    out = tmp_path_factory.mktemp("bl") / "BL"
    result = bl.run_baselines(dataset, out=out, jobs=1)
    return out, result


# ------------------------------------------------------------------ the shared-Gram path


def ld_genotypes(n, p, seed):
    """0/1/2 dosages with LD blocks, duplicated columns and rare variants (p may exceed n)."""
    rng = np.random.default_rng(seed)
    base = rng.binomial(2, rng.uniform(0.02, 0.5, p // 3 + 1), size=(n, p // 3 + 1))
    cols = [base[:, rng.integers(0, base.shape[1])] for _ in range(p)]
    x = np.stack(cols, axis=1).astype(float)
    flip = rng.random(x.shape) < 0.05
    x[flip] = rng.binomial(2, 0.3, size=flip.sum())
    x = x[:, np.ptp(x, axis=0) > 0]
    beta = np.zeros(x.shape[1])
    beta[rng.choice(x.shape[1], 3, replace=False)] = rng.normal(0, 0.7, 3)
    y = x @ beta + rng.normal(size=n)
    return x, y


@pytest.mark.parametrize(("n", "p", "seed"), [(200, 30, 0), (150, 220, 1), (120, 60, 2)])
def test_enet_cv_equals_elastic_net_cv(n, p, seed):
    x, y = ld_genotypes(n, p, seed)
    folds = KFold(5, shuffle=True, random_state=seed)
    ref = ElasticNetCV(l1_ratio=0.5, cv=folds, max_iter=2000).fit(x, y)
    got = enet_cv(x, y, l1_ratio=0.5, cv=5, seed=seed)
    np.testing.assert_allclose(got.alphas, ref.alphas_, rtol=1e-12)
    np.testing.assert_allclose(got.mse_path, ref.mse_path_, rtol=1e-6, atol=1e-9)
    assert got.alpha == pytest.approx(ref.alpha_, rel=1e-12)
    np.testing.assert_allclose(got.coef, ref.coef_, atol=1e-7)
    assert got.intercept == pytest.approx(ref.intercept_, abs=1e-7)


def test_lasso_is_enet_cv_with_l1_ratio_one():
    x, y = ld_genotypes(160, 40, 3)
    ref = LassoCV(cv=KFold(5, shuffle=True, random_state=0), max_iter=2000).fit(x, y)
    got = enet_cv(x, y, l1_ratio=1.0, cv=5, seed=0)
    assert got.alpha == pytest.approx(ref.alpha_, rel=1e-12)
    np.testing.assert_allclose(got.coef, ref.coef_, atol=1e-7)


@pytest.mark.parametrize(("n", "p", "seed"), [(200, 30, 0), (150, 220, 1), (300, 400, 4)])
def test_early_stopped_path_is_the_grid_prefix_and_picks_elastic_net_cvs_alpha(n, p, seed):
    """The inner folds walking the grid together (warm starts per fold) give ElasticNetCV's
    held-out MSE for every alpha they reach, and on these U-shaped curves its choice."""
    x, y = ld_genotypes(n, p, seed)
    ref = ElasticNetCV(l1_ratio=0.5, cv=KFold(5, shuffle=True, random_state=seed), max_iter=2000)
    ref.fit(x, y)
    got = enet_cv(x, y, l1_ratio=0.5, cv=5, seed=seed, patience=PATIENCE)
    reached = np.isfinite(got.mse_path).all(axis=1)
    k = int(reached.sum())
    assert reached[:k].all() and not reached[k:].any()  # a prefix of the grid, then NaN
    np.testing.assert_allclose(got.mse_path[:k], ref.mse_path_[:k], rtol=1e-6, atol=1e-9)
    if k < len(got.alphas):  # it stopped where the rule says, not earlier
        assert stop_index(ref.mse_path_.mean(axis=1), patience=PATIENCE, rise=0.02) == k - 1
    assert got.alpha == pytest.approx(ref.alpha_, rel=1e-12)
    np.testing.assert_allclose(got.coef, ref.coef_, atol=1e-7)


def test_stop_index_by_hand():
    # minimum 1.0 at index 2; > 1.02 from index 3 on: stops at 3 + patience - 1
    curve = np.array([2.0, 1.5, 1.0, 1.1, 1.2, 1.3, 1.4, 1.5])
    assert stop_index(curve, patience=3, rise=0.02) == 5
    assert stop_index(curve, patience=6, rise=0.02) is None  # only 5 alphas above
    # within 2% of the minimum does not count as a rise; a new minimum resets the count
    flat = np.array([1.0, 1.01, 1.015, 1.02, 0.9, 0.95, 0.95, 0.95])
    assert stop_index(flat, patience=3, rise=0.02) == 7
    assert stop_index(flat, patience=4, rise=0.02) is None
    # a second, lower dip after the stop is missed: the documented price of stopping
    dip = np.array([1.0, 0.8, 0.9, 0.95, 1.0, 0.7])
    assert stop_index(dip, patience=3, rise=0.02) == 4


def test_path_patience_zero_is_the_whole_grid(cohort):
    from data_prep import open_dataset

    ds = open_dataset(cohort[0])
    whole = fit_linear(ds, ds.genes[0], 0, patience=0)
    plain = fit_linear(ds, ds.genes[0], 0, engine="sklearn")
    assert whole.alpha == pytest.approx(plain.alpha, rel=1e-12)
    np.testing.assert_allclose(whole.coefficients, plain.coefficients, atol=1e-7)


def test_cli_path_patience_default_is_the_library_default():
    parser = cli.build_parser("baselines")
    args = parser.parse_args(["baselines", "--dataset", "D", "--out", "B"])
    assert args.path_patience == PATIENCE


def test_gram_and_sklearn_engines_agree_on_the_dataset(cohort):
    from data_prep import open_dataset

    ds = open_dataset(cohort[0])
    for gene in ds.genes[:4]:
        fast = fit_linear(ds, gene, 1)
        plain = fit_linear(ds, gene, 1, engine="sklearn")
        np.testing.assert_allclose(fast.coefficients, plain.coefficients, atol=1e-7)
        assert fast.r2 == pytest.approx(plain.r2, abs=1e-7)
        assert fast.alpha == pytest.approx(plain.alpha, rel=1e-12)


# ------------------------------------------------------------------ who is seen in fitting


class Scrambled:
    """A dataset whose people in ``scramble`` (of one fold) get random expression and genotypes."""

    def __init__(self, ds, fold, parts, seed=0):
        self.ds, self.genes, self.samples, self.n_folds = ds, ds.genes, ds.samples, ds.n_folds
        split = ds.split(fold)
        self.hit = {s for part in parts for s in split[part]}
        self.rng = np.random.default_rng(seed)

    def variants(self, gene):
        return self.ds.variants(gene)

    def split(self, fold, **kw):
        return self.ds.split(fold, **kw)

    def expression(self, gene):
        e = self.ds.expression(gene).copy()
        hit = e.index.isin(self.hit)
        e[hit] = self.rng.normal(100, 50, hit.sum())
        return e

    def dosages(self, gene, samples=None):
        samples = self.samples if samples is None else samples
        x = self.ds.dosages(gene, samples)
        rows = np.isin(samples, list(self.hit))
        x[rows] = self.rng.integers(0, 3, size=(rows.sum(), x.shape[1]))
        return x


@pytest.mark.parametrize("model", ["elastic_net", "ridge"])
def test_test_and_tune_people_never_reach_the_fit(cohort, model):
    """Tune and test people only get predicted: scrambling them leaves the model unchanged,
    while scrambling train people changes it (so the check can fail)."""
    from data_prep import open_dataset

    ds = open_dataset(cohort[0])
    gene = ds.genes[1]
    clean = fit_linear(ds, gene, 0, model=model)
    held = fit_linear(Scrambled(ds, 0, ("tune", "test")), gene, 0, model=model)
    np.testing.assert_array_equal(held.coefficients, clean.coefficients)
    assert held.alpha == clean.alpha and held.intercept == clean.intercept
    assert held.n_train == clean.n_train
    leaked = fit_linear(Scrambled(ds, 0, ("train",)), gene, 0, model=model)
    assert not np.allclose(leaked.coefficients, clean.coefficients)


# ------------------------------------------------------------------ run_baselines output


def test_layout_and_summary_columns(published, cohort):
    out, result = published
    from data_prep import open_dataset

    ds = open_dataset(cohort[0])
    table = pd.read_csv(out / "elastic_net" / "summary.tsv", sep="\t")
    assert list(table.columns) == list(bl.SUMMARY_COLUMNS)
    assert len(table) == len(ds.genes) * 3 == len(result.fitted)
    assert set(zip(table["gene"], table["fold"])) == {(g, k) for g in ds.genes for k in range(3)}
    for gene in ds.genes:
        for fold in range(3):
            d = out / "elastic_net" / gene / f"fold{fold}"
            assert sorted(p.name for p in d.iterdir()) == [
                "coefficients.tsv",
                "config.yaml",
                "inputs.json",
                "predictions.tsv",
                "summary.json",
            ]
    assert not list(out.rglob("*.partial"))


def test_files_recompute_the_metrics_and_predictions(published, cohort):
    """test_r2/test_pcc are sklearn/scipy on predictions.tsv; predictions are intercept +
    dosages @ coefficients.tsv; one coefficient row per dataset SNV, in dataset order."""
    from data_prep import open_dataset

    out, _ = published
    ds = open_dataset(cohort[0])
    table = pd.read_csv(out / "elastic_net" / "summary.tsv", sep="\t")
    for row in table.itertuples(index=False):
        d = out / "elastic_net" / row.gene / f"fold{row.fold}"
        preds = pd.read_csv(d / "predictions.tsv", sep="\t", dtype={"sample": str})
        test = preds[preds["split"] == "test"]
        assert row.test_r2 == pytest.approx(
            r2_score(test["observed"], test["predicted"]), abs=1e-12
        )
        if np.ptp(test["predicted"]) > 0:
            assert row.test_pcc == pytest.approx(
                stats.pearsonr(test["observed"], test["predicted"])[0], abs=1e-12
            )
        else:  # every coefficient 0: a constant prediction has no correlation
            assert np.isnan(row.test_pcc) and row.n_nonzero == 0
        split = ds.split(row.fold)
        assert set(test["sample"]) == set(split["test"]) and row.n_test == len(test)
        assert set(preds.loc[preds["split"] == "tune", "sample"]) == set(split["tune"])
        assert row.n_train == len(split["train"])
        coef = pd.read_csv(
            d / "coefficients.tsv", sep="\t", dtype={"chrom": str}, keep_default_na=False
        )
        variants = ds.variants(row.gene)
        assert list(coef.columns) == list(bl.COEFFICIENT_COLUMNS)
        pd.testing.assert_frame_equal(
            coef[["chrom", "pos", "id", "ref", "alt"]],
            variants[["chrom", "pos", "id", "ref", "alt"]],
        )
        assert row.n_snvs == len(variants) and row.n_nonzero == int((coef["coef"] != 0).sum())
        # SNVs constant among the train people are dropped and get 0
        constant = np.ptp(ds.dosages(row.gene, split["train"]), axis=0) == 0
        assert (coef.loc[constant, "coef"] == 0).all()
        summary = json.loads((d / "summary.json").read_text())
        x = ds.dosages(row.gene, list(preds["sample"]))
        np.testing.assert_allclose(
            preds["predicted"], summary["intercept"] + x @ coef["coef"].to_numpy(), atol=1e-9
        )
        assert summary["kind"] == "baseline" and summary["inputs"]["dataset"]["sha256"]


def test_r2_tracks_the_simulated_h2(published, cohort):
    out, _ = published
    _, truth = cohort
    table = pd.read_csv(out / "elastic_net" / "summary.tsv", sep="\t")
    r2 = table.groupby("gene")["test_r2"].mean()
    h2 = truth.set_index("gene")["h2_realized"].reindex(r2.index)
    assert stats.spearmanr(h2, r2).statistic > 0.7, pd.concat([h2, r2], axis=1)
    # h2 = 0: near zero (slightly negative: a few noise SNVs fitted on train people, 60 test
    # people), and below every gene with h2 >= 0.3
    null = r2[h2 == 0]
    assert len(null) == 2 and (null.abs() < 0.12).all(), null
    assert null.max() < r2[h2 >= 0.3].min() and (r2[h2 >= 0.4] > 0.15).all(), (h2, r2)


def test_rerun_resumes_and_a_killed_fit_leaves_nothing_complete(cohort, tmp_path, monkeypatch):
    dataset, _ = cohort
    genes = ["BTNL3", "ZFP57"]
    out = tmp_path / "BL"
    calls = []
    real = bl.fit_linear

    def dies_on_second(*args, **kwargs):
        calls.append(args[1:3])
        if len(calls) == 2:
            raise KeyboardInterrupt  # killed while fitting gene-fold 2
        return real(*args, **kwargs)

    monkeypatch.setattr(bl, "fit_linear", dies_on_second)
    with pytest.raises(KeyboardInterrupt):
        bl.run_baselines(dataset, out=out, genes=genes, folds=[0, 1])
    complete = [p.parent for p in out.rglob("summary.json")]
    assert complete == [out / "elastic_net" / "BTNL3" / "fold0"]
    monkeypatch.setattr(bl, "fit_linear", real)
    again = bl.run_baselines(dataset, out=out, genes=genes, folds=[0, 1])
    assert again.skipped == [("BTNL3", 0)]
    assert sorted(again.fitted) == [("BTNL3", 1), ("ZFP57", 0), ("ZFP57", 1)]
    assert len(again.summary) == 4 and not list(out.rglob("*.partial"))
    third = bl.run_baselines(dataset, out=out, genes=genes, folds=[0, 1])
    assert third.fitted == [] and len(third.skipped) == 4


def test_parallel_jobs_give_the_same_files(cohort, published, tmp_path):
    out, _ = published
    par = bl.run_baselines(cohort[0], out=tmp_path / "BL", genes=["BTNL3", "PPIF", "ZFP57"], jobs=2)
    ref = pd.read_csv(out / "elastic_net" / "summary.tsv", sep="\t")
    ref = ref[ref["gene"].isin(["BTNL3", "PPIF", "ZFP57"])].reset_index(drop=True)
    pd.testing.assert_frame_equal(par.summary, ref, check_dtype=False)


def test_cli_baselines_and_bad_input(cohort, tmp_path, capsys):
    dataset, _ = cohort
    out = tmp_path / "BL"
    argv = ["baselines", "--dataset", str(dataset), "--gene", "PPIF", "--fold", "2"]
    assert cli.main([*argv, "--model", "lasso", "--out", str(out)]) == 0
    table = pd.read_csv(out / "lasso" / "summary.tsv", sep="\t")
    assert list(zip(table["gene"], table["fold"], table["model"])) == [("PPIF", 2, "lasso")]
    capsys.readouterr()
    bad = tmp_path / "BL2"
    for extra, message in (
        (["--genes", "PPIF", "NOPE"], "gene 'NOPE' is not in the dataset"),
        (["--folds", "0", "7"], "fold 7 does not exist"),
        (["--jobs", "0"], "--jobs must be at least 1"),
    ):
        code = cli.main(["baselines", "--dataset", str(dataset), *extra, "--out", str(bad)])
        err = capsys.readouterr().err.strip()
        assert code == 2 and message in err and len(err.splitlines()) == 1, err
        assert not bad.exists()


# ------------------------------------------------------------------ gene selection


def test_select_genes_by_hand():
    # 10 bins of width 0.1 over [0, 1]; the top bin has 1 gene, the next 5
    r2 = pd.Series(
        [1.0, 0.85, 0.84, 0.83, 0.82, 0.81, 0.45, 0.44, 0.05, 0.0, 0.12, 0.5],
        index=[f"g{i}" for i in range(12)],
    )
    chosen = select_genes(r2, n_bins=10, per_bin=2, min_test_r2=0.1, max_test=3, seed=0)
    # bin 10: g0 (shortfall 1 -> bin 9 takes 3 of g1..g5); bin 6: g11 (0.5) + bin 5: g6, g7 ...
    assert chosen.train[0] == "g0"
    assert set(chosen.train[1:4]) <= {"g1", "g2", "g3", "g4", "g5"}
    assert set(chosen.train) >= {"g11", "g6", "g7", "g8", "g9", "g10"}
    assert len(chosen.train) == 10
    left = set(r2.index) - set(chosen.train)
    assert chosen.test == sorted(left, key=lambda g: -r2[g])[:3]
    table = chosen.table.set_index("gene")
    assert table.loc["g0", "bin"] == 10 and table.loc["g9", "bin"] == 1


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(st.floats(-0.5, 1.0), min_size=1, max_size=80),
    per_bin=st.integers(0, 6),
    n_bins=st.integers(1, 10),
    max_test=st.integers(0, 10),
)
def test_select_genes_properties(values, per_bin, n_bins, max_test):
    r2 = pd.Series(values, index=[f"g{i}" for i in range(len(values))])
    chosen = select_genes(r2, n_bins=n_bins, per_bin=per_bin, max_test=max_test)
    assert (
        len(chosen.train) == min(len(r2), n_bins * per_bin) or len(chosen.train) < n_bins * per_bin
    )
    assert len(set(chosen.train)) == len(chosen.train)
    assert not set(chosen.train) & set(chosen.test)
    eligible = [g for g in r2.index if g not in chosen.train and r2[g] >= 0.1]
    assert len(chosen.test) == min(len(eligible), max_test)
    assert all(r2[g] >= 0.1 for g in chosen.test)
    # the top bin (R2 >= its lower edge) is drawn first: min(per_bin, its size) of its genes
    edge = np.linspace(r2.min(), r2.max(), n_bins + 1)[-2]
    top = set(r2.index[r2 >= edge])
    assert len(top & set(chosen.train)) == min(per_bin, len(top))


def test_cli_select_genes(published, tmp_path, capsys):
    out, _ = published
    dest = tmp_path / "genes"
    argv = ["select-genes", "--baselines", str(out), "--per-bin", "1", "--bins", "3"]
    assert cli.main([*argv, "--out", str(dest)]) == 0
    train = (dest / "train_genes.txt").read_text().split()
    test = (dest / "test_genes.txt").read_text().split()
    table = pd.read_csv(out / "elastic_net" / "summary.tsv", sep="\t")
    r2 = table[table["fold"] == 0].set_index("gene")["test_r2"]
    assert len(train) == 3 and r2.idxmax() in train
    assert test == [
        g for g in r2.sort_values(ascending=False).index if g not in train and r2[g] >= 0.1
    ]
    assert cli.main([*argv, "--out", str(dest)]) == 2  # exists, no --force


# ------------------------------------------------------------------ SLURM


def test_slurm_baselines_tasks_run_the_right_genes(cohort, tmp_path):
    dataset, truth = cohort
    genes = list(truth["gene"])  # 8 genes -> tasks of 3, 3, 2
    genes_file = tmp_path / "genes.txt"
    genes_file.write_text("\n".join(genes) + "\n")
    argv = ["slurm", "baselines", "--dataset", str(dataset), "--genes-file", str(genes_file)]
    argv += ["--folds", "0", "2", "--genes-per-task", "3", "--cpus", "3"]
    argv += [
        "--job-dir",
        str(tmp_path / "jobs"),
        "--out",
        str(tmp_path / "BL"),
        "--l1-ratio",
        "0.7",
    ]
    assert cli.main(argv) == 0
    (sub,) = (tmp_path / "jobs").glob("*-elastic_net")  # this call's submission directory
    script = sub / "baselines_array.sbatch"
    text = script.read_text()
    assert "#SBATCH --array=0-2\n" in text and "#SBATCH --cpus-per-task=3" in text
    chunks = [genes[0:3], genes[3:6], genes[6:8]]
    expected = "genes\n" + "".join(" ".join(c) + "\n" for c in chunks)
    assert (sub / "tasks.tsv").read_text() == expected
    env = {
        **os.environ,
        "SLURM_ARRAY_TASK_ID": "1",
        "VARIFORMER": "echo",
        "SLURM_CPUS_PER_TASK": "3",
    }
    done = subprocess.run(
        ["bash", str(script)], capture_output=True, text=True, env=env, check=True
    )
    lines = done.stdout.strip().splitlines()
    assert lines[0].startswith("### attempt 0 | ") and lines[-1].startswith("### exit 0 | ")
    words = lines[-2].split()
    assert words[0] == "baselines"
    assert words[words.index("--genes") + 1 : words.index("--folds")] == chunks[1]
    assert words[words.index("--folds") + 1 : words.index("--model")] == ["0", "2"]
    assert words[words.index("--jobs") + 1] == "3" and words[words.index("--l1-ratio") + 1] == "0.7"
    assert words[words.index("--out") + 1] == str((tmp_path / "BL").resolve())
    # the task's command really runs: one task of the real CLI fits its genes
    env.pop("VARIFORMER")
    env["SLURM_ARRAY_TASK_ID"] = "2"
    env["SLURM_CPUS_PER_TASK"] = "1"
    subprocess.run(["bash", str(script)], capture_output=True, text=True, env=env, check=True)
    table = pd.read_csv(tmp_path / "BL" / "elastic_net" / "summary.tsv", sep="\t")
    assert sorted(zip(table["gene"], table["fold"])) == sorted(
        (g, k) for g in chunks[2] for k in (0, 2)
    )
    env["SLURM_ARRAY_TASK_ID"] = "3"
    gone = subprocess.run(["bash", str(script)], capture_output=True, text=True, env=env)
    assert gone.returncode == 1 and "no such line" in gone.stderr


def test_slurm_baselines_bad_input(cohort, tmp_path):
    dataset, _ = cohort
    kw = {"baselines": tmp_path / "BL", "dataset": dataset, "folds": [0]}
    with pytest.raises(InputError, match="genes-per-task"):
        slurm.write_baselines_array(tmp_path, genes=["PPIF"], genes_per_task=0, **kw)
    with pytest.raises(InputError, match="not in the dataset"):
        slurm.write_baselines_array(tmp_path, genes=["PPIF", "NOPE"], **kw)
    assert not (tmp_path / "tasks.tsv").exists()
