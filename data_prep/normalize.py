"""TPM + read counts -> GTEx-normalized expression (``variformer normalize``).

Follows the GTEx eQTL pipeline (broadinstitute/gtex-pipeline, ``qtl/src/eqtl_prepare_expression.py``
and ``rnaseqnorm.py``), which the paper used for ROSMAP so that it matches the GTEx v8 tissue files:

1. keep genes with TPM >= 0.1 in >= 20% of samples AND >= 6 reads in >= 20% of samples;
2. TMM-normalize the read counts as ``edgeR::calcNormFactors(method="TMM")`` and convert to CPM with
   the effective library sizes (factors computed on all genes, as GTEx does);
3. inverse normal transform each kept gene across samples.

It also writes ``log2(TPM + 2)`` of the same kept genes (not rank-transformed), used for the
reference-genome and average-expression experiments.

The pure functions work on genes x samples frames; :func:`normalize_files` is the file-to-file
workflow (GCT/TSV matrices in, a directory of GTEx-style BEDs out; see :mod:`data_prep.matrix_io`).
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy import stats

from core.errors import InputError
from data_prep.tmm import tmm_factors

__all__ = [
    "OUTPUT_NAMES",
    "NormalizeSummary",
    "NormalizedExpression",
    "expression_filter",
    "inverse_normal_transform",
    "normalize_expression",
    "normalize_files",
]

# the files normalize_files writes into its output directory (each with a .tbi index)
OUTPUT_NAMES = ("normalized_expression.bed.gz", "log2tpm.bed.gz")


class NormalizedExpression(NamedTuple):
    """Result of :func:`normalize_expression`; both frames are genes x samples."""

    normalized: pd.DataFrame  # TMM -> CPM -> inverse normal transform, kept genes only
    log2tpm: pd.DataFrame  # log2(TPM + 2), same genes and samples
    kept: list[str]  # ids of the genes that passed the filters, in input order


# --------------------------------------------------------------------------------------------
# normalization (pure functions)
# --------------------------------------------------------------------------------------------


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
        If the matrices disagree, hold negative or non-finite values, the read counts look
        like TPM (the two tables swapped), or no gene passes.
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
    _check_not_swapped(tpm, counts)
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


def _check_not_swapped(tpm: pd.DataFrame, counts: pd.DataFrame) -> None:
    """Refuse read counts that are TPM (every sample sums to 1e6, not whole numbers).

    TPM columns sum to one million by definition; read counts sum to the library size and are
    whole numbers (or fractional expected counts summing to millions of reads, which pass).
    """

    def per_million(x: np.ndarray) -> bool:
        sums = x.sum(axis=0)
        return bool(len(sums)) and bool(np.all(np.abs(sums - 1e6) <= 0.01 * 1e6))

    def whole(x: np.ndarray) -> bool:
        return bool(np.all(np.abs(x - np.round(x)) < 1e-6))

    c, t = counts.to_numpy(dtype=np.float64), tpm.to_numpy(dtype=np.float64)
    if per_million(c) and not whole(c):
        also = " and the TPM matrix holds whole numbers" if whole(t) and not per_million(t) else ""
        raise InputError(
            "the read-count matrix looks like TPM (every sample sums to 1e6, values are not "
            f"whole numbers){also}; were the TPM and read-count files swapped? Give TPM as "
            "--tpm and read counts as --counts"
        )


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


class NormalizeSummary(NamedTuple):
    """What :func:`normalize_files` wrote.

    Attributes
    ----------
    out : Path
        The output directory.
    normalized, log2tpm : Path
        ``out / "normalized_expression.bed.gz"`` and ``out / "log2tpm.bed.gz"`` (each + ``.tbi``).
    n_genes, n_samples : int
        Size of the input matrices (after ``samples_file``).
    n_kept : int
        Genes that pass the expression filter.
    n_written : int
        Of those, genes written (the others are not in the annotation).
    not_in_annotation : list of str
        Kept gene ids left out because the annotation lacks them.
    """

    out: Path
    normalized: Path
    log2tpm: Path
    n_genes: int
    n_samples: int
    n_kept: int
    n_written: int
    not_in_annotation: list


def normalize_files(
    tpm,
    counts,
    annotation,
    out,
    *,
    samples_file=None,
    min_tpm: float = 0.1,
    min_counts: float = 6,
    min_fraction: float = 0.2,
    force: bool = False,
) -> NormalizeSummary:
    """Normalize a TPM and a read-count matrix the GTEx way and write the BEDs into ``out``.

    Parameters
    ----------
    tpm, counts : path
        Genes x samples matrices (GCT or TSV, plain or gzipped; see
        :func:`data_prep.matrix_io.read_matrix`) with the same genes and samples.
    annotation : path
        GENCODE GTF (gene records give chromosome and TSS).
    out : path
        Output directory to create: ``normalized_expression.bed.gz`` and ``log2tpm.bed.gz``,
        each with its ``.tbi``. Built privately and renamed into place when complete.
    samples_file : path, optional
        Sample ids to keep, one per line, in this order.
    min_tpm, min_counts, min_fraction : float
        Filter thresholds (see :func:`expression_filter`).
    force : bool
        Replace an existing ``out``.

    Returns
    -------
    NormalizeSummary

    Raises
    ------
    InputError
        Bad thresholds, missing or unreadable inputs, disagreeing matrices, no gene passing the
        filters, or ``out`` existing without ``force``; nothing is written then. Genes missing
        from the annotation are dropped with a :class:`UserWarning` (and listed in the summary).
    """
    from core.fileio import atomic_dir
    from data_prep.annotation import read_annotation
    from data_prep.listfile import read_list
    from data_prep.matrix_io import read_matrix, write_expression_bed

    if not 0 < min_fraction <= 1:
        raise InputError(f"--min-fraction must be in (0, 1], got {min_fraction}")
    out = Path(out)
    if (out.exists() or out.is_symlink()) and not force:
        raise InputError(f"{out} already exists; pass --force to overwrite it")
    for name, path in (("tpm", tpm), ("counts", counts), ("annotation", annotation)):
        if not Path(path).is_file():
            raise InputError(f"--{name} file not found: {path}")
    samples = read_list(samples_file, what="samples", unique=True) if samples_file else None
    tpm_df = read_matrix(tpm, samples=samples)
    counts_df = read_matrix(counts, samples=samples)
    genes = read_annotation(annotation)
    result = normalize_expression(
        tpm_df, counts_df, min_tpm=min_tpm, min_counts=min_counts, min_fraction=min_fraction
    )
    with atomic_dir(out, force=force) as tmp:
        dropped = write_expression_bed(result.normalized, genes, tmp / OUTPUT_NAMES[0])  # warns
        written = [g for g in result.kept if g not in set(dropped)]
        write_expression_bed(result.log2tpm.loc[written], genes, tmp / OUTPUT_NAMES[1])
    n_genes, n_samples = tpm_df.shape
    paths = [out / name for name in OUTPUT_NAMES]
    return NormalizeSummary(
        out, *paths, n_genes, n_samples, len(result.kept), len(written), dropped
    )
