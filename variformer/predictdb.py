"""The PredictDB / MetaXcan model format: one SQLite file of SNP weights and one SNP covariance.

What S-PrediXcan (MetaXcan), SPrediXcan-style tools and PrediXcan read, as the published
PredictDB files (GTEx v7/v8 elastic-net models) write it:

- ``<name>.db``: SQLite with the tables

  ``weights(rsid TEXT, gene TEXT, weight DOUBLE, ref_allele CHARACTER, eff_allele CHARACTER,
  varID TEXT)``: one row per SNP of a gene's model, ``weight`` per dosage of ``eff_allele``;

  ``extra(gene TEXT, genename TEXT, "n.snps.in.model" INTEGER, "pred.perf.R2" DOUBLE,
  "pred.perf.pval" DOUBLE, "pred.perf.qval" DOUBLE)``: one row per gene;

  and the indexes ``weights_rsid``, ``weights_gene``, ``weights_rsid_gene`` and
  ``gene_model_summary`` (on ``extra(gene)``) that MetaXcan's readers expect.
- ``<name>.txt.gz``: the covariance, a header ``GENE RSID1 RSID2 VALUE`` and then one
  space-separated row per pair of a gene's model SNPs (each unordered pair once, the diagonal
  included, in the order of the gene's weights), gzip-compressed.

:func:`write_predictdb` writes both atomically; :func:`read_predictdb` and
:func:`read_covariance` are the validating readers (``variformer twas`` checks a db and its
covariance with them before any association is computed).
"""

from __future__ import annotations

import gzip
import io
import math
import os
import sqlite3
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from core.errors import InputError
from core.fileio import atomic_write_bytes

__all__ = [
    "EXTRA_COLUMNS",
    "SCHEMA",
    "WEIGHT_COLUMNS",
    "PredictDB",
    "covariance_rows",
    "read_covariance",
    "read_predictdb",
    "write_predictdb",
]

WEIGHT_COLUMNS = ("rsid", "gene", "weight", "ref_allele", "eff_allele", "varID")
EXTRA_COLUMNS = (
    "gene", "genename", "n.snps.in.model", "pred.perf.R2", "pred.perf.pval", "pred.perf.qval",
)  # fmt: skip
COVARIANCE_COLUMNS = ("GENE", "RSID1", "RSID2", "VALUE")

#: the statements that make an empty PredictDB file (names, types and indexes as published)
SCHEMA = (
    "CREATE TABLE weights (rsid TEXT, gene TEXT, weight DOUBLE, ref_allele CHARACTER, "
    "eff_allele CHARACTER, varID TEXT)",
    'CREATE TABLE extra (gene TEXT, genename TEXT, "n.snps.in.model" INTEGER, '
    '"pred.perf.R2" DOUBLE, "pred.perf.pval" DOUBLE, "pred.perf.qval" DOUBLE)',
    "CREATE INDEX weights_rsid ON weights (rsid)",
    "CREATE INDEX weights_gene ON weights (gene)",
    "CREATE INDEX weights_rsid_gene ON weights (rsid, gene)",
    "CREATE INDEX gene_model_summary ON extra (gene)",
)


class PredictDB(NamedTuple):
    """A PredictDB file read back: its two tables."""

    weights: pd.DataFrame  # WEIGHT_COLUMNS
    extra: pd.DataFrame  # EXTRA_COLUMNS


def _sql_value(v):
    """NaN is NULL in SQLite (PredictDB writes NA as NULL)."""
    if isinstance(v, float) and math.isnan(v):
        return None
    if isinstance(v, np.generic):
        return _sql_value(v.item())
    return v


def covariance_rows(gene: str, rsids, dosages: np.ndarray) -> list[tuple[str, str, str, float]]:
    """``(GENE, RSID1, RSID2, VALUE)`` for every pair ``i <= j`` of a gene's model SNPs.

    Parameters
    ----------
    gene : str
    rsids : sequence of str, length v
        The SNP ids in the gene's weights order.
    dosages : np.ndarray, shape=(n_people, v)
        ALT dosages of the people the covariance is estimated on; the sample covariance
        (denominator ``n - 1``, as R's ``cov`` that PredictDB uses).
    """
    x = np.asarray(dosages, dtype=np.float64)
    if x.shape[1] != len(rsids):
        raise ValueError(f"{len(rsids)} ids for {x.shape[1]} dosage columns")
    cov = (
        np.atleast_2d(np.cov(x, rowvar=False)) if len(x) > 1 else np.full((len(rsids),) * 2, np.nan)
    )
    i, j = np.triu_indices(len(rsids))
    return [(gene, rsids[a], rsids[b], float(cov[a, b])) for a, b in zip(i, j)]


def write_predictdb(
    out: str | os.PathLike,
    name: str,
    weights: pd.DataFrame,
    extra: pd.DataFrame,
    covariance: list[tuple[str, str, str, float]],
) -> tuple[Path, Path]:
    """Write ``out/<name>.db`` and ``out/<name>.txt.gz`` (each atomically); returns both paths.

    ``weights`` and ``extra`` have :data:`WEIGHT_COLUMNS` and :data:`EXTRA_COLUMNS`;
    ``covariance`` is :func:`covariance_rows` of every gene, genes contiguous.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    db, cov = out / f"{name}.db", out / f"{name}.txt.gz"
    tmp = out / f".{name}.db.partial"
    tmp.unlink(missing_ok=True)
    con = sqlite3.connect(tmp)
    try:
        for statement in SCHEMA:
            con.execute(statement)
        con.executemany(
            "INSERT INTO weights VALUES (?, ?, ?, ?, ?, ?)",
            [
                tuple(_sql_value(v) for v in row)
                for row in weights[list(WEIGHT_COLUMNS)].itertuples(index=False)
            ],
        )
        con.executemany(
            "INSERT INTO extra VALUES (?, ?, ?, ?, ?, ?)",
            [
                tuple(_sql_value(v) for v in row)
                for row in extra[list(EXTRA_COLUMNS)].itertuples(index=False)
            ],
        )
        con.commit()
    finally:
        con.close()
    text = io.StringIO()
    text.write(" ".join(COVARIANCE_COLUMNS) + "\n")
    for gene, a, b, value in covariance:
        text.write(f"{gene} {a} {b} {'NA' if math.isnan(value) else repr(value)}\n")
    # mtime=0: the same export gives the same bytes
    atomic_write_bytes(cov, gzip.compress(text.getvalue().encode(), compresslevel=6, mtime=0))
    os.replace(tmp, db)
    return db, cov


def read_predictdb(path: str | os.PathLike) -> PredictDB:
    """The two tables of a PredictDB file, checked: tables and columns present, one row per gene
    in ``extra``, one weight per SNP and gene, every weights gene in ``extra``.

    Raises
    ------
    InputError
        Not an SQLite file, a table or column missing, or a rule above broken (with what to do).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(
            f"{path} does not exist; give the .db that `variformer export predictdb` wrote"
        )
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            tables = {
                r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
            for table, columns in (("weights", WEIGHT_COLUMNS[:5]), ("extra", EXTRA_COLUMNS)):
                if table not in tables:
                    raise InputError(
                        f"{path} has no table '{table}'; it is not a PredictDB model file"
                    )
                have = {r[1] for r in con.execute(f"PRAGMA table_info({table})")}
                missing = [c for c in columns if c not in have]
                if missing:
                    raise InputError(
                        f"{path}: table '{table}' lacks column(s) {', '.join(missing)}; "
                        "it is not a PredictDB model file"
                    )
            weights = pd.read_sql_query("SELECT * FROM weights", con)
            extra = pd.read_sql_query("SELECT * FROM extra", con)
        finally:
            con.close()
    except sqlite3.DatabaseError as err:
        raise InputError(f"{path} is not an SQLite PredictDB file ({err})") from None
    dup = weights.duplicated(["gene", "rsid"])
    if dup.any():
        g, r = weights.loc[dup, ["gene", "rsid"]].iloc[0]
        raise InputError(f"{path}: SNP {r} has two weights in gene {g}; duplicate variant ids")
    if extra["gene"].duplicated().any():
        raise InputError(
            f"{path}: gene {extra.loc[extra['gene'].duplicated(), 'gene'].iloc[0]} has two rows in extra"
        )
    orphan = sorted(set(weights["gene"]) - set(extra["gene"]))
    if orphan:
        raise InputError(
            f"{path}: gene(s) {', '.join(orphan[:5])} have weights but no row in extra"
        )
    return PredictDB(weights, extra)


def read_covariance(path: str | os.PathLike) -> pd.DataFrame:
    """A covariance file (``GENE RSID1 RSID2 VALUE``), checked: header, numbers, one row per pair,
    each gene's rows together (MetaXcan reads a gene's rows as one block)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(
            f"{path} does not exist; give the .txt.gz that `variformer export predictdb` wrote"
        )
    try:
        cov = pd.read_csv(path, sep=r"\s+", dtype={"GENE": str, "RSID1": str, "RSID2": str})
    except (OSError, ValueError, EOFError) as err:
        raise InputError(f"{path} is not a readable covariance file ({err})") from None
    if list(cov.columns) != list(COVARIANCE_COLUMNS):
        raise InputError(
            f"{path} has columns {' '.join(map(str, cov.columns))}; expected {' '.join(COVARIANCE_COLUMNS)}"
        )
    cov["VALUE"] = pd.to_numeric(cov["VALUE"], errors="coerce")
    pairs = pd.DataFrame(
        {
            "GENE": cov["GENE"],
            "a": cov[["RSID1", "RSID2"]].min(axis=1),
            "b": cov[["RSID1", "RSID2"]].max(axis=1),
        }
    )
    if pairs.duplicated().any():
        row = cov.loc[pairs.duplicated()].iloc[0]
        raise InputError(
            f"{path}: the pair {row['RSID1']} {row['RSID2']} of {row['GENE']} appears twice"
        )
    starts = cov["GENE"].ne(cov["GENE"].shift())
    if cov.loc[starts, "GENE"].duplicated().any():
        gene = cov.loc[starts, "GENE"][cov.loc[starts, "GENE"].duplicated()].iloc[0]
        raise InputError(f"{path}: the rows of gene {gene} are not together; sort the file by gene")
    return cov
