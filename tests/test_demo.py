"""``variformer demo`` end to end on a small cohort: its tables agree with the files it wrote."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from variformer.cli import main as cli_main
from variformer.demo import LATER_STAGES, missing_stages


@pytest.mark.slow
def test_demo_small_cohort(tmp_path, capsys):
    out = tmp_path / "demo"
    argv = ["demo", "--out", str(out), "--people", "40", "--genes", "2", "--seq-len", "2048"]
    # the gene to fine-tune must be one of the simulated ones: simulate first, as the demo does
    from data_prep.simulate import simulate_cohort

    sim = simulate_cohort(tmp_path / "peek", people=40, genes=2, seq_len=2048, seed=0)
    truth = pd.read_csv(sim.truth_genes, sep="\t")
    gene = truth["gene"].iloc[0]
    rc = cli_main([*argv, "--gene", gene, "training.max_epochs=1", "training.early_stopping=false"])
    assert rc == 0
    printed = capsys.readouterr().out
    table = pd.read_csv(out / "demo_summary.tsv", sep="\t")
    assert list(table["gene"]) == list(truth["gene"])
    # simulated truth h2 is the cohort's own table (same seed -> same cohort)
    np.testing.assert_allclose(table["h2"], truth["h2_target"], atol=1e-4)
    # the elastic-net column is the elastic_net.tsv the demo wrote
    en = pd.read_csv(out / "elastic_net.tsv", sep="\t").set_index("gene")
    np.testing.assert_allclose(
        table.set_index("gene")["elastic_net_r2"], en.loc[table["gene"], "r2"], atol=1e-4
    )
    # Variformer R2 only for the fine-tuned gene
    vf = table.set_index("gene")["variformer_r2"]
    assert np.isfinite(vf[gene]) and vf.drop(gene).isna().all()
    # every step shows its command; every missing later stage is named
    assert "= variformer simulate" in printed and "= variformer prep" in printed
    assert "= variformer finetune" in printed
    for stage in missing_stages():
        assert f"variformer {stage} ({LATER_STAGES[stage]})" in printed
