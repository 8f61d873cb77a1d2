"""The sections of the ``variformer report`` page, as data.

Each figure of the page is one small function of :class:`ReportInputs` that returns a
:class:`Section` (its title, description, figures, tables and caveat, and what it could not
show) or None when the section is left out. :data:`SECTIONS` lists them in page order;
:func:`variformer.report.html.build_report` renders them.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import pandas as pd

from core.errors import InputError
from variformer.evaluation_summary import summarize
from variformer.report import analysis_figures as af
from variformer.report import significance as sig
from variformer.report.figures import folds_label, versus_elastic_net

__all__ = ["SECTIONS", "TABLES", "ReportInputs", "Section", "build_sections"]

MAX_ROWS = 40  # rows of each table shown on the page (the TSVs hold the rest)

TABLES = (
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
    "model_tests",
    "attribution_summary",
)
"""The ``variformer analyze`` tables the report reads (``<name>.tsv``)."""


class Section(NamedTuple):
    """One block of the page, rendered in this order.

    Attributes
    ----------
    title : str
        The ``<h2>`` heading (also the figures' alt text).
    desc : str
        One paragraph under the heading ("" for none).
    figures : tuple of (str, Figure or None)
        ``(name, figure)``: written as ``fig_<name>.png`` and embedded; None says "no rows to plot".
    tables : str
        HTML of the collapsible tables under the figures.
    caveat : str
        HTML after the tables: what is missing and which command makes it.
    missing : tuple of str
        What the section could not show, for the page's "Not shown" list.
    """

    title: str
    desc: str = ""
    figures: tuple[tuple[str, object], ...] = ()
    tables: str = ""
    caveat: str = ""
    missing: tuple[str, ...] = ()


class ReportInputs(NamedTuple):
    """What the sections draw from.

    Attributes
    ----------
    tables : dict of str to DataFrame or None
        The :data:`TABLES` of the analysis directory (None where a file is absent).
    metrics : DataFrame or None
        ``EVAL/metrics.tsv``.
    eval_dir : Path or None
        The ``variformer evaluate`` directory (``summary.tsv`` for Fig. 1).
    """

    tables: dict[str, pd.DataFrame | None]
    metrics: pd.DataFrame | None
    eval_dir: Path | None


def read_output_table(directory: Path | None, name: str) -> pd.DataFrame | None:
    """An evaluation or analysis output ``directory/name`` (read as written: these tables are
    made by this toolkit and shown, not computed on), or None when there is no such file."""
    if directory is None:
        return None
    path = directory / name
    if not path.is_file():
        return None
    try:
        return pd.read_csv(path, sep="\t", dtype={"chrom": str, "gene": str}, keep_default_na=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise InputError(f"cannot read {path}: {err}") from None


def _table(df: pd.DataFrame | None, source: str) -> str:
    if df is None or df.empty:
        return ""
    shown = df.head(MAX_ROWS)
    note = f"{len(df)} rows" if len(df) <= MAX_ROWS else f"first {MAX_ROWS} of {len(df)} rows"
    body = shown.to_html(
        index=False, float_format=lambda v: f"{v:.4g}", na_rep="NA", border=0, classes="tab"
    )
    return f"<details><summary>Table: {html.escape(source)} ({note})</summary>{body}</details>"


def _absent(name: str, why: str, title: str) -> Section:
    """The section in place of one whose table ``name.tsv`` is not in the analysis directory."""
    msg = f"Missing: {name}.tsv is not in the analysis directory ({why})."
    return Section(
        title, caveat=f'<p class="missing">{html.escape(msg)}</p>', missing=(f"{name}.tsv ({why})",)
    )


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


def _matched_summary(
    metrics: pd.DataFrame, summary: pd.DataFrame | None
) -> tuple[pd.DataFrame, str]:
    """(summary, where it came from): ``EVAL/summary.tsv`` when it names its matched folds;
    else (an evaluation written before the ``folds`` column, whose means were over each
    model's own folds, or none) the matched summary recomputed from ``metrics.tsv``."""
    need = {"gene", "setting", "model", "r2", "pcc", "folds", "elastic_net_r2", "elastic_net_pcc"}
    if summary is not None and need <= set(summary.columns):
        return summary, "EVAL/summary.tsv"
    return summarize(metrics), "summary on matched folds, recomputed from EVAL/metrics.tsv"


def fig1(inp: ReportInputs) -> Section:
    """Fig. 1: per-gene test R2 and PCC against elastic net on matched folds
    (``EVAL/summary.tsv``, else recomputed from ``EVAL/metrics.tsv``)."""
    title = "Fig. 1 - Per-gene R2 against elastic net"
    desc = "Test R2 and PCC on held-out people, each gene's models on the same folds."
    if inp.metrics is None:
        return Section(
            title,
            desc,
            caveat='<p class="missing">Missing: no --eval directory with metrics.tsv; run `variformer evaluate` and pass --eval.</p>',
            missing=("Fig. 1 per-gene R2 (no --eval with metrics.tsv; run `variformer evaluate`)",),
        )
    summary, source = _matched_summary(inp.metrics, read_output_table(inp.eval_dir, "summary.tsv"))
    hop = summary[summary["setting"] == "hop"]
    desc = (
        "Test R2 and PCC on held-out people; each gene's models are compared on the same "
        f"folds and people, the folds every model has for it ({folds_label(hop)}; summary.tsv "
        "column folds), means over those folds; dashed line y = x."
    )
    tables = _table(summary, source) + _table(inp.metrics, "EVAL/metrics.tsv")
    others = set(hop.loc[hop["elastic_net_r2"].notna(), "model"]) - {"elastic_net"}
    fig = versus_elastic_net(summary) if others else None  # None: "no rows to plot"
    return Section(title, desc, (("r2_vs_elastic_net", fig),), tables)


def fig2a(inp: ReportInputs) -> Section:
    """Fig. 2a: SNV weights along the window of the best genes, HSVs and motif hits marked."""
    t, figs, missing = inp.tables, [], []
    if t["weights"] is not None and t["hsvs"] is not None:
        for g in _metrics_genes(inp.metrics, t["hsvs"]):
            figs.append(
                (f"weights_{g}", af.weights_along_window(t["weights"], t["hsvs"], t["motifs"], g))
            )
        if t["motifs"] is None:
            missing.append("motif hits in Fig. 2a (no motifs.tsv)")
    else:
        missing.append("Fig. 2a (weights.tsv or hsvs.tsv missing)")
    return Section(
        "Fig. 2a - SNV weights along the window",
        "Each dot is an SNV; coloured dots are the model's HSVs (top-k by |weight|, k = elastic-net non-zero count).",
        tuple(figs),
        _table(t["hsvs"], "hsvs.tsv"),
        missing=tuple(missing),
    )


def fig2b(inp: ReportInputs) -> Section | None:
    """Fig. 2b: distance of the HSVs to the TSS."""
    t = inp.tables
    if t["hsvs"] is None:
        return None
    return Section(
        "Fig. 2b - HSV distance to the TSS",
        "Cumulative distribution of |distance to TSS| of each model's HSVs.",
        (("hsv_tss_distance", af.hsv_tss_distance(t["hsvs"])),),
        _table(t["hsv_tests"], "hsv_tests.tsv") + _table(t["hsv_jaccard"], "hsv_jaccard.tsv"),
    )


def fig2c(inp: ReportInputs) -> Section | None:
    """Fig. 2c: direction of effect against elastic net."""
    t, title = inp.tables, "Fig. 2c - Direction of effect vs elastic net"
    if t["weights"] is None:
        return None
    if t["sign_agreement"] is None:
        return _absent("sign_agreement", "run `variformer analyze`", title)
    return Section(
        title,
        "Only SNVs with non-zero elastic-net coefficients; agreement and Fisher's exact test over SNVs with |coefficient| > 0.05.",
        (("sign_scatter", af.sign_scatter(t["weights"], t["sign_agreement"])),),
        _table(t["sign_agreement"], "sign_agreement.tsv"),
    )


def fig3a(inp: ReportInputs) -> Section:
    """Fig. 3a: ChromHMM state enrichment of the HSVs."""
    t, title = inp.tables, "Fig. 3a - Chromatin-state enrichment of HSVs"
    if t["chromatin"] is None:
        return _absent("chromatin", "analyze ran without --chromhmm", title)
    return Section(
        title,
        "Observed vs expected HSVs per ChromHMM state (expected from the state's share of each "
        "window), averaged over annotation samples, pooled over genes. Stars (model_tests.tsv, "
        "significant ones only): above or below a bar, the model's HSVs against random SNVs of "
        "the same windows; brackets, two models against each other (labels permuted within "
        "genes); two-sided permutation tests, Benjamini-Hochberg adjusted.",
        (("chromatin", af.chromatin_enrichment(t["chromatin"], t["model_tests"])),),
        _table(t["chromatin"][t["chromatin"]["gene"] == "all"], "chromatin.tsv (gene = all)")
        + _tests_table(t["model_tests"], "chromatin"),
        _tests_caveat(t["model_tests"]),
    )


def fig3b(inp: ReportInputs) -> Section:
    """Fig. 3b: motif disruption by HSVs and drivers."""
    t, title = inp.tables, "Fig. 3b - Motif disruption"
    if t["motif_summary"] is None:
        return _absent("motif_summary", "no motif scan in analyze", title)
    hits = t["motifs"]
    names = []
    for col in ("database", "method"):
        if hits is not None and col in hits.columns:
            names.append(", ".join(sorted(hits[col].dropna().astype(str).unique())) or "?")
        else:
            names.append("not recorded")
    return Section(
        title,
        f"HSVs (and drivers; for linear models their non-zero coefficients) with a motif hit "
        f"(p < 5e-5 for REF or ALT), split into increased / decreased motif scores. Motifs: "
        f"{names[0]}; scoring: motifbreakR method {names[1]}. Brackets: Fisher's exact test "
        "between two models on the genes where both have variants, Benjamini-Hochberg "
        "adjusted (model_tests.tsv).",
        (("motif_rates", af.motif_rates(t["motif_summary"], t["model_tests"])),),
        _table(t["motif_summary"], "motif_summary.tsv")
        + _tests_table(t["model_tests"], "motif_rate")
        + _table(t["motifs"], "motifs.tsv"),
        _tests_caveat(t["model_tests"]),
    )


def _eqtl_desc(table: pd.DataFrame | None) -> str:
    kinds = set() if table is None or "negatives" not in table else set(table["negatives"])
    if kinds == {"eqtl"}:
        neg = "5 distance-matched non-fine-mapped eQTLs each (the paper's definition)"
    elif kinds == {"any-snv"}:
        neg = "5 distance-matched observed SNVs each (any-snv: NOT the paper's eQTL negatives)"
    else:
        neg = "distance-matched negatives (kind not recorded)"
    return (
        f"Positives: CAVIAR high-confidence SNVs; {neg}; score |weight| (ridge for the linear "
        "model). Dots are genes, bars the mean; dashed: a random scorer."
    )


def fig3c(inp: ReportInputs) -> Section:
    """Fig. 3c: auROC / auPR of fine-mapped eQTLs against distance-matched SNVs."""
    t, title = inp.tables, "Fig. 3c - Fine-mapped eQTLs: auROC / auPR"
    if t["eqtl_auroc_genes"] is None:
        return _absent("eqtl_auroc_genes", "analyze ran without --finemap", title)
    kinds = set(t["eqtl_auroc_genes"].get("negatives", pd.Series(dtype=str)))
    against = "non-fine-mapped eQTLs" if kinds == {"eqtl"} else "SNVs"
    fig = af.auroc_distributions(
        t["eqtl_auroc_genes"], title=f"Fine-mapped eQTLs vs distance-matched {against}"
    )
    return Section(
        title,
        _eqtl_desc(t["eqtl_auroc"]),
        (("eqtl_auroc", fig),),
        _table(t["eqtl_auroc"], "eqtl_auroc.tsv"),
    )


def fig3c_truth(inp: ReportInputs) -> Section | None:
    """Fig. 3c with the simulated truth's causal SNVs as positives (only with ``truth``)."""
    t = inp.tables
    if t["truth_auroc_genes"] is None:
        return None
    fig = af.auroc_distributions(
        t["truth_auroc_genes"], title="True causal SNVs vs distance-matched SNVs"
    )
    return Section(
        "Fig. 3c (truth) - True causal SNVs: auROC / auPR",
        "The same with the simulated truth's causal SNVs as positives.",
        (("truth_auroc", fig),),
        _table(t["truth_auroc"], "truth_auroc.tsv"),
    )


def fig3d(inp: ReportInputs) -> Section | None:
    """Fig. 3d: minor allele frequency of the HSVs."""
    t = inp.tables
    if t["hsvs"] is None:
        return None
    return Section(
        "Fig. 3d - HSV minor allele frequency",
        "MAF of each model's HSVs; two-sided Mann-Whitney U between models on the genes where "
        "both have HSVs, Benjamini-Hochberg adjusted (model_tests.tsv).",
        (("hsv_maf", af.hsv_maf(t["hsvs"], t["hsv_tests"], t["model_tests"])),),
        _tests_table(t["model_tests"], "hsv_maf"),
        _tests_caveat(t["model_tests"]),
    )


def _tests_table(tests: pd.DataFrame | None, analysis: str) -> str:
    """The ``model_tests.tsv`` rows of one analysis without a MAF filter, as a page table."""
    if tests is None or tests.empty:
        return ""
    rows = tests[(tests["analysis"] == analysis) & (tests["maf_filter"].astype(float) == 0)]
    return _table(rows, f"model_tests.tsv (analysis = {analysis}, maf_filter = 0)")


def _tests_caveat(tests: pd.DataFrame | None) -> str:
    if tests is not None:
        return ""
    return (
        '<p class="missing">No model_tests.tsv in the analysis directory (made by analyze '
        "before the between-model tests existed): no significance stars; re-run `variformer "
        "analyze`.</p>"
    )


def fig_s8(inp: ReportInputs) -> Section | None:
    """Fig. S8: motif and chromatin tests repeated after removing HSVs with MAF < 1% / 5%."""
    t, title = inp.tables, "Fig. S8 - Functional signatures after removing rare HSVs"
    if t["hsvs"] is None:
        return None
    if t["model_tests"] is None:
        return _absent("model_tests", "re-run `variformer analyze`", title)
    tests = t["model_tests"]
    figs = [("s8_motif_rates", sig.maf_filtered_motif_rates(t["hsvs"], t["motifs"], tests))]
    missing = [] if t["motifs"] is not None else ["Fig. S8 motif rates (no motifs.tsv)"]
    if t["chromatin"] is not None:
        figs.append(("s8_chromatin", sig.maf_filtered_chromatin(tests)))
    else:
        missing.append("Fig. S8 chromatin (analyze ran without --chromhmm)")
    return Section(
        title,
        'The paper\'s repeat of Fig. 3 "after removing HSVs with MAFs < 1% or < 5%": every '
        "test of model_tests.tsv at each maf_filter, HSVs below it removed first (and, for "
        "chromatin, the window SNVs the null draws from). Motifs: share of HSVs with a hit, "
        "Fisher's exact test between models on the genes where both keep HSVs. Chromatin: "
        "observed HSVs per state against the mean of random SNVs of the same windows "
        "(permutation test, two-sided), and between models (labels permuted within genes). "
        "Stars: Benjamini-Hochberg adjusted within each analysis and filter.",
        tuple(figs),
        _table(tests[tests["maf_filter"].astype(float) > 0], "model_tests.tsv (maf_filter > 0)"),
        missing=tuple(missing),
    )


def drivers(inp: ReportInputs) -> Section:
    """The driver tables (no figure)."""
    t = inp.tables
    if t["driver_summary"] is None:
        return _absent("driver_summary", "run `variformer analyze`", "Drivers")
    return Section(
        "Drivers",
        "The authors' only-drivers forward selection (select_drivers_performer.py) on each fold's test people: SNVs by decreasing |ISM|, kept when the driver sum's PCC with the predictions / the all-SNV PCC rises by > 0.05 and the SNV's own PCC is > 0 with one-sided p < 0.01 / V; driver_summary.tsv adds the driver sum's PCC and R2 against observed expression. ISM-scored models only; not-learned models are listed as such.",
        tables=_table(t["driver_summary"], "driver_summary.tsv")
        + _table(t["drivers"], "drivers.tsv"),
    )


def fig_s10(inp: ReportInputs) -> Section:
    """Fig. S10: standardized attributions around HSVs / drivers against matched controls."""
    t, title = inp.tables, "Fig. S10 - Attributions around HSVs / drivers vs controls"
    summary = t["attribution_summary"]
    if summary is None and t["attributions"] is not None:  # an analysis from before the summary
        from variformer.analysis.attribution_stats import summarize_attributions

        summary = summarize_attributions(t["attributions"])
    if summary is None:
        msg = "Missing: no attributions.tsv (model, group, offset, attribution) in the analysis directory."
        return Section(
            title,
            caveat=f'<p class="missing">{msg}</p>',
            missing=("Fig. S10 (no attributions.tsv in the analysis directory)",),
        )
    at_snv = summary[summary["offset"] == 0]
    return Section(
        title,
        "Standardized gradient x input (|.|, max over bases, z-scored over each gene's window) "
        "around each model's HSVs and drivers (solid) and matched control SNVs (dashed: same "
        "window, TSS distance within 2.5 kb, MAF within 0.5% for HSVs and 10% for drivers), on "
        "genes drawn at random among those passing the R2 filter; each SNV's value is "
        "averaged over the replicates (folds; Enformer on the same folds' test people), then "
        "over SNVs: the line is that mean, the band its bootstrap 95% interval (1000 "
        "resamples of SNVs). Reference window and the test people's personal windows (mean "
        "over people) in separate rows.",
        (("attributions", af.attribution_profiles(summary)),),
        tables=_table(at_snv, "attribution_summary.tsv, at the SNVs (offset 0)"),
    )


SECTIONS: tuple[Callable[[ReportInputs], Section | None], ...] = (
    fig1, fig2a, fig2b, fig2c, fig3a, fig3b, fig3c, fig3c_truth, fig3d, fig_s8, drivers, fig_s10,
)  # fmt: skip
"""The section builders in page order."""


def build_sections(inp: ReportInputs) -> list[Section]:
    """Every section shown on the page, in order (builders returning None are left out)."""
    return [s for build in SECTIONS if (s := build(inp)) is not None]
