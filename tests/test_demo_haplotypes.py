"""``variformer demo --haplotypes``: both modes run on a ``simulate --indels`` cohort and the
closing table has each mode's row, recomputed here from the files the stages wrote (sklearn's
r2_score on the predictions, cyvcf2's records of the window)."""

from __future__ import annotations

import contextlib
import io
import json

import cyvcf2
import pandas as pd
import pytest
from sklearn.metrics import r2_score

from variformer.cli import main as cli_main


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo_hap") / "demo"
    argv = ["demo", "--out", str(out), "--people", "40", "--genes", "2", "--seq-len", "2048",
            "--haplotypes", "--no-finetune"]  # fmt: skip
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = cli_main(argv)
    return rc, out, buf.getvalue()


def test_both_modes_run_and_the_table_has_both_rows(demo):
    rc, out, printed = demo
    assert rc == 0, printed
    commands = json.loads((out / "demo.json").read_text())["commands"]
    assert [c[1] for c in commands] == ["simulate", "prep", "baselines", "prep", "baselines"]
    assert "--indels" in commands[0] and "--haplotypes" in commands[3]
    assert "--indels" in commands[4] and "--indels" not in commands[2]
    table = pd.read_csv(out / "demo_summary.tsv", sep="\t")
    genes = list(pd.read_csv(out / "cohort" / "truth_genes.tsv", sep="\t")["gene"])
    assert list(zip(table["gene"], table["mode"])) == [
        (g, m) for g in genes for m in ("snv", "haplotypes")
    ]
    assert any(line.split()[:2] == ["gene", "mode"] for line in printed.splitlines())
    bl = {"snv": "baselines", "haplotypes": "baselines_haplotypes"}
    vcf = cyvcf2.VCF(str(out / "cohort" / "cohort.vcf.gz"))
    windows = pd.read_csv(out / "dataset" / "genes.tsv", sep="\t").set_index("gene")
    for row in table.itertuples():
        p = pd.read_csv(
            out / bl[row.mode] / "elastic_net" / row.gene / "fold0" / "predictions.tsv", sep="\t"
        )
        p = p[p["split"] == "test"]
        assert row.elastic_net_r2 == pytest.approx(
            r2_score(p["observed"], p["predicted"]), abs=1e-4
        )
        chrom, start0, end0 = windows.loc[row.gene, ["chrom", "start0", "end0"]]
        # tabix's overlap query: every record whose REF bases overlap [start0, end0)
        recs = list(vcf(f"{chrom}:{max(1, start0 + 1)}-{end0}"))
        n_snv = sum(len(r.REF) == 1 and len(r.ALT[0]) == 1 for r in recs)
        n_indel = sum(len(r.REF) != len(r.ALT[0]) for r in recs)
        assert row.n_snvs == n_snv
        assert row.n_indels == (n_indel if row.mode == "haplotypes" else 0)
    assert table.loc[table["mode"] == "haplotypes", "n_indels"].sum() > 0
