"""Variant tables for the motif scan: reading a ``chrom, pos, ref, alt`` TSV, keeping SNVs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from core.errors import InputError
from variformer.analysis.motifs.matrices import BASES

__all__ = ["is_snv", "read_variant_table"]


def read_variant_table(path) -> pd.DataFrame:
    """A tab-separated variant table: ``chrom, pos`` (1-based), ``ref, alt``, optional ``gene``.

    Any other columns (an HSV table's ``model``, ``score``, ...) are kept. Gzip is fine.

    Raises
    ------
    InputError
        Missing file or columns.
    """
    from core.fileio import open_text

    path = Path(path)
    if not path.is_file():
        raise InputError(f"variant table not found: {path}")
    with open_text(path) as fh:
        df = pd.read_csv(fh, sep="\t", dtype={"chrom": str, "gene": str}, keep_default_na=False)
    df.columns = [str(c).lstrip("#").lower() for c in df.columns]
    missing = [c for c in ("chrom", "pos", "ref", "alt") if c not in df.columns]
    if missing:
        raise InputError(
            f"{path} lacks column(s) {', '.join(missing)}; a variant table needs "
            "tab-separated chrom, pos (1-based), ref, alt (and optionally gene)"
        )
    df["chrom"] = df["chrom"].astype(str)
    try:
        df["pos"] = pd.to_numeric(df["pos"]).astype(np.int64)
    except (ValueError, TypeError):
        raise InputError(f"{path}: column pos must hold integers (1-based positions)") from None
    return df


def is_snv(df: pd.DataFrame) -> np.ndarray:
    """Rows whose ``ref`` and ``alt`` are different single A/C/G/T bases, shape=(n,), bool."""
    ref, alt = df["ref"].astype(str).str.upper(), df["alt"].astype(str).str.upper()
    return (ref.isin(list(BASES)) & alt.isin(list(BASES)) & (ref != alt)).to_numpy()
