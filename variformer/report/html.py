"""``variformer report``: one self-contained HTML page from evaluation and analysis tables.

Reads TSVs only (never a model): ``EVAL/metrics.tsv`` from ``variformer evaluate`` and the
tables of ``variformer analyze``. Every figure is embedded as a base64 PNG (the page works
offline, with no external asset) and also written beside the page as ``fig_<name>.png``. A
figure whose table is missing is replaced by a sentence saying what is missing and which command
makes it. The page is a header ("About these results") followed by the sections of
:mod:`variformer.report.sections`, rendered in order.
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from typing import NamedTuple

import matplotlib.pyplot as plt

from core.errors import InputError
from core.fileio import atomic_dir
from variformer.report.sections import (
    TABLES,
    ReportInputs,
    Section,
    build_sections,
    read_output_table,
)

__all__ = ["ReportSummary", "build_report"]


class ReportSummary(NamedTuple):
    """What :func:`build_report` wrote."""

    out: Path
    figures: list[str]  # PNG file names written
    missing: list[str]  # what could not be shown, and why


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


def _read_meta(an: Path) -> dict | None:
    """``analysis.json`` of the analysis directory; None when there is none."""
    path = an / "analysis.json"
    if not path.is_file():
        return None
    try:
        meta = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InputError(
            f"{path} is not valid JSON ({err}); re-run `variformer analyze` to rewrite it"
        ) from None
    if not isinstance(meta, dict):
        raise InputError(
            f"{path} holds a JSON {type(meta).__name__}, not an object; re-run `variformer "
            "analyze` to rewrite it"
        )
    return meta


def _check_same_dataset(an: Path, meta: dict | None, ev: Path | None) -> None:
    """Refuse an evaluation and an analysis made on different datasets (other people, splits,
    targets or windows): the page would set side by side results about different people."""
    from core.manifest import MATCHED_PARTS, check_same
    from variformer.evaluate import EVALUATION_RECORD

    if ev is None or meta is None or not (ev / EVALUATION_RECORD).is_file():
        return
    try:
        record = json.loads((ev / EVALUATION_RECORD).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise InputError(
            f"{ev / EVALUATION_RECORD} is not valid JSON ({err}); re-run `variformer evaluate`"
        ) from None
    analysis = {
        k: v for k, v in (meta.get("dataset_fingerprints") or {}).items() if k in MATCHED_PARTS
    }
    check_same(
        record.get("dataset_fingerprints") or {}, analysis,
        what="the dataset", where=ev,
        advice=f"the analysis {an} was made on another; report an evaluation and an analysis "
        "of the same dataset",
    )  # fmt: skip


def _about(meta: dict, metrics, missing: list[str], *, unknown: bool = False) -> str:
    items = []
    if unknown:
        items.append(
            "<b>analysis.json is missing</b>, so this page cannot say which inputs, models and "
            "genes the analysis used, what it skipped and why, whether the cohort was simulated "
            "or whether the fine-tuned model was a tiny test model: read the tables with that "
            "in mind, and re-run <code>variformer analyze</code> to restore the record."
        )
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
    items += _screens(meta)
    for n in meta.get("notes", []):
        items.append("Analysis note: " + html.escape(n))
    if missing:
        items.append("Not shown: " + "; ".join(html.escape(m) for m in missing) + ".")
    return "<ul>" + "".join(f"<li>{i}</li>" for i in items) + "</ul>"


def _screens(meta: dict) -> list[str]:
    """The gene filter, the replicate the HSVs come from, and the models that learned nothing."""
    items = []
    if "hsv_fold" in meta:
        fold = str(meta["hsv_fold"])
        items.append(
            "HSVs, signs, chromatin and eQTL tables use "
            + ("<b>weights averaged over folds</b> (<code>--hsv-fold mean</code>)" if fold == "mean"
               else f"the weights and elastic-net n_nonzero of <b>fold {html.escape(fold)}</b> "
               "(the paper: the first cross-validation split)")
            + "; drivers use each fold's weights and test people."
        )  # fmt: skip
    judged, min_r2 = meta.get("variformer_r2") or {}, meta.get("min_r2")
    if min_r2 is not None and judged:
        n = len(meta.get("genes_passing_r2") or [])
        items.append(
            f"<b>{n}/{len(judged)} genes with Variformer R<sup>2</sup> &gt; {min_r2:g}</b> (test "
            "R<sup>2</sup> averaged over folds) enter the HSV, sign, driver, motif, chromatin and "
            "eQTL figures (Fig. 2b/c, 3, drivers), as in the paper (42/301 genes)."
        )
    elif "min_r2" in meta:
        items.append("No Variformer R<sup>2</sup> gene filter was applied: every gene is shown.")
    bad = [r for r in meta.get("learned") or [] if not r.get("learned", True)]
    if bad:
        rows = "".join(
            f"<tr><td>{html.escape(str(r['model']))}</td><td>{html.escape(str(r['gene']))}</td>"
            f"<td>{'all' if r['fold'] == -1 else r['fold']}</td>"
            f"<td style='text-align:left'>{html.escape(str(r['learned_reason']))}</td></tr>"
            for r in bad
        )
        items.append(
            f"<b>{len(bad)} model/gene/fold(s) learned nothing</b> and have no HSVs, signs, "
            "drivers, motif or chromatin rows:<table class='tab'><tr><th>model</th><th>gene</th>"
            f"<th>fold</th><th>reason</th></tr>{rows}</table>"
        )
    return items


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
        ``analysis`` (or ``eval``) is not a directory, its ``analysis.json`` is not a JSON
        object, or a table cannot be read.
    """
    an = Path(analysis)
    if not an.is_dir():
        raise InputError(f"--analysis {an} is not a directory; run `variformer analyze` first")
    ev = Path(eval) if eval is not None else None
    if ev is not None and not ev.is_dir():
        raise InputError(f"--eval {ev} is not a directory; run `variformer evaluate` first")
    meta = _read_meta(an)
    t = {name: read_output_table(an, f"{name}.tsv") for name in TABLES}
    if t["hsvs"] is None and t["weights"] is None:
        raise InputError(
            f"--analysis {an} has neither hsvs.tsv nor weights.tsv; is it a `variformer analyze` output?"
        )
    _check_same_dataset(an, meta, ev)
    metrics = read_output_table(ev, "metrics.tsv")
    sections = build_sections(ReportInputs(t, metrics, ev))
    missing = [m for s in sections for m in s.missing]
    if meta is None:
        missing.insert(0, f"the analysis's own record ({an / 'analysis.json'} is missing)")
    written: list[str] = []
    with atomic_dir(out, force=force) as tmp:
        parts = [_render(s, tmp, written, missing) for s in sections]
        page = [
            "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
            "<title>Variformer report</title>",
            f"<style>{_CSS}</style></head><body>",
            "<h1>Variformer: evaluation and analysis</h1>",
            "<h2>About these results</h2>",
            _about(meta or {}, metrics, missing, unknown=meta is None),
            *parts,
            "</body></html>",
        ]
        (tmp / "index.html").write_text("\n".join(page))
    return ReportSummary(Path(out), written, missing)


def _render(section: Section, tmp: Path, written: list[str], missing: list[str]) -> str:
    """The HTML of one section; writes its figures as ``tmp/fig_<name>.png`` (names appended to
    ``written``) and appends figures with no rows to ``missing``."""
    block = [f"<h2>{html.escape(section.title)}</h2>"]
    if section.desc:
        block.append(f'<p class="desc">{html.escape(section.desc)}</p>')
    for name, fig in section.figures:
        if fig is None:
            block.append(f'<p class="missing">{html.escape(name)}: no rows to plot.</p>')
            missing.append(f"{name} (empty table)")
            continue
        data = _png(fig)
        (tmp / f"fig_{name}.png").write_bytes(data)
        written.append(f"fig_{name}.png")
        b64 = base64.b64encode(data).decode()
        block.append(
            f'<p><img alt="{html.escape(section.title)}" src="data:image/png;base64,{b64}"></p>'
        )
    block.append(section.tables + section.caveat)
    return "\n".join(block)
