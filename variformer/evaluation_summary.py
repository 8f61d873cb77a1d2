"""Matched comparisons for ``variformer evaluate``: the same genes, folds and people for every model.

Two models are set side by side only on the gene-folds both have, and a fold only when both
were tested on the same people (issue #21: a Variformer trained on fold 0 is compared with the
elastic net's fold 0, not with its mean over 3 folds).

- :func:`check_same_people`: refuse predictions where two models of one gene and fold were
  tested on different people (in the training cohort; and, separately, in a cross-cohort test).
- :func:`matched_folds`: per gene and cohort, the folds *every* model has (their intersection).
- :func:`summarize`: ``EVAL/summary.tsv``, each model's mean over exactly those folds, beside
  the elastic net's over the same folds, with the folds named in a ``folds`` column.

A *cohort* here is ``in_cohort`` (settings ``hop`` and ``hogp``: the fold's test people of the
training dataset) or ``cross_cohort`` (every person of the test dataset; the fold is the one
the model was trained on). Numbers of different cohorts are never compared with each other.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from core.errors import InputError

__all__ = [
    "SUMMARY_COLUMNS",
    "check_same_people",
    "cohort_of",
    "format_folds",
    "matched_folds",
    "summarize",
]

#: columns of ``EVAL/summary.tsv``: ``folds`` names the folds every mean is over ("0,1,2";
#: "" when the models of a gene share no fold), ``n_folds`` counts them
SUMMARY_COLUMNS = ("gene", "model", "setting", "r2", "pcc", "n_folds", "folds")
SUMMARY_COLUMNS += ("elastic_net_r2", "elastic_net_pcc")
#: the model every other one is set beside in ``summary.tsv`` and Fig. 1
REFERENCE_MODEL = "elastic_net"


def cohort_of(setting: pd.Series) -> pd.Series:
    """``cross_cohort`` for that setting, ``in_cohort`` for ``hop`` and ``hogp`` (the fold's test
    people of the training dataset, whichever genes the model was trained on)."""
    return setting.where(setting == "cross_cohort", "in_cohort")


def format_folds(folds: Iterable[int]) -> str:
    """``"0,1,2"`` for folds {2, 0, 1}; ``""`` for none."""
    return ",".join(str(int(k)) for k in sorted(folds))


def check_same_people(predictions: pd.DataFrame) -> None:
    """Refuse test predictions of one gene and fold made on different people by two models.

    Parameters
    ----------
    predictions : pd.DataFrame
        ``model, setting, fold, train_fraction, sample, gene, split, ...``
        (``EVAL/predictions.tsv``).

    Raises
    ------
    InputError
        Two models (or runs) of one gene, fold and cohort (:func:`cohort_of`) whose ``test``
        people differ: their metrics would not be comparable (made from other splits or
        another dataset).
    """
    test = predictions[predictions["split"] == "test"]
    if test.empty:
        return
    test = test.assign(_cohort=cohort_of(test["setting"]))
    key = ["_cohort", "gene", "fold", "model", "setting", "train_fraction"]
    people = test.groupby(key, sort=True)["sample"].agg(frozenset)
    for (cohort, gene, fold), part in people.groupby(level=[0, 1, 2], sort=True):
        first = part.iloc[0]
        differ = part[part != first]
        if len(differ):
            name = _label(part.index[0])
            other, theirs = _label(differ.index[0]), differ.iloc[0]
            where = "in the test cohort" if cohort == "cross_cohort" else "of the dataset"
            raise InputError(
                f"{gene} fold {fold}: {name} and {other} were tested on different people "
                f"{where} ({len(first)} and {len(theirs)}, {len(first ^ theirs)} not shared); "
                "a fold's metrics are only compared on the same people: were they made from "
                "other splits or another dataset?"
            )


def _label(key: tuple) -> str:
    """``model (setting[, train fraction f])`` from a :func:`check_same_people` group key."""
    model, setting, fraction = key[3], key[4], key[5]
    extra = "" if fraction == 1.0 else f", train fraction {fraction:g}"
    return f"{model} ({setting}{extra})"


def _compared(metrics: pd.DataFrame) -> pd.DataFrame:
    """The rows that are set side by side: ``ok`` test rows of full train sets, with a
    ``_cohort`` column. Columns a hand-made table lacks take their defaults (status ``ok``,
    split ``test``, setting ``hop``, train fraction 1, PCC NaN)."""
    defaults = {"status": "ok", "split": "test", "setting": "hop", "train_fraction": 1.0}
    defaults["pcc"] = np.nan
    m = metrics.assign(**{k: v for k, v in defaults.items() if k not in metrics.columns})
    m = m[(m["status"] == "ok") & (m["split"] == "test") & (m["train_fraction"] == 1.0)]
    return m.assign(_cohort=cohort_of(m["setting"]), fold=m["fold"].astype(np.int64))


def matched_folds(metrics: pd.DataFrame) -> pd.DataFrame:
    """Per gene and cohort, the folds every model has: the only folds their numbers are
    compared on.

    Parameters
    ----------
    metrics : pd.DataFrame
        ``EVAL/metrics.tsv`` (at least gene, fold, model, r2); only ``ok`` test rows of
        full train sets count.

    Returns
    -------
    pd.DataFrame
        ``gene, cohort, folds, n_folds, models``: ``folds`` the sorted intersection of the
        folds of every (model, setting) with results for the gene in that cohort, formatted
        by :func:`format_folds` ("" when they share none); ``models`` how many took part.
    """
    m = _compared(metrics)
    rows = []
    for (gene, cohort), part in m.groupby(["gene", "_cohort"], sort=True):
        each = [set(p["fold"]) for _, p in part.groupby(["model", "setting"], sort=True)]
        shared = set.intersection(*each)
        rows.append(
            {"gene": gene, "cohort": cohort, "folds": format_folds(shared),
             "n_folds": len(shared), "models": len(each)}
        )  # fmt: skip
    return pd.DataFrame(rows, columns=["gene", "cohort", "folds", "n_folds", "models"])


def _mean(values: pd.Series) -> float:
    """Mean over every stated fold: NaN if any fold's value is (a fold is never dropped for
    one model only, as a NaN-skipping mean would do with, e.g., flat predictions' PCC)."""
    return float(values.mean(skipna=False)) if len(values) else float("nan")


def summarize(metrics: pd.DataFrame) -> pd.DataFrame:
    """Per gene, model and setting: mean test R2 and PCC over the gene's matched folds, beside
    the elastic net's over the same folds.

    The matched folds of a gene (:func:`matched_folds`) are those every model with results
    for it has, so any two numbers of a gene in the table, and each beside its elastic-net
    column, come from the same folds and test people: a model with fold 0 only makes every
    model's number of that gene its fold-0 number; the mean over all 3 folds is given only
    where every model has all 3. Only ``ok`` rows of the ``test`` split with
    ``train_fraction == 1`` count.

    Parameters
    ----------
    metrics : pd.DataFrame
        ``EVAL/metrics.tsv``.

    Returns
    -------
    pd.DataFrame
        Columns :data:`SUMMARY_COLUMNS`, one row per gene, model and setting with results.
        ``folds`` / ``n_folds``: the matched folds ("0,1,2"); a gene whose models share no
        fold has ``folds`` "", ``n_folds`` 0 and NaN metrics (never unmatched numbers).
        ``elastic_net_*``: the elastic net's mean over the same folds and cohort (its
        ``hop`` rows for ``hop``/``hogp``, its ``cross_cohort`` rows for ``cross_cohort``);
        NaN without one. A mean is NaN when a fold's value is (e.g. the PCC of flat
        predictions).
    """
    m = _compared(metrics)
    if m.empty:
        return pd.DataFrame(columns=list(SUMMARY_COLUMNS))
    matched = matched_folds(metrics)
    shared = {
        (g, c): {int(k) for k in f.split(",")} if f else set()
        for g, c, f in zip(matched["gene"], matched["cohort"], matched["folds"])
    }
    keep = [k in shared[(g, c)] for g, c, k in zip(m["gene"], m["_cohort"], m["fold"])]
    used = m[np.asarray(keep, dtype=bool)]
    # every (gene, model, setting) with results keeps a row, NaN where nothing is matched
    table = m[["gene", "model", "setting", "_cohort"]].drop_duplicates()
    means = used.groupby(["gene", "model", "setting"], sort=True).agg(
        r2=("r2", _mean), pcc=("pcc", _mean)
    )
    table = table.merge(means, left_on=["gene", "model", "setting"], right_index=True, how="left")
    table = table.merge(
        matched[["gene", "cohort", "folds", "n_folds"]],
        left_on=["gene", "_cohort"],
        right_on=["gene", "cohort"],
        how="left",
    )
    ref = used[(used["model"] == REFERENCE_MODEL) & used["setting"].isin(["hop", "cross_cohort"])]
    ref = ref.groupby(["gene", "_cohort"]).agg(
        elastic_net_r2=("r2", _mean), elastic_net_pcc=("pcc", _mean)
    )
    table = table.merge(ref, left_on=["gene", "_cohort"], right_index=True, how="left")
    table["n_folds"] = table["n_folds"].astype(np.int64)
    table = table.sort_values(["gene", "model", "setting"], kind="stable")
    return table[list(SUMMARY_COLUMNS)].reset_index(drop=True)
