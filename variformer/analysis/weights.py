"""Every model's SNV weights as one table, from the inputs of ``variformer analyze``.

The inputs are read through the one table layer (:mod:`core.tables`); this module walks their
directory layouts and stacks them (``pos`` is always 1-based):

- ISM tables ``ISM_DIR/<model>.tsv``, model = file stem (:data:`core.tables.ISM`; ``fold`` -1
  for a model without folds, e.g. pre-trained Enformer);
- baselines ``BL/<model>/summary.tsv`` (:data:`core.tables.BASELINE_SUMMARY`),
  ``BL/<model>/<gene>/fold<k>/coefficients.tsv`` (:data:`core.tables.COEFFICIENTS`) and
  ``.../predictions.tsv`` (:data:`core.tables.PREDICTIONS`);
- fine-tuning runs ``RUNS/<gene or gene set>/fold<k>/predictions.tsv`` (the same schema).

Every model, ISM-scored or linear, becomes rows of one *weights* table (:func:`model_weights`):
``model, gene, chrom, pos, id, ref, alt, maf, tss_distance, weight`` with the weight averaged
over folds, so every analysis treats all models the same way.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd

from core.errors import InputError
from core.manifest import MATCHED_PARTS, check_made_from, check_same, dataset_fingerprints
from core.tables import (
    BASELINE_SUMMARY,
    COEFFICIENTS,
    ISM,
    PREDICTIONS,
    empty_table,
    read_coefficients,
    read_ism,
    read_predictions,
    read_table,
)
from data_prep.genome import tss_distance
from data_prep.keys import KEY_COLUMNS, normalize_keys

__all__ = [
    "WEIGHT_COLUMNS",
    "check_ism_record",
    "collect_baseline_summary",
    "collect_coefficients",
    "collect_ism",
    "collect_predictions",
    "fold_weights",
    "model_weights",
]

WEIGHT_COLUMNS = (
    "model", "gene", "chrom", "pos", "id", "ref", "alt", "maf", "tss_distance", "weight",
)  # fmt: skip
_FOLD_DIR = re.compile(r"^fold(\d+)$")


def collect_ism(ism_dir, *, dataset=None, notes: list[str] | None = None) -> pd.DataFrame:
    """Every ``<model>.tsv`` under ``ism_dir``, stacked with a ``model`` column (= file stem).

    Returns
    -------
    pd.DataFrame
        ``model`` + the :data:`core.tables.ISM` columns; ``pos`` 1-based.

    Raises
    ------
    InputError
        ``ism_dir`` is not a directory, holds no ``.tsv``, or a table breaks the schema.
    """
    ism_dir = Path(ism_dir)
    if not ism_dir.is_dir():
        raise InputError(f"--ism {ism_dir} is not a directory of <model>.tsv ISM tables")
    paths = sorted(p for p in ism_dir.glob("*.tsv") if not p.name.startswith("."))
    if not paths:
        raise InputError(f"--ism {ism_dir} holds no <model>.tsv ISM table; run `variformer ism`")
    frames = []
    for p in paths:
        table = read_ism(p)
        if dataset is not None:
            check_ism_record(p, len(table), dataset, notes)
        frames.append(normalize_keys(table).assign(model=p.stem))
    return pd.concat(frames, ignore_index=True)[["model", *ISM.columns]]


def check_ism_record(path: Path, n_rows: int, dataset, notes: list[str] | None) -> None:
    """Refuse an ISM table made on another dataset, or shorter than when it was written."""
    from variformer.analysis.gene_ism import manifest_path

    record_path = manifest_path(path)
    if not record_path.is_file():
        if notes is not None:
            notes.append(
                f"{path.name} has no record ({record_path.name}): not checked against --dataset"
            )
        return
    try:
        record = json.loads(record_path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise InputError(
            f"{record_path} is not valid JSON ({err}); re-run `variformer ism`"
        ) from None
    current = dataset_fingerprints(dataset)
    # a fine-tuned model's scores depend on its fold's people; pre-trained Enformer's do not
    parts = ("samples", "windows") if "enformer" in record else MATCHED_PARTS
    if current is not None:
        check_same(
            record.get("dataset_fingerprints") or {},
            {k: v for k, v in current.items() if k in parts},
            what="the dataset",
            where=path,
            advice="analyze it with the dataset it was scored on, or re-run `variformer ism`",
        )
    if record.get("n_rows") is not None and int(record["n_rows"]) != n_rows:
        raise InputError(
            f"{path} has {n_rows} rows but was written with {record['n_rows']}: it was cut short "
            "or edited since; re-run `variformer ism`"
        )


def _fold_dirs(gene_dir: Path):
    for d in sorted(gene_dir.iterdir()):
        m = _FOLD_DIR.match(d.name)
        if m and d.is_dir():
            yield int(m.group(1)), d


def collect_baseline_summary(baselines) -> pd.DataFrame:
    """``BL/*/summary.tsv`` stacked: one row per model, gene and fold (``n_nonzero`` among them)."""
    bl = Path(baselines)
    if not bl.is_dir():
        raise InputError(f"--baselines {bl} is not a directory; run `variformer baselines`")
    frames = [read_table(p, BASELINE_SUMMARY) for p in sorted(bl.glob("*/summary.tsv"))]
    if not frames:
        raise InputError(
            f"--baselines {bl} holds no <model>/summary.tsv; run `variformer baselines`"
        )
    return pd.concat(frames, ignore_index=True)


def collect_coefficients(baselines) -> pd.DataFrame:
    """Every ``BL/<model>/<gene>/fold<k>/coefficients.tsv``: ``model, gene, fold`` + coefficients."""
    bl = Path(baselines)
    frames = []
    for model_dir in sorted(p for p in bl.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for gene_dir in sorted(p for p in model_dir.iterdir() if p.is_dir()):
            for fold, d in _fold_dirs(gene_dir):
                path = d / "coefficients.tsv"
                if path.is_file():
                    df = normalize_keys(read_coefficients(path))
                    frames.append(df.assign(model=model_dir.name, gene=gene_dir.name, fold=fold))
    cols = ["model", "gene", "fold", *COEFFICIENTS.columns]
    if not frames:
        return empty_table(cols)
    return pd.concat(frames, ignore_index=True)[cols]


def collect_predictions(root, *, model: str | None = None, dataset=None) -> pd.DataFrame:
    """Per-person predictions under ``root`` (``<model>/<gene>/fold<k>/`` or ``<run>/fold<k>/``).

    Parameters
    ----------
    root : path
        A baselines directory (``model=None``: the model is the first directory level) or a
        fine-tuning runs directory (pass ``model``, e.g. ``"variformer"``).
    dataset : GeneDataset, optional
        Refuse runs made from another dataset (:func:`core.manifest.check_made_from`).

    Returns
    -------
    pd.DataFrame
        ``model, fold, sample, gene, split, observed, predicted``.
    """
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root} is not a directory of runs or baselines")
    frames = []
    seen: dict[tuple[str, int, str], Path] = {}  # (model, fold, gene) -> its predictions file
    for path in sorted(root.rglob("predictions.tsv")):
        rel = path.relative_to(root).parts
        m = _FOLD_DIR.match(path.parent.name)
        if m is None or any(p.startswith(".") or p.endswith(".partial") for p in rel):
            continue  # unfinished runs keep their predictions in fold<k>.partial/
        if dataset is not None:
            check_made_from(path.parent, dataset, verb="analyze")
        df = read_predictions(path)[list(PREDICTIONS.columns)]
        name, fold = model if model is not None else rel[0], int(m.group(1))
        for gene in dict.fromkeys(df["gene"]):
            if (name, fold, gene) in seen:
                raise InputError(
                    f"{name} has two runs for {gene} fold {fold} ({seen[name, fold, gene].parent} "
                    f"and {path.parent}); keep one of them under {root}"
                )
            seen[name, fold, gene] = path
        frames.append(df.assign(model=name, fold=fold))
    cols = ["model", "fold", *PREDICTIONS.columns]
    if not frames:
        return empty_table(cols)
    return pd.concat(frames, ignore_index=True)[cols]


def model_weights(
    ism: pd.DataFrame | None, coefficients: pd.DataFrame | None, dataset, *, fold=None
) -> pd.DataFrame:
    """One weights table for every model: ISM scores and linear coefficients of one fold, or
    averaged over folds.

    Parameters
    ----------
    ism : pd.DataFrame or None
        :func:`collect_ism` output.
    coefficients : pd.DataFrame or None
        :func:`collect_coefficients` output (every baseline model: elastic net, lasso, ridge).
    dataset : data_prep.GeneDataset
        Gives MAF and TSS distance of coefficient rows (ISM tables carry their own).
    fold : int, optional
        Keep that fold's weights (and a model's fold -1 weights: one set for every fold, e.g.
        pre-trained Enformer); None averages each model's weights over its folds.

    Returns
    -------
    pd.DataFrame
        :data:`WEIGHT_COLUMNS`, one row per model, gene and SNV; genes not in ``dataset`` are
        dropped.
    """
    if fold is not None:
        if ism is not None:
            ism = ism[ism["fold"].astype(int).isin([int(fold), -1])]
        if coefficients is not None:
            coefficients = coefficients[coefficients["fold"].astype(int).isin([int(fold), -1])]
    frames = []
    genes = set(dataset.genes)
    if ism is not None and len(ism):
        keys = ["model", "gene", *KEY_COLUMNS]
        agg = (
            ism[ism["gene"].isin(genes)]
            .groupby(keys, sort=False)
            .agg(
                id=("id", "first"),
                maf=("maf", "first"),
                tss_distance=("tss_distance", "first"),
                weight=("score", "mean"),
            )
            .reset_index()
        )
        frames.append(agg)
    if coefficients is not None and len(coefficients):
        coefs = coefficients[coefficients["gene"].isin(genes)]
        for gene, g in coefs.groupby("gene", sort=False):
            v = normalize_keys(dataset.variants(gene))
            v["tss_distance"] = tss_distance(v["pos"], dataset.window(gene))
            mean = (
                g.groupby(["model", *KEY_COLUMNS], sort=False)["coef"]
                .mean()
                .rename("weight")
                .reset_index()
            )
            merged = mean.merge(
                v[[*KEY_COLUMNS, "id", "maf", "tss_distance"]], on=list(KEY_COLUMNS), how="inner"
            )
            frames.append(merged.assign(gene=gene))
    if not frames:
        return empty_table(WEIGHT_COLUMNS)
    out = pd.concat(frames, ignore_index=True)[list(WEIGHT_COLUMNS)]
    out["tss_distance"] = out["tss_distance"].astype("int64")
    return out.reset_index(drop=True)


def fold_weights(ism: pd.DataFrame | None, coefficients: pd.DataFrame | None) -> pd.DataFrame:
    """Per-fold weights of every model: ``model, gene, fold, chrom, pos, ref, alt, weight``.

    ISM ``score`` and baseline ``coef`` under one name; ``fold`` -1 marks a model without folds.
    """
    cols = ["model", "gene", "fold", *KEY_COLUMNS, "weight"]
    frames = []
    if ism is not None and len(ism):
        frames.append(ism.rename(columns={"score": "weight"})[cols])
    if coefficients is not None and len(coefficients):
        frames.append(coefficients.rename(columns={"coef": "weight"})[cols])
    if not frames:
        return empty_table(cols)
    out = pd.concat(frames, ignore_index=True)
    out["fold"] = out["fold"].astype(int)
    return out
