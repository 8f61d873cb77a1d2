"""A gene's linear model refitted on every person, for weight exports (PredictDB / TWAS).

Layout, beside the cross-validation folds of :mod:`baselines.run`::

    BL/<model>/<gene>/all/
        coefficients.tsv    chrom, pos (1-based), id, ref, alt, coef (:data:`core.tables.COEFFICIENTS`,
                            one row per dataset SNV of the window, 0 where dropped)
        summary.json        kind "baseline", fold "all", gene, model, n_train, n_snvs, n_nonzero,
                            alpha, intercept, options, provenance
        config.yaml         the fitting options
        inputs.json         dataset fingerprints, gene, fold "all", options (resume check)

Written in ``all.partial/`` and renamed when complete. It has no held-out people, hence no
predictions and no metrics; :func:`core.runs.find_runs` leaves it out, so ``summary.tsv``,
``evaluate``, ``analyze`` and ``select-genes`` see exactly the folds they saw before.
:func:`read_all_people` is the one reader.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from baselines.elastic_net import fit_linear_all
from core.errors import InputError
from core.fileio import output_lock
from core.manifest import record_inputs
from core.runs import (
    ALL_PEOPLE,
    SUMMARY,
    open_partial,
    plan_run,
    provenance,
    publish_run,
    read_run,
    run_path,
    write_config,
    write_summary,
)
from core.tables import COEFFICIENTS, read_coefficients, write_table

__all__ = ["AllPeopleModel", "fit_all_people", "read_all_people"]

COEFFICIENTS_TSV = "coefficients.tsv"


class AllPeopleModel(NamedTuple):
    """A published fit on all people (:func:`read_all_people`)."""

    coefficients: pd.DataFrame  # chrom, pos (1-based), id, ref, alt, coef
    intercept: float  # prediction = intercept + dosages @ coef
    alpha: float
    n_train: int
    summary: dict  # summary.json


def fit_all_people(
    dataset, ds, gene: str, root: Path, options: dict, force: bool, inputs: dict
) -> dict[str, Any]:
    """Fit ``gene`` on every person with expression and publish ``root/<gene>/all/``.

    Parameters
    ----------
    dataset : path or GeneDataset
        What provenance records (a path is fingerprinted).
    ds : GeneDataset
        The opened dataset.
    gene : str
    root : Path
        ``BL/<model>``.
    options : dict
        :func:`baselines.run.fit_options` (``model`` and the fitting options).
    force : bool
        Replace a published fit.
    inputs : dict
        :func:`baselines.run.fit_inputs` of this fit, recorded for the resume check.

    Returns
    -------
    dict
        ``gene, fold ("all"), model, n_train, n_snvs, n_nonzero, alpha, intercept``.
    """
    started = time.perf_counter()
    fit = fit_linear_all(ds, gene, **options)
    variants = ds.variants(gene)
    paths = plan_run(root, gene, ALL_PEOPLE, force=force)
    paths.final.parent.mkdir(parents=True, exist_ok=True)
    with output_lock(paths.final):  # one writer at a time (concurrent SLURM tasks)
        work = open_partial(paths)
        coefficients = variants[["chrom", "pos", "id", "ref", "alt"]].assign(
            coef=fit.coefficients.to_numpy() + 0.0  # + 0.0: no "-0.0" in the file
        )
        write_table(coefficients, work / COEFFICIENTS_TSV, COEFFICIENTS)
        write_config(work, options)
        record_inputs(work, inputs)
        row = {
            "gene": gene,
            "fold": ALL_PEOPLE,
            "model": fit.model,
            "n_train": fit.n_train,
            "n_snvs": len(fit.coefficients),
            "n_nonzero": int(np.count_nonzero(fit.coefficients.to_numpy())),
            "alpha": fit.alpha,
            "intercept": fit.intercept,
        }
        summary = {
            "kind": "baseline",
            "name": gene,
            **row,
            "options": options,
            "wall_time_s": round(time.perf_counter() - started, 4),
            **provenance({"dataset": dataset} if isinstance(dataset, (str, os.PathLike)) else {}),
        }
        write_summary(work, summary)
        publish_run(paths, force=force)
    return row


def read_all_people(root: str | os.PathLike, gene: str) -> AllPeopleModel:
    """Read the fit of ``gene`` on all people under ``root`` (``BL/<model>``).

    Raises
    ------
    InputError
        None published (run ``variformer baselines --all-people``), or one that breaks the
        coefficients schema.
    """
    path = run_path(root, gene, ALL_PEOPLE)
    if not (path / SUMMARY).is_file():
        raise InputError(
            f"no fit of {gene} on all people at {path}; run `variformer baselines --all-people`"
        )
    run = read_run(path)
    s = run.summary
    coefficients = read_coefficients(path / COEFFICIENTS_TSV)
    alpha = float("nan") if s.get("alpha") is None else float(s["alpha"])
    return AllPeopleModel(coefficients, float(s["intercept"]), alpha, int(s["n_train"]), s)
