"""Causal indel: haplotype mode against SNV mode and the elastic net with and without indels.

Usage::

    python benchmarks/bench_indels.py [--people 300] [--seq-len 4096] [--h2 0.8] [--seed 0] [--fold 0]

``variformer simulate --indels`` writes a one-gene cohort (BTNL3) whose main effect is a
deletion of a planted motif (``truth.tsv`` ``motif_effect = delete``); then, all through the
command line a user runs:

- ``prep --haplotypes`` (indels applied) and ``prep`` (SNV mode: the indels are dropped) on
  the same phased VCF;
- ``baselines`` on the haplotype dataset with SNV columns only, with ``--indels`` (every
  allele a dosage column), and on the SNV dataset;
- ``finetune --config tiny`` on each dataset, the same fold.

Every model is scored on the same fold's test people (R2 by ``core.metrics.r2``, sklearn's
``r2_score``). The ceiling is the true genetic value's R2 on those people (the truth's betas
on the VCF dosages, one least-squares scale and intercept fitted on the train people). The
script says what ``finetune`` did on the haplotype dataset: the run records its haplotype
setting once haplotype-mode training (#24 item 2) is in; before that, finetune trains on
``ds.sequences()``, the mean one-hot of the two haplotypes (which carries the indels).
Prints a markdown table; record it in benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd


def _cli(argv: list[str]) -> float:
    from variformer.cli import main

    print("$ variformer " + " ".join(argv), flush=True)
    t0 = time.perf_counter()
    rc = main(argv)
    if rc != 0:
        raise SystemExit(f"step failed (exit {rc}): variformer {' '.join(argv)}")
    return time.perf_counter() - t0


def _training_mode(run: Path) -> str:
    """What the fine-tuning run says it trained on (its summary and config, as written)."""
    summary = json.loads((run / "summary.json").read_text())
    for key in ("haplotypes", "haplotype_mode", "mode", "input"):
        if key in summary:
            return f"{key}={summary[key]} (run summary)"
    config = (run / "config.yaml").read_text() if (run / "config.yaml").is_file() else ""
    lines = [ln.strip() for ln in config.splitlines() if "haplotype" in ln]
    if lines:
        return "; ".join(lines) + " (run config)"
    return "not recorded: mean one-hot of the two haplotypes (finetune before #24 item 2)"


def _ceiling(hap_ds, truth: pd.DataFrame, gene: str, fold: int) -> float:
    """R2 on test people of the true genetic value, scaled by OLS on the train people."""
    from core.metrics import r2

    ds = hap_ds
    v = ds.variants(gene)
    mine = truth[truth["gene"] == gene]
    cols = [
        int(np.flatnonzero((v["pos"] == p) & (v["ref"] == r) & (v["alt"] == a))[0])
        for p, r, a in mine[["pos", "ref", "alt"]].itertuples(index=False)
    ]
    expr = ds.expression(gene)
    split = ds.split(fold)
    fitted = {}
    for name in ("train", "test"):
        people = [s for s in split[name] if s in expr.index]
        genetic = ds.dosages(gene, people)[:, cols].astype(np.float64) @ mine["beta"].to_numpy()
        fitted[name] = genetic, expr.loc[people].to_numpy(np.float64)
    slope, intercept = np.polyfit(*fitted["train"], 1)
    genetic, y = fitted["test"]
    return r2(y, slope * genetic + intercept)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--people", type=int, default=300)
    ap.add_argument("--seq-len", type=int, default=4096)
    ap.add_argument("--h2", type=float, default=0.8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--fold", type=int, default=0)
    ap.add_argument("--config", default="tiny")
    ap.add_argument("--work", help="working directory (default: a new temporary one)")
    ap.add_argument("overrides", nargs="*", help="training config overrides (KEY=VALUE)")
    args = ap.parse_args()

    from baselines.dosage_columns import dosage_columns
    from data_prep import open_dataset

    work = Path(args.work or tempfile.mkdtemp(prefix="bench-indels-"))
    cohort, gene, fold = work / "cohort", "BTNL3", str(args.fold)
    seconds = {}
    seconds["simulate"] = _cli(
        ["simulate", "--out", str(cohort), "--people", str(args.people), "--genes", "1",
         "--seq-len", str(args.seq_len), "--h2", str(args.h2), "--seed", str(args.seed),
         "--indels", "--force"]
    )  # fmt: skip
    truth = pd.read_csv(cohort / "truth.tsv", sep="\t")
    deletion = truth[truth["motif_effect"] == "delete"]
    if deletion.empty:
        raise SystemExit("this seed planted no causal deletion; choose another --seed")
    prep = ["prep", "--vcf", str(cohort / "cohort.vcf.gz"), "--fasta", str(cohort / "ref.fa"),
            "--annotation", str(cohort / "genes.gtf"), "--expression",
            str(cohort / "expression.bed.gz"), "--genes", gene, "--seq-len", str(args.seq_len),
            "--seed", str(args.seed), "--no-progress", "--force"]  # fmt: skip
    seconds["prep --haplotypes"] = _cli([*prep, "--out", str(work / "hap"), "--haplotypes"])
    seconds["prep"] = _cli([*prep, "--out", str(work / "snv")])
    en = ["baselines", "--folds", fold, "--seed", str(args.seed), "--no-progress", "--force"]
    _cli([*en, "--dataset", str(work / "hap"), "--out", str(work / "bl_hap_snvs")])
    _cli([*en, "--dataset", str(work / "hap"), "--out", str(work / "bl_hap_indels"), "--indels"])
    _cli([*en, "--dataset", str(work / "snv"), "--out", str(work / "bl_snv")])
    ft = ["finetune", "--gene", gene, "--fold", fold, "--config", args.config, "--no-progress",
          "--force", *args.overrides]  # fmt: skip
    for mode in ("hap", "snv"):
        seconds[f"finetune {mode}"] = _cli(
            [*ft, "--dataset", str(work / mode), "--out", str(work / f"runs_{mode}")]
        )

    def en_r2(out: str) -> tuple[float, int]:
        s = pd.read_csv(work / out / "elastic_net" / "summary.tsv", sep="\t")
        row = s[(s["gene"] == gene) & (s["fold"] == args.fold)].iloc[0]
        return float(row["test_r2"]), int(row["n_snvs"])

    def vf_r2(mode: str) -> tuple[float, Path]:
        run = next((work / f"runs_{mode}").rglob("summary.json")).parent
        summary = json.loads((run / "summary.json").read_text())
        per_gene = summary.get("per_gene", {}).get(gene, summary)
        return float(per_gene["test_r2"]), run

    hap_ds, snv_ds = open_dataset(work / "hap"), open_dataset(work / "snv")
    vf_hap, run_hap = vf_r2("hap")
    vf_snv, _ = vf_r2("snv")
    v = hap_ds.variants(gene)
    n_all, n_snv = len(v), len(snv_ds.variants(gene))
    window = dosage_columns(hap_ds, indels=True).variants(gene)
    n_indels = int((window["ref"].str.len() != window["alt"].str.len()).sum())
    rows = [
        ("Variformer, haplotype mode (prep --haplotypes)", vf_hap, n_all),  # the whole span
        ("Variformer, SNV mode (prep: indels dropped)", vf_snv, n_snv),
        ("elastic net --indels (every allele a column)", *en_r2("bl_hap_indels")),
        ("elastic net, SNV columns (haplotype dataset)", *en_r2("bl_hap_snvs")),
        ("elastic net, SNV dataset", *en_r2("bl_snv")),
        ("truth: genetic value (ceiling)", _ceiling(hap_ds, truth, gene, args.fold), len(truth)),
    ]
    table = pd.DataFrame(rows, columns=["model", "test R2", "variants"])
    d = deletion.iloc[0]
    n_test = len([s for s in hap_ds.split(args.fold)["test"] if s in hap_ds.expression(gene).index])
    print(
        f"\nmachine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(
        f"cohort: {args.people} people, {gene} h2 {args.h2}, seq_len {args.seq_len}, seed "
        f"{args.seed}; fold {args.fold} ({n_test} test people); config {args.config} "
        f"{' '.join(args.overrides)}"
    )
    share = truth.assign(v=lambda t: t["beta"] ** 2 * 2 * t["maf"] * (1 - t["maf"]))
    print(
        f"causal deletion: {d['chrom']}:{d['pos']} {d['ref']}>{d['alt']} ({d['motif']}), "
        f"MAF {d['maf']:.3f}, {d['dist_to_tss']:+d} bp from the TSS, ~{share['v'][d.name] / share['v'].sum():.0%} "
        f"of the genetic variance (ignoring LD); {n_indels} indel alleles in the window"
    )
    print(f"finetune on the haplotype dataset: {_training_mode(run_hap)}")
    print("seconds: " + ", ".join(f"{k} {s:.0f}" for k, s in seconds.items()) + "\n")
    print("| model | test R2 | variants |\n|---|---|---|")
    for model, value, n in table.itertuples(index=False):
        print(f"| {model} | {value:.3f} | {n} |")


if __name__ == "__main__":
    main()
