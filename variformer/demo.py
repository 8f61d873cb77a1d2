"""``variformer demo``: the whole pipeline on the embedded simulated cohort, in one command.

simulate -> prep -> elastic-net baselines (all genes, one fold) -> fine-tune a tiny Variformer
on one gene (CPU-sized, random initial weights) -> a table that sets both against the
simulated truth (the gene's cis-heritability). Each step prints the ``variformer`` command a
user runs for it on their own data. The later stages (``variformer baselines``/``evaluate``
in the runs layout, ``variformer ism``, then ``analyze`` and ``report``) run only when every
command they need is installed; otherwise the demo says plainly which are missing.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pandas as pd

from variformer.errors import InputError
from variformer.fileio import atomic_write_text, check_writable_parent
from variformer.metrics import gene_metrics

# later pipeline stages -> what they give; the demo stops before them unless all are installed
LATER_STAGES = {
    "baselines": "elastic nets on 3 folds in the BL layout that analyze reads",
    "evaluate": "held-out metrics table over runs and baselines",
    "ism": "in-silico mutagenesis tables of the fine-tuned models",
    "analyze": "HSVs, drivers, sign agreement, motif disruption, chromatin, eQTL/truth auROC",
    "report": "the HTML report",
}


def missing_stages() -> list[str]:
    """Later stages whose ``variformer`` command is not in this installation (in pipeline order)."""
    from variformer.cli import COMMANDS

    return [name for name in LATER_STAGES if name not in COMMANDS]


def run_demo(
    out,
    *,
    people: int = 300,
    genes: int = 5,
    seq_len: int = 4096,
    gene: str = "BTNL3",
    fold: int = 0,
    config: str | None = None,
    overrides: tuple[str, ...] = (),
    seed: int = 0,
    force: bool = False,
    finetune_model: bool = True,
    progress: bool | None = None,
) -> pd.DataFrame:
    """Run simulate -> prep -> baselines -> finetune and return the per-gene comparison table.

    The fine-tuned run is read back through :func:`variformer.runs.read_run` and its test
    metrics computed from its predictions table (:func:`variformer.metrics.gene_metrics`).

    Returns
    -------
    pd.DataFrame
        One row per gene: gene, h2 (simulated truth), n_snvs, elastic_net_r2, elastic_net_pcc,
        variformer_r2, variformer_pcc (NaN for genes not fine-tuned).
    """
    from baselines.elastic_net import fit_linear_many
    from data_prep import open_dataset
    from data_prep.prep import prep_dataset
    from data_prep.simulate import simulate_cohort

    out = Path(out)
    if out.exists() and not force:
        raise InputError(f"{out} already exists; pass --force to run the demo again there")
    check_writable_parent(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    print(
        f"[1/5] simulate: {people} people, {genes} genes, {seq_len} bp windows -> {out / 'cohort'}",
        flush=True,
    )
    print(
        f"      = variformer simulate --out {out / 'cohort'} --people {people} --genes {genes}"
        f" --seq-len {seq_len} --seed {seed}",
        flush=True,
    )
    sim = simulate_cohort(
        out / "cohort", people=people, genes=genes, seq_len=seq_len, seed=seed, force=True
    )
    truth = pd.read_csv(sim.truth_genes, sep="\t")
    print(f"[2/5] prep -> {out / 'dataset'}", flush=True)
    print(
        f"      = variformer prep --vcf {sim.vcf} --fasta {sim.fasta} --annotation {sim.gtf}"
        f" --expression {sim.expression} --genes {' '.join(truth['gene'])} --protein-coding-only"
        f" --seq-len {seq_len} --seed {seed} --out {out / 'dataset'}",
        flush=True,
    )
    prep = prep_dataset(
        vcfs=[sim.vcf],
        fasta=sim.fasta,
        annotation=sim.gtf,
        genes=list(truth["gene"]),
        expression=sim.expression,
        seq_len=seq_len,
        out=out / "dataset",
        protein_coding_only=True,
        seed=seed,
        force=True,
        progress=False,
    )
    print(
        f"      {prep.n_genes} genes, {prep.n_samples} people, {prep.n_variants} SNV alleles",
        flush=True,
    )
    ds = open_dataset(out / "dataset")
    print(f"[3/5] elastic nets on fold {fold} (all genes)", flush=True)
    print(
        "      = baselines.elastic_net.fit_linear_many (its command, variformer baselines, "
        + ("is installed" if "baselines" not in missing_stages() else "is not in this version")
        + ")",
        flush=True,
    )
    en = fit_linear_many(ds, ds.genes, [fold], model="elastic_net", seed=seed)
    en.to_csv(out / "elastic_net.tsv", sep="\t", index=False)
    table = (
        truth[["gene", "h2_target"]]
        .rename(columns={"h2_target": "h2"})
        .merge(
            en[["gene", "n_variants", "r2", "pcc"]].rename(
                columns={"n_variants": "n_snvs", "r2": "elastic_net_r2", "pcc": "elastic_net_pcc"}
            ),
            on="gene",
        )
    )
    if finetune_model:
        from variformer.config import load_config
        from variformer.finetune import finetune
        from variformer.runs import read_run

        if gene not in ds.genes:
            raise InputError(f"--gene {gene} is not in the demo cohort ({', '.join(ds.genes)})")
        print(
            f"[4/5] fine-tune a tiny Variformer on {gene}, fold {fold} (CPU preset {config or 'tiny'})",
            flush=True,
        )
        cfg_name = config or "tiny"
        print(
            f"      = variformer finetune --dataset {out / 'dataset'} --gene {gene} --fold {fold}"
            f" --config {cfg_name} --out {out / 'runs'} {' '.join(overrides)}".rstrip(),
            flush=True,
        )
        cfg = load_config(cfg_name, overrides=list(overrides))
        result = finetune(
            out / "dataset",
            genes=[gene],
            fold=fold,
            config=cfg,
            out=out / "runs",
            force=True,
            progress=progress,
        )
        run = read_run(result.run_dir)
        table = table.merge(_test_metrics(run.predictions, ds.genes, "variformer"), on="gene")
        # genes the model was not trained on: no Variformer numbers
        table.loc[table["gene"] != gene, ["variformer_r2", "variformer_pcc"]] = float("nan")
    else:
        table["variformer_r2"] = float("nan")
        table["variformer_pcc"] = float("nan")
        print("[4/5] fine-tuning skipped (--no-finetune)", flush=True)
    missing = missing_stages()
    if missing:
        print(
            "[5/5] not available in this version, so the demo stops here: "
            + "; ".join(f"variformer {m} ({LATER_STAGES[m]})" for m in missing)
            + ". analyze and report need ISM tables and BL baselines.",
            flush=True,
        )
    else:
        print(
            "[5/5] baselines/evaluate/ism/analyze/report are installed but the demo does not "
            "chain them yet; run them as in the README's workflow",
            flush=True,
        )
    atomic_write_text(
        out / "demo_summary.tsv", table.to_csv(sep="\t", index=False, float_format="%.4f")
    )
    atomic_write_text(
        out / "demo.json",
        json.dumps({"seconds": time.perf_counter() - t0, "fold": fold, "gene": gene}, indent=1),
    )
    return table


def _test_metrics(predictions: pd.DataFrame, genes, model: str) -> pd.DataFrame:
    """gene, <model>_r2, <model>_pcc on the test people of a predictions table."""
    m = gene_metrics(predictions, genes=list(genes), splits=["test"])
    return m[["gene", "r2", "pcc"]].rename(columns={"r2": f"{model}_r2", "pcc": f"{model}_pcc"})
