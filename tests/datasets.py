"""A small real dataset on disk (simulate -> prep), for tests of commands that open a dataset."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def prepared_dataset(out: Path, *, people: int = 60, genes: int = 3, seq_len: int = 2048) -> Path:
    """Simulate a cohort and prep it into ``out/dataset``; returns the dataset directory.

    Genes are the simulator's first ``genes`` (BTNL3, ZFP57, PPIF, ...), 3 folds.
    """
    from data_prep.prep import prep_dataset
    from data_prep.simulate import simulate_cohort

    sim = simulate_cohort(out / "cohort", people=people, genes=genes, seq_len=seq_len, seed=0)
    dataset = out / "dataset"
    prep_dataset(
        vcfs=[sim.vcf],
        fasta=sim.fasta,
        annotation=sim.gtf,
        genes=list(pd.read_csv(sim.truth_genes, sep="\t")["gene"]),
        expression=sim.expression,
        seq_len=seq_len,
        out=dataset,
        seed=0,
        progress=False,
    )
    return dataset
