"""S-PrediXcan on an exported model, with the inputs checked first (``variformer twas``).

The association itself is S-PrediXcan as the ``pytwas`` package computes it (a pure-Python
reimplementation of MetaXcan's ``SPrediXcan.py``, numerically identical to it): per gene,
``z_g = sum_l w_l sigma_l z_l / sqrt(w' Gamma w)`` over the model SNPs found in the GWAS, with
``Gamma`` the exported covariance and ``sigma_l = sqrt(Gamma_ll)``. GWAS alleles are harmonized
to the model (an effect allele that is the model's REF flips the z-score's sign; a SNP whose two
alleles differ from the model's is dropped), as MetaXcan does.

Before that, what would make the numbers wrong without an error is refused with one line: a
GWAS on another genome build or id scheme (no SNP in common with the model, or more than 1% of
the common SNPs with other alleles), duplicate variant ids in the GWAS, genes asked for that
the db does not have, and a db and covariance that do not belong together (a covariance SNP
that is not in its gene's weights, or a gene with weights but no covariance).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import pandas as pd

from core.errors import InputError
from variformer.predictdb import read_covariance, read_predictdb

__all__ = ["MAX_ALLELE_MISMATCH", "check_covariance", "read_gwas", "run_twas"]

#: the largest fraction of shared SNPs whose alleles may differ from the model's
MAX_ALLELE_MISMATCH = 0.01


def read_gwas(
    path: str | os.PathLike,
    *,
    snp_column: str = "variant_id",
    effect_allele_column: str = "effect_allele",
    non_effect_allele_column: str = "non_effect_allele",
    zscore_column: str = "zscore",
) -> pd.DataFrame:
    """GWAS summary statistics as ``snp, effect_allele, non_effect_allele, zscore`` (the defaults
    read the ``gwas.tsv`` that ``variformer simulate`` writes); whitespace- or tab-separated,
    optionally gzipped. Duplicate SNP ids and non-numeric z-scores are refused."""
    try:
        raw = pd.read_csv(path, sep=r"\s+", dtype=str)
    except (OSError, ValueError, EOFError) as err:
        raise InputError(f"--gwas {path} is not a readable table ({err})") from None
    names = {snp_column: "snp", effect_allele_column: "effect_allele",
             non_effect_allele_column: "non_effect_allele", zscore_column: "zscore"}  # fmt: skip
    missing = [c for c in names if c not in raw.columns]
    if missing:
        raise InputError(
            f"--gwas {path} has no column(s) {', '.join(missing)} (it has "
            f"{', '.join(raw.columns[:8])}); name them with --snp-column / --effect-allele-column "
            "/ --non-effect-allele-column / --zscore-column"
        )
    gwas = raw[list(names)].rename(columns=names)
    dup = gwas["snp"].duplicated(keep=False)
    if dup.any():
        raise InputError(
            f"--gwas {path}: variant id {gwas.loc[dup, 'snp'].iloc[0]} appears {int((gwas['snp'] == gwas.loc[dup, 'snp'].iloc[0]).sum())} "
            f"times ({int(dup.sum())} rows share an id): duplicate variant ids; keep one row per variant"
        )
    z = pd.to_numeric(gwas["zscore"], errors="coerce")
    bad = z.isna() | ~np.isfinite(z.fillna(0))
    if bad.any():
        raise InputError(
            f"--gwas {path}: zscore of {gwas.loc[bad, 'snp'].iloc[0]} is not a finite number"
        )
    for col in ("effect_allele", "non_effect_allele"):
        gwas[col] = gwas[col].str.upper()
    return gwas.assign(zscore=z.astype(np.float64))


def check_covariance(weights: pd.DataFrame, cov: pd.DataFrame, *, where: str) -> None:
    """Every covariance SNP is in its gene's weights and every gene with weights has a
    covariance (the two files come from one export)."""
    model = set(zip(weights["gene"], weights["rsid"]))
    for col in ("RSID1", "RSID2"):
        stray = [(g, s) for g, s in zip(cov["GENE"], cov[col]) if (g, s) not in model]
        if stray:
            g, s = stray[0]
            raise InputError(
                f"{where}: covariance SNP {s} of gene {g} is not in the db's weights for that gene "
                f"({len(stray)} such rows); use the covariance written with the db"
            )
    bare = sorted(set(weights["gene"]) - set(cov["GENE"]))
    if bare:
        raise InputError(
            f"{where}: gene(s) {', '.join(bare[:5])} have weights but no covariance; use the "
            "covariance written with the db"
        )


def _check_build(gwas: pd.DataFrame, weights: pd.DataFrame, *, gwas_path) -> tuple[int, int]:
    """Refuse a GWAS on another build or id scheme; returns (shared SNPs, with other alleles)."""
    model = weights[["rsid", "ref_allele", "eff_allele"]].drop_duplicates("rsid")
    shared = gwas.merge(model, left_on="snp", right_on="rsid")
    if shared.empty:
        example = weights["rsid"].iloc[0] if len(weights) else "-"
        theirs = gwas["snp"].iloc[0] if len(gwas) else "-"
        raise InputError(
            f"--gwas {gwas_path} shares no variant id with the model (model ids such as "
            f"{example}, GWAS ids such as {theirs}): another genome build or id scheme; point "
            "--snp-column at the matching ids (rs ids, or chr_pos_ref_alt_b38 with an export "
            "made with --rsid-from varID), or lift the GWAS over to the model's build"
        )
    same = [
        {a, b} == {r, e}
        for a, b, r, e in zip(
            shared["effect_allele"],
            shared["non_effect_allele"],
            shared["ref_allele"],
            shared["eff_allele"],
        )
    ]
    other = len(same) - int(np.sum(same))
    if other > MAX_ALLELE_MISMATCH * len(same):
        raise InputError(
            f"--gwas {gwas_path}: {other} of {len(same)} variants shared with the model "
            f"({100 * other / len(same):.1f}%) have other alleles than the model's REF/ALT: "
            "another genome build (or strand); lift the GWAS over to the model's build"
        )
    return len(same), other


def run_twas(
    db: str | os.PathLike,
    covariance: str | os.PathLike,
    gwas: pd.DataFrame,
    *,
    gwas_path: str | os.PathLike = "GWAS",
    genes: Sequence[str] | None = None,
) -> pd.DataFrame:
    """S-PrediXcan (``pytwas.spredixcan``) of every gene of ``db`` (or ``genes``: names or ids).

    Returns
    -------
    pd.DataFrame
        pytwas' S-PrediXcan table: gene, gene_name, zscore, effect_size, pvalue, var_g,
        pred_perf_r2, pred_perf_pval, pred_perf_qval, n_snps_used, n_snps_in_cov,
        n_snps_in_model; sorted by p-value.
    """
    import pytwas

    model = read_predictdb(db)
    cov = read_covariance(covariance)
    check_covariance(model.weights, cov, where=f"{db} + {covariance}")
    _check_build(gwas, model.weights, gwas_path=gwas_path)
    keep = None
    if genes:
        known = set(model.extra["gene"]) | set(model.extra["genename"])
        missing = [g for g in genes if g not in known]
        if missing:
            raise InputError(
                f"gene(s) {', '.join(missing[:5])} are not in {db} (left out at export, or not "
                "fitted); see the export's log for why"
            )
        keep = set(genes)
    result = pytwas.spredixcan(os.fspath(db), os.fspath(covariance), gwas=gwas)
    if keep is not None:
        result = result[result["gene"].isin(keep) | result["gene_name"].isin(keep)]
    return result.reset_index(drop=True)
