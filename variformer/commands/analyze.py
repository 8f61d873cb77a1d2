"""``variformer analyze``: HSVs, drivers, sign agreement, motifs, chromatin enrichment, eQTL auROC."""

from __future__ import annotations

import argparse

from core.errors import InputError
from variformer.commands._args import add_track_argument


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", required=True, help="dataset directory (variformer prep)")
    p.add_argument("--ism", required=True, help="directory of <model>.tsv ISM tables")
    p.add_argument("--baselines", required=True, help="variformer baselines output (BL)")
    p.add_argument("--out", required=True, help="output directory (new unless --force)")
    p.add_argument("--finemap", help="GTEx CAVIAR high-confidence eQTL table -> eqtl_auroc.tsv")
    p.add_argument("--finemap-tissue", help="keep only this TISSUE of --finemap (default: all)")
    p.add_argument(
        "--eqtls", metavar="SIGNIF_PAIRS",
        help="GTEx *.signif_variant_gene_pairs.txt.gz: non-fine-mapped eQTLs are the "
        "distance-matched negatives of eqtl_auroc.tsv (the paper's definition)",
    )  # fmt: skip
    p.add_argument(
        "--eqtl-negatives", choices=["eqtl", "any-snv"], default="eqtl",
        help="negatives of eqtl_auroc.tsv: eQTLs of --eqtls (eqtl, default) or any observed "
        "SNV (any-snv, not the paper's)",
    )  # fmt: skip
    p.add_argument(
        "--chromhmm", nargs="+", default=[], metavar="BED",
        help="ChromHMM segmentation BEDs, one per annotation sample -> chromatin.tsv",
    )  # fmt: skip
    p.add_argument("--truth", help="simulated truth.tsv -> truth_auroc.tsv")
    p.add_argument(
        "--runs", help="fine-tuning runs: their test predictions give Variformer drivers"
    )
    p.add_argument(
        "--predictions", nargs="+", default=[], metavar="MODEL=FILE",
        help="more per-person predictions (sample, gene, split, observed, predicted[, fold])",
    )  # fmt: skip
    g = p.add_mutually_exclusive_group()
    g.add_argument("--gene", help="one gene")
    g.add_argument("--genes", nargs="+", help="several genes")
    g.add_argument("--genes-file", help="file with one gene per line")
    p.add_argument("--hsv-model", default="elastic_net", help="baseline whose n_nonzero sets k")
    p.add_argument(
        "--hsv-fold", default="0", metavar="FOLD|mean",
        help="replicate whose weights and n_nonzero give the HSVs (0, the paper's first split); "
        "'mean' averages the weights over folds",
    )  # fmt: skip
    p.add_argument(
        "--min-r2", type=_min_r2, default=0.2, metavar="R2|none",
        help="keep genes whose Variformer test R2 (mean over folds) exceeds this (0.2); "
        "'none' keeps every gene",
    )  # fmt: skip
    p.add_argument("--jaspar-release", default="2024", help="JASPAR release (pyjaspar, offline)")
    p.add_argument("--meme", help="MEME motif file (e.g. HOCOMOCO) instead of JASPAR")
    p.add_argument(
        "--motif-method", default="default", choices=["default", "ic", "log"],
        help="motifbreakR scoring method (default, as in the paper; ic; log)",
    )  # fmt: skip
    p.add_argument("--motif-pvalue", type=float, default=5e-5, help="motif hit p-value (5e-5)")
    p.add_argument(
        "--motif-background",
        default="uniform",
        choices=["uniform", "window"],
        help="PWM background: uniform or each window's base composition (uniform)",
    )
    p.add_argument("--no-motifs", action="store_true", help="skip the motif scan")
    p.add_argument(
        "--no-attributions",
        action="store_true",
        help="skip attributions.tsv (gradient x input of the --runs models, Fig. S10)",
    )
    p.add_argument(
        "--enformer", metavar="ID|DIR",
        help="pre-trained Enformer (hub id or save_pretrained directory): its attributions "
        "too, on the --runs' windows and test people; its HSVs/drivers are model 'enformer' "
        "(ISM/enformer.tsv, --predictions enformer=FILE)",
    )  # fmt: skip
    add_track_argument(p)
    p.add_argument(
        "--attribution-genes", type=_count_or_all, default=15, metavar="N|all",
        help="genes drawn at random (--seed) from those passing --min-r2 for attributions.tsv "
        "(15, the paper's); 'all' takes every one",
    )  # fmt: skip
    p.add_argument(
        "--attribution-flank",
        type=int,
        default=100,
        help="bases either side of each SNV in attributions.tsv (100)",
    )
    p.add_argument("--device", help="torch device of the attributions (default: a GPU if any)")
    p.add_argument(
        "--permutations",
        type=int,
        default=20000,
        help="draws of each ChromHMM permutation test in model_tests.tsv (20000: p >= 5e-5, "
        "so the paper's **** (adjusted p < 1e-4) is reachable)",
    )
    p.add_argument(
        "--seed", type=int, default=0,
        help="seed of the negative sampling, permutations, attribution genes, controls and "
        "bootstrap (0)",
    )  # fmt: skip
    p.add_argument("--force", action="store_true", help="replace --out if it exists")


def _min_r2(text: str) -> float | None:
    if text.lower() == "none":
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number or 'none': {text!r}") from None


def _count_or_all(text: str) -> int | None:
    if text.lower() == "all":
        return None
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"not a positive count or 'all': {text!r}")
    return int(text)


def _genes(args) -> list[str] | None:
    if args.gene:
        return [args.gene]
    if args.genes:
        return list(args.genes)
    if args.genes_file:
        from data_prep.listfile import read_list

        return read_list(args.genes_file, what="genes")
    return None


def _predictions(items) -> list[tuple[str, str]]:
    out = []
    for item in items:
        model, sep, path = item.partition("=")
        if not sep or not model or not path:
            raise InputError(f"--predictions {item!r}: write MODEL=FILE, e.g. enformer=preds.tsv")
        out.append((model, path))
    return out


def main(args) -> int:
    from core.fileio import check_out_apart
    from variformer.analysis.analyze import AnalysisInputs, AnalysisOptions, analyze

    check_out_apart(args.out, {
        "--dataset": args.dataset, "--ism": args.ism, "--baselines": args.baselines,
        "--runs": args.runs, "--predictions": [p for _, p in _predictions(args.predictions)],
        "--finemap": args.finemap, "--eqtls": args.eqtls, "--chromhmm": args.chromhmm, "--truth": args.truth,
        "--meme": args.meme, "--genes-file": args.genes_file, "--enformer": args.enformer,
    })  # fmt: skip
    if args.device is not None:  # refused now, not after the analyses, at the attributions
        from variformer.predict import check_device

        check_device(args.device)
    inputs = AnalysisInputs(
        dataset=args.dataset, ism=args.ism, baselines=args.baselines, runs=args.runs,
        predictions=_predictions(args.predictions), finemap=args.finemap,
        finemap_tissue=args.finemap_tissue, eqtls=args.eqtls, chromhmm=args.chromhmm, truth=args.truth,
        genes=_genes(args), enformer=args.enformer, enformer_track=args.track,
    )  # fmt: skip
    options = AnalysisOptions(
        eqtl_negatives=args.eqtl_negatives, hsv_model=args.hsv_model, hsv_fold=args.hsv_fold, min_r2=args.min_r2, motifs=not args.no_motifs, motif_pvalue=args.motif_pvalue, motif_method=args.motif_method,
        motif_background=args.motif_background, jaspar_release=args.jaspar_release,
        meme=args.meme, attributions=not args.no_attributions,
        attribution_genes=args.attribution_genes, attribution_flank=args.attribution_flank,
        device=args.device, seed=args.seed, permutations=args.permutations,
    )  # fmt: skip
    res = analyze(inputs, out=args.out, options=options, force=args.force)
    print(summary_text(res))
    return 0


def summary_text(res) -> str:
    """A few lines per analysis: what a user checks first."""
    lines = [f"analysis -> {res.out}"]
    n = res.hsvs.groupby("model").size()
    lines.append("HSVs per model: " + ", ".join(f"{m} {c}" for m, c in n.items()))
    ok = res.driver_summary[res.driver_summary["status"] == "ok"]
    if len(ok):
        d = ok.groupby("model")["n_drivers"].mean()
        lines.append(
            "drivers per gene/fold (mean): " + ", ".join(f"{m} {v:.1f}" for m, v in d.items())
        )
    pooled = res.sign_agreement[res.sign_agreement["gene"] == "all"]
    for r in pooled.itertuples():
        lines.append(
            f"sign agreement {r.model} vs {r.reference}: {r.n_agree}/{r.n} ({r.fraction:.1%}), Fisher p = {r.fisher_p:.3g}"
        )
    if res.motif_summary is not None:
        for r in res.motif_summary[res.motif_summary["variants"] == "hsv"].itertuples():
            lines.append(f"motif-disrupting HSVs {r.model}: {r.n_disrupting}/{r.n_hsvs}")
    for name, tab in (("fine-mapped eQTL", res.eqtl_auroc), ("true causal", res.truth_auroc)):
        if tab is not None:
            for r in tab.itertuples():
                lines.append(
                    f"{name} auROC/auPR {r.model}: {r.auroc:.3f} / {r.aupr:.3f} ({r.n_pos} pos, {r.n_neg} neg: {r.negatives})"
                )
    if res.chromatin is not None and len(res.chromatin):
        top = res.chromatin[res.chromatin["gene"] == "all"].sort_values(
            "log2_ratio", ascending=False
        )
        best = top.groupby("model").head(1)
        for r in best.itertuples():
            lines.append(f"most enriched state {r.model}: {r.state} (log2 {r.log2_ratio:+.2f})")
    if res.model_tests is not None and len(res.model_tests):
        t = res.model_tests[res.model_tests["maf_filter"] == 0]
        lines.append(
            f"between-model tests, no MAF filter: {int((t['p_adj'] < 0.05).sum())} of "
            f"{int(t['p'].notna().sum())} with BH-adjusted p < 0.05 (model_tests.tsv)"
        )
    lines += _attribution_lines(res.attribution_summary)
    lines += [f"note: {n}" for n in res.notes]
    return "\n".join(lines)


def _attribution_lines(summary) -> list[str]:
    """Fig. S10 at the SNVs: per model and background, each group's mean [95% CI] (n)."""
    if summary is None or summary.empty:
        return []
    at = summary[summary["offset"] == 0]
    lines = []
    for (model, bg), g in at.groupby(["model", "background"], sort=True):
        parts = [
            f"{r.group} {r.mean:.2f} [{r.ci_low:.2f}, {r.ci_high:.2f}] (n={r.n_snvs})"
            for r in g.itertuples()
        ]
        lines.append(f"attribution at the SNV, {model} {bg}: " + "; ".join(parts))
    return lines
