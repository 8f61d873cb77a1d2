"""Expression matrices in and out: GCT/TSV genes x samples matrices, GTEx expression BEDs.

Input matrices are genes x samples, in GCT (``#1.2`` line, dimensions line, then
``Name  Description  <samples>``) or a TSV whose first column is the gene id; plain or gzipped.
Output BEDs follow GTEx (``#chr start end gene_id <samples>``; ``start`` is the 0-based TSS,
``end = start + 1``), bgzipped and tabix-indexed.
"""

from __future__ import annotations

import re
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pysam

from core.errors import InputError
from core.fileio import open_text

__all__ = ["gene_coordinates", "read_matrix", "write_expression_bed"]

_VERSION = re.compile(r"\.\d+(_PAR_Y)?$")


def read_matrix(path, *, samples: list[str] | None = None) -> pd.DataFrame:
    """Read a genes x samples expression matrix from GCT or TSV (plain or gzipped).

    Parameters
    ----------
    path : str or Path
        GCT (``#1.2``, dimensions line, ``Name  Description  <samples>``) or TSV whose first
        column is the gene id and the other columns are samples.
    samples : list of str, optional
        Keep only these samples, in this order.

    Returns
    -------
    pd.DataFrame, shape=(n_genes, n_samples)
        float64 values; index = gene ids (str), columns = sample ids (str).

    Raises
    ------
    InputError
        Missing file, requested samples absent, or non-numeric values.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"expression matrix not found: {path}")
    try:
        with open_text(path) as fh:
            is_gct = fh.readline().startswith("#1.")
        with open_text(path) as fh:
            df = pd.read_csv(fh, sep="\t", index_col=0, skiprows=2 if is_gct else 0)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        msg = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise InputError(f"cannot read {path} as a tab-separated matrix: {msg}") from None
    if len(df.columns) and str(df.columns[0]).lower() == "description":
        df = df.drop(columns=df.columns[0])
    df.index = df.index.astype(str).rename("gene_id")
    df.columns = df.columns.astype(str).rename(None)
    if df.shape[1] == 0 or df.shape[0] == 0:
        raise InputError(f"{path} holds no samples or no genes; expected genes x samples")
    if samples is not None:
        missing = [s for s in samples if s not in df.columns]
        if missing:
            raise InputError(
                f"{len(missing)} requested sample(s) not in {path.name}: {', '.join(missing[:5])}"
                + (" ..." if len(missing) > 5 else "")
            )
        df = df[list(samples)]
    for col in df.columns:
        if pd.api.types.is_numeric_dtype(df[col]):
            continue
        coerced = pd.to_numeric(df[col], errors="coerce")
        bad = coerced.isna() & df[col].notna()
        if bad.any():
            gene = bad.index[bad.to_numpy()][0]
            raise InputError(
                f"{path.name}: non-numeric value {df[col][bad].iloc[0]!r} for gene {gene}, sample {col}"
            )
        df[col] = coerced
    numeric = df.astype(np.float64)
    return numeric


def _chrom_key(chrom: str) -> tuple[int, int, str]:
    name = re.sub(r"^chr", "", chrom, flags=re.IGNORECASE)
    if name.isdigit():
        return (0, int(name), "")
    order = {"X": 1, "Y": 2, "M": 3, "MT": 3}
    return (order.get(name.upper(), 4), 0, name)


def gene_coordinates(gene_ids, annotation: pd.DataFrame) -> pd.DataFrame:
    """Look up chromosome and 0-based TSS for expression gene ids.

    An id matches the annotation's versioned ``gene_id`` first, then ``gene_id_base`` (the id
    with its version stripped), then a unique ``gene_name``.

    Parameters
    ----------
    gene_ids : sequence of str
        Gene ids as in the expression matrix.
    annotation : pd.DataFrame
        As returned by :func:`data_prep.annotation.read_annotation`.

    Returns
    -------
    pd.DataFrame
        Indexed by the found gene ids (input order), columns ``chrom`` and ``tss0`` (0-based).
    """
    lookup: dict[str, tuple[str, int]] = {}
    names = annotation["gene_name"].value_counts()
    unique_names = set(names.index[names == 1])
    # later assignments win, so the most specific key is written last
    for name, base, gid, chrom, tss0 in zip(
        annotation["gene_name"],
        annotation["gene_id_base"],
        annotation["gene_id"],
        annotation["chrom"],
        annotation["tss0"],
    ):
        if name in unique_names:
            lookup.setdefault(f"name:{name}", (str(chrom), int(tss0)))
        lookup.setdefault(f"base:{base}", (str(chrom), int(tss0)))
        lookup[f"id:{gid}"] = (str(chrom), int(tss0))
    rows = {}
    for g in gene_ids:
        g = str(g)
        base = _VERSION.sub("", g)
        hit = lookup.get(f"id:{g}") or lookup.get(f"base:{base}") or lookup.get(f"name:{g}")
        if hit is not None:
            rows[g] = hit
    out = pd.DataFrame.from_dict(rows, orient="index", columns=["chrom", "tss0"])
    out["tss0"] = out["tss0"].astype(np.int64)
    return out


def write_expression_bed(df: pd.DataFrame, genes: pd.DataFrame, path) -> list[str]:
    """Write a genes x samples matrix as a bgzipped, tabix-indexed GTEx expression BED.

    Columns are ``#chr start end gene_id <samples>`` with ``start = tss0`` (0-based) and
    ``end = tss0 + 1``, sorted by chromosome (1..22, X, Y, M, others) then start, with its
    ``.tbi`` beside it. Write into a private directory (:func:`core.fileio.atomic_dir`,
    as :func:`data_prep.normalize.normalize_files` does) to publish the pair atomically.

    Parameters
    ----------
    df : pd.DataFrame, shape=(n_genes, n_samples)
        Expression values; index = gene ids.
    genes : pd.DataFrame
        Gene annotation from :func:`data_prep.annotation.read_annotation`.
    path : str or Path
        Output path, ending in ``.bed.gz``; overwritten if present.

    Returns
    -------
    list of str
        Gene ids dropped because the annotation lacks them (a warning is issued if any).

    Raises
    ------
    InputError
        If no gene of ``df`` is in the annotation.
    """
    path = Path(path)
    coords = gene_coordinates(df.index, genes)
    dropped = [str(g) for g in df.index if str(g) not in coords.index]
    if dropped:
        warnings.warn(
            f"{len(dropped)} of {len(df)} genes are not in the annotation and were dropped "
            f"(e.g. {', '.join(dropped[:3])})",
            stacklevel=2,
        )
    if coords.empty:
        raise InputError(
            "none of the expression genes is in the annotation; check the gene ids and GTF"
        )
    values = df.loc[coords.index]
    values.index = values.index.astype(str)
    bed = pd.DataFrame(
        {
            "#chr": coords["chrom"].to_numpy(),
            "start": coords["tss0"].to_numpy(),
            "end": coords["tss0"].to_numpy() + 1,
            "gene_id": coords.index.to_numpy(),
        }
    )
    bed = pd.concat([bed, values.reset_index(drop=True)], axis=1)
    order = sorted(
        range(len(bed)), key=lambda i: (_chrom_key(bed["#chr"].iat[i]), bed["start"].iat[i])
    )
    bed = bed.iloc[order]
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="variformer-bed-") as tmp:
        plain = Path(tmp) / "expression.bed"
        bed.to_csv(plain, sep="\t", index=False, float_format="%.6g")
        pysam.tabix_compress(str(plain), str(path), force=True)
    # zerobased: BED starts are 0-based (tabix otherwise assumes 1-based starts)
    pysam.tabix_index(
        str(path), seq_col=0, start_col=1, end_col=2, meta_char="#", zerobased=True, force=True
    )
    return dropped
