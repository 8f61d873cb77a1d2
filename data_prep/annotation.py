"""Gene annotations: GENCODE GTF gene records or a simple TSS table -> one row per gene.

The TSS is strand-aware and 0-based: ``tss0 = start1 - 1`` on the + strand (the gene's first
base) and ``tss0 = end1 - 1`` on the - strand (its last base), GTF coordinates being 1-based
and inclusive.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable

import numpy as np
import pandas as pd

from core.errors import InputError
from core.fileio import open_text

COLUMNS = [
    "gene_name",
    "gene_id",
    "gene_id_base",
    "gene_type",
    "chrom",
    "start1",
    "end1",
    "strand",
    "tss0",
]
_ATTR = re.compile(r'(\S+)\s+"([^"]*)"')


def read_annotation(path) -> pd.DataFrame:
    """Read genes from a GENCODE GTF (``.gtf`` / ``.gtf.gz``) or a simple TSS table.

    Parameters
    ----------
    path : str or Path
        A GTF (only ``gene`` records are used; attributes ``gene_id``, ``gene_name`` and
        ``gene_type`` or ``gene_biotype``), or a tab-separated table with a header holding
        ``gene_name, gene_id, chrom, tss, strand`` (``tss`` 1-based) and optionally ``gene_type``.

    Returns
    -------
    pd.DataFrame
        One row per gene with columns ``gene_name, gene_id (as given, may carry a version),
        gene_id_base (version stripped), gene_type, chrom, start1, end1 (1-based inclusive),
        strand, tss0 (0-based)``.

    Raises
    ------
    InputError
        If the file is missing or is neither a GTF nor a TSS table.
    """
    try:
        fh = open_text(path)
    except FileNotFoundError:
        raise InputError(f"annotation file not found: {path}") from None
    with fh:
        first = ""
        for line in fh:
            if not line.startswith("#") and line.strip():
                first = line
                break
        fh.seek(0)
        fields = first.rstrip("\n").split("\t")
        if len(fields) == 9:
            genes = _read_gtf(fh, path)
        elif {"gene_name", "gene_id", "chrom", "tss", "strand"} <= set(fields):
            genes = _read_tss_table(fh, path)
        else:
            raise InputError(
                f"{path} is neither a GTF (9 tab-separated columns) nor a TSS table "
                "(header: gene_name gene_id chrom tss strand); pass a GENCODE GTF"
            )
    if genes.empty:
        raise InputError(f"no gene records found in {path}; is it a GENCODE GTF with 'gene' lines?")
    return genes


def _read_gtf(fh, path) -> pd.DataFrame:
    rows = []
    seen: dict[str, tuple[int, str]] = {}  # gene_id -> (line number, line)
    for lineno, line in enumerate(fh, 1):
        if line.startswith("#"):
            continue
        parts = line.rstrip("\n").split("\t")
        if len(parts) != 9:
            if line.strip():
                raise InputError(
                    f"{path}:{lineno}: malformed GTF line ({len(parts)} columns, need 9)"
                )
            continue
        if parts[2] != "gene":
            continue
        attrs = dict(_ATTR.findall(parts[8]))
        if "gene_id" not in attrs:
            raise InputError(f"{path}:{lineno}: gene record without a gene_id attribute")
        first = seen.setdefault(attrs["gene_id"], (lineno, line))
        if first[0] != lineno:
            same = "is an exact duplicate of" if first[1] == line else "repeats the gene_id of"
            raise InputError(
                f"{path}:{lineno}: the gene record of {attrs['gene_id']} {same} line {first[0]}; "
                "keep one gene record per gene_id"
            )
        rows.append(
            (
                attrs.get("gene_name", attrs["gene_id"]),
                attrs["gene_id"],
                attrs.get("gene_type", attrs.get("gene_biotype", "unknown")),
                parts[0],
                int(parts[3]),
                int(parts[4]),
                parts[6],
            )
        )
    df = pd.DataFrame(
        rows, columns=["gene_name", "gene_id", "gene_type", "chrom", "start1", "end1", "strand"]
    )
    return _finish(df, path)


def _read_tss_table(fh, path) -> pd.DataFrame:
    df = pd.read_csv(fh, sep="\t", dtype={"chrom": str, "gene_id": str, "gene_name": str})
    df["start1"] = df["tss"].astype(np.int64)
    df["end1"] = df["tss"].astype(np.int64)
    if "gene_type" not in df:
        df["gene_type"] = "protein_coding"
    dup = df["gene_id"][df["gene_id"].duplicated()]
    if len(dup):
        raise InputError(f"{path}: gene_id {dup.iloc[0]} has several rows; keep one row per gene")
    return _finish(
        df[["gene_name", "gene_id", "gene_type", "chrom", "start1", "end1", "strand"]], path
    )


def _finish(df: pd.DataFrame, path) -> pd.DataFrame:
    bad = ~df["strand"].isin(["+", "-"])
    if bad.any():
        raise InputError(
            f"{path}: gene {df.loc[bad, 'gene_name'].iloc[0]} has strand {df.loc[bad, 'strand'].iloc[0]!r}; need + or -"
        )
    df = df.copy()
    df["gene_id_base"] = df["gene_id"].str.replace(r"\.\d+(_PAR_Y)?$", "", regex=True)
    df["tss0"] = np.where(df["strand"] == "+", df["start1"] - 1, df["end1"] - 1).astype(np.int64)
    return df[COLUMNS].reset_index(drop=True)


def resolve_genes(annotation: pd.DataFrame, names: Iterable[str]) -> pd.DataFrame:
    """Select genes by symbol or Ensembl id (with or without version), in the order given.

    Parameters
    ----------
    annotation : pd.DataFrame
        As returned by :func:`read_annotation`.
    names : iterable of str
        Gene symbols (``BTNL3``), Ensembl ids (``ENSG00000171462``) or versioned ids
        (``ENSG00000171462.14``).

    Returns
    -------
    pd.DataFrame
        The matching annotation rows, one per requested gene, duplicates removed.

    Raises
    ------
    InputError
        For an unknown gene (close symbols are suggested) or a name that names several genes.
        A GENCODE chrY PAR copy (gene id ending ``_PAR_Y``) never makes a name ambiguous: the
        chrX copy is picked, as GTEx does (ask for ``<id>_PAR_Y`` to get the chrY copy).
    """
    by_key: dict[str, list[int]] = {}
    for i, (sym, gid, base) in enumerate(
        zip(annotation["gene_name"], annotation["gene_id"], annotation["gene_id_base"])
    ):
        for key in {sym, gid, base}:
            by_key.setdefault(key, []).append(i)
    picked: list[int] = []
    for name in names:
        name = name.strip()
        hits = by_key.get(name) or by_key.get(re.sub(r"\.\d+$", "", name))
        if not hits:
            close = difflib.get_close_matches(name, list(annotation["gene_name"]), n=3)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise InputError(f"gene {name!r} is not in the annotation{hint}")
        if len(hits) > 1:  # GENCODE's chrY PAR copies (<id>_PAR_Y): the chrX copy, as GTEx uses
            not_par_y = [i for i in hits if not annotation["gene_id"].iloc[i].endswith("_PAR_Y")]
            hits = not_par_y or hits
        if len(hits) > 1:
            ids = ", ".join(annotation["gene_id"].iloc[hits])
            what = "gene id" if re.match(r"ENS[A-Z]*G\d", name) else "gene symbol"
            raise InputError(
                f"{what} {name!r} names several genes ({ids}); give the versioned Ensembl id instead"
            )
        if hits[0] not in picked:
            picked.append(hits[0])
    return annotation.iloc[picked].reset_index(drop=True)


def drop_close_tss(
    genes: pd.DataFrame, annotation: pd.DataFrame, *, within: int = 64
) -> tuple[pd.DataFrame, list[str]]:
    """Drop genes whose TSS lies within ``within`` bp of another annotated gene's TSS.

    The paper drops these because two TSSs would share one 128-bp Enformer output bin.

    Returns
    -------
    kept : pd.DataFrame
        The rows of ``genes`` that pass.
    dropped : list of str
        Symbols of the dropped genes.
    """
    keep = []
    for _, g in genes.iterrows():
        same = annotation[
            (annotation["chrom"] == g["chrom"]) & (annotation["gene_id"] != g["gene_id"])
        ]
        keep.append(not (np.abs(same["tss0"].to_numpy() - g["tss0"]) <= within).any())
    keep_arr = np.array(keep, dtype=bool)
    return genes[keep_arr].reset_index(drop=True), list(genes.loc[~keep_arr, "gene_name"])
