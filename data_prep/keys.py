"""Variant keys: the one way analyses join tables about the same SNV.

A key is ``(chrom, pos, ref, alt)`` with ``pos`` 1-based (as in VCF and ``ds.variants``); its
string form is ``chrom:pos:ref:alt``. ISM tables, baseline coefficients, truth and fine-mapping
tables are joined on it, so no analysis needs to import the module that wrote a table.
"""

from __future__ import annotations

import pandas as pd

__all__ = [
    "KEY_COLUMNS",
    "gtex_variant_id",
    "gtex_variant_ids",
    "normalize_keys",
    "strip_chr",
    "variant_keys",
]

KEY_COLUMNS = ("chrom", "pos", "ref", "alt")


def normalize_keys(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``df`` with key columns typed for joins: chrom/ref/alt str, pos int64 (1-based)."""
    out = df.copy()
    for c in ("chrom", "ref", "alt"):
        out[c] = out[c].astype(str)
    out["pos"] = out["pos"].astype("int64")
    return out


def variant_keys(df: pd.DataFrame) -> list[str]:
    """``chrom:pos:ref:alt`` strings (``pos`` 1-based) for the rows of ``df``."""
    return [
        f"{c}:{int(p)}:{r}:{a}" for c, p, r, a in zip(df["chrom"], df["pos"], df["ref"], df["alt"])
    ]


def strip_chr(chrom) -> str:
    """Contig name without a leading ``chr`` (GTEx tables write ``5`` where a VCF has ``chr5``)."""
    return str(chrom).removeprefix("chr")


def gtex_variant_id(chrom, pos1: int, ref: str, alt: str, *, build: str = "b38") -> str:
    """GTEx v8 variant id ``chr<N>_<pos1>_<ref>_<alt>_b38`` (``chr`` added once if missing)."""
    return f"chr{strip_chr(chrom)}_{int(pos1)}_{ref}_{alt}_{build}"


def gtex_variant_ids(df: pd.DataFrame, *, build: str = "b38") -> list[str]:
    """GTEx-style variant ids ``chr<N>_<pos>_<ref>_<alt>_b38`` (``pos`` 1-based) for ``df``'s rows.

    The contig gets one ``chr`` prefix whether or not it has one (``5`` and ``chr5`` both give
    ``chr5_...``), as GTEx v8 and the PredictDB ``varID`` column write it.
    """
    return [
        gtex_variant_id(c, p, r, a, build=build)
        for c, p, r, a in zip(df["chrom"], df["pos"], df["ref"], df["alt"])
    ]
