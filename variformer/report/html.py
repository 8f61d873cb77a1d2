"""``variformer report``: one self-contained HTML page from evaluation and analysis tables.

Reads TSVs only (never a model): ``EVAL/metrics.tsv`` from ``variformer evaluate`` and the
tables of ``variformer analyze``. Every figure is embedded as a base64 PNG (the page works
offline, with no external asset) and also written beside the page as ``fig_<name>.png``. A
figure whose table is missing is replaced by a sentence saying what is missing and which command
makes it.
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from typing import NamedTuple

import matplotlib.pyplot as plt
import pandas as pd

from core.errors import InputError
from core.fileio import atomic_dir
from variformer.report import analysis_figures as af

__all__ = ["ReportSummary", "build_report"]

MAX_ROWS = 40  # rows of each table shown on the page (the TSVs hold the rest)


class ReportSummary(NamedTuple):
    out: Path
    figures: list[str]  # PNG file names written
    missing: list[str]  # what could not be shown, and why


def _read(directory: Path | None, name: str) -> pd.DataFrame | None:
    if directory is None:
        return None
    path = directory / name
    if not path.is_file():
        return None
    try:
        return pd.read_csv(path, sep="\t", dtype={"chrom": str, "gene": str}, keep_default_na=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise InputError(f"cannot read {path}: {err}") from None


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


def _table(df: pd.DataFrame | None, source: str) -> str:
    if df is None or df.empty:
        return ""
    shown = df.head(MAX_ROWS)
    note = f"{len(df)} rows" if len(df) <= MAX_ROWS else f"first {MAX_ROWS} of {len(df)} rows"
    body = shown.to_html(
        index=False, float_format=lambda v: f"{v:.4g}", na_rep="NA", border=0, classes="tab"
    )
    return f"<details><summary>Table: {html.escape(source)} ({note})</summary>{body}</details>"


def _metrics_genes(
    metrics: pd.DataFrame | None, hsvs: pd.DataFrame | None, n: int = 2
) -> list[str]:
    """Genes for the weight tracks: best Variformer (else elastic-net) test R2, else most HSVs."""
    if metrics is not None and len(metrics) and {"model", "gene", "r2"} <= set(metrics.columns):
        m = metrics
        if hsvs is not None:
            m = m[m["gene"].isin(set(hsvs["gene"]))]
        if "split" in m.columns:
            m = m[m["split"] == "test"]
        for model in ("variformer", "elastic_net"):
            r2 = m[m["model"] == model].groupby("gene")["r2"].mean().sort_values(ascending=False)
            if len(r2):
                return list(r2.index[:n])
    if hsvs is not None and len(hsvs):
        return list(hsvs.groupby("gene").size().sort_values(ascending=False).index[:n])
    return []


def _fig1(metrics: pd.DataFrame, summary: pd.DataFrame | None):
    """Fig. 1b: the evaluation figure of ``variformer.report.figures`` when it and
    ``EVAL/summary.tsv`` are there (R2 and PCC), else R2 from ``metrics.tsv``."""
    need = {"setting", "model", "r2", "pcc", "elastic_net_r2", "elastic_net_pcc"}
    if summary is not None and need <= set(summary.columns):
        try:
            from variformer.report.figures import versus_elastic_net
        except ImportError:
            pass
        else:
            return versus_elastic_net(summary)
    return af.r2_vs_elastic_net(metrics)


def _about(meta: dict, metrics, missing: list[str]) -> str:
    items = []
    if meta.get("simulated"):
        items.append(
            "<b>The cohort is simulated</b> (<code>variformer simulate</code>): genotypes, expression, "
            "fine-mapping and chromatin states are synthetic, with known causal SNVs. The numbers "
            "show that the pipeline recovers a planted truth; they say nothing about real biology."
        )
    vm = meta.get("variformer_model")
    if vm:
        pre = vm.get("pretrained")
        weights = (
            f"pre-trained weights from {html.escape(str(pre))}" if pre else "random initial weights"
        )
        size = f"dim {vm.get('dim')}, depth {vm.get('depth')}"
        tiny = (vm.get("dim") or 1536) < 1536 or not pre
        items.append(
            f"Variformer model: {size}, {weights}."
            + (
                " <b>This is a tiny test model</b>, not the paper's pre-trained Enformer (dim 1536, "
                "11 transformer layers): its ISM scores and attributions are not comparable to the paper's."
                if tiny
                else ""
            )
        )
    if meta.get("simulated") or (
        vm and ((vm.get("dim") or 1536) < 1536 or not vm.get("pretrained"))
    ):
        items.append(
            "<b>What a real run needs</b>: GTEx-style inputs (VCFs per chromosome, the GENCODE "
            "GTF, normalized expression per tissue; <code>variformer normalize</code> makes it "
            "from TPM and read counts), pre-trained Enformer weights (<code>--pretrained "
            "EleutherAI/enformer-official-rough</code> from the Hugging Face hub, or a local "
            "copy) and a GPU: the full model is impractical to fine-tune on a CPU. The README "
            "walks through it step by step."
        )
    if meta:
        models = ", ".join(meta.get("models", []))
        genes = meta.get("genes", [])
        items.append(
            f"Models: {html.escape(models)}. Genes: {len(genes)} ({html.escape(', '.join(genes[:12]))}{' ...' if len(genes) > 12 else ''})."
        )
        items.append(
            f"Dataset: <code>{html.escape(str(meta.get('dataset')))}</code>; HSV count per gene from <code>{html.escape(str(meta.get('hsv_model')))}</code> n_nonzero."
        )
    for n in meta.get("notes", []):
        items.append("Analysis note: " + html.escape(n))
    if missing:
        items.append("Not shown: " + "; ".join(html.escape(m) for m in missing) + ".")
    return "<ul>" + "".join(f"<li>{i}</li>" for i in items) + "</ul>"


_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;max-width:1150px;margin:24px auto;padding:0 16px;color:#222;line-height:1.45}
h1{font-size:1.6em;margin-bottom:0.2em} h2{font-size:1.25em;border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:1.8em}
img{max-width:100%;height:auto;border:1px solid #eee} .missing{color:#8a4b08;background:#fff6e5;padding:6px 10px;border-left:4px solid #e0a040}
table.tab{border-collapse:collapse;font-size:12px;margin:6px 0} table.tab td,table.tab th{padding:2px 8px;border-bottom:1px solid #eee;text-align:right}
summary{cursor:pointer;color:#345;font-size:0.95em;margin:4px 0} code{background:#f4f4f4;padding:0 3px}
.desc{color:#444;font-size:0.95em}
"""


def build_report(*, analysis, out, eval=None, force: bool = False) -> ReportSummary:
    """Write ``out/index.html`` (self-contained) and ``out/fig_*.png`` from the tables.

    Parameters
    ----------
    analysis : path
        ``variformer analyze`` output directory.
    out : path
        New report directory (replaced only with ``force``).
    eval : path, optional
        ``variformer evaluate`` output (``metrics.tsv``) for Fig. 1.

    Raises
    ------
    InputError
        ``analysis`` (or ``eval``) is not a directory, or a table cannot be read.
    """
    an = Path(analysis)
    if not an.is_dir():
        raise InputError(f"--analysis {an} is not a directory; run `variformer analyze` first")
    ev = Path(eval) if eval is not None else None
    if ev is not None and not ev.is_dir():
        raise InputError(f"--eval {ev} is not a directory; run `variformer evaluate` first")
    meta = (
        json.loads((an / "analysis.json").read_text()) if (an / "analysis.json").is_file() else {}
    )
    t = {
        name: _read(an, f"{name}.tsv")
        for name in (
            "weights",
            "hsvs",
            "hsv_tests",
            "hsv_jaccard",
            "drivers",
            "driver_summary",
            "sign_agreement",
            "motifs",
            "motif_summary",
            "chromatin",
            "eqtl_auroc",
            "eqtl_auroc_genes",
            "truth_auroc",
            "truth_auroc_genes",
            "attributions",
        )
    }
    if t["hsvs"] is None and t["weights"] is None:
        raise InputError(
            f"--analysis {an} has neither hsvs.tsv nor weights.tsv; is it a `variformer analyze` output?"
        )
    metrics = _read(ev, "metrics.tsv")
    missing: list[str] = []
    sections: list[tuple[str, str, list[tuple[str, object]], str]] = []

    def need(name: str, why: str, title: str) -> bool:
        if t.get(name) is None:
            missing.append(f"{name}.tsv ({why})")
            msg = f"Missing: {name}.tsv is not in the analysis directory ({why})."
            sections.append((title, "", [], f'<p class="missing">{html.escape(msg)}</p>'))
            return False
        return True

    # Fig. 1
    fig1 = []
    if metrics is None:
        missing.append("Fig. 1 per-gene R2 (no --eval with metrics.tsv; run `variformer evaluate`)")
    else:
        fig1 = [("r2_vs_elastic_net", _fig1(metrics, _read(ev, "summary.tsv")))]
    sections.append(
        (
            "Fig. 1 - Per-gene R2 against elastic net",
            "Test R2 on held-out people, mean over folds; dashed line y = x.",
            fig1,
            _table(metrics, "EVAL/metrics.tsv"),
        )
    )
    if metrics is None:
        sections[-1] = (
            *sections[-1][:3],
            '<p class="missing">Missing: no --eval directory with metrics.tsv; run `variformer evaluate` and pass --eval.</p>',
        )
    # Fig. 2a
    figs = []
    if t["weights"] is not None and t["hsvs"] is not None:
        for g in _metrics_genes(metrics, t["hsvs"]):
            figs.append(
                (f"weights_{g}", af.weights_along_window(t["weights"], t["hsvs"], t["motifs"], g))
            )
        if t["motifs"] is None:
            missing.append("motif hits in Fig. 2a (no motifs.tsv)")
    else:
        missing.append("Fig. 2a (weights.tsv or hsvs.tsv missing)")
    sections.append(
        (
            "Fig. 2a - SNV weights along the window",
            "Each dot is an SNV; coloured dots are the model's HSVs (top-k by |weight|, k = elastic-net non-zero count).",
            figs,
            _table(t["hsvs"], "hsvs.tsv"),
        )
    )
    # Fig. 2b
    if t["hsvs"] is not None:
        sections.append(
            (
                "Fig. 2b - HSV distance to the TSS",
                "Cumulative distribution of |distance to TSS| of each model's HSVs.",
                [("hsv_tss_distance", af.hsv_tss_distance(t["hsvs"]))],
                _table(t["hsv_tests"], "hsv_tests.tsv")
                + _table(t["hsv_jaccard"], "hsv_jaccard.tsv"),
            )
        )
    # Fig. 2c
    if t["weights"] is not None and need(
        "sign_agreement", "run `variformer analyze`", "Fig. 2c - Direction of effect vs elastic net"
    ):
        sections.append(
            (
                "Fig. 2c - Direction of effect vs elastic net",
                "Only SNVs with non-zero elastic-net coefficients; agreement and Fisher's exact test over SNVs with |coefficient| > 0.05.",
                [("sign_scatter", af.sign_scatter(t["weights"], t["sign_agreement"]))],
                _table(t["sign_agreement"], "sign_agreement.tsv"),
            )
        )
    # Fig. 3a
    if need(
        "chromatin",
        "analyze ran without --chromhmm",
        "Fig. 3a - Chromatin-state enrichment of HSVs",
    ):
        sections.append(
            (
                "Fig. 3a - Chromatin-state enrichment of HSVs",
                "Observed vs expected HSVs per ChromHMM state (expected from the state's share of each window), averaged over annotation samples, pooled over genes.",
                [("chromatin", af.chromatin_enrichment(t["chromatin"]))],
                _table(
                    t["chromatin"][t["chromatin"]["gene"] == "all"], "chromatin.tsv (gene = all)"
                ),
            )
        )
    # Fig. 3b
    if need("motif_summary", "no motif scan in analyze", "Fig. 3b - Motif disruption"):
        sections.append(
            (
                "Fig. 3b - Motif disruption",
                "HSVs (and drivers) with a JASPAR motif hit (p < 5e-5 for REF or ALT), split into increased / decreased motif scores.",
                [("motif_rates", af.motif_rates(t["motif_summary"]))],
                _table(t["motif_summary"], "motif_summary.tsv") + _table(t["motifs"], "motifs.tsv"),
            )
        )
    # Fig. 3c
    if need(
        "eqtl_auroc_genes",
        "analyze ran without --finemap",
        "Fig. 3c - Fine-mapped eQTLs: auROC / auPR",
    ):
        sections.append(
            (
                "Fig. 3c - Fine-mapped eQTLs: auROC / auPR",
                "Positives: CAVIAR high-confidence SNVs; 5 distance-matched negatives each; score |weight|. Dots are genes, bars the mean; dashed: a random scorer.",
                [
                    (
                        "eqtl_auroc",
                        af.auroc_distributions(
                            t["eqtl_auroc_genes"],
                            title="Fine-mapped eQTLs vs distance-matched SNVs",
                        ),
                    )
                ],
                _table(t["eqtl_auroc"], "eqtl_auroc.tsv"),
            )
        )
    if t["truth_auroc_genes"] is not None:
        sections.append(
            (
                "Fig. 3c (truth) - True causal SNVs: auROC / auPR",
                "The same with the simulated truth's causal SNVs as positives.",
                [
                    (
                        "truth_auroc",
                        af.auroc_distributions(
                            t["truth_auroc_genes"],
                            title="True causal SNVs vs distance-matched SNVs",
                        ),
                    )
                ],
                _table(t["truth_auroc"], "truth_auroc.tsv"),
            )
        )
    # Fig. 3d
    if t["hsvs"] is not None:
        sections.append(
            (
                "Fig. 3d - HSV minor allele frequency",
                "MAF of each model's HSVs; Mann-Whitney U p-values between models.",
                [("hsv_maf", af.hsv_maf(t["hsvs"], t["hsv_tests"]))],
                "",
            )
        )
    # Drivers
    if need("driver_summary", "run `variformer analyze`", "Drivers"):
        sections.append(
            (
                "Drivers",
                "Forward-selected SNVs whose weighted dosages approximate each model's test-people predictions.",
                [],
                _table(t["driver_summary"], "driver_summary.tsv")
                + _table(t["drivers"], "drivers.tsv"),
            )
        )
    # Fig. S10
    if t["attributions"] is not None:
        sections.append(
            (
                "Fig. S10 - Attributions around HSVs / drivers vs controls",
                "Standardized gradient x input (|.|, max over bases, z-scored over the window) around "
                "each model's HSVs and drivers (solid) and matched control SNVs (dashed: same "
                "window, TSS distance within 2.5 kb, MAF within 0.5% for HSVs and 10% for "
                "drivers); mean over SNVs and 95% interval; top row on the reference window, "
                "bottom row on the test people's personal windows (mean over people).",
                [("attributions", af.attribution_profiles(t["attributions"]))],
                "",
            )
        )
    else:
        missing.append("Fig. S10 (no attributions.tsv in the analysis directory)")
        msg = "Missing: no attributions.tsv (model, group, offset, attribution) in the analysis directory."
        sections.append(
            (
                "Fig. S10 - Attributions around HSVs / drivers vs controls",
                "",
                [],
                f'<p class="missing">{msg}</p>',
            )
        )

    written = []
    with atomic_dir(out, force=force) as tmp:
        parts = []
        for title, desc, figs, tables in sections:
            block = [f"<h2>{html.escape(title)}</h2>"]
            if desc:
                block.append(f'<p class="desc">{html.escape(desc)}</p>')
            for name, fig in figs:
                if fig is None:
                    block.append(f'<p class="missing">{html.escape(name)}: no rows to plot.</p>')
                    missing.append(f"{name} (empty table)")
                    continue
                data = _png(fig)
                (tmp / f"fig_{name}.png").write_bytes(data)
                written.append(f"fig_{name}.png")
                b64 = base64.b64encode(data).decode()
                block.append(
                    f'<p><img alt="{html.escape(title)}" src="data:image/png;base64,{b64}"></p>'
                )
            block.append(tables)
            parts.append("\n".join(block))
        page = [
            "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
            "<title>Variformer report</title>",
            f"<style>{_CSS}</style></head><body>",
            "<h1>Variformer: evaluation and analysis</h1>",
            "<h2>About these results</h2>",
            _about(meta, metrics, missing),
            *parts,
            "</body></html>",
        ]
        (tmp / "index.html").write_text("\n".join(page))
    return ReportSummary(Path(out), written, missing)
