"""``variformer baselines``: linear models for many genes and folds, written as runs.

Layout (the run-directory contract of :mod:`core.runs`, one run per gene and fold)::

    BL/<model>/summary.tsv                  gene, fold, model, test_r2, test_pcc, n_train,
                                            n_test, n_snvs, n_nonzero (every published fit)
    BL/<model>/<gene>/fold<k>/
        predictions.tsv                     sample, gene, split, observed, predicted (tune, test)
        coefficients.tsv                    chrom, pos (1-based), id, ref, alt, coef: one row per
                                            dataset SNV of the window, 0 where dropped (with
                                            ``indels``: per allele, indels and MNPs too)
        summary.json                        kind "baseline", metrics, alpha, intercept, provenance
        config.yaml                         the fitting options
    BL/<model>/<gene>/all/                  with ``all_people``: the same model fitted on every
                                            person (:mod:`baselines.all_people`; not in
                                            summary.tsv, not evaluated)

Each gene-fold is written in ``fold<k>.partial/`` and renamed when complete, so a killed run
leaves nothing that looks finished; a re-run skips the published gene-folds (``force``
refits them). Genes run in parallel with joblib (``jobs``); SLURM arrays run disjoint gene
chunks of the same command (``variformer slurm baselines``). ``summary.tsv`` is rebuilt from
every published gene-fold at the end of each run, under a lock.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from baselines.all_people import AllPeopleModel, fit_all_people, read_all_people
from baselines.dosage_columns import dosage_columns
from baselines.elastic_net import MODELS, check_linear_options, fit_linear
from baselines.penalized import PATIENCE
from core.errors import InputError
from core.fileio import output_lock
from core.manifest import check_inputs, dataset_fingerprints, record_inputs
from core.metrics import pcc, r2
from core.runs import (
    ALL_PEOPLE,
    SUMMARY,
    find_runs,
    open_partial,
    plan_run,
    provenance,
    publish_run,
    run_path,
    write_config,
    write_summary,
)
from core.tables import (
    BASELINE_SUMMARY,
    COEFFICIENTS,
    read_table,
    write_predictions,
    write_table,
)

__all__ = [
    "ALL_PEOPLE",
    "COEFFICIENTS_TSV",
    "COEFFICIENT_COLUMNS",
    "SUMMARY_COLUMNS",
    "SUMMARY_TSV",
    "AllPeopleModel",
    "BaselineRun",
    "fit_inputs",
    "fit_options",
    "read_all_people",
    "read_summary",
    "run_baselines",
    "summarize",
]

#: columns of ``BL/<model>/summary.tsv`` and of each gene-fold's ``coefficients.tsv``
#: (the schemas :data:`core.tables.BASELINE_SUMMARY` and :data:`core.tables.COEFFICIENTS`)
SUMMARY_COLUMNS = BASELINE_SUMMARY.columns
COEFFICIENT_COLUMNS = COEFFICIENTS.columns
SUMMARY_TSV = "summary.tsv"
COEFFICIENTS_TSV = "coefficients.tsv"


class BaselineRun(NamedTuple):
    """What :func:`run_baselines` did."""

    root: Path  # BL/<model>
    summary: pd.DataFrame  # summary.tsv: every published gene-fold under root
    # gene-folds fitted by this call / already published (resumed past); fold "all" is a fit
    # on all people (``all_people``)
    fitted: list[tuple[str, int | str]]
    skipped: list[tuple[str, int | str]]


def _open(dataset):
    from data_prep import open_dataset

    return open_dataset(dataset) if isinstance(dataset, (str, os.PathLike)) else dataset


def _picklable(dataset):
    """What a joblib worker receives: the dataset's path, or the (picklable) object itself."""
    if isinstance(dataset, (str, os.PathLike)):
        return os.fspath(dataset)
    path = getattr(dataset, "path", None)
    return os.fspath(path) if isinstance(path, (str, os.PathLike)) else dataset


def check_indels(ds, indels: bool) -> None:
    """Refuse ``indels`` on an SNV dataset (it has none) in one line (InputError)."""
    if indels and not getattr(ds, "haplotype_mode", False):
        raise InputError(
            f"--indels: {getattr(ds, 'path', 'the dataset')} is an SNV dataset (no indels); "
            "prep it with `variformer prep --haplotypes`, or drop --indels"
        )


def fit_options(
    model: str = "elastic_net",
    *,
    l1_ratio: float = 0.5,
    cv: int = 5,
    seed: int = 0,
    engine: str = "gram",
    patience: int | None = PATIENCE,
    indels: bool = False,
) -> dict:
    """The options a gene-fold's fit is made with, as its ``inputs.json`` records them.

    ``indels`` (every allele of a haplotype dataset a dosage column) is recorded as
    ``"indels": true`` only when set, so fits made before the option keep their record and a
    rerun with the other choice is refused as any other option change is."""
    options = {
        "model": model,
        "l1_ratio": l1_ratio,
        "cv": cv,
        "seed": seed,
        "engine": engine,
        "patience": patience or 0,
    }
    return {**options, "indels": True} if indels else options


def fit_inputs(fingerprints, gene: str, fold: int | str, options: dict) -> dict:
    """What a gene-fold's fit is made from (:func:`core.manifest.record_inputs`): dataset
    fingerprints, gene, fold (or ``"all"``) and :func:`fit_options`."""
    fold = ALL_PEOPLE if fold == ALL_PEOPLE else int(fold)
    return {"dataset": fingerprints, "genes": [gene], "fold": fold, "config": options}


def _fit_gene(
    dataset,
    gene: str,
    folds: Sequence[int | str],
    root: Path,
    options: dict,
    force: bool,
    fingerprints: dict | None,
) -> list[dict]:
    """Fit and publish every fold of one gene (one joblib task); returns their summary rows."""
    # the coefficient rows are the fit's columns (SNVs only unless options say indels)
    ds = dosage_columns(_open(dataset), indels=options.get("indels", False))
    variants = ds.variants(gene)
    rows = []
    for fold in folds:
        if not force and (run_path(root, gene, fold) / SUMMARY).is_file():
            continue  # published meanwhile (e.g. by a concurrent SLURM task)
        if fold == ALL_PEOPLE:
            inputs = fit_inputs(fingerprints, gene, fold, options)
            rows.append(fit_all_people(dataset, ds, gene, root, options, force, inputs))
            continue
        started = time.perf_counter()
        fit = fit_linear(ds, gene, fold, **options)
        paths = plan_run(root, gene, fold, force=force)
        paths.final.parent.mkdir(parents=True, exist_ok=True)
        with output_lock(paths.final):  # one writer per gene-fold (concurrent SLURM tasks)
            work = open_partial(paths)
            write_predictions(fit.predictions, work / "predictions.tsv")
            coefficients = variants[["chrom", "pos", "id", "ref", "alt"]].assign(
                coef=fit.coefficients.to_numpy() + 0.0  # + 0.0: no "-0.0" in the file
            )
            write_table(coefficients, work / COEFFICIENTS_TSV, COEFFICIENTS)
            write_config(work, options)
            record_inputs(work, fit_inputs(fingerprints, gene, fold, options))
            tune = fit.predictions[fit.predictions["split"] == "tune"]
            row = {
                "gene": gene,
                "fold": int(fold),
                "model": fit.model,
                "test_r2": fit.r2,
                "test_pcc": fit.pcc,
                "n_train": fit.n_train,
                "n_test": fit.n_test,
                "n_snvs": len(fit.coefficients),
                "n_nonzero": int(np.count_nonzero(fit.coefficients.to_numpy())),
            }
            summary: dict[str, Any] = {
                "kind": "baseline",
                "name": gene,
                "fold": int(fold),
                **row,
                "tune_r2": r2(tune["observed"], tune["predicted"]),
                "tune_pcc": pcc(tune["observed"], tune["predicted"]),
                "n_tune": len(tune),
                "alpha": fit.alpha,
                "intercept": fit.intercept,
                "options": options,
                "wall_time_s": round(time.perf_counter() - started, 4),
                **provenance(
                    {"dataset": dataset} if isinstance(dataset, (str, os.PathLike)) else {}
                ),
            }
            write_summary(work, summary)
            publish_run(paths, force=force)
        rows.append(row)
    return rows


def run_baselines(
    dataset,
    *,
    out: str | os.PathLike,
    genes: Sequence[str] | None = None,
    folds: Sequence[int] | None = None,
    model: str = "elastic_net",
    jobs: int = 1,
    l1_ratio: float = 0.5,
    cv: int = 5,
    seed: int = 0,
    engine: str = "gram",
    patience: int | None = PATIENCE,
    all_people: bool = False,
    indels: bool = False,
    force: bool = False,
    log: Callable[[str], None] | None = None,
    progress: bool | None = None,
) -> BaselineRun:
    """Fit a linear model per gene and fold and publish each as ``out/<model>/<gene>/fold<k>``.

    Parameters
    ----------
    dataset : str, os.PathLike or GeneDataset
        Dataset directory (``variformer prep``) or an opened dataset.
    out : str or os.PathLike
        The baselines directory ``BL``; this model's runs go to ``BL/<model>/``.
    genes : sequence of str, optional
        Default: every gene of the dataset.
    folds : sequence of int, optional
        Default: every fold of the dataset.
    model : {"elastic_net", "lasso", "ridge"}
    jobs : int
        Genes fitted in parallel (joblib processes); 1 fits in this process.
    l1_ratio, cv, seed, engine, patience
        Passed to :func:`baselines.elastic_net.fit_linear` (inner CV on train people only).
    all_people : bool
        Also fit each gene on every person with expression (the same model and penalty
        choice, inner CV over all of them) and publish it as ``out/<model>/<gene>/all``
        (:mod:`baselines.all_people`, read back by :func:`read_all_people`); it is not a row
        of ``summary.tsv`` and nothing evaluates it.
    indels : bool
        On a haplotype-mode dataset (``prep --haplotypes``), every allele (SNVs, MNPs,
        indels) overlapping the window is a dosage column and a coefficient row; default: the
        window's SNVs only, the columns an SNV dataset of the same VCF has
        (:func:`baselines.dosage_columns.dosage_columns`). Recorded in the fits' options
        (:func:`fit_options`).
    force : bool
        Refit gene-folds that are already published (default: skip them, i.e. resume).
    log : callable, optional
        Receives one line per finished gene (e.g. ``print`` to stderr).
    progress : bool, optional
        A progress bar; default: only when stderr is a terminal.

    Returns
    -------
    BaselineRun

    Raises
    ------
    InputError
        Unknown model, gene or fold; a dataset without expression; ``jobs < 1``;
        ``l1_ratio`` or ``cv`` out of range (:func:`baselines.elastic_net.check_linear_options`);
        ``indels`` on an SNV dataset.
    """
    if model not in MODELS:
        raise InputError(f"unknown linear model {model!r}; choose one of {', '.join(MODELS)}")
    if jobs < 1:
        raise InputError(f"--jobs must be at least 1, got {jobs}")
    check_linear_options(model=model, l1_ratio=l1_ratio, cv=cv)  # before opening anything
    ds = _open(dataset)
    if not getattr(ds, "has_expression", True):
        raise InputError(
            f"{getattr(ds, 'path', 'the dataset')} has no expression; re-run `variformer prep` with --expression"
        )
    check_indels(ds, indels)
    genes = list(dict.fromkeys(ds.genes if genes is None else genes))
    if not genes:
        raise InputError("no genes given; pass --gene, --genes or --genes-file")
    for gene in genes:
        ds.expression(gene)  # unknown gene -> InputError now, not in a worker
    folds = list(range(ds.n_folds)) if folds is None else [int(k) for k in folds]
    for fold in folds:
        ds.split(fold)  # unknown fold -> InputError
    root = Path(out).expanduser() / model
    if patience is not None and patience < 0:
        raise InputError(f"--path-patience must be 0 (the whole grid) or more, got {patience}")
    options = fit_options(
        model, l1_ratio=l1_ratio, cv=cv, seed=seed, engine=engine, patience=patience,
        indels=indels,
    )  # fmt: skip

    todo: dict[str, list[int]] = {}
    skipped = []
    fingerprints = dataset_fingerprints(ds)
    targets: list[int | str] = [*folds, *([ALL_PEOPLE] if all_people else [])]
    for gene in genes:
        for fold in targets:
            published = run_path(root, gene, fold)
            if not force and (published / SUMMARY).is_file():
                # skipped as done only if made from these inputs: a rebuilt dataset (new
                # splits) or other options would leave a stale fit among the new ones
                check_inputs(
                    published, fit_inputs(fingerprints, gene, fold, options),
                    advice="pass --force to refit it, or choose another --out",
                )  # fmt: skip
                skipped.append((gene, fold))
            else:
                plan_run(root, gene, fold, force=force)  # refuse an unwritable --out before work
                todo.setdefault(gene, []).append(fold)
    if log and skipped:
        log(f"{len(skipped)} gene-folds already published under {root}; skipping them")

    fitted = []
    source = _picklable(dataset)
    for rows in _progress(
        _map(source, todo, root, options, force, jobs, fingerprints), len(todo), progress
    ):
        fitted += [(r["gene"], r["fold"]) for r in rows]
        if log and rows:
            log(f"{model} {rows[0]['gene']}: " + ", ".join(_described(r) for r in rows))
    summary = summarize(root)
    return BaselineRun(root=root, summary=summary, fitted=fitted, skipped=skipped)


def _described(row: dict) -> str:
    if row["fold"] == ALL_PEOPLE:
        return f"all people n={row['n_train']} nonzero={row['n_nonzero']}"
    return f"fold{row['fold']} R2={row['test_r2']:.3f}"


def _map(
    source, todo: dict, root: Path, options: dict, force: bool, jobs: int, fingerprints
) -> Iterator[list]:
    if jobs == 1 or len(todo) <= 1:
        for gene, gene_folds in todo.items():
            yield _fit_gene(source, gene, gene_folds, root, options, force, fingerprints)
        return
    from joblib import Parallel, delayed

    parallel = Parallel(n_jobs=jobs, return_as="generator_unordered")
    yield from parallel(
        delayed(_fit_gene)(source, gene, gene_folds, root, options, force, fingerprints)
        for gene, gene_folds in todo.items()
    )


def _progress(items, total: int, progress: bool | None):
    if progress is None:
        progress = sys.stderr.isatty()
    if not progress:
        return items
    from tqdm.auto import tqdm

    return tqdm(items, total=total, unit="gene", desc="baselines")


@contextlib.contextmanager
def _locked(path: Path):
    """An exclusive advisory lock (concurrent SLURM tasks rebuilding the same summary)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def summarize(root: str | os.PathLike) -> pd.DataFrame:
    """Rebuild ``<root>/summary.tsv`` from every published gene-fold under ``root``.

    Returns
    -------
    pd.DataFrame
        Columns :data:`SUMMARY_COLUMNS`, sorted by gene and fold.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    with _locked(root / ".summary.lock"):
        rows = [
            {c: run.summary.get(c) for c in SUMMARY_COLUMNS}
            for run in find_runs(root, kind="baseline")
        ]
        table = pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))
        table = table.astype({"test_r2": float, "test_pcc": float})
        table = table.sort_values(["gene", "fold"], kind="stable").reset_index(drop=True)
        write_table(table, root / SUMMARY_TSV, BASELINE_SUMMARY)
    return table


def read_summary(baselines: str | os.PathLike, model: str = "elastic_net") -> pd.DataFrame:
    """Read ``BL/<model>/summary.tsv`` (:data:`core.tables.BASELINE_SUMMARY`).

    Raises
    ------
    InputError
        No such file (``variformer baselines`` has not been run for this model), or a table
        that breaks the schema.
    """
    path = Path(baselines).expanduser() / model / SUMMARY_TSV
    if not path.is_file():
        raise InputError(
            f"no {path}; run `variformer baselines --model {model} --out {baselines}` first"
        )
    return read_table(path, BASELINE_SUMMARY)
