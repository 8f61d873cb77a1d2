"""``variformer normalize``: TPM + read counts -> GTEx-normalized expression BED.

Follows the GTEx eQTL pipeline (broadinstitute/gtex-pipeline, ``qtl/src/eqtl_prepare_expression.py``
and ``rnaseqnorm.py``), which the paper used for ROSMAP so that it matches the GTEx v8 tissue files:

1. keep genes with TPM >= 0.1 in >= 20% of samples AND >= 6 reads in >= 20% of samples;
2. TMM-normalize the read counts as ``edgeR::calcNormFactors(method="TMM")`` and convert to CPM with
   the effective library sizes (factors computed on all genes, as GTEx does);
3. inverse normal transform each kept gene across samples.

It also writes ``log2(TPM + 2)`` of the same kept genes (not rank-transformed), used for the
reference-genome and average-expression experiments.

Input matrices are genes x samples, in GCT (``#1.2`` line, dimensions line, then
``Name  Description  <samples>``) or a TSV whose first column is the gene id; plain or gzipped.
Outputs are GTEx-style BED files (``#chr start end gene_id <samples>``; ``start`` is the 0-based
TSS, ``end = start + 1``), bgzipped and tabix-indexed.
"""

from __future__ import annotations

import argparse
import gzip
import os
import re
import sys
import tempfile
import warnings
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import pysam
from scipy import stats

from data_prep.listfile import read_list
from variformer.errors import InputError

OUTPUT_SUFFIXES = (".normalized_expression.bed.gz", ".log2tpm.bed.gz")
_VERSION = re.compile(r"\.\d+(_PAR_Y)?$")


class NormalizedExpression(NamedTuple):
    """Result of :func:`normalize_expression`; both frames are genes x samples."""

    normalized: pd.DataFrame  # TMM -> CPM -> inverse normal transform, kept genes only
    log2tpm: pd.DataFrame  # log2(TPM + 2), same genes and samples
    kept: list[str]  # ids of the genes that passed the filters, in input order


# --------------------------------------------------------------------------------------------
# normalization (pure functions)
# --------------------------------------------------------------------------------------------


def _upper_quartile_factors(counts: np.ndarray) -> np.ndarray:
    # R's quantile(type=7) == numpy's default linear interpolation
    return np.percentile(counts, 75, axis=0) / counts.sum(axis=0)


def _tmm_factor(
    obs: np.ndarray, ref: np.ndarray, *, logratio_trim: float, sum_trim: float
) -> float:
    """One sample's un-scaled TMM factor against the reference (edgeR ``.calcFactorTMM``)."""
    n_obs, n_ref = obs.sum(), ref.sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        log_r = np.log2((obs / n_obs) / (ref / n_ref))
        abs_e = (np.log2(obs / n_obs) + np.log2(ref / n_ref)) / 2
        var = (n_obs - obs) / n_obs / obs + (n_ref - ref) / n_ref / ref
    finite = np.isfinite(log_r) & np.isfinite(abs_e)
    log_r, abs_e, var = log_r[finite], abs_e[finite], var[finite]
    if log_r.size == 0 or np.max(np.abs(log_r)) < 1e-6:
        return 1.0
    n = log_r.size
    lo_l = np.floor(n * logratio_trim) + 1
    hi_l = n + 1 - lo_l
    lo_s = np.floor(n * sum_trim) + 1
    hi_s = n + 1 - lo_s
    rank_r = stats.rankdata(log_r)
    rank_e = stats.rankdata(abs_e)
    keep = (rank_r >= lo_l) & (rank_r <= hi_l) & (rank_e >= lo_s) & (rank_e <= hi_s)
    # precision weights: 1 / asymptotic variance of the log ratio (edgeR divides by v)
    f = np.sum(log_r[keep] / var[keep]) / np.sum(1 / var[keep])
    return float(2**f) if np.isfinite(f) else 1.0


def tmm_factors(counts, *, logratio_trim: float = 0.3, sum_trim: float = 0.05) -> np.ndarray:
    """TMM normalization factors, as ``edgeR::calcNormFactors(method="TMM")``.

    The reference sample is the one whose upper-quartile factor is closest to the mean
    upper-quartile factor; each sample's log ratios against it are trimmed (``logratio_trim``
    each side by M value, ``sum_trim`` each side by A value) and averaged with precision weights.
    Factors are scaled to a geometric mean of 1.

    Parameters
    ----------
    counts : np.ndarray or pd.DataFrame, shape=(n_genes, n_samples)
        Non-negative read counts, genes in rows (the GCT orientation).
    logratio_trim, sum_trim : float
        Fractions trimmed from each end of the M and A value distributions.

    Returns
    -------
    np.ndarray, shape=(n_samples,)
        Normalization factors; effective library size = column sum x factor.

    Raises
    ------
    InputError
        If a count is negative or not finite, or a sample has no reads.

    References
    ----------
    Robinson & Oshlack (2010), Genome Biology 11:R25.
    """
    y = np.asarray(counts, dtype=np.float64)
    if y.ndim != 2:
        raise InputError(f"counts must be a genes x samples matrix, got {y.ndim} dimensions")
    if not np.all(np.isfinite(y)) or np.any(y < 0):
        raise InputError("read counts must be finite and non-negative")
    lib_size = y.sum(axis=0)
    if np.any(lib_size <= 0):
        raise InputError(f"{int(np.sum(lib_size <= 0))} sample(s) have no reads; remove them")
    y = y[(y > 0).any(axis=1)]  # edgeR drops genes with zero counts in every sample
    f75 = _upper_quartile_factors(y)
    if np.median(f75) < 1e-20:
        # edgeR >= 3.38: with mostly-zero upper quartiles pick the sample with most sqrt-counts
        ref_index = int(np.argmax(np.sqrt(y).sum(axis=0)))
    else:
        ref_index = int(np.argmin(np.abs(f75 - f75.mean())))
    ref = y[:, ref_index]
    f = np.array(
        [
            _tmm_factor(y[:, j], ref, logratio_trim=logratio_trim, sum_trim=sum_trim)
            for j in range(y.shape[1])
        ]
    )
    return f / np.exp(np.mean(np.log(f)))


def inverse_normal_transform(X) -> np.ndarray:
    """Rank-based inverse normal transform of each row: ``norm.ppf(rank / (n + 1))``.

    Parameters
    ----------
    X : np.ndarray or pd.DataFrame, shape=(n_genes, n_samples)
        Values to transform; each gene (row) is transformed across samples.

    Returns
    -------
    np.ndarray, shape=(n_genes, n_samples)
        Standard-normal scores; tied values get the score of their average rank.
    """
    x = np.asarray(X, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"X must be 2-dimensional, got shape {x.shape}")
    ranks = stats.rankdata(x, axis=1, method="average")
    return stats.norm.ppf(ranks / (x.shape[1] + 1))


def expression_filter(
    tpm: pd.DataFrame,
    counts: pd.DataFrame,
    *,
    min_tpm: float = 0.1,
    min_counts: float = 6,
    min_fraction: float = 0.2,
) -> np.ndarray:
    """GTEx expression filter: boolean mask over genes (rows) of both matrices.

    A gene passes with ``TPM >= min_tpm`` in at least ``min_fraction`` of samples and
    ``counts >= min_counts`` in at least ``min_fraction`` of samples.

    Parameters
    ----------
    tpm, counts : pd.DataFrame, shape=(n_genes, n_samples)
        Aligned matrices (same index and columns).

    Returns
    -------
    np.ndarray of bool, shape=(n_genes,)
    """
    n = tpm.shape[1]
    need = min_fraction * n
    by_tpm = (tpm.to_numpy() >= min_tpm).sum(axis=1) >= need
    by_counts = (counts.to_numpy() >= min_counts).sum(axis=1) >= need
    return by_tpm & by_counts


def normalize_expression(
    tpm: pd.DataFrame,
    counts: pd.DataFrame,
    *,
    min_tpm: float = 0.1,
    min_counts: float = 6,
    min_fraction: float = 0.2,
) -> NormalizedExpression:
    """Filter, TMM-normalize and inverse-normal-transform expression the GTEx way.

    Parameters
    ----------
    tpm, counts : pd.DataFrame, shape=(n_genes, n_samples)
        TPM and read counts; index = gene ids, columns = sample ids. Both must hold the same
        genes and samples (order may differ; the TPM order is used).
    min_tpm, min_counts, min_fraction : float
        Filter thresholds (see :func:`expression_filter`).

    Returns
    -------
    NormalizedExpression
        ``normalized`` and ``log2tpm`` (kept genes x samples) and the ``kept`` gene ids.

    Raises
    ------
    InputError
        If the matrices disagree, hold negative or non-finite values, or no gene passes.
    """
    tpm, counts = _align(tpm, counts)
    for name, frame in (("TPM", tpm), ("read counts", counts)):
        values = frame.to_numpy(dtype=np.float64)
        if not np.all(np.isfinite(values)):
            raise InputError(
                f"{name} matrix has missing or non-finite values; fill or drop those genes"
            )
        if np.any(values < 0):
            gene = frame.index[(values < 0).any(axis=1)][0]
            raise InputError(
                f"{name} matrix has negative values (first: gene {gene}); expected raw {name}"
            )
    mask = expression_filter(
        tpm, counts, min_tpm=min_tpm, min_counts=min_counts, min_fraction=min_fraction
    )
    if not mask.any():
        raise InputError(
            f"no gene passes TPM >= {min_tpm} and counts >= {min_counts} in >= {min_fraction:.0%} of "
            "samples; check the inputs or lower the thresholds"
        )
    counts_np = counts.to_numpy(dtype=np.float64)
    # GTEx computes TMM on all genes, then keeps the filtered rows of the CPM matrix
    effective_lib = counts_np.sum(axis=0) * tmm_factors(counts_np)
    cpm = counts_np[mask] / effective_lib * 1e6
    kept = tpm.index[mask]
    normalized = pd.DataFrame(inverse_normal_transform(cpm), index=kept, columns=tpm.columns)
    log2tpm = np.log2(tpm.loc[kept].astype(np.float64) + 2.0)
    return NormalizedExpression(normalized, log2tpm, [str(g) for g in kept])


def _align(tpm: pd.DataFrame, counts: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    for name, frame in (("TPM", tpm), ("read counts", counts)):
        if frame.index.has_duplicates:
            dup = frame.index[frame.index.duplicated()][0]
            raise InputError(f"{name} matrix lists gene {dup} more than once; make gene ids unique")
        if frame.columns.has_duplicates:
            dup = frame.columns[frame.columns.duplicated()][0]
            raise InputError(
                f"{name} matrix lists sample {dup} more than once; make sample ids unique"
            )
    for what, t_ids, c_ids, fix in (
        ("samples", tpm.columns, counts.columns, "use --samples"),
        ("genes", tpm.index, counts.index, "use matrices from one run"),
    ):
        if set(t_ids) != set(c_ids):
            only_t, only_c = sorted(set(t_ids) - set(c_ids)), sorted(set(c_ids) - set(t_ids))
            raise InputError(
                f"{what} differ between the TPM and count matrices ({len(only_t)} only in TPM, e.g. "
                f"{only_t[:3]}; {len(only_c)} only in counts, e.g. {only_c[:3]}); {fix}"
            )
    return tpm, counts.loc[tpm.index, tpm.columns]


# --------------------------------------------------------------------------------------------
# reading matrices
# --------------------------------------------------------------------------------------------


def _open_text(path: Path):
    with open(path, "rb") as fh:
        gz = fh.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rt") if gz else open(path)


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
        with _open_text(path) as fh:
            is_gct = fh.readline().startswith("#1.")
        with _open_text(path) as fh:
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


# --------------------------------------------------------------------------------------------
# writing BED
# --------------------------------------------------------------------------------------------


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
    ``end = tss0 + 1``, sorted by chromosome (1..22, X, Y, M, others) then start. The file is
    written next to ``path`` under a temporary name and renamed into place with its ``.tbi``.

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
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=f".{path.name}.") as tmp:
        plain = Path(tmp) / "expression.bed"
        bed.to_csv(plain, sep="\t", index=False, float_format="%.6g")
        packed = Path(tmp) / path.name
        pysam.tabix_compress(str(plain), str(packed), force=True)
        # zerobased: BED starts are 0-based (tabix otherwise assumes 1-based starts)
        pysam.tabix_index(
            str(packed),
            seq_col=0,
            start_col=1,
            end_col=2,
            meta_char="#",
            zerobased=True,
            force=True,
        )
        os.replace(packed, path)
        os.replace(f"{packed}.tbi", f"{path}.tbi")
    return dropped


# --------------------------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``variformer normalize``."""
    parser.add_argument(
        "--tpm", required=True, help="TPM matrix, genes x samples (GCT or TSV, may be gzipped)"
    )
    parser.add_argument("--counts", required=True, help="read-count matrix, same genes and samples")
    parser.add_argument(
        "--annotation", required=True, help="GENCODE GTF (gene records give the TSS)"
    )
    parser.add_argument(
        "--out",
        required=True,
        help="output prefix: writes PREFIX.normalized_expression.bed.gz and PREFIX.log2tpm.bed.gz",
    )
    parser.add_argument(
        "--samples", help="file with sample ids (one per line) to keep, in this order"
    )
    parser.add_argument("--min-tpm", type=float, default=0.1, help="TPM threshold (default 0.1)")
    parser.add_argument(
        "--min-counts", type=float, default=6, help="read-count threshold (default 6)"
    )
    parser.add_argument(
        "--min-fraction",
        type=float,
        default=0.2,
        help="fraction of samples that must pass both thresholds (default 0.2)",
    )
    parser.add_argument("--force", action="store_true", help="overwrite existing outputs")


def main(args: argparse.Namespace) -> int:
    """Run ``variformer normalize``; returns the exit status."""
    from data_prep.annotation import read_annotation

    if not 0 < args.min_fraction <= 1:
        raise InputError(f"--min-fraction must be in (0, 1], got {args.min_fraction}")
    prefix = Path(args.out)
    outputs = [Path(f"{prefix}{suffix}") for suffix in OUTPUT_SUFFIXES]
    existing = [p for p in outputs + [Path(f"{p}.tbi") for p in outputs] if p.exists()]
    if existing and not args.force:
        raise InputError(f"{existing[0]} exists; pass --force to overwrite or choose another --out")
    for name in ("tpm", "counts", "annotation"):
        if not Path(getattr(args, name)).is_file():
            raise InputError(f"--{name} file not found: {getattr(args, name)}")

    samples = read_list(args.samples, what="samples", unique=True) if args.samples else None
    tpm = read_matrix(args.tpm, samples=samples)
    counts = read_matrix(args.counts, samples=samples)
    annotation = read_annotation(args.annotation)
    result = normalize_expression(
        tpm,
        counts,
        min_tpm=args.min_tpm,
        min_counts=args.min_counts,
        min_fraction=args.min_fraction,
    )

    prefix.parent.mkdir(parents=True, exist_ok=True)
    # everything is written into a temporary sibling directory, then renamed into place
    with tempfile.TemporaryDirectory(dir=prefix.parent, prefix=f".{prefix.name}.normalize.") as tmp:
        staged = [Path(tmp) / p.name for p in outputs]
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            dropped = write_expression_bed(result.normalized, annotation, staged[0])
        missing = set(dropped)
        written = [g for g in result.kept if g not in missing]
        write_expression_bed(result.log2tpm.loc[written], annotation, staged[1])
        for src, dst in zip(staged, outputs):
            os.replace(src, dst)
            os.replace(f"{src}.tbi", f"{dst}.tbi")
    for w in caught:
        print(f"variformer normalize: warning: {w.message}", file=sys.stderr)
    print(
        f"{len(tpm)} genes x {tpm.shape[1]} samples in; {len(result.kept)} pass the expression filter; "
        f"{len(written)} written to {outputs[0]} and {outputs[1]}"
    )
    return 0
