"""``variformer demo``: the whole method on the embedded simulated cohort, in one command.

Every step is a documented ``variformer`` command, printed and then run through the same
command-line entry point a user calls (:func:`variformer.cli.main`), so what the demo shows is
exactly what it did::

    simulate -> prep -> baselines (elastic nets, every fold) -> finetune (a tiny Variformer per
    gene, one fold) -> evaluate -> ism -> analyze (HSVs, drivers, signs, motifs, chromatin,
    fine-mapped eQTL and true-causal auROC) -> report

The closing table sets each gene's simulated truth (cis-heritability) beside the held-out R2 of
the elastic net and of Variformer, and each model's auROC for the true causal SNVs.

With ``haplotypes`` (``variformer demo --haplotypes``) the cohort has indels (``simulate
--indels``: each heritable gene's main effect is a motif deletion, the VCF phased) and, after
the steps above (SNV mode: ``prep`` drops the indels), the haplotype mode runs too::

    prep --haplotypes -> baselines --indels -> finetune (the same genes and fold) -> evaluate

into the ``*_haplotypes`` directories (:class:`DemoLayout` ``mode="haplotypes"``); the closing
table then has a row per gene and mode.
"""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from core.errors import InputError
from core.fileio import atomic_write_text, check_writable_parent

__all__ = ["DemoLayout", "StepFailed", "demo_commands", "run_demo", "summary_table"]


class StepFailed(Exception):
    """A demo step's command exited non-zero (it has printed its own one-line message)."""

    def __init__(self, command: str, returncode: int):
        super().__init__(f"step `variformer {command}` failed (exit {returncode})")
        self.command = command
        self.returncode = returncode


class DemoLayout:
    """Where each stage of the demo writes, under ``out``.

    ``mode="haplotypes"``: the haplotype-mode stages (dataset, baselines, runs, evaluation,
    analysis) get ``*_haplotypes`` directories beside the SNV mode's; the cohort is shared.
    """

    def __init__(self, out: str | Path, mode: str = "snv"):
        self.out = Path(out)
        self.mode = mode
        tail = "_haplotypes" if mode == "haplotypes" else ""
        self.cohort = self.out / "cohort"
        self.dataset = self.out / f"dataset{tail}"
        self.baselines = self.out / f"baselines{tail}"
        self.runs = self.out / f"runs{tail}"
        self.evaluation = self.out / f"evaluation{tail}"
        self.ism = self.out / "ism"
        self.analysis = self.out / f"analysis{tail}"
        self.report = self.out / "report"
        self.summary = self.out / "demo_summary.tsv"
        self.eqtls = self.cohort / "signif_variant_gene_pairs.txt.gz"

    @property
    def truth(self) -> Path:
        return self.cohort / "truth.tsv"


def _read_genes(layout: DemoLayout) -> list[str]:
    return list(pd.read_csv(layout.cohort / "truth_genes.tsv", sep="\t")["gene"])


def demo_commands(
    layout: DemoLayout,
    *,
    people: int,
    genes: int,
    seq_len: int,
    fold: int,
    n_folds: int,
    config: str,
    overrides: Sequence[str],
    seed: int,
    finetune_genes: Sequence[str] | None,
    force: bool,
    progress: bool | None,
    haplotypes: bool = False,
) -> list[tuple[str, list[str]]]:
    """The demo's steps as ``(what, argv)``; ``finetune_genes`` None = before the cohort exists.

    With ``finetune_genes`` None only the simulate step is returned (the later steps need the
    simulated gene names). ``haplotypes``: the cohort gets indels and the haplotype-mode
    steps (:func:`haplotype_commands`) follow the SNV mode's.
    """
    lay = layout
    f = ["--force"] if force else []
    prog = [] if progress is None else ["--progress" if progress else "--no-progress"]
    steps = [
        (
            f"simulate {people} people, {genes} genes, {seq_len}-bp windows",
            ["simulate", "--out", str(lay.cohort), "--people", str(people), "--genes", str(genes),
             "--seq-len", str(seq_len), "--seed", str(seed), *f,
             *(["--indels"] if haplotypes else [])],
        ),
    ]  # fmt: skip
    if finetune_genes is None:
        return steps
    names = _read_genes(lay)
    steps.append(
        (
            "prep: personal haplotypes -> averaged one-hot windows, expression, CV splits",
            ["prep", "--vcf", str(lay.cohort / "cohort.vcf.gz"), "--fasta",
             str(lay.cohort / "ref.fa"), "--annotation", str(lay.cohort / "genes.gtf"),
             "--expression", str(lay.cohort / "expression.bed.gz"), "--genes", *names,
             "--protein-coding-only", "--seq-len", str(seq_len), "--seed", str(seed),
             "--out", str(lay.dataset), *f, *prog],
        )
    )  # fmt: skip
    steps.append(
        (
            f"elastic nets on genotype dosages, every gene, folds 0-{n_folds - 1}",
            ["baselines", "--dataset", str(lay.dataset), "--folds", *map(str, range(n_folds)),
             "--model", "elastic_net", "--seed", str(seed), "--out", str(lay.baselines), *f, *prog],
        )
    )  # fmt: skip
    steps.append(
        (
            "ridge regressions, the same folds (the linear model of the fine-mapped eQTL auROC)",
            ["baselines", "--dataset", str(lay.dataset), "--folds", *map(str, range(n_folds)),
             "--model", "ridge", "--seed", str(seed), "--out", str(lay.baselines), *prog],
        )
    )  # fmt: skip
    for i, gene in enumerate(finetune_genes):
        steps.append(
            (
                f"fine-tune a tiny Variformer on {gene}, fold {fold} ({i + 1}/{len(finetune_genes)})",
                ["finetune", "--dataset", str(lay.dataset), "--gene", gene, "--fold", str(fold),
                 "--config", config, "--out", str(lay.runs), *f, *prog, *overrides],
            )
        )  # fmt: skip
    steps += [
        (
            "evaluate: every model on the same held-out people",
            ["evaluate", "--dataset", str(lay.dataset), "--runs", str(lay.runs), "--baselines",
             str(lay.baselines), "--out", str(lay.evaluation), *f, *prog],
        ),
        (
            "in-silico mutagenesis of every observed SNV, every fine-tuned gene",
            ["ism", "--runs", str(lay.runs), "--fold", str(fold), "--dataset", str(lay.dataset),
             "--out", str(lay.ism / "variformer.tsv"), *f, *prog],
        ),
        (
            "analyze: HSVs, drivers, signs, motifs, chromatin, eQTL and true-causal auROC",
            ["analyze", "--dataset", str(lay.dataset), "--ism", str(lay.ism), "--baselines",
             str(lay.baselines), "--runs", str(lay.runs), "--finemap",
             str(lay.cohort / "finemap.txt"), "--eqtls", str(lay.eqtls),
             "--chromhmm", str(lay.cohort / "chromhmm.bed"),
             "--truth", str(lay.truth), "--seed", str(seed), "--out", str(lay.analysis), *f],
        ),
        (
            "report: one HTML page with the figures",
            ["report", "--analysis", str(lay.analysis), "--eval", str(lay.evaluation), "--out",
             str(lay.report), *f],
        ),
    ]  # fmt: skip
    if haplotypes:
        steps += haplotype_commands(
            DemoLayout(lay.out, "haplotypes"), names=names, seq_len=seq_len, fold=fold,
            n_folds=n_folds, config=config, overrides=overrides, seed=seed,
            finetune_genes=finetune_genes, force=force, progress=progress,
        )  # fmt: skip
    return steps


def haplotype_commands(
    lay: DemoLayout, *, names, seq_len, fold, n_folds, config, overrides, seed,
    finetune_genes, force, progress,
) -> list[tuple[str, list[str]]]:  # fmt: skip
    """The haplotype mode's steps on the same cohort: prep --haplotypes, baselines --indels,
    finetune, evaluate (``lay`` is the ``mode="haplotypes"`` layout)."""
    f = ["--force"] if force else []
    prog = [] if progress is None else ["--progress" if progress else "--no-progress"]
    steps = [
        (
            "haplotype mode: prep --haplotypes (two phased haplotypes, SNVs and indels)",
            ["prep", "--vcf", str(lay.cohort / "cohort.vcf.gz"), "--fasta",
             str(lay.cohort / "ref.fa"), "--annotation", str(lay.cohort / "genes.gtf"),
             "--expression", str(lay.cohort / "expression.bed.gz"), "--genes", *names,
             "--protein-coding-only", "--seq-len", str(seq_len), "--seed", str(seed),
             "--haplotypes", "--out", str(lay.dataset), *f, *prog],
        ),
        (
            f"haplotype mode: elastic nets with indel dosages, folds 0-{n_folds - 1}",
            ["baselines", "--dataset", str(lay.dataset), "--folds", *map(str, range(n_folds)),
             "--model", "elastic_net", "--indels", "--seed", str(seed), "--out",
             str(lay.baselines), *f, *prog],
        ),
    ]  # fmt: skip
    for i, gene in enumerate(finetune_genes):
        steps.append(
            (
                f"haplotype mode: fine-tune on {gene}, fold {fold} ({i + 1}/{len(finetune_genes)})",
                ["finetune", "--dataset", str(lay.dataset), "--gene", gene, "--fold", str(fold),
                 "--config", config, "--out", str(lay.runs), *f, *prog, *overrides],
            )
        )  # fmt: skip
    steps.append(
        (
            "haplotype mode: evaluate on the same held-out people",
            ["evaluate", "--dataset", str(lay.dataset), "--runs", str(lay.runs), "--baselines",
             str(lay.baselines), "--out", str(lay.evaluation), *f, *prog],
        )
    )  # fmt: skip
    return steps


def run_demo(
    out,
    *,
    people: int = 300,
    genes: int = 5,
    seq_len: int = 4096,
    gene: str | None = None,
    fold: int = 0,
    config: str | None = None,
    overrides: tuple[str, ...] = (),
    seed: int = 0,
    force: bool = False,
    finetune_model: bool = True,
    progress: bool | None = None,
    haplotypes: bool = False,
) -> pd.DataFrame:
    """Run the whole pipeline on a simulated cohort; return the per-gene closing table.

    Parameters
    ----------
    gene : str, optional
        Fine-tune only this gene (default: every simulated gene, one tiny model each).
    finetune_model : bool
        False stops after the baselines (no fine-tuning, ISM, analysis or report).
    haplotypes : bool
        Simulate indels and run the haplotype mode too (see the module docstring); the table
        then has a row per gene and mode.

    Returns
    -------
    pd.DataFrame
        :func:`summary_table`.

    Raises
    ------
    InputError
        ``out`` exists without ``force``, or an option no step could run with
        (:func:`_check_options`); both before any step starts.
    StepFailed
        A step's command failed; it has printed its own one-line message.
    """
    from variformer.cli import main as cli_main

    n_folds = 3
    _check_options(people=people, genes=genes, seq_len=seq_len, gene=gene, fold=fold,
                   n_folds=n_folds, config=config, overrides=overrides)  # fmt: skip
    lay = DemoLayout(out)
    if lay.out.exists() and not force:
        raise InputError(f"{lay.out} already exists; pass --force to run the demo again there")
    check_writable_parent(lay.out)
    lay.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    opts = dict(
        people=people, genes=genes, seq_len=seq_len, fold=fold, n_folds=n_folds,
        config=config or "tiny", overrides=tuple(overrides), seed=seed, force=force,
        progress=progress, haplotypes=haplotypes,
    )  # fmt: skip
    first = demo_commands(lay, finetune_genes=None, **opts)
    _run_steps(first, cli_main, start=1, total=None)
    names = _read_genes(lay)
    if gene is not None and gene not in names:
        raise InputError(f"--gene {gene} is not in the demo cohort ({', '.join(names)})")
    chosen = [gene] if gene else names
    steps = demo_commands(lay, finetune_genes=chosen, **opts)[1:]
    if not finetune_model:  # prep and the elastic nets (of each mode), no ridge
        steps = [st for st in steps if st[1][0] in ("prep", "baselines") and "ridge" not in st[1]]
    total = 1 + len(steps)
    _run_steps(steps, cli_main, start=2, total=total)
    table = summary_table(lay, fold=fold)
    if haplotypes:
        both = [
            table.assign(mode="snv"),
            summary_table(DemoLayout(lay.out, "haplotypes"), fold=fold).assign(mode="haplotypes"),
        ]
        table = pd.concat(both, ignore_index=True).sort_values("gene", kind="stable")
        rest = [c for c in table.columns if c not in ("gene", "mode", "n_indels")]
        at = rest.index("n_snvs") + 1 if "n_snvs" in rest else len(rest)
        table = table[["gene", "mode", *rest[:at], "n_indels", *rest[at:]]]
        table = table.reset_index(drop=True).fillna({"n_indels": 0}).astype({"n_indels": int})
    atomic_write_text(lay.summary, table.to_csv(sep="\t", index=False, float_format="%.4f"))
    seconds = time.perf_counter() - t0
    atomic_write_text(
        lay.out / "demo.json",
        json.dumps(
            {"seconds": round(seconds, 1), "fold": fold, "finetuned": chosen if finetune_model else [],
             "people": people, "genes": names, "seq_len": seq_len, "seed": seed,
             **({"haplotypes": True} if haplotypes else {}),
             "commands": [["variformer", *argv] for _, argv in first + steps]},
            indent=1,
        ),
    )  # fmt: skip
    return table


#: the fewest people the demo runs with: each fold's train people (80 %) must fill the tiny
#: config's micro-batch of 16, and 10 % test people must be enough for an R2
MIN_PEOPLE = 30


def _check_options(*, people, genes, seq_len, gene, fold, n_folds, config, overrides) -> None:
    """Refuse, before the first step, what a later step would fail on after minutes of work."""
    from variformer.config import load_config

    if people < MIN_PEOPLE:
        raise InputError(
            f"--people {people}: the demo needs at least {MIN_PEOPLE} people (3 folds, and "
            "enough train people per fold for the tiny model's batches)"
        )
    if genes < 1:
        raise InputError(f"--genes {genes}: simulate at least one gene")
    if seq_len < 1024 or seq_len % 128:
        raise InputError(
            f"--seq-len {seq_len}: the demo needs a multiple of 128 (Enformer's bin) >= 1024"
        )
    if not 0 <= fold < n_folds:
        raise InputError(f"--fold {fold}: the demo's dataset has folds 0..{n_folds - 1}")
    if gene is not None:
        from data_prep.simulate.layout import gene_names

        if gene not in gene_names(genes):
            raise InputError(
                f"--gene {gene} is not in the demo cohort ({', '.join(gene_names(genes))})"
            )
    load_config(config or "tiny", overrides=overrides)  # a bad key or value: now, not at finetune


def _run_steps(steps, cli_main, *, start: int, total: int | None) -> None:
    for i, (what, argv) in enumerate(steps, start=start):
        label = f"[{i}/{total}]" if total else f"[{i}]"
        print(f"{label} {what}", flush=True)
        print(f"      $ variformer {shlex.join(argv)}", flush=True)
        t = time.perf_counter()
        rc = cli_main(argv)
        if rc != 0:
            raise StepFailed(argv[0], rc)
        print(f"      done in {time.perf_counter() - t:.0f} s", flush=True)


def _window_counts(ds, gene: str) -> tuple[int, int]:
    """SNVs and indels among a haplotype dataset's alleles overlapping ``gene``'s window."""
    from baselines.dosage_columns import dosage_columns

    v = dosage_columns(ds, indels=True).variants(gene)
    ref, alt = v["ref"].str.len(), v["alt"].str.len()
    return int(((ref == 1) & (alt == 1)).sum()), int((ref != alt).sum())


def summary_table(layout: DemoLayout | str | Path, *, fold: int = 0) -> pd.DataFrame:
    """Per gene: truth h2, SNVs, held-out R2 of each model, auROC for the true causal SNVs.

    Read from the files the stages wrote: ``cohort/truth_genes.tsv`` (h2), the dataset (SNVs),
    ``evaluation/metrics.tsv`` (R2 on the test people of ``fold``) and
    ``analysis/truth_auroc_genes.tsv`` (auROC per gene and model). Missing stages give NaN.

    The R2 columns are matched: both models on the same fold and test people (the demo trains
    Variformer on ``fold`` only, so the elastic net's R2 is its ``fold`` R2 too, never its mean
    over the 3 folds it was fitted on); only full-train-set ``hop`` results count.

    A ``mode="haplotypes"`` layout's ``n_snvs`` counts the SNVs of the window (a haplotype
    dataset lists the alleles of a wider span) and adds ``n_indels``, its indels.

    Returns
    -------
    pd.DataFrame
        gene, h2, n_snvs, n_causal, elastic_net_r2, variformer_r2, then ``auroc_<model>`` for
        each model of the truth auROC table.
    """
    lay = layout if isinstance(layout, DemoLayout) else DemoLayout(layout)
    truth = pd.read_csv(lay.cohort / "truth_genes.tsv", sep="\t")
    table = truth[["gene", "h2_target"]].rename(columns={"h2_target": "h2"})
    if "n_causal" in truth.columns:
        table["n_causal"] = truth["n_causal"].to_numpy()
    if (lay.dataset / "genes.tsv").is_file():
        from data_prep import open_dataset

        ds = open_dataset(lay.dataset)
        table["n_snvs"] = [len(ds.variants(g)) if g in set(ds.genes) else 0 for g in table["gene"]]
        if lay.mode == "haplotypes":  # the window's SNVs (as in SNV mode) and its indels
            counts = [
                _window_counts(ds, g) if g in set(ds.genes) else (0, 0) for g in table["gene"]
            ]
            table["n_snvs"] = [n for n, _ in counts]
            table["n_indels"] = [n for _, n in counts]
    metrics_path = lay.evaluation / "metrics.tsv"
    # evaluate labels a run trained on haplotypes (data.haplotypes) variformer_haplotypes
    vf = "variformer_haplotypes" if lay.mode == "haplotypes" else "variformer"
    for model, label in (("elastic_net", "elastic_net"), ("variformer", vf)):
        col = f"{model}_r2"
        table[col] = np.nan
        if metrics_path.is_file():
            m = pd.read_csv(metrics_path, sep="\t")
            sel = m[(m["model"] == label) & (m["split"] == "test") & (m["fold"] == fold)]
            for column, value in (("setting", "hop"), ("status", "ok"), ("train_fraction", 1.0)):
                if column in sel:  # (a downsampled run is not the model's R2)
                    sel = sel[sel[column] == value]
            table[col] = table["gene"].map(sel.groupby("gene")["r2"].mean())
    if not metrics_path.is_file() and (lay.baselines / "elastic_net" / "summary.tsv").is_file():
        bl = pd.read_csv(lay.baselines / "elastic_net" / "summary.tsv", sep="\t")
        bl = bl[bl["fold"] == fold]
        table["elastic_net_r2"] = table["gene"].map(bl.groupby("gene")["test_r2"].mean())
    auroc = lay.analysis / "truth_auroc_genes.tsv"
    if auroc.is_file():
        a = pd.read_csv(auroc, sep="\t")
        for model, sub in a.groupby("model", sort=False):
            table[f"auroc_{model}"] = table["gene"].map(sub.set_index("gene")["auroc"])
    return table
