"""The models ``variformer predict`` imputes with, and the dataset they were made from.

:func:`find_models` reads every finished fine-tuning run under a runs root, or every gene-fold
of one linear baseline under ``BL/<model>/``, as :class:`ImputeModel` s (one per model and fold;
a multi-gene run is one model of several genes). :func:`training_dataset` finds the dataset
they were made from in their recorded provenance (``summary.json``'s ``inputs.dataset.path``)
or takes ``--dataset``, and refuses one whose fingerprints differ from what the models recorded
(:func:`core.manifest.check_made_from`). No torch here.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

from baselines.run import COEFFICIENTS_TSV
from core.errors import InputError
from core.manifest import check_made_from, digest_value, file_digest
from core.runs import Run, find_runs, model_checksum
from variformer.config import recorded_haplotypes
from variformer.evaluation_sources import multi_gene_names, run_label, train_fraction

__all__ = ["ImputeModel", "find_models", "training_dataset"]


class ImputeModel(NamedTuple):
    """One model of one fold: a fine-tuned Variformer or a gene's linear baseline."""

    kind: str  # "variformer" (a fine-tuning run) or "linear" (a baseline gene-fold)
    label: str  # the model column: variformer, variformer_multi[:name], elastic_net, lasso, ridge
    fold: int
    genes: list  # the genes it was trained on
    path: Path  # the run directory
    checksum: str  # of its weights (core.runs.model_checksum) or coefficients + intercept
    seq_len: int | None  # Variformer: the crop it was trained on (None: the whole window)
    batch_size: int | None  # Variformer: the batch size its own predictions were made with
    intercept: float | None  # linear: prediction = intercept + dosages @ coef
    dataset: str | None  # the dataset path its summary.json records
    haplotypes: bool = False  # Variformer trained in haplotype mode (mean of two forwards)


def _recorded_dataset(run: Run) -> str | None:
    inputs = run.summary.get("inputs") or {}
    return (inputs.get("dataset") or {}).get("path")


def find_models(
    *,
    runs: str | os.PathLike | None = None,
    baselines: str | os.PathLike | None = None,
    model: str = "elastic_net",
    fold: int | None = None,
    log: Callable[[str], None] | None = None,
) -> list[ImputeModel]:
    """The finished models under ``runs`` or ``baselines/<model>`` (of ``fold``, or every fold).

    Fine-tuning runs on a downsampled train set (``data.train_fraction`` < 1) are learning-curve
    points, not models to impute with: they are left out (and said so through ``log``).

    Returns
    -------
    list of ImputeModel
        Sorted by label, fold and path.

    Raises
    ------
    InputError
        Neither or both sources; no finished model (of ``fold``); two models of one gene and
        fold (e.g. a single-gene and a multi-gene run): the wide table is one model per fold.
    """
    if (runs is None) == (baselines is None):
        raise InputError("give either --runs or --baselines")
    say = log or (lambda line: None)
    if runs is not None:
        found = [r for r in find_runs(runs, kind="finetune") if fold is None or r.fold == fold]
        partial = [r for r in found if train_fraction(r) < 1.0]
        if partial:
            say(
                f"leaving out {len(partial)} run(s) on downsampled train sets (e.g. {partial[0].path})"
            )
        found = [r for r in found if train_fraction(r) >= 1.0]
        multi = multi_gene_names(found)
        models = [_variformer(r, run_label(r, multi)) for r in found]
        source = f"fine-tuning run under {runs}"
    else:
        root = Path(baselines).expanduser() / model
        found = (
            [r for r in find_runs(root, kind="baseline") if fold is None or r.fold == fold]
            if root.is_dir()
            else []
        )
        models = [_linear(r, model) for r in found]
        source = f"{model} baseline under {root}"
    if not models:
        which = "" if fold is None else f" of fold {fold}"
        raise InputError(f"no finished {source}{which}; train the models first")
    seen: dict[tuple[str, int], Path] = {}
    for m in models:
        for gene in m.genes:
            if (gene, m.fold) in seen:
                raise InputError(
                    f"{gene} has two models on fold {m.fold} ({seen[gene, m.fold]} and {m.path}); "
                    "pass --genes to leave the gene out, or predict from a root with one of them"
                )
            seen[gene, m.fold] = m.path
    return sorted(models, key=lambda m: (m.label, m.fold, str(m.path)))


def _variformer(run: Run, label: str) -> ImputeModel:
    data = (run.config or {}).get("data") or {}
    batch = data.get("eval_batch_size") or data.get("batch_size")
    return ImputeModel(
        kind="variformer", label=label, fold=int(run.fold), genes=list(run.summary.get("genes") or []),
        path=run.path, checksum=model_checksum(run.path), seq_len=data.get("seq_len"),
        batch_size=int(batch) if batch else None, intercept=None,
        dataset=_recorded_dataset(run), haplotypes=recorded_haplotypes(run),
    )  # fmt: skip


def _linear(run: Run, model: str) -> ImputeModel:
    coefficients = run.path / COEFFICIENTS_TSV
    if not coefficients.is_file():
        raise InputError(f"{run.path} has no {COEFFICIENTS_TSV}; re-run `variformer baselines`")
    intercept = run.summary.get("intercept")
    if intercept is None:
        raise InputError(f"{run.path / 'summary.json'} records no intercept; re-run the baseline")
    return ImputeModel(
        kind="linear", label=str(run.summary.get("model", model)), fold=int(run.fold),
        genes=[str(run.summary["gene"])], path=run.path,
        checksum=digest_value([file_digest(coefficients), float(intercept)]),
        seq_len=None, batch_size=None, intercept=float(intercept),
        dataset=_recorded_dataset(run),
    )  # fmt: skip


def training_dataset(
    models: Sequence[ImputeModel],
    dataset: str | os.PathLike | None = None,
    *,
    log: Callable[[str], None] | None = None,
):
    """Open the dataset ``models`` were made from: ``dataset``, or the one they recorded.

    Parameters
    ----------
    models : sequence of ImputeModel
    dataset : path, optional
        ``--dataset``: overrides (e.g. a moved dataset) or confirms the recorded one.

    Returns
    -------
    data_prep.dataset.GeneDataset

    Raises
    ------
    InputError
        No ``dataset`` and no recorded dataset that still exists; a dataset whose windows,
        people, splits or targets differ from what a model was made from; an SNV-mode dataset
        for a run trained in haplotype mode.
    """
    from data_prep import open_dataset

    if dataset is None:
        recorded = list(dict.fromkeys(m.dataset for m in models if m.dataset))
        present = [p for p in recorded if (Path(p) / "dataset.json").is_file()]
        if not present:
            shown = recorded[0] if recorded else "none"
            raise InputError(
                f"the models' training dataset (recorded: {shown}) is not there any more; pass "
                "--dataset with the dataset they were made from"
            )
        dataset = present[0]
    ds = open_dataset(dataset)
    needs = next((m for m in models if m.haplotypes), None)
    if needs is not None and not ds.haplotype_mode:
        raise InputError(
            f"{needs.path} was trained in haplotype mode, but {dataset} is an SNV-mode dataset; "
            "pass --dataset with the `variformer prep --haplotypes` dataset it was trained on"
        )
    unchecked = [m for m in models if not check_made_from(m.path, ds, verb="use")]
    if unchecked and log:
        log(
            f"{len(unchecked)} model(s) record no input fingerprints (older version), e.g. "
            f"{unchecked[0].path}: they could not be checked against {dataset}"
        )
    return ds
