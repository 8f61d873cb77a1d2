"""Read GTEx-style expression BED files (``#chr start end gene_id <samples...>``)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.errors import InputError


def read_expression_bed(path) -> pd.DataFrame:
    """Read an expression BED (gzipped or plain), e.g. GTEx's ``*.v8.normalized_expression.bed.gz``.

    Returns
    -------
    pd.DataFrame, shape=(n_genes, n_samples)
        Float values indexed by ``gene_id`` as written (possibly versioned), sample columns.

    Raises
    ------
    InputError
        Missing file, wrong header, duplicate sample columns or gene rows, non-numeric or
        infinite values. Missing values (NA) are kept as NaN.
    """
    try:
        df = pd.read_csv(path, sep="\t", dtype={0: str}, low_memory=False)
    except FileNotFoundError:
        raise InputError(f"expression file not found: {path}") from None
    except Exception as err:
        raise InputError(f"cannot read expression file {path}: {err}") from None
    cols = list(df.columns)
    if (
        len(cols) < 5
        or cols[0].lstrip("#").lower() not in ("chr", "chrom")
        or cols[3].lower() not in ("gene_id", "phenotype_id", "gene", "id")
    ):
        raise InputError(
            f"{path} is not an expression BED: need a header '#chr start end gene_id <samples>'"
        )
    samples = [str(c) for c in cols[4:]]
    dup = pd.Index(samples)[pd.Index(samples).duplicated()]
    if len(dup):
        raise InputError(f"{path}: duplicate sample column {dup[0]!r}")
    raw = df.iloc[:, 4:]
    if all(pd.api.types.is_numeric_dtype(t) for t in raw.dtypes):  # the usual case: parsed
        values = raw.astype(np.float64)
        bad = np.zeros(raw.shape, dtype=bool)
    else:  # some column holds text: find the first non-numeric value to name it
        values = raw.apply(pd.to_numeric, errors="coerce")
        bad = (values.isna() & raw.notna()).to_numpy()
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise InputError(
            f"{path}: non-numeric value {df.iloc[r, 4 + c]!r} for gene {df.iloc[r, 3]}, sample {samples[c]}"
        )
    inf = np.isinf(values.to_numpy(dtype=np.float64))
    if inf.any():
        r, c = np.argwhere(inf)[0]
        raise InputError(
            f"{path}: {int(inf.sum())} infinite values (first: gene {df.iloc[r, 3]}, sample {samples[c]}); "
            "fix the normalization that produced them (missing values may be NA)"
        )
    ids = df.iloc[:, 3].astype(str)
    dup_ids = ids[ids.duplicated()]
    if len(dup_ids):
        raise InputError(
            f"{path}: gene {dup_ids.iloc[0]} has {int((ids == dup_ids.iloc[0]).sum())} rows "
            f"({dup_ids.nunique()} genes repeated); keep one row per gene"
        )
    values.index = ids.to_numpy()
    values.columns = samples
    return values.astype(np.float64)


def missing_per_gene(expr: pd.DataFrame) -> dict[str, int]:
    """Genes with missing values (NaN/NA) and how many people each lacks, for the summary.

    Such people are left out of that gene's training and evaluation only.
    """
    n = expr.isna().sum(axis=1)
    return {str(g): int(k) for g, k in n.items() if k}


def match_expression(expr: pd.DataFrame, genes: pd.DataFrame, path) -> pd.DataFrame:
    """Rows of ``expr`` for each gene (matched by versioned id, id without version, or symbol).

    Returns
    -------
    pd.DataFrame, shape=(len(genes), n_samples), indexed by gene symbol.
    """
    key = {}
    for gid in expr.index:
        key.setdefault(gid, gid)
        key.setdefault(gid.split(".")[0], gid)
    rows, missing = [], []
    for _, g in genes.iterrows():
        hit = key.get(g["gene_id"]) or key.get(g["gene_id_base"]) or key.get(g["gene_name"])
        (rows if hit else missing).append(hit or g["gene_name"])
    if missing:
        raise InputError(
            f"{len(missing)} genes have no expression in {path} (first: {missing[0]}); "
            "drop them from --genes or prep without --expression"
        )
    out = expr.loc[rows]
    out.index = list(genes["gene_name"])
    return out
