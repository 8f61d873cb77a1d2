"""Which models and genes ``variformer analyze`` reads findings from, and why the others are out.

Two screens come before any HSV, sign, driver, motif or chromatin row (issue #21, "no findings
from noise"; the paper's gene filter):

- :func:`learned_table`: per model, gene and fold, did the model learn anything? Not when its
  test predictions are flat (:func:`core.metrics.flat_predictions`) or when its largest |ISM
  score| is at float-rounding level of its output scale (:func:`core.metrics.ism_at_rounding_level`).
  Such weights are noise: they get no findings, and the report lists them with the reason.
- :func:`variformer_r2`: each gene's test R2 of the fine-tuned runs, averaged over their folds
  (replicates), as the paper's "42/301 genes with Variformer R2 > 0.2" filter reads it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from core.metrics import flat_predictions, ism_at_rounding_level, r2

__all__ = ["LEARNED_COLUMNS", "Screen", "learned_table", "screen", "variformer_r2"]

LEARNED_COLUMNS = ("model", "gene", "fold", "learned", "learned_reason")


def learned_table(
    fold_weights: pd.DataFrame, predictions: pd.DataFrame, *, ism_models
) -> pd.DataFrame:
    """Per model, gene and weight fold: ``learned`` (bool) and ``learned_reason`` ("" if learned).

    Parameters
    ----------
    fold_weights : pd.DataFrame
        ``model, gene, fold, ..., weight`` (:func:`~variformer.analysis.weights.fold_weights`;
        ``fold`` -1 = one set for every fold, e.g. pre-trained Enformer).
    predictions : pd.DataFrame
        ``model, fold, sample, gene, split, observed, predicted``.
    ism_models : collection of str
        The models whose weights are ISM scores (the rounding-level test applies to them only;
        a linear model's zero coefficients are a choice, not noise).

    Returns
    -------
    pd.DataFrame
        :data:`LEARNED_COLUMNS`, one row per (model, gene, fold) of ``fold_weights``. A fold -1
        row is judged on its ISM scores and on the test predictions of every fold (the reason
        names the fold whose predictions are flat).
    """
    test = predictions[predictions["split"] == "test"]
    by_key = dict(list(test.groupby(["model", "gene", "fold"], sort=False)))
    weights = dict(list(fold_weights.groupby(["model", "gene", "fold"], sort=False)["weight"]))
    rows = []
    for model, gene, fold in weights:
        folds = (
            sorted(f for (m, g, f) in by_key if m == model and g == gene) if fold == -1 else [fold]
        )
        preds = [by_key[model, gene, f] for f in folds if (model, gene, f) in by_key]
        reasons = []
        for f, part in zip(folds, preds):
            why = flat_predictions(part["predicted"], part["observed"])
            if why:
                reasons.append(why if fold != -1 else f"fold {f}: {why}")
        if model in ism_models:
            w = weights[model, gene, fold]
            scale = max((float(np.abs(p["predicted"]).max()) for p in preds), default=1.0)
            why = ism_at_rounding_level(w, scale)
            if why:
                reasons.append(why)
        rows.append((model, gene, int(fold), not reasons, "; ".join(reasons)))
    return pd.DataFrame(rows, columns=list(LEARNED_COLUMNS))


def variformer_r2(predictions: pd.DataFrame, *, model: str = "variformer") -> pd.Series:
    """Per gene: ``model``'s test R2 (``sklearn`` convention) averaged over its folds.

    Returns
    -------
    pd.Series
        float indexed by gene (empty when ``model`` has no test predictions).
    """
    test = predictions[(predictions["split"] == "test") & (predictions["model"] == model)]
    per_fold = {
        (gene, fold): r2(g["observed"], g["predicted"])
        for (gene, fold), g in test.groupby(["gene", "fold"], sort=False)
    }
    if not per_fold:
        return pd.Series(dtype=float)
    s = pd.Series(per_fold)
    return s.groupby(level=0, sort=False).mean()


@dataclass
class Screen:
    """The outcome of :func:`screen`: what is kept, and the notes and record saying why."""

    learned: pd.DataFrame  # LEARNED_COLUMNS
    r2: pd.Series  # gene -> mean Variformer test R2
    min_r2: float | None
    notes: list[str] = field(default_factory=list)

    def _out(self) -> set[tuple[str, str, int]]:
        bad = self.learned[~self.learned["learned"].astype(bool)]
        return set(zip(bad["model"], bad["gene"], bad["fold"].astype(int)))

    def keep(self, df: pd.DataFrame) -> pd.DataFrame:
        """``df`` (``model, gene, fold, ...``) without the rows of models that learned nothing."""
        out = self._out()
        if not out or df.empty:
            return df
        key = zip(df["model"], df["gene"], df["fold"].astype(int))
        return df[[k not in out for k in key]].reset_index(drop=True)

    def passes(self, gene: str) -> bool:
        """Whether ``gene`` passes the Variformer R2 filter (always, without a filter or R2)."""
        if self.min_r2 is None or self.r2.empty:
            return True
        value = self.r2.get(gene, math.nan)
        return bool(np.isfinite(value) and value > self.min_r2)

    def not_learned_rows(self, summary: pd.DataFrame, genes, n_folds: int) -> pd.DataFrame:
        """``driver_summary`` plus a ``status = "not learned"`` row per screened-out ISM model,
        gene (of ``genes``) and fold."""
        bad = self.learned[~self.learned["learned"].astype(bool) & self.learned["ism"]]
        rows = []
        for r in bad.itertuples(index=False):
            if r.gene in set(genes):
                folds = range(n_folds) if r.fold == -1 else [r.fold]
                rows += [{"model": r.model, "gene": r.gene, "fold": f, "status": "not learned",
                          "n_drivers": 0} for f in folds]  # fmt: skip
        if not rows:
            return summary
        extra = pd.DataFrame(rows).astype({"fold": int})
        out = pd.concat([summary, extra], ignore_index=True)[list(summary.columns)]
        return out.sort_values(["model", "gene", "fold"], kind="stable").reset_index(drop=True)

    def record(self, hsv_fold: str) -> dict:
        """What ``analysis.json`` says about the screens."""
        judged = {g: float(v) for g, v in self.r2.items()}
        passing = [g for g in judged if self.passes(g)]
        return {
            "hsv_fold": hsv_fold,
            "min_r2": self.min_r2,
            "variformer_r2": judged,
            "genes_passing_r2": passing if self.min_r2 is not None and judged else None,
            "learned": [
                {
                    "model": r.model,
                    "gene": r.gene,
                    "fold": int(r.fold),
                    "learned": bool(r.learned),
                    "learned_reason": r.learned_reason,
                }
                for r in self.learned.itertuples(index=False)
            ],
        }


def screen(
    fold_weights: pd.DataFrame,
    predictions: pd.DataFrame,
    *,
    ism_models,
    min_r2: float | None = 0.2,
    model: str = "variformer",
) -> Screen:
    """Judge every model, gene and fold (:func:`learned_table`) and every gene
    (:func:`variformer_r2` against ``min_r2``), with one note per screen."""
    learned = learned_table(fold_weights, predictions, ism_models=ism_models)
    learned["ism"] = learned["model"].isin(set(ism_models))
    r2_by_gene = variformer_r2(predictions, model=model)
    result = Screen(learned, r2_by_gene, min_r2)
    bad = learned[~learned["learned"]]
    if len(bad):
        pairs = ", ".join(
            f"{r.model}/{r.gene}" + ("" if r.fold == -1 else f"/fold{r.fold}")
            for r in bad.itertuples(index=False)
        )
        result.notes.append(
            f"learned nothing (no HSVs, signs, drivers, motif or chromatin rows): {pairs}; "
            "the reasons are in analysis.json 'learned'"
        )
    if min_r2 is not None:
        if r2_by_gene.empty:
            result.notes.append(
                f"gene filter: no {model} test predictions (pass --runs), so no gene was judged "
                f"against Variformer R2 > {min_r2:g}; every gene is kept"
            )
        else:
            n = sum(result.passes(g) for g in r2_by_gene.index)
            result.notes.append(
                f"gene filter: {n}/{len(r2_by_gene)} genes with Variformer R2 > {min_r2:g} "
                "(mean over folds) in the HSV, sign, driver, motif, chromatin and eQTL tables"
            )
    return result
