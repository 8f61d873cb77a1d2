"""Who goes into a dataset: the VCF's people, narrowed by a samples file or by expression."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

from core.errors import InputError
from data_prep.cohort import Cohort
from data_prep.expression import match_expression, read_expression_bed
from data_prep.listfile import read_list

__all__ = ["People", "select_people"]


class People(NamedTuple):
    """Who is in the dataset, and what was left out."""

    samples: list[str]  # dataset order
    sample_index: np.ndarray  # shape=(n,), int64: columns of the cohort's samples
    expression: pd.DataFrame | None  # genes x samples, rows in the selected genes' order
    test_samples: list[str] | None
    dropped: dict  # people left out, by reason (reported, never silent)


def select_people(
    cohort: Cohort, selected: pd.DataFrame, *, expression, samples_file, test_samples_file
) -> People:
    """The dataset's people and their expression (genes x people, in ``selected``'s gene order).

    Without ``samples_file``: everyone genotyped, or with ``expression`` everyone who has both
    genotypes and expression (in VCF order); people left out are counted by reason.
    """
    expr_all = read_expression_bed(expression) if expression is not None else None
    samples = _select_samples(cohort.samples, samples_file=samples_file, expression=expr_all)
    kept = set(samples)
    dropped = {
        "genotyped_without_expression": sum(s not in kept for s in cohort.samples)
        if samples_file is None
        else 0,
        "expression_without_genotypes": 0
        if expr_all is None
        else sum(s not in set(cohort.samples) for s in expr_all.columns),
    }
    position: dict[str, int] = {}
    for i, s in enumerate(cohort.samples):
        position.setdefault(s, i)  # the first occurrence, as list.index gave
    sample_index = np.asarray([position[s] for s in samples], dtype=np.int64)
    expr = (
        match_expression(expr_all, selected, expression)[samples] if expr_all is not None else None
    )
    test_samples = (
        read_list(test_samples_file, what="test samples", unique=True)
        if test_samples_file
        else None
    )
    return People(samples, sample_index, expr, test_samples, dropped)


def _select_samples(cohort_samples, *, samples_file, expression) -> list[str]:
    vcf_set = set(cohort_samples)
    if samples_file is not None:
        wanted = read_list(samples_file, what="samples", unique=True)
        missing = [s for s in wanted if s not in vcf_set]
        if missing:
            raise InputError(
                f"{len(missing)} samples from {samples_file} are not in the VCF (first: {missing[0]})"
            )
        if expression is not None:
            no_expr = [s for s in wanted if s not in set(expression.columns)]
            if no_expr:
                raise InputError(
                    f"{len(no_expr)} samples from {samples_file} have no expression column (first: {no_expr[0]})"
                )
        return wanted
    if expression is None:
        return list(cohort_samples)
    expr_set = set(expression.columns)
    chosen = [s for s in cohort_samples if s in expr_set]
    if not chosen:
        raise InputError(
            "no sample id is both in the VCF and in the expression file "
            f"(VCF: {cohort_samples[0]} ..., expression: {expression.columns[0]} ...); check the id format"
        )
    return chosen
