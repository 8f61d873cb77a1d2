"""``analysis.json``: what ``variformer analyze`` read, how, and what it left out and why."""

from __future__ import annotations

from pathlib import Path

from core.manifest import dataset_fingerprints

__all__ = ["analysis_record"]


def analysis_record(inp, opt, ds, weights, genes, notes) -> dict:
    """``analysis.json``: the inputs, models, genes and notes."""
    finemap, truth, runs = inp.finemap, inp.truth, inp.runs
    return {
        "dataset": str(ds.path), "dataset_fingerprints": dataset_fingerprints(ds),
        "ism": str(inp.ism), "baselines": str(inp.baselines),
        "finemap": None if finemap is None else str(finemap),
        "eqtls": None if inp.eqtls is None else str(inp.eqtls),
        "eqtl_negatives": opt.eqtl_negatives,
        "chromhmm": [str(p) for p in inp.chromhmm], "truth": None if truth is None else str(truth),
        "runs": None if runs is None else str(runs), "models": sorted(weights["model"].unique()),
        "genes": genes, "hsv_model": opt.hsv_model, "seed": opt.seed, "notes": notes,
        "simulated": truth is not None or _simulated(ds),
        "variformer_model": _run_model(runs),
        "enformer": None if inp.enformer is None else str(inp.enformer),
        "enformer_track": inp.enformer_track, "attribution_genes": opt.attribution_genes,
    }  # fmt: skip


def _simulated(ds) -> bool:
    """Whether the dataset was prepared from ``variformer simulate`` files (truth.tsv beside them)."""
    vcfs = ds.meta.get("inputs", {}).get("vcf") or []
    return any((Path(v).parent / "truth_genes.tsv").is_file() for v in vcfs)


def _run_model(runs) -> dict | None:
    """Size and initial weights of the fine-tuned model, read from the first run's config.yaml."""
    if runs is None:
        return None
    import yaml

    for path in sorted(Path(runs).rglob("config.yaml")):
        try:
            model = (yaml.safe_load(path.read_text()) or {}).get("model") or {}
        except (OSError, yaml.YAMLError):
            continue
        hp = model.get("hparams") or {}
        return {
            "pretrained": model.get("pretrained"),
            "dim": hp.get("dim"),
            "depth": hp.get("depth"),
        }
    return None
