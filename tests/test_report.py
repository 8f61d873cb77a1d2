"""``variformer report`` on small synthetic tables: self-contained page, figures, missing inputs."""

from __future__ import annotations

import base64
import json
import re

import numpy as np
import pandas as pd
import pytest

from core.errors import InputError
from variformer import cli
from variformer.analysis import chromatin, eqtl, hsv, signs
from variformer.report.html import build_report

MODELS = ("variformer", "enformer", "elastic_net", "ridge")


def _tables(root, rng):
    """A plausible AN directory made with the analysis functions themselves on random weights."""
    rows = []
    for gene in ("GENE1", "GENE2"):
        for i in range(60):
            maf, dist = rng.uniform(0.01, 0.5), int(rng.integers(-8000, 8000))
            for m in MODELS:
                w = rng.normal() if m != "elastic_net" else (rng.normal() if i < 8 else 0.0)
                rows.append((m, gene, "chr1", 1000 + 100 * i, f"rs{i}", "A", "G", maf, dist, w))
    weights = pd.DataFrame(rows, columns=["model", "gene", "chrom", "pos", "id", "ref", "alt", "maf", "tss_distance", "weight"])  # fmt: skip
    h = hsv.select_hsvs(weights, pd.Series({"GENE1": 8, "GENE2": 8}))
    root.mkdir()
    weights.to_csv(root / "weights.tsv", sep="\t", index=False)
    h.to_csv(root / "hsvs.tsv", sep="\t", index=False)
    hsv.compare_hsvs(h).to_csv(root / "hsv_tests.tsv", sep="\t", index=False)
    signs.sign_agreement(weights).to_csv(root / "sign_agreement.tsv", sep="\t", index=False)
    seg = pd.DataFrame({"chrom": "chr1", "start0": [0, 3000, 4000], "end0": [3000, 4000, 9000], "state": ["18_Quies", "1_TssA", "9_EnhA1"]})  # fmt: skip
    from data_prep.genome import Window

    win = {g: Window("chr1", 0, 9000, 4500, "+") for g in ("GENE1", "GENE2")}
    chromatin.chromatin_enrichment(h, win, {"s": seg}).to_csv(
        root / "chromatin.tsv", sep="\t", index=False
    )
    per_gene = pd.DataFrame(
        [(g, m, "eqtl", rng.uniform(0.4, 1), rng.uniform(0.1, 1), 3, 15) for g in ("GENE1", "GENE2") for m in MODELS],
        columns=list(eqtl.GENE_COLUMNS),
    )  # fmt: skip
    per_gene.to_csv(root / "eqtl_auroc_genes.tsv", sep="\t", index=False)
    (root / "analysis.json").write_text(json.dumps({"simulated": True, "models": list(MODELS), "genes": ["GENE1", "GENE2"], "notes": []}))  # fmt: skip
    return weights


def _metrics(root, rng):
    root.mkdir()
    rows = [(g, f, m, "hop", "test", rng.uniform(0, 0.6), rng.uniform(0, 0.8), 30) for g in ("GENE1", "GENE2", "GENE3") for f in range(3) for m in ("elastic_net", "variformer")]  # fmt: skip
    pd.DataFrame(rows, columns=["gene", "fold", "model", "setting", "split", "r2", "pcc", "n"]).to_csv(root / "metrics.tsv", sep="\t", index=False)  # fmt: skip


def _images(page: str) -> list[bytes]:
    return [base64.b64decode(b) for b in re.findall(r'src="data:image/png;base64,([^"]+)"', page)]


def test_full_report_is_self_contained(tmp_path):
    rng = np.random.default_rng(0)
    _tables(tmp_path / "an", rng)
    _metrics(tmp_path / "ev", rng)
    groups = ["driver", "driver_control"]
    attr = pd.DataFrame(
        [(m, g, o, rng.normal(1.0 if g == "driver" else 0.0)) for m in ("variformer", "enformer") for g in groups for o in range(-50, 51, 10) for _ in range(5)],
        columns=["model", "group", "offset", "attribution"],
    )  # fmt: skip
    attr.to_csv(tmp_path / "an" / "attributions.tsv", sep="\t", index=False)
    res = build_report(analysis=tmp_path / "an", eval=tmp_path / "ev", out=tmp_path / "rep")
    page = (tmp_path / "rep" / "index.html").read_text()
    images = _images(page)
    assert len(images) == len(res.figures) >= 7
    assert all(img.startswith(b"\x89PNG\r\n\x1a\n") for img in images)
    for name in res.figures:  # the same PNGs beside the page
        assert (tmp_path / "rep" / name).read_bytes() in images
    # offline: no external resource of any kind
    assert not re.search(r'(src|href)="(https?:|//)', page)
    assert "The cohort is simulated" in page
    for fig in ("Fig. 1", "Fig. 2a", "Fig. 2c", "Fig. 3a", "Fig. 3c", "Fig. 3d"):
        assert fig in page
    assert "fig_r2_vs_elastic_net.png" in res.figures and "fig_chromatin.png" in res.figures
    # weight tracks for the best genes that have weights (GENE3 has metrics only)
    assert {"fig_weights_GENE1.png", "fig_weights_GENE2.png"} <= set(res.figures)
    assert "no rows to plot" not in page
    assert any("motif" in m for m in res.missing) and "fig_attributions.png" in res.figures


def test_report_says_what_is_missing(tmp_path, capsys):
    rng = np.random.default_rng(1)
    _tables(tmp_path / "an", rng)
    for name in ("chromatin.tsv", "eqtl_auroc_genes.tsv", "sign_agreement.tsv", "analysis.json"):
        (tmp_path / "an" / name).unlink()
    code = cli.main(["report", "--analysis", str(tmp_path / "an"), "--out", str(tmp_path / "rep")])
    out = capsys.readouterr().out
    assert code == 0
    for what in ("Fig. 1", "chromatin.tsv", "eqtl_auroc_genes.tsv", "sign_agreement.tsv"):
        assert what in out
    page = (tmp_path / "rep" / "index.html").read_text()
    assert "Not shown:" in page and "--chromhmm" in page
    assert "The cohort is simulated" not in page
    assert len(_images(page)) >= 3  # weights tracks, TSS distance, MAF still drawn
    assert "Fig. S10" in out  # no attributions.tsv: said, not drawn
    assert "analysis.json is missing" in page and "analysis.json is missing" in out
    assert "tiny test model" in page  # the caveats it cannot check are said, not dropped


def test_report_refuses_a_corrupt_analysis_record(tmp_path, capsys):
    rng = np.random.default_rng(1)
    _tables(tmp_path / "an", rng)
    (tmp_path / "an" / "analysis.json").write_text('{"models": [')
    code = cli.main(["report", "--analysis", str(tmp_path / "an"), "--out", str(tmp_path / "rep")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "analysis.json is not valid JSON" in err and len(err.splitlines()) == 1
    assert "Traceback" not in err and not (tmp_path / "rep").exists()


def test_report_refuses_bad_inputs(tmp_path, capsys):
    with pytest.raises(InputError, match="not a directory"):
        build_report(analysis=tmp_path / "nope", out=tmp_path / "rep")
    (tmp_path / "empty").mkdir()
    code = cli.main(
        ["report", "--analysis", str(tmp_path / "empty"), "--out", str(tmp_path / "rep")]
    )
    err = capsys.readouterr().err
    assert code == 2 and "hsvs.tsv" in err and not (tmp_path / "rep").exists()


def test_report_refuses_an_evaluation_of_another_dataset(tmp_path, capsys):
    """evaluation.json and analysis.json record their dataset's fingerprints: other splits
    between them are refused; the same ones (or an older EVAL without a record) are reported."""
    rng = np.random.default_rng(1)
    _tables(tmp_path / "an", rng)
    meta = json.loads((tmp_path / "an" / "analysis.json").read_text())
    parts = {"splits": "a" * 16, "samples": "b" * 16, "targets": "c" * 16, "windows": "d" * 16}
    (tmp_path / "an" / "analysis.json").write_text(
        json.dumps({**meta, "dataset_fingerprints": parts})
    )
    _metrics(tmp_path / "ev", rng)
    argv = ["report", "--analysis", str(tmp_path / "an"), "--eval", str(tmp_path / "ev")]
    assert cli.main([*argv, "--out", str(tmp_path / "r0")]) == 0  # EVAL without a record
    record = tmp_path / "ev" / "evaluation.json"
    record.write_text(json.dumps({"dataset_fingerprints": parts}))
    assert cli.main([*argv, "--out", str(tmp_path / "r1")]) == 0
    record.write_text(json.dumps({"dataset_fingerprints": {**parts, "splits": "e" * 16}}))
    capsys.readouterr()
    assert cli.main([*argv, "--out", str(tmp_path / "r2")]) == 2
    err = capsys.readouterr().err.strip()
    assert "other splits" in err and "made on another" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "r2").exists()


def test_fig1_sets_models_side_by_side_on_matched_folds(tmp_path):
    """Variformer has fold 0 only, the elastic net folds 0-2: Fig. 1 and its table compare
    fold 0 with fold 0 and say so; a summary.tsv from before the folds column (means over
    each model's own folds) is not drawn but recomputed from metrics.tsv."""
    rng = np.random.default_rng(2)
    _tables(tmp_path / "an", rng)
    ev = tmp_path / "ev"
    ev.mkdir()
    rows = [(g, f, m, "hop", "test", rng.uniform(0, 0.6), rng.uniform(0, 0.8), 30)
            for g in ("GENE1", "GENE2") for m in ("elastic_net", "variformer")
            for f in ((0, 1, 2) if m == "elastic_net" else (0,))]  # fmt: skip
    metrics = pd.DataFrame(rows, columns=["gene", "fold", "model", "setting", "split", "r2", "pcc", "n"])  # fmt: skip
    metrics.to_csv(ev / "metrics.tsv", sep="\t", index=False)
    unmatched = metrics.groupby(["gene", "model", "setting"])[["r2", "pcc"]].mean().reset_index()
    unmatched.to_csv(ev / "summary.tsv", sep="\t", index=False)  # the old, unmatched kind
    res = build_report(analysis=tmp_path / "an", eval=ev, out=tmp_path / "rep")
    page = (tmp_path / "rep" / "index.html").read_text()
    assert "fig_r2_vs_elastic_net.png" in res.figures
    assert "the folds every model has for it (fold 0; summary.tsv column folds)" in page
    assert "summary on matched folds, recomputed from EVAL/metrics.tsv" in page
    # the elastic-net numbers shown are its fold-0 ones (4 significant digits on the page)
    for gene in ("GENE1", "GENE2"):
        en = metrics[(metrics["gene"] == gene) & (metrics["model"] == "elastic_net")]
        # metrics.tsv's row, and summary.tsv's elastic-net r2 and both elastic_net_r2 cells
        assert page.count(f"{en.loc[en['fold'] == 0, 'r2'].item():.4g}") >= 4
        assert f"{en['r2'].mean():.4g}" not in page
