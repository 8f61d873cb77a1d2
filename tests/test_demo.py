"""``variformer demo`` end to end on a small cohort: every stage runs as the command it prints,
and the closing table agrees with the files the stages wrote (recomputed independently)."""

from __future__ import annotations

import json
import shlex

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import r2_score

from variformer.cli import main as cli_main

STAGES = ["simulate", "prep", "baselines", "finetune", "evaluate", "ism", "analyze", "report"]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    import contextlib
    import io

    out = tmp_path_factory.mktemp("demo") / "demo"
    argv = ["demo", "--out", str(out), "--people", "60", "--genes", "2", "--seq-len", "2048",
            "training.max_epochs=2", "training.early_stopping=false"]  # fmt: skip
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = cli_main(argv)
    return {"rc": rc, "out": out, "printed": buf.getvalue()}


@pytest.mark.slow
def test_every_stage_runs_as_the_command_it_prints(demo):
    assert demo["rc"] == 0, demo["printed"]
    out, printed = demo["out"], demo["printed"]
    meta = json.loads((out / "demo.json").read_text())
    commands = meta["commands"]
    assert [c[1] for c in commands] == ["simulate", "prep", "baselines", "baselines", "finetune", "finetune",
                                        "evaluate", "ism", "analyze", "report"]  # fmt: skip
    for cmd in commands:  # printed exactly, in order
        assert f"$ {shlex.join(cmd)}" in printed
    # every gene fine-tuned on fold 0; baselines on all 3 folds
    genes = meta["genes"]
    assert meta["finetuned"] == genes and len(genes) == 2
    for g in genes:
        assert (out / "runs" / g / "fold0" / "summary.json").is_file()
        for k in range(3):
            assert (
                out / "baselines" / "elastic_net" / g / f"fold{k}" / "predictions.tsv"
            ).is_file()
    for name in ("hsvs", "drivers", "sign_agreement", "truth_auroc", "attributions", "chromatin"):
        assert (out / "analysis" / f"{name}.tsv").is_file(), name
    html = (out / "report" / "index.html").read_text()
    assert "The cohort is simulated" in html and "tiny test model" in html
    assert "What a real run needs" in html
    assert f"report: {(out / 'report' / 'index.html').resolve()}" in printed


@pytest.mark.slow
def test_closing_table_is_recomputed_from_the_stage_outputs(demo):
    out = demo["out"]
    table = pd.read_csv(out / "demo_summary.tsv", sep="\t").set_index("gene")
    truth = pd.read_csv(out / "cohort" / "truth_genes.tsv", sep="\t").set_index("gene")
    assert list(table.index) == list(truth.index)
    np.testing.assert_allclose(table["h2"], truth.loc[table.index, "h2_target"], atol=1e-4)
    sources = {
        "elastic_net_r2": out / "baselines" / "elastic_net" / "{g}" / "fold0" / "predictions.tsv",
        "variformer_r2": out / "runs" / "{g}" / "fold0" / "predictions.tsv",
    }
    for col, pattern in sources.items():
        for g in table.index:
            p = pd.read_csv(str(pattern).format(g=g), sep="\t")
            p = p[(p["split"] == "test") & (p["gene"] == g)]
            assert table.loc[g, col] == pytest.approx(
                r2_score(p["observed"], p["predicted"]), abs=1e-4
            )
    auroc = pd.read_csv(out / "analysis" / "truth_auroc_genes.tsv", sep="\t")
    assert {f"auroc_{m}" for m in auroc["model"]} <= set(table.columns)
    for r in auroc.itertuples():
        assert table.loc[r.gene, f"auroc_{r.model}"] == pytest.approx(r.auroc, abs=1e-4)
    # the causal SNV counts are the truth table's
    causal = pd.read_csv(out / "cohort" / "truth.tsv", sep="\t")
    n = causal[causal["beta"] != 0].groupby("gene").size() if "beta" in causal else None
    if n is not None:
        for g in table.index:
            assert table.loc[g, "n_causal"] == n.get(g, 0)


def test_refusals(tmp_path, capsys):
    (tmp_path / "exists").mkdir()
    assert cli_main(["demo", "--out", str(tmp_path / "exists")]) == 2
    assert "pass --force" in capsys.readouterr().err
    assert cli_main(["demo", "--out", str(tmp_path / "small"), "--people", "5"]) == 2
    assert "at least 30 people" in capsys.readouterr().err
    assert not (tmp_path / "small").exists()
    assert cli_main(["demo", "--out", str(tmp_path / "g"), "--genes", "3", "--gene", "GSTM3"]) == 2
    assert "--gene GSTM3 is not in the demo cohort (BTNL3, ZFP57, PPIF)" in capsys.readouterr().err
    assert not (tmp_path / "g").exists()
    # a failing step: its own one-line message, its exit status, nothing more (an unknown
    # config key is refused before the first step; a batch larger than the train people is
    # found only by finetune)
    argv = ["demo", "--out", str(tmp_path / "bad"), "--people", "40", "--genes", "1",
            "--seq-len", "2048", "data.batch_size=1000"]  # fmt: skip
    assert cli_main(argv) == 2
    errors = [ln for ln in capsys.readouterr().err.splitlines() if "error" in ln]
    assert len(errors) == 1, errors  # (stderr also has the steps' one-line-per-fit logs)
    assert errors[0].startswith("variformer finetune: error:") and "batch_size" in errors[0]
