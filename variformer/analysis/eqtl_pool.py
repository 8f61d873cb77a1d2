"""Reading the pool of significant eQTLs (GTEx ``*.signif_variant_gene_pairs.txt.gz``).

The published FM-eQTL auROC (Methods, "auROC/auPR analysis") draws its negatives from the
eQTLs that are significant but not fine-mapped; this module reads that pool into variant keys of
the dataset's genes. :mod:`variformer.analysis.eqtl` chooses the negatives and scores them.
"""

from __future__ import annotations

import gzip

import pandas as pd

from core.errors import InputError
from data_prep.keys import KEY_COLUMNS, strip_chr

__all__ = ["EQTL_COLUMNS", "POOL_COLUMNS", "gene_names", "read_eqtls"]

#: The columns a GTEx v8 significant-pairs table has (only the first three are needed here).
POOL_COLUMNS = (
    "variant_id", "gene_id", "tss_distance", "ma_samples", "ma_count", "maf", "pval_nominal",
    "slope", "slope_se", "pval_nominal_threshold", "min_pval_nominal", "pval_beta",
)  # fmt: skip
#: What :func:`read_eqtls` returns: dataset gene, 1-based variant key, GTEx's TSS distance.
EQTL_COLUMNS = ("gene", *KEY_COLUMNS, "tss_distance")

_NEEDED = POOL_COLUMNS[:3]
# chrom_pos_ref_alt with an optional build suffix (GTEx v8: chr1_12345_A_G_b38); the contig
# may itself hold underscores (chrUn_KI270742v1), hence the lazy first group.
_VARIANT_ID = r"^(?P<chrom>.+?)_(?P<pos>[0-9]+)_(?P<ref>[ACGTN]+)_(?P<alt>[ACGTN]+)(?:_b[0-9]+)?$"


def gene_names(dataset) -> dict[str, str]:
    """Map gene names, versioned and unversioned Ensembl ids to the dataset's gene names."""
    genes = pd.read_csv(dataset.path / "genes.tsv", sep="\t", dtype=str)
    names = {g: g for g in genes["gene"]}
    for g, gid in zip(genes["gene"], genes["gene_id"]):
        names.setdefault(gid, g)
        names.setdefault(gid.split(".")[0], g)
    return names


def _read_table(path) -> pd.DataFrame:
    try:
        with open(path, "rb") as fh:
            gzipped = fh.read(2) == b"\x1f\x8b"
        return pd.read_csv(
            path,
            sep="\t",
            compression="gzip" if gzipped else None,
            usecols=lambda c: c in _NEEDED,
            dtype={"variant_id": str, "gene_id": str},
        )
    except (
        OSError, EOFError, UnicodeDecodeError, gzip.BadGzipFile, pd.errors.ParserError,
        pd.errors.EmptyDataError,
    ) as err:  # fmt: skip
        raise InputError(f"cannot read --eqtls {path}: {err}") from None


def read_eqtls(path, dataset) -> pd.DataFrame:
    """The significant eQTLs of the dataset's genes: :data:`EQTL_COLUMNS`.

    Parameters
    ----------
    path : str or Path
        A GTEx ``*.signif_variant_gene_pairs.txt.gz``-style table, tab-separated, gzip or
        plain, with at least ``variant_id`` (``chr1_12345_A_G_b38``: contig with or without
        ``chr``, 1-based position, REF, ALT, an optional build suffix), ``gene_id`` (Ensembl,
        with or without version, or a gene name) and ``tss_distance`` (integer; GTEx writes
        variant position minus TSS, not strand-corrected).
    dataset : data_prep.GeneDataset
        Genes are mapped to its names; rows of other genes are left out.

    Returns
    -------
    pd.DataFrame
        ``gene, chrom, pos, ref, alt, tss_distance``: ``chrom`` without ``chr``, ``pos``
        1-based int64, one row per (gene, variant), sorted by gene and position. Indels are
        kept here (they are simply never SNVs of a window).

    Raises
    ------
    InputError
        Unreadable file, a missing column, a malformed ``variant_id`` or a non-integer
        ``tss_distance`` (one line naming the file and an example).
    """
    df = _read_table(path)
    missing = [c for c in _NEEDED if c not in df.columns]
    if missing:
        raise InputError(
            f"--eqtls {path} lacks column(s) {', '.join(missing)}; expected a GTEx "
            f"signif_variant_gene_pairs table ({', '.join(POOL_COLUMNS)})"
        )
    df = df.dropna(how="all")
    keys = df["variant_id"].fillna("").str.extract(_VARIANT_ID)
    bad = keys["pos"].isna()
    if bad.any():
        raise InputError(
            f"--eqtls {path}: {int(bad.sum())} variant_id(s) not in chr_pos_ref_alt_b38 form, "
            f"e.g. {df.loc[bad, 'variant_id'].iloc[0]!r}"
        )
    dist = pd.to_numeric(df["tss_distance"], errors="coerce")
    bad = dist.isna() | (dist != dist.round())
    if bad.any():
        raise InputError(
            f"--eqtls {path}: {int(bad.sum())} tss_distance value(s) are not integers, "
            f"e.g. {df.loc[bad, 'tss_distance'].iloc[0]!r}"
        )
    names = gene_names(dataset)
    gene = df["gene_id"].fillna("").map(lambda g: names.get(g, names.get(g.split(".")[0])))
    out = pd.DataFrame(
        {
            "gene": gene,
            "chrom": keys["chrom"].map(strip_chr),
            "pos": keys["pos"],
            "ref": keys["ref"],
            "alt": keys["alt"],
            "tss_distance": dist,
        }
    ).dropna(subset=["gene"])
    out = out.astype({"pos": "int64", "tss_distance": "int64"})
    out = out.drop_duplicates(subset=["gene", *KEY_COLUMNS])
    return out.sort_values(["gene", "chrom", "pos", "ref", "alt"]).reset_index(drop=True)
