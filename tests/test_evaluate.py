"""``variformer evaluate`` over tiny fine-tuning runs and elastic nets on the same dataset.

Truths: every metric recomputed with sklearn/scipy from the predictions file it names; the
gene-folds each model should have (what is absent is marked missing, not guessed); the
figures are drawn from the written tables.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from scipy import stats
from sklearn.metrics import r2_score

from baselines.run import run_baselines
from tests.datasets import simulated_dataset
from tests.fakes import tiny_config
from tests.matched import check_summary_against_metrics, read_evaluation_tables
from variformer import cli
from variformer import finetune as ft
from variformer.evaluate import METRICS_COLUMNS

SEQ_LEN = 1024


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """simulate -> prep (100 people, 3 genes, 1,024 bp) -> tiny runs + elastic nets."""
    root = tmp_path_factory.mktemp("eval")
    dataset, sim = simulated_dataset(
        root, people=100, genes=3, seq_len=SEQ_LEN, seed=2, cohort="sim"
    )
    genes = list(pd.read_csv(sim.truth_genes, sep="\t")["gene"])
    a, b, c = genes
    runs = root / "runs"
    quick = ("training.max_epochs=1", "training.limit_train_batches=2")
    for gene, fold in ((a, 0), (a, 1), (b, 0)):
        ft.finetune(dataset, genes=[gene], fold=fold, config=tiny_config(*quick), out=runs)
    # a multi-gene run holding gene c out of training (HOGP), and a downsampled run
    multi = tiny_config(*quick, f"data.tune_genes=[{c}]")
    ft.finetune(dataset, genes=[a, b], fold=0, config=multi, out=runs, name="pair")
    half = tiny_config(*quick, "data.train_fraction=0.5")
    ft.finetune(dataset, genes=[a], fold=0, config=half, out=runs, name=f"{a}-half")
    run_baselines(dataset, out=root / "BL")
    return root, dataset, genes


@pytest.fixture(scope="module")
def evaluated(setup):
    root, dataset, _ = setup
    out = root / "EVAL"
    argv = ["evaluate", "--dataset", str(dataset), "--runs", str(root / "runs")]
    code = cli.main([*argv, "--baselines", str(root / "BL"), "--out", str(out)])
    assert code == 0
    return out


def test_one_table_with_both_models_for_every_gene_and_fold(setup, evaluated, capsys):
    _, _, (a, b, c) = setup
    metrics = pd.read_csv(
        evaluated / "metrics.tsv", sep="\t", keep_default_na=False, na_values=["NA"]
    )
    assert list(metrics.columns[:8]) == [
        "gene",
        "fold",
        "model",
        "setting",
        "split",
        "r2",
        "pcc",
        "n",
    ]
    assert list(metrics.columns) == list(METRICS_COLUMNS)
    test = metrics[(metrics["split"] == "test") & (metrics["train_fraction"] == 1.0)]
    hop = test[test["setting"] == "hop"]
    for gene in (a, b, c):
        for fold in (0, 1, 2):
            rows = hop[(hop["gene"] == gene) & (hop["fold"] == fold)].set_index("model")
            assert rows.loc["elastic_net", "status"] == "ok"
            have = {(a, 0), (a, 1), (b, 0)}
            assert rows.loc["variformer", "status"] == ("ok" if (gene, fold) in have else "missing")
    missing = hop[hop["status"] == "missing"]
    assert missing["r2"].isna().all() and (missing["n"] == 0).all()
    lacking = missing[missing["model"] == "variformer"]
    assert set(zip(lacking["gene"], lacking["fold"])) == {
        (a, 2),
        (b, 1),
        (b, 2),
        (c, 0),
        (c, 1),
        (c, 2),
    }
    # the multi-gene run: a, b held-out people (hop), c held-out gene and people (hogp)
    multi = test[test["model"] == "variformer_multi"]
    assert set(zip(multi["gene"], multi["setting"], multi["status"])) >= {
        (a, "hop", "ok"),
        (b, "hop", "ok"),
        (c, "hogp", "ok"),
    }
    # the downsampled run keeps its fraction and does not count as the full model
    half = metrics[(metrics["train_fraction"] == 0.5) & (metrics["split"] == "test")]
    assert list(zip(half["gene"], half["fold"], half["model"])) == [(a, 0, "variformer")]


def test_every_metric_recomputes_from_its_predictions_file(evaluated):
    metrics = pd.read_csv(
        evaluated / "metrics.tsv", sep="\t", keep_default_na=False, na_values=["NA"]
    )
    ok = metrics[metrics["status"] == "ok"]
    assert len(ok) > 20
    for row in ok.itertuples(index=False):
        preds = pd.read_csv(row.source, sep="\t", dtype={"sample": str, "gene": str})
        part = preds[(preds["gene"] == row.gene) & (preds["split"] == row.split)]
        assert len(part) == row.n
        assert row.r2 == pytest.approx(r2_score(part["observed"], part["predicted"]), abs=1e-9)
        if pd.notna(row.pcc):
            expected = stats.pearsonr(part["observed"], part["predicted"])[0]
            assert row.pcc == pytest.approx(expected, abs=1e-9)


def test_summary_compares_every_model_on_the_folds_they_all_have(setup, evaluated):
    """The runs: variformer on (a, 0), (a, 1), (b, 0) and a multi-gene run on fold 0; elastic
    nets on every fold. So every gene is compared on fold 0 alone, and the elastic net's
    summary number is its fold-0 R2, not its mean over 3 folds."""
    _, _, (a, b, c) = setup
    metrics, summary = read_evaluation_tables(evaluated)
    check_summary_against_metrics(metrics, summary)
    assert set(summary["folds"]) == {"0"} and set(summary["n_folds"]) == {1}
    test = metrics[(metrics["split"] == "test") & (metrics["status"] == "ok")]
    en = test[(test["model"] == "elastic_net") & (test["setting"] == "hop")]
    for gene in (a, b, c):
        fold0 = en[(en["gene"] == gene) & (en["fold"] == 0)]["r2"].item()
        assert set(en.loc[en["gene"] == gene, "fold"]) == {0, 1, 2}
        rows = summary[summary["gene"] == gene]
        assert rows["elastic_net_r2"].to_numpy() == pytest.approx(fold0)
    row = summary[(summary["gene"] == a) & (summary["model"] == "variformer")].iloc[0]
    v0 = test[(test["model"] == "variformer") & (test["gene"] == a) & (test["fold"] == 0)]
    assert row["r2"] == pytest.approx(v0[v0["train_fraction"] == 1]["r2"].item())


def test_missing_pieces_are_reported_and_figures_drawn(setup, evaluated, tmp_path, capsys):
    root, dataset, _ = setup
    missing = pd.read_csv(evaluated / "missing.tsv", sep="\t")
    assert len(missing) and set(missing.columns) == {"gene", "fold", "model", "setting"}
    figures = sorted(p.name for p in (evaluated / "figures").iterdir())
    assert figures == [
        "difference_from_elastic_net.png",
        "learning_curve.png",
        "observed_vs_predicted.png",
        "versus_elastic_net.png",
    ]
    # the command says what is missing; --folds narrows the grid
    out = tmp_path / "EVAL0"
    argv = ["evaluate", "--dataset", str(dataset), "--runs", str(root / "runs")]
    assert (
        cli.main([*argv, "--baselines", str(root / "BL"), "--folds", "0", "--out", str(out)]) == 0
    )
    printed = capsys.readouterr().out
    assert "missing: variformer lacks 1 gene-folds" in printed, printed
    assert "compares each gene's models on the folds they all have (folds 0: 3 genes)" in printed
    metrics = pd.read_csv(out / "metrics.tsv", sep="\t")
    assert set(metrics["fold"]) == {0}


def test_bad_input_is_one_line_and_writes_nothing(setup, tmp_path, capsys):
    root, dataset, _ = setup
    out = tmp_path / "E"
    for argv, message in (
        (["--runs", str(root / "runs"), "--folds", "5"], "fold 5 does not exist"),
        ([], "nothing to evaluate"),
        (["--runs", str(tmp_path / "nope")], "is not a directory of runs"),
    ):
        code = cli.main(["evaluate", "--dataset", str(dataset), *argv, "--out", str(out)])
        err = capsys.readouterr().err.strip()
        assert code == 2 and message in err and len(err.splitlines()) == 1, err
        assert not out.exists()


def test_enformer_track_and_centre_bins(setup, tmp_path, capsys):
    """Pre-trained Enformer through `evaluate --enformer DIR --track K`: the human head's track
    K summed over the 3 centre bins (bins 3, 4, 5 of the 8 of a 1,024-bp window), computed
    here straight from enformer-pytorch on each person's sequence."""
    import numpy as np
    import torch
    from enformer_pytorch import Enformer

    from data_prep import open_dataset
    from tests.fakes import tiny_hparams

    root, dataset, genes = setup
    torch.manual_seed(3)
    hp = {**tiny_hparams(), "output_heads": {"human": 6, "mouse": 2}, "target_length": 896}
    enformer = Enformer.from_hparams(**hp).eval()
    enformer.save_pretrained(tmp_path / "enformer", safe_serialization=False)
    out = tmp_path / "E"
    argv = ["evaluate", "--dataset", str(dataset), "--baselines", str(root / "BL")]
    argv += ["--enformer", str(tmp_path / "enformer"), "--track", "4", "--folds", "0"]
    assert cli.main([*argv, "--gene", genes[0], "--out", str(out), "--device", "cpu"]) == 0
    preds = pd.read_csv(
        out / "enformer" / "fold0" / "predictions.tsv", sep="\t", dtype={"sample": str}
    )
    ds = open_dataset(dataset)
    people = list(preds["sample"])
    with torch.no_grad():
        full = enformer(
            torch.from_numpy(ds.sequences(genes[0], people)), head="human", target_length=-1
        )
    assert full.shape == (len(people), 8, 6)
    expected = full[:, 3:6, 4].sum(dim=1).numpy()
    np.testing.assert_allclose(preds["predicted"], expected, rtol=1e-4, atol=1e-6)
    split = ds.split(0)
    assert set(preds.loc[preds["split"] == "test", "sample"]) == set(split["test"])
    expr = ds.expression(genes[0])
    np.testing.assert_allclose(preds["observed"], expr.loc[people].to_numpy())
    metrics = pd.read_csv(out / "metrics.tsv", sep="\t")
    row = metrics[(metrics["model"] == "enformer") & (metrics["split"] == "test")].iloc[0]
    test = preds[preds["split"] == "test"]
    assert row["r2"] == pytest.approx(r2_score(test["observed"], test["predicted"]))
    capsys.readouterr()
    bad = cli.main([*argv[:-4], "--track", "6", "--folds", "0", "--out", str(tmp_path / "F")])
    err = capsys.readouterr().err
    assert bad == 2 and "--track 6 is not a track of Enformer's human head (0..5)" in err
    assert not (tmp_path / "F").exists()


def _renamed_cohort(sim, out, rename: dict) -> tuple:
    """The simulated VCF and expression BED with people renamed (``rename``: old -> new id)."""
    import gzip

    import pysam
    import pysam.bcftools

    out.mkdir()
    names = out / "names.txt"
    names.write_text("".join(f"{old} {new}\n" for old, new in rename.items()))
    vcf = out / "cohort.vcf.gz"
    # bcftools reheader writes the (still bgzipped) VCF to stdout: pysam returns it as bytes
    vcf.write_bytes(pysam.bcftools.reheader("-s", str(names), str(sim / "cohort.vcf.gz")))
    pysam.tabix_index(str(vcf), preset="vcf", force=True)
    with gzip.open(sim / "expression.bed.gz", "rt") as fh:
        header, *rows = fh.read().splitlines()
    header = "\t".join(rename.get(c, c) for c in header.split("\t"))
    plain = out / "expression.bed"
    plain.write_text("\n".join([header, *rows]) + "\n")
    bed = pysam.tabix_index(str(plain), preset="bed", force=True)
    return vcf, Path(bed)


def test_cross_cohort_predictions_equal_the_in_cohort_ones_for_the_same_people(setup, tmp_path):
    """DS2 = DS's fold-0 test people, under other ids, prepared on their own: every model
    trained on DS must predict them exactly as it did inside DS (same genotypes, same windows,
    same model). Under their own ids they would be refused: the cohorts would share people."""
    from data_prep import open_dataset
    from data_prep.prep import prep_dataset

    root, dataset, genes = setup
    ds = open_dataset(dataset)
    test0 = list(ds.split(0)["test"])
    sim = root / "sim"
    prep_kw = dict(
        fasta=sim / "ref.fa", annotation=sim / "genes.gtf", genes=genes, seq_len=SEQ_LEN,
        samples_file=tmp_path / "people.txt", seed=0, progress=False,
    )  # fmt: skip
    (tmp_path / "people.txt").write_text("\n".join(test0) + "\n")
    prep_dataset(
        vcfs=[sim / "cohort.vcf.gz"], expression=sim / "expression.bed.gz",
        out=tmp_path / "same_ids", **prep_kw,
    )  # fmt: skip
    shared = ["evaluate", "--dataset", str(dataset), "--baselines", str(root / "BL"),
              "--test-dataset", str(tmp_path / "same_ids"), "--out", str(tmp_path / "E0")]  # fmt: skip
    assert cli.main(shared) == 2 and not (tmp_path / "E0").exists()

    rename = {s: f"other-{s}" for s in ds.samples}
    vcf, bed = _renamed_cohort(sim, tmp_path / "renamed", rename)
    (tmp_path / "people.txt").write_text("\n".join(rename[s] for s in test0) + "\n")
    prep_dataset(vcfs=[vcf], expression=bed, out=tmp_path / "ds2", **prep_kw)
    back = {new: old for old, new in rename.items()}
    out = tmp_path / "EVAL"
    argv = ["evaluate", "--dataset", str(dataset), "--runs", str(root / "runs"), "--baselines",
            str(root / "BL"), "--test-dataset", str(tmp_path / "ds2"), "--out", str(out)]  # fmt: skip
    assert cli.main(argv) == 0
    metrics = pd.read_csv(out / "metrics.tsv", sep="\t")
    cross = metrics[(metrics["setting"] == "cross_cohort") & (metrics["fold"] == 0)]
    assert {"elastic_net", "variformer"} <= set(cross["model"])
    checked = 0
    for row in cross[cross["status"] == "ok"].itertuples():
        theirs = pd.read_csv(out / row.source, sep="\t") if not str(row.source).startswith("/") else pd.read_csv(row.source, sep="\t")  # fmt: skip
        theirs = theirs[theirs["gene"] == row.gene]
        theirs = theirs.assign(sample=theirs["sample"].map(back)).set_index("sample")
        assert set(theirs.index) == set(test0)
        # the same model inside DS: its own predictions file for this gene and fold
        inside = metrics[(metrics["model"] == row.model) & (metrics["gene"] == row.gene)
                         & (metrics["fold"] == 0) & (metrics["setting"] == "hop")
                         & (metrics["train_fraction"] == row.train_fraction)
                         & (metrics["split"] == "test")]  # fmt: skip
        if inside.empty or inside["status"].iloc[0] != "ok":
            continue
        own = pd.read_csv(inside["source"].iloc[0], sep="\t")
        own = own[(own["gene"] == row.gene) & (own["split"] == "test")].set_index("sample")
        common = own.index.intersection(theirs.index)
        assert len(common) == len(test0)
        pd.testing.assert_series_equal(
            theirs.loc[common, "predicted"], own.loc[common, "predicted"], rtol=1e-4, atol=1e-5
        )
        assert row.r2 == pytest.approx(r2_score(theirs["observed"], theirs["predicted"]), abs=1e-6)
        checked += 1
    assert checked >= 3  # elastic nets of every gene, and the fine-tuned single-gene run


def test_a_model_with_flat_predictions_is_marked_as_not_learned():
    """learned / learned_reason per model, gene and fold, from the test people's predictions:
    flat predictions (sd below 1e-6 x the observed sd) learned nothing."""
    import numpy as np

    from core.tables import predictions_table
    from variformer.evaluate import evaluate
    from variformer.evaluation_sources import Source

    rng = np.random.default_rng(0)
    people = [f"p{i}" for i in range(20)]
    observed = rng.normal(size=20)
    split = ["tune"] * 10 + ["test"] * 10
    flat = predictions_table(people, gene="G", split=split, observed=observed,
                             predicted=np.full(20, 0.25) + 1e-9 * rng.normal(size=20))  # fmt: skip
    real = predictions_table(people, gene="G", split=split, observed=observed,
                             predicted=observed + rng.normal(size=20))  # fmt: skip
    result = evaluate([
        Source("variformer", "hop", 0, 1.0, flat, "flat.tsv"),
        Source("elastic_net", "hop", 0, 1.0, real, "real.tsv"),
    ])  # fmt: skip
    m = result.metrics.set_index(["model", "split"])
    sd = np.std(flat[flat["split"] == "test"]["predicted"])
    assert sd < 1e-6 * np.std(observed[10:])  # the truth, computed here
    assert m.loc[("variformer", "test"), "learned"] == False  # noqa: E712
    assert "flat" in m.loc[("variformer", "test"), "learned_reason"]
    assert m.loc[("variformer", "tune"), "learned"] == False  # noqa: E712 (the whole model-fold)
    assert m.loc[("elastic_net", "test"), "learned"] == True  # noqa: E712
    assert m.loc[("elastic_net", "test"), "learned_reason"] == ""


def test_ism_scores_at_rounding_level_mark_a_model_as_not_learned(tmp_path):
    """With ISM tables, a model whose largest |ISM| of a gene and fold is below 100 float32
    epsilons of its output scale (its largest |prediction|) learned nothing, even though its
    predictions vary; another model's real scores leave it learned."""
    import numpy as np

    from core.tables import predictions_table
    from variformer.evaluate import evaluate, screen_ism

    rng = np.random.default_rng(1)
    people = [f"p{i}" for i in range(20)]
    observed = rng.normal(size=20)
    preds = predictions_table(people, gene="G", split=["test"] * 20, observed=observed,
                              predicted=3.0 + rng.normal(size=20))  # fmt: skip
    from variformer.evaluation_sources import Source

    result = evaluate([
        Source("variformer", "hop", 0, 1.0, preds, "a.tsv"),
        Source("enformer", "hop", 0, 1.0, preds, "b.tsv"),
    ])  # fmt: skip
    scale = float(np.abs(preds["predicted"]).max())
    limit = 100 * float(np.finfo(np.float32).eps) * scale  # the definition, computed here
    ism = tmp_path / "ism"
    ism.mkdir()
    base = {"gene": "G", "chrom": "1", "pos": [10, 20], "id": ".", "ref": "A", "alt": "C",
            "maf": 0.1, "tss_distance": [0, 10]}  # fmt: skip
    pd.DataFrame(base | {"fold": 0, "score": [0.5 * limit, -0.9 * limit]}).to_csv(
        ism / "variformer.tsv", sep="\t", index=False
    )
    pd.DataFrame(base | {"fold": -1, "score": [2 * limit, 0.0]}).to_csv(
        ism / "enformer.tsv", sep="\t", index=False
    )
    m = screen_ism(result.metrics, result.predictions, ism).set_index("model")
    assert m.loc["variformer", "learned"] == False  # noqa: E712
    assert "rounding" in m.loc["variformer", "learned_reason"]
    assert m.loc["enformer", "learned"] == True  # noqa: E712
