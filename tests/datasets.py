"""A small real dataset on disk (simulate -> prep), for tests of commands that open a dataset."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd


def simulated_dataset(
    out: Path,
    *,
    people: int = 60,
    genes: int = 3,
    seq_len: int = 2048,
    seed: int = 0,
    h2: Sequence[float] | None = None,
    cohort: str = "cohort",
    dataset: str = "dataset",
) -> tuple[Path, Any]:
    """Simulate a cohort into ``out/<cohort>`` and prep all its genes into ``out/<dataset>``.

    Returns
    -------
    (Path, data_prep.simulate.cohort.SimulationSummary)
        The dataset directory and the simulated cohort (its files and truth tables). Genes are
        the simulator's first ``genes`` (BTNL3, ZFP57, PPIF, ...), with expression, 3 folds,
        split seed 0.
    """
    from data_prep.prep import prep_dataset
    from data_prep.simulate import simulate_cohort

    kw = {} if h2 is None else {"h2": list(h2)}
    sim = simulate_cohort(
        out / cohort, people=people, genes=genes, seq_len=seq_len, seed=seed, **kw
    )
    prep_dataset(
        vcfs=[sim.vcf],
        fasta=sim.fasta,
        annotation=sim.gtf,
        genes=list(pd.read_csv(sim.truth_genes, sep="\t")["gene"]),
        expression=sim.expression,
        seq_len=seq_len,
        out=out / dataset,
        seed=0,
        progress=False,
    )
    return out / dataset, sim


def prepared_dataset(out: Path, *, people: int = 60, genes: int = 3, seq_len: int = 2048) -> Path:
    """:func:`simulated_dataset` with seed 0; returns only the dataset directory."""
    return simulated_dataset(out, people=people, genes=genes, seq_len=seq_len)[0]
