"""``variformer analyze`` end to end on a small simulated cohort whose truth is known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.analysis_cohort import build
from variformer import cli


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    return build(tmp_path_factory.mktemp("analysis"))


@pytest.fixture(scope="module")
def analysis(cohort):
    from variformer.analysis.analyze import AnalysisInputs, AnalysisOptions, analyze

    sim = cohort.sim
    inputs = AnalysisInputs(
        cohort.dataset, cohort.ism, cohort.baselines, runs=cohort.runs,
        finemap=sim.finemap, eqtls=sim.eqtls, chromhmm=[sim.chromhmm], truth=sim.truth,
    )  # fmt: skip
    # every gene (no R2 filter): these tests check the machinery against the simulated truth;
    # log-odds scoring, the one the simulator plants its motifs by (motifbreakR's default
    # method scales each column by max - min, so weak planted changes fall under its 0.4 cut)
    opts = AnalysisOptions(min_r2=None, motif_method="log")
    return analyze(inputs, out=cohort.root / "an", options=opts)


def test_outputs_and_contract_columns(analysis):
    out = analysis.out
    names = (
        "hsvs",
        "drivers",
        "sign_agreement",
        "motifs",
        "chromatin",
        "eqtl_auroc",
        "truth_auroc",
    )
    for name in names:
        assert (out / f"{name}.tsv").is_file(), name
    auroc = pd.read_csv(out / "eqtl_auroc.tsv", sep="\t")
    cols = ["model", "negatives", "auroc", "aupr", "n_pos", "n_neg", "hsv_fold"]
    assert list(auroc.columns) == cols
    assert (auroc["hsv_fold"].astype(str) == "0").all()
    assert (auroc["negatives"] == "eqtl").all()
    # the paper's Fig. 3c: ridge is the linear model, "so that all variants get a weight"
    assert set(auroc["model"]) == {"ridge", "variformer", "enformer"}
    assert (auroc["n_neg"] <= 5 * auroc["n_pos"]).all() and (auroc["n_neg"] > 0).all()
    assert not any(p.name.startswith(".") for p in out.parent.iterdir() if p.name != "an")


def test_hsv_counts_follow_elastic_net(analysis, cohort):
    """k = the n_nonzero of fold 0's elastic net (the paper's first split), and the HSVs are
    each model's fold-0 SNVs with the largest |weight| (recomputed from the written tables)."""
    summ = pd.read_csv(cohort.baselines / "elastic_net" / "summary.tsv", sep="\t")
    k = summ[summ["fold"] == 0].set_index("gene")["n_nonzero"]
    hsvs = pd.read_csv(analysis.out / "hsvs.tsv", sep="\t")
    assert (hsvs["hsv_fold"].astype(str) == "0").all()
    n = hsvs.groupby(["model", "gene"]).size()
    for (model, gene), count in n.items():
        assert count == min(k[gene], 10**9), (model, gene)
    ism = pd.read_csv(cohort.ism / "variformer.tsv", sep="\t")
    for gene in hsvs["gene"].unique():
        mine = ism[(ism["gene"] == gene) & (ism["fold"] == 0)]
        order = np.argsort(-mine["score"].abs().to_numpy(), kind="stable")
        want = set(mine["pos"].to_numpy()[order[: k[gene]]])
        got = hsvs[(hsvs.model == "variformer") & (hsvs.gene == gene)]
        assert set(got["pos"]) == want, gene
        coef = pd.read_csv(
            cohort.baselines / "elastic_net" / gene / "fold0" / "coefficients.tsv", sep="\t"
        )
        nz = set(coef.loc[coef["coef"] != 0, "pos"])
        got = hsvs[(hsvs.model == "elastic_net") & (hsvs.gene == gene)]
        assert set(got["pos"]) == nz, gene  # k = n_nonzero: the HSVs are its non-zero SNVs


def test_true_causal_snvs_rank_high(analysis):
    truth = analysis.truth_auroc.set_index("model")
    # the fake Variformer scores are the true effects: perfect; elastic net learned from data
    assert truth.loc["variformer", "auroc"] == pytest.approx(1.0)
    assert truth.loc["elastic_net", "auroc"] > 0.7
    assert truth.loc["ridge", "auroc"] > 0.7
    assert truth.loc["enformer", "auroc"] < truth.loc["elastic_net", "auroc"]


def test_drivers_are_the_causal_snvs_of_a_linear_model(analysis, cohort):
    truth = pd.read_csv(cohort.sim.truth, sep="\t", dtype={"chrom": str})
    causal = set(zip(truth["gene"], truth["pos"]))
    d = analysis.drivers[analysis.drivers["model"] == "variformer"]
    # genes with h2 = 0 have no causal SNV: their fake predictions are made of noise weights
    d = d[d["gene"].isin(set(truth["gene"]))]
    assert len(d) >= 2 * truth["gene"].nunique()
    assert set(zip(d["gene"], d["pos"])) <= causal
    s = analysis.driver_summary
    assert (s.loc[s.model == "enformer", "status"] == "no predictions").all()
    assert (s.loc[s.model == "variformer", "status"] == "ok").all()


def test_enrichment_is_highest_over_planted_elements(analysis):
    c = analysis.chromatin
    top = c[(c.gene == "all") & (c.model == "variformer")].sort_values("log2_ratio").iloc[-1]
    # planted enhancers and promoters carry the enhancer / TSS states of the simulated BED
    assert top["state"] in {"1_TssA", "2_TssFlnk", "7_EnhG1", "9_EnhA1", "11_EnhWk"}
    assert top["log2_ratio"] > 0.5


def test_planted_motif_snvs_are_flagged(analysis, cohort):
    """Every planted motif-breaking/creating causal SNV is an HSV of the (truthful) fake
    Variformer, and motifs.tsv flags it on the planted matrix in the planted direction."""
    truth = pd.read_csv(cohort.sim.truth, sep="\t", dtype={"chrom": str})
    planted = truth[truth["motif_effect"].isin(["break", "create"])]
    assert len(planted) >= 3
    hits = analysis.motifs
    for r in planted.itertuples():
        mine = hits[(hits["gene"] == r.gene) & (hits["pos"] == r.pos)]
        on_planted = mine[mine["matrix_id"] == r.motif.split(":")[0]]
        want = "decrease" if r.motif_effect == "break" else "increase"
        assert (on_planted["direction"] == want).any(), (r.gene, r.pos, r.motif)
    s = analysis.motif_summary
    assert set(s["variants"]) == {"hsv", "driver"}
    v = s[(s["variants"] == "hsv") & (s["model"] == "variformer")].iloc[0]
    assert v["n_disrupting"] >= len(planted) and v["n_hsvs"] == len(
        analysis.hsvs[analysis.hsvs["model"] == "variformer"]
    )


def _run(argv, capsys):
    code = cli.main(argv)
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def test_cli_summary_and_errors(cohort, capsys, tmp_path):
    base = ["analyze", "--dataset", str(cohort.dataset), "--baselines", str(cohort.baselines)]
    out = tmp_path / "an"
    code, stdout, _ = _run(
        [*base, "--ism", str(cohort.ism), "--no-motifs", "--out", str(out)], capsys
    )
    assert code == 0 and "HSVs per model" in stdout and "chromatin: skipped" in stdout
    assert (out / "hsvs.tsv").is_file() and not (out / "truth_auroc.tsv").exists()
    code, _, err = _run([*base, "--ism", str(cohort.ism), "--no-motifs", "--out", str(out)], capsys)
    assert code == 2 and "--force" in err and len(err.strip().splitlines()) == 1
    out2 = tmp_path / "an2"
    code, _, err = _run([*base, "--ism", str(tmp_path / "nope"), "--out", str(out2)], capsys)
    assert code == 2 and "not a directory" in err and not out2.exists()
    bad = tmp_path / "bad_ism"
    bad.mkdir()
    (bad / "m.tsv").write_text("gene\tscore\nA\t1\n")
    code, _, err = _run([*base, "--ism", str(bad), "--out", str(out2)], capsys)
    assert code == 2 and "lacks the column(s)" in err and not out2.exists()
    code, _, err = _run(
        [*base, "--ism", str(cohort.ism), "--predictions", "x", "--out", str(out2)], capsys
    )
    assert code == 2 and "MODEL=FILE" in err
