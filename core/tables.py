"""Every table the toolkit writes and reads back: one schema and one validating reader each.

As scikit-learn has one ``check_array``, a table is checked once, here, whoever reads it:
columns present, text columns read as text (a sample or gene called ``NA`` stays ``NA``),
numeric columns numeric, and the columns that must hold numbers finite (a NaN or inf is
refused with the file, the row and the column). Writers validate too and publish atomically.

======================  ===============================================  ======================
schema                  columns                                          written by
======================  ===============================================  ======================
:data:`PREDICTIONS`     sample, gene, split, observed, predicted         finetune, baselines,
                        (``fold`` optional)                              evaluate
:data:`COEFFICIENTS`    chrom, pos (1-based), id, ref, alt, coef         baselines
:data:`ISM`             gene, fold, chrom, pos (1-based), id, ref, alt,  ism
                        maf, tss_distance, score
:data:`BASELINE_SUMMARY` gene, fold, model, test_r2, test_pcc, n_train,  baselines
                        n_test, n_snvs, n_nonzero
:data:`GWAS`            variant_id, rsid, effect_allele,                 simulate (gwas.tsv)
                        non_effect_allele, zscore, pvalue, sample_size
:data:`IMPUTED`         model, fold, gene, sample, predicted             predict
:data:`COVERAGE`        model, fold, gene, n_model_snvs, n_found,        predict
                        fraction_found
======================  ===============================================  ======================
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd

from core.errors import InputError
from core.fileio import atomic_write_text

__all__ = [
    "BASELINE_SUMMARY",
    "COEFFICIENTS",
    "COVERAGE",
    "GWAS",
    "IMPUTED",
    "ISM",
    "PREDICTIONS",
    "SPLITS",
    "VARIANT_EFFECTS",
    "Schema",
    "empty_predictions",
    "empty_table",
    "predictions_table",
    "read_coefficients",
    "read_gwas",
    "read_ism",
    "read_predictions",
    "read_table",
    "read_variant_effects",
    "validate_predictions",
    "validate_table",
    "write_predictions",
    "write_table",
]

#: the people of a fold
SPLITS = ("train", "tune", "test")
#: what a numeric column may hold for "missing" (only where the schema allows missing values)
_NA_TOKENS = ["", "NA", "NaN", "nan"]


class Schema(NamedTuple):
    """A table's contract.

    Attributes
    ----------
    what : str
        Its name in messages ("predictions", "ISM table", ...).
    columns : tuple of str
        Required columns, in the order written.
    text : tuple of str
        Columns read as text, never as numbers or missing values.
    numeric : tuple of str
        Columns that must be numeric: NaN allowed (unless also in ``finite``), never inf.
    finite : tuple of str
        Numeric columns whose every value must be a finite number.
    integer : tuple of str
        Numeric columns that must hold whole numbers (read as int64).
    optional : tuple of str
        Columns kept when present (after the required ones), e.g. ``fold`` of predictions.
    unique : tuple of str
        Columns that identify a row (with the optional columns present); a repeat is refused.
    levels : tuple of (column, allowed values)
        Text columns that take one of a few values.
    """

    what: str
    columns: tuple[str, ...]
    text: tuple[str, ...] = ()
    numeric: tuple[str, ...] = ()
    finite: tuple[str, ...] = ()
    integer: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()
    unique: tuple[str, ...] = ()
    levels: tuple[tuple[str, tuple[str, ...]], ...] = ()


PREDICTIONS = Schema(
    "predictions",
    ("sample", "gene", "split", "observed", "predicted"),
    text=("sample", "gene", "split"),
    finite=("observed", "predicted"),
    integer=("fold",),
    optional=("fold",),
    unique=("sample", "gene", "split"),
    levels=(("split", SPLITS),),
)
COEFFICIENTS = Schema(
    "coefficients",
    ("chrom", "pos", "id", "ref", "alt", "coef"),
    text=("chrom", "id", "ref", "alt"),
    finite=("pos", "coef"),
    integer=("pos",),
)
ISM = Schema(
    "ISM table",
    ("gene", "fold", "chrom", "pos", "id", "ref", "alt", "maf", "tss_distance", "score"),
    text=("gene", "chrom", "id", "ref", "alt"),
    finite=("fold", "pos", "maf", "tss_distance", "score"),
    integer=("fold", "pos", "tss_distance"),
)
#: ``variformer score-variants`` (variformer.analysis.variant_effects)
VARIANT_EFFECTS = Schema(
    "variant effects table",
    ("gene", "fold", "chrom", "pos", "id", "ref", "alt", "kind", "tss_distance",
     "effect_reference", "effect_background", "background_applied"),
    text=("gene", "chrom", "id", "ref", "alt", "kind", "background_applied"),
    numeric=("effect_background",),  # NA without --background, or not placeable there
    finite=("fold", "pos", "tss_distance", "effect_reference"),
    integer=("fold", "pos", "tss_distance"),
    levels=(("kind", ("snv", "mnp", "insertion", "deletion", "complex")),),
)  # fmt: skip
BASELINE_SUMMARY = Schema(
    "baseline summary",
    ("gene", "fold", "model", "test_r2", "test_pcc", "n_train", "n_test", "n_snvs", "n_nonzero"),
    text=("gene", "model"),
    numeric=("test_r2", "test_pcc"),  # NA where a fit's predictions are constant
    finite=("fold", "n_train", "n_test", "n_snvs", "n_nonzero"),
    integer=("fold", "n_train", "n_test", "n_snvs", "n_nonzero"),
    unique=("gene", "fold", "model"),
)
#: GWAS summary statistics (``variformer simulate``'s ``gwas.tsv``, S-PrediXcan's input
#: layout): ``variant_id`` GTEx style ``chr<N>_<pos1>_<ref>_<alt>_b38``, ``rsid`` the VCF ID
#: (``.`` when none), effect allele = ALT
GWAS = Schema(
    "GWAS summary statistics",
    ("variant_id", "rsid", "effect_allele", "non_effect_allele", "zscore", "pvalue", "sample_size"),
    text=("variant_id", "rsid", "effect_allele", "non_effect_allele"),
    finite=("zscore", "pvalue", "sample_size"),
    integer=("sample_size",),
    unique=("variant_id",),
)

#: ``variformer predict``: one row per model, fold, gene and person of a genotype-only cohort
IMPUTED = Schema(
    "imputed expression",
    ("model", "fold", "gene", "sample", "predicted"),
    text=("model", "gene", "sample"),
    finite=("fold", "predicted"),
    integer=("fold",),
    unique=("model", "fold", "gene", "sample"),
)
#: ``variformer predict``: how many of a model's SNVs the new cohort's VCFs have
COVERAGE = Schema(
    "coverage table",
    ("model", "fold", "gene", "n_model_snvs", "n_found", "fraction_found"),
    text=("model", "gene"),
    numeric=("fraction_found",),  # NA for a model without SNVs
    finite=("fold", "n_model_snvs", "n_found"),
    integer=("fold", "n_model_snvs", "n_found"),
    unique=("model", "fold", "gene"),
)


def _numeric(schema: Schema) -> tuple[str, ...]:
    return tuple(dict.fromkeys((*schema.numeric, *schema.finite, *schema.integer)))


def _nan_allowed(schema: Schema) -> Schema:
    """``schema`` with its finite columns relaxed to numeric (NaN allowed, inf still not)."""
    return schema._replace(numeric=(*schema.numeric, *schema.finite), finite=())


def empty_table(columns: Sequence[str]) -> pd.DataFrame:
    """A table with these columns (e.g. ``ISM.columns``) and no rows."""
    return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})


def validate_table(
    frame: pd.DataFrame, schema: Schema, *, where: str | None = None
) -> pd.DataFrame:
    """Check ``frame`` against ``schema``; returns its columns in schema order, typed.

    Raises
    ------
    InputError
        A missing column, a non-numeric value in a numeric column, a missing or infinite
        value where the schema wants finite numbers, a fraction in an integer column, or a
        repeated row key (each message names the table, the row and the column).
    """
    where = where or schema.what
    missing = [c for c in schema.columns if c not in frame.columns]
    if missing:
        raise InputError(
            f"{where} lacks the column(s) {', '.join(missing)}; {schema.what} has "
            f"{', '.join(schema.columns)}"
        )
    present = [c for c in schema.optional if c in frame.columns and c not in schema.columns]
    out = frame[[*schema.columns, *present]].copy()
    for column in (c for c in _numeric(schema) if c in out.columns):
        out[column] = _checked_numbers(out[column], column, schema, where)
    for column, levels in schema.levels:
        unknown = sorted(set(out[column].astype(str)) - set(levels))
        if unknown:
            raise InputError(
                f"{where}: unknown {column} {unknown[0]!r}; {column} is one of {', '.join(levels)}"
            )
    if schema.unique:
        key = [*schema.unique, *present]
        dup = out.duplicated(key)
        if dup.any():
            row = out[dup].iloc[0]
            what = ", ".join(f"{c} {row[c]}" for c in key)
            raise InputError(f"{where}: the row with {what} occurs twice")
    return out


def _checked_numbers(values: pd.Series, column: str, schema: Schema, where: str) -> pd.Series:
    """``values`` as float64 (int64 for an integer column without missing values), checked."""
    if pd.api.types.is_bool_dtype(values) or not pd.api.types.is_numeric_dtype(values):
        parsed = pd.to_numeric(values, errors="coerce")
        bad = parsed.isna() & values.notna() & ~values.astype(str).isin(_NA_TOKENS)
        if pd.api.types.is_bool_dtype(values):
            bad = pd.Series(True, index=values.index)
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise InputError(
                f"{where}: column {column} is not numeric (row {row + 1}: {values.iloc[row]!r})"
            )
        values = parsed
    array = values.to_numpy(dtype=np.float64)
    # NaN may stand for "undefined" where the schema allows it; infinity never is a result
    bad = ~np.isfinite(array) if column in schema.finite else np.isinf(array)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise InputError(
            f"{where}: column {column} holds {array[row]} in row {row + 1} "
            f"({int(bad.sum())} such row(s)); its values must be finite numbers"
        )
    if column in schema.integer:
        finite = np.isfinite(array)
        if (array[finite] != np.round(array[finite])).any():
            row = int(np.flatnonzero(finite & (array != np.round(array)))[0])
            raise InputError(
                f"{where}: column {column} holds {array[row]} in row {row + 1}; "
                "it takes whole numbers"
            )
        if finite.all():
            return values.astype(np.int64)
    # a float column keeps its width: float32 scores are written as float32 prints them
    # (casting to float64 would write every float32 rounding error as extra digits)
    return values if pd.api.types.is_float_dtype(values) else values.astype(np.float64)


def read_table(path: str | os.PathLike, schema: Schema) -> pd.DataFrame:
    """Read a tab-separated table and check it (:func:`validate_table`).

    Text columns are read as text (``NA``, ``nan`` and ``.`` stay strings); numeric columns
    take ``""``, ``NA`` and ``NaN`` as missing, which :func:`validate_table` refuses where the
    schema wants finite numbers.

    Raises
    ------
    InputError
        No such file, not a table, or a table that breaks the schema.
    """
    na = dict.fromkeys(_numeric(schema), _NA_TOKENS)
    dtype = dict.fromkeys(schema.text, str)
    try:
        frame = pd.read_csv(path, sep="\t", dtype=dtype, keep_default_na=False, na_values=na)
    except FileNotFoundError:
        raise InputError(f"no {schema.what} at {path}") from None
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise InputError(f"{path} is not a tab-separated {schema.what}: {err}") from None
    return validate_table(frame, schema, where=str(path))


def write_table(
    frame: pd.DataFrame, path: str | os.PathLike, schema: Schema, *, check_finite: bool = True
) -> None:
    """Check ``frame`` and write it as TSV at full precision (values read back bit-exact).

    ``check_finite=False`` writes NaN as ``NA`` (the reader still refuses it where the schema
    wants finite numbers): for an output whose NaN is itself the finding, e.g. a diverged
    model's predictions.
    """
    checked = schema if check_finite else _nan_allowed(schema)
    frame = validate_table(frame, checked)
    atomic_write_text(path, frame.to_csv(sep="\t", index=False, na_rep="NA"))


# ---------------------------------------------------------------- predictions


def predictions_table(
    sample: Sequence[str],
    *,
    gene: str | Sequence[str],
    split: str | Sequence[str],
    observed: Sequence[float],
    predicted: Sequence[float],
) -> pd.DataFrame:
    """Build a predictions table (columns of :data:`PREDICTIONS`).

    Parameters
    ----------
    sample : sequence of str, length n
    gene, split : str or sequence of str
        One value for every row, or one per row.
    observed, predicted : array-like, shape=(n,)

    Returns
    -------
    pd.DataFrame
        n rows; ``observed`` and ``predicted`` float64.
    """
    n = len(sample)
    frame = pd.DataFrame(
        {
            "sample": pd.Series(list(sample), dtype=object),
            "gene": [gene] * n if isinstance(gene, str) else list(gene),
            "split": [split] * n if isinstance(split, str) else list(split),
            "observed": np.asarray(observed, dtype=np.float64).reshape(-1),
            "predicted": np.asarray(predicted, dtype=np.float64).reshape(-1),
        },
        columns=list(PREDICTIONS.columns),
    )
    return frame.astype({"gene": object, "split": object})


def empty_predictions() -> pd.DataFrame:
    """A predictions table with no rows (the schema's columns and dtypes)."""
    return predictions_table([], gene=[], split=[], observed=[], predicted=[])


def validate_predictions(frame: pd.DataFrame, *, where: str = "predictions") -> pd.DataFrame:
    """Check a predictions table, finite values not required (see :func:`validate_table`)."""
    return validate_table(frame, _nan_allowed(PREDICTIONS), where=where).astype(
        {"observed": np.float64, "predicted": np.float64}
    )


def read_predictions(path: str | os.PathLike) -> pd.DataFrame:
    """Read one ``predictions.tsv`` (:data:`PREDICTIONS`; ``fold`` kept when present)."""
    return read_table(path, PREDICTIONS).astype({"observed": np.float64, "predicted": np.float64})


def write_predictions(frame: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write a predictions table (a diverged model's NaN is written, and refused on read)."""
    write_table(frame, path, PREDICTIONS, check_finite=False)


def read_coefficients(path: str | os.PathLike) -> pd.DataFrame:
    """Read one gene-fold's ``coefficients.tsv`` (:data:`COEFFICIENTS`)."""
    return read_table(path, COEFFICIENTS)


def read_gwas(path: str | os.PathLike) -> pd.DataFrame:
    """Read GWAS summary statistics (:data:`GWAS`)."""
    return read_table(path, GWAS)


def read_ism(path: str | os.PathLike) -> pd.DataFrame:
    """Read one ISM table (:data:`ISM`)."""
    return read_table(path, ISM)


def read_variant_effects(path: str | os.PathLike) -> pd.DataFrame:
    """Read one variant effects table (:data:`VARIANT_EFFECTS`)."""
    return read_table(path, VARIANT_EFFECTS)
