"""A simulated GWAS on the simulated cohort: one gene's true genetic expression drives a trait.

The trait of person ``i`` is ``g_i * sqrt(h2_trait) + e_i * sqrt(1 - h2_trait)``: ``g`` the
causal gene's true genetic expression (:func:`data_prep.simulate.genetics.phenotypes`' genetic
value of its causal SNVs, before noise and inverse-normal transform) standardized to mean 0 and
variance 1, ``e`` standard normal noise standardized the same way, drawn from a random stream
of its own seeded by the cohort seed (so every other file keeps its bytes). A gene without
genetic variance (h2 = 0) gives ``g = 0``: a null GWAS.

Every ALT of every record of ``cohort.vcf.gz`` (a multi-allelic record gives one row per ALT,
its dosage the count of that ALT) is tested by ordinary least squares of the trait, as
written in ``gwas_trait.tsv``, on the dosage with an intercept (:func:`marginal_ols`):
``zscore`` is the t statistic ``slope / se`` and ``pvalue`` its two-sided p-value from the t
distribution with ``n - 2`` degrees of freedom (``scipy.stats.linregress``'s). An ALT whose
dosage is the same for everyone (monomorphic among the people) cannot be tested and is left
out. Rows are in VCF order.

Files (coordinates 1-based):

- ``gwas.tsv``: :data:`core.tables.GWAS` (variant_id ``chr<N>_<pos1>_<ref>_<alt>_b38``, rsid
  the VCF ID, ``.`` when it has none, effect_allele = ALT, non_effect_allele = REF, zscore,
  pvalue, sample_size = n people);
- ``gwas_trait.tsv``: ``sample, trait`` (6 decimals; the values the GWAS was run on);
- ``gwas_truth.json``: the causal gene (name, gene_id), ``h2_trait`` (target) and
  ``h2_trait_realized`` (var of the genetic part / var of the trait), the test used.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from core.errors import InputError
from core.tables import GWAS, write_table
from data_prep.keys import gtex_variant_id
from data_prep.simulate.write import as_written, marginal_ols

if TYPE_CHECKING:
    from data_prep.simulate.genetics import Sites
    from data_prep.simulate.layout import Gene

__all__ = [
    "DEFAULT_GWAS_H2",
    "GWAS_TRAIT_TSV",
    "GWAS_TRUTH_JSON",
    "GWAS_TSV",
    "association",
    "check_gwas_options",
    "simulate_trait",
    "write_gwas",
]

#: share of the trait's variance from the causal gene's genetic expression (``--gwas-h2``);
#: on the default cohort the causal gene's lead SNV then has |z| ~ 10 and no other gene's SNV
#: comes near it
DEFAULT_GWAS_H2 = 0.5
GWAS_TSV, GWAS_TRAIT_TSV, GWAS_TRUTH_JSON = "gwas.tsv", "gwas_trait.tsv", "gwas_truth.json"
_STREAM = 0x67776173  # "gwas": the trait's own random stream beside the cohort seed


def check_gwas_options(gene: str | None, h2_trait: float, expressed: list[str]) -> None:
    """Refuse an unknown ``--gwas-gene`` or an ``--gwas-h2`` outside [0, 1], before any work.

    Raises
    ------
    InputError
    """
    if not 0.0 <= h2_trait <= 1.0:  # NaN fails too
        raise InputError(f"--gwas-h2 must lie in [0, 1], got {h2_trait}")
    if gene is not None and gene not in expressed:
        raise InputError(
            f"--gwas-gene {gene} is not an expressed gene of this cohort; choose one of "
            f"{', '.join(expressed)}"
        )


def simulate_trait(
    genetic: np.ndarray, h2_trait: float, rng: np.random.Generator
) -> tuple[np.ndarray, float]:
    """The trait: standardized genetic value * sqrt(h2) + standardized noise * sqrt(1 - h2).

    Parameters
    ----------
    genetic : np.ndarray, shape=(people,)
        The causal gene's true genetic expression.
    h2_trait : float
    rng : np.random.Generator

    Returns
    -------
    trait : np.ndarray, shape=(people,)
    h2_realized : float
        var(genetic part) / var(trait).
    """
    sd = genetic.std()
    g = (genetic - genetic.mean()) / sd if sd > 0 else np.zeros_like(genetic, dtype=np.float64)
    noise = rng.standard_normal(len(genetic))
    noise = (noise - noise.mean()) / noise.std()
    part = g * np.sqrt(h2_trait)
    trait = part + noise * np.sqrt(1.0 - h2_trait)
    return trait, float(part.var() / trait.var())


def association(
    sites: dict[str, Sites], ids: list[str], trait: np.ndarray
) -> tuple[pd.DataFrame, int]:
    """Marginal OLS of ``trait`` on every ALT dosage of every site (see the module docstring).

    Parameters
    ----------
    sites : dict of str to Sites
        Contig -> its sites, in VCF order (``Sites.hap``: shape=(m, 2 * people)).
    ids : list of str
        The VCF ID of every record, in file order.
    trait : np.ndarray, shape=(people,)

    Returns
    -------
    table : pd.DataFrame
        :data:`core.tables.GWAS` columns, one row per tested ALT, in VCF order.
    n_monomorphic : int
        ALTs left out because their dosage is the same for everyone.
    """
    n = len(trait)
    parts, offset, n_monomorphic = [], 0, 0
    for chrom, st in sites.items():
        first, second = st.hap[:, 0::2], st.hap[:, 1::2]  # (m, people) allele index each
        n_alt = np.array([len(a) - 1 for a in st.alleles], dtype=np.int64)
        for k in range(1, int(n_alt.max(initial=0)) + 1):
            rec = np.flatnonzero(n_alt >= k)
            dos = ((first[rec] == k).astype(np.float64) + (second[rec] == k)).T  # (people, r)
            varies = np.ptp(dos, axis=0) > 0
            n_monomorphic += int((~varies).sum())
            rec, dos = rec[varies], dos[:, varies]
            if not len(rec):
                continue
            _, _, t, p = marginal_ols(dos, trait)
            alleles = [st.alleles[i] for i in rec]
            parts.append(
                pd.DataFrame(
                    {
                        "_rec": offset + rec,
                        "_alt": k,
                        "variant_id": [
                            gtex_variant_id(chrom, st.pos0[i] + 1, a[0], a[k])
                            for i, a in zip(rec, alleles)
                        ],
                        "rsid": [ids[offset + i] for i in rec],
                        "effect_allele": [a[k] for a in alleles],
                        "non_effect_allele": [a[0] for a in alleles],
                        "zscore": t,
                        "pvalue": p,
                        "sample_size": n,
                    }
                )
            )
        offset += len(st.pos0)
    if not parts:
        return pd.DataFrame({c: [] for c in GWAS.columns}), n_monomorphic
    table = pd.concat(parts, ignore_index=True).sort_values(["_rec", "_alt"], kind="stable")
    return table[list(GWAS.columns)].reset_index(drop=True), n_monomorphic


def write_gwas(
    out: Path,
    *,
    gene: Gene,
    genetic: np.ndarray,
    h2_expression: float,
    h2_trait: float,
    sites: dict[str, Sites],
    ids: list[str],
    samples: list[str],
    seed: int,
) -> int:
    """Simulate the trait of ``gene`` and write ``gwas.tsv``, ``gwas_trait.tsv`` and
    ``gwas_truth.json`` into the directory ``out``; returns the number of GWAS rows.

    Parameters
    ----------
    out : Path
        The cohort directory being built (:func:`data_prep.simulate.simulate_cohort`).
    gene : Gene
        The causal gene.
    genetic : np.ndarray, shape=(people,)
        Its true genetic expression (:func:`data_prep.simulate.genetics.phenotypes`).
    h2_expression : float
        Its realized expression h2 (recorded in the truth).
    h2_trait : float
        In [0, 1].
    sites, ids
        As :func:`association`.
    samples : list of str
        People, in VCF order.
    seed : int
        The cohort seed; the trait's noise comes from its own stream of it.
    """
    rng = np.random.default_rng([_STREAM, seed])
    trait, h2_realized = simulate_trait(np.asarray(genetic, dtype=np.float64), h2_trait, rng)
    trait = as_written(trait)  # the GWAS is of the trait as gwas_trait.tsv holds it
    with open(out / GWAS_TRAIT_TSV, "w") as fh:
        fh.write("sample\ttrait\n")
        fh.writelines(f"{s}\t{v:.6f}\n" for s, v in zip(samples, trait))
    table, n_monomorphic = association(sites, ids, trait)
    write_table(table, out / GWAS_TSV, GWAS)
    truth = {
        "gene": gene.name,
        "gene_id": gene.gene_id,
        "chrom": gene.chrom,
        "tss0": int(gene.tss0),
        "h2_expression": round(float(h2_expression), 6),
        "h2_trait": float(h2_trait),
        "h2_trait_realized": round(h2_realized, 6),
        "trait": "standardized true genetic expression * sqrt(h2_trait) + standardized "
        "noise * sqrt(1 - h2_trait)",
        "test": "OLS of the trait on the ALT dosage with an intercept; zscore = t = slope / se, "
        "pvalue two-sided from the t distribution with n - 2 df",
        "sample_size": len(samples),
        "n_tested": len(table),
        "n_monomorphic_left_out": n_monomorphic,
    }
    (out / GWAS_TRUTH_JSON).write_text(json.dumps(truth, indent=1) + "\n")
    return len(table)
