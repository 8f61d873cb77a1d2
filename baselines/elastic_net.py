"""Penalized linear baselines: genotype dosages of a gene's window -> its expression.

As in the paper (Methods, "Fitting penalized linear models"): a scikit-learn pipeline of a
``VarianceThreshold`` followed by ``ElasticNetCV`` or ``LassoCV`` with ``max_iter=2000``, on a
genotype matrix coded hom-ref 0, het 1, hom-alt 2, fit per gene on the same cross-validation
folds as Variformer. ``RidgeCV`` gives every variant a weight (used for the eQTL auROC).

Which people do what: the fold's **train** people fit the model, and an inner K-fold CV over
those same train people picks the penalty; the fold's **tune** and **test** people are never
seen in fitting or in choosing the penalty, only predicted (the elastic net does not need the
tune people that fine-tuning uses for early stopping; they are reported as ``split='tune'`` so
the two models are compared on identical people). R^2 (``sklearn.metrics.r2_score``) and PCC
(``scipy.stats.pearsonr``) are computed on test people.

Elastic net and lasso go through :func:`baselines.penalized.enet_cv` (``ElasticNetCV``'s
penalty choice with a shared Gram matrix; ``engine="sklearn"`` runs the plain
``VarianceThreshold`` + ``ElasticNetCV``/``LassoCV`` pipeline instead, as a reference).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import pandas as pd
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_selection import VarianceThreshold
from sklearn.linear_model import ElasticNetCV, LassoCV, RidgeCV
from sklearn.model_selection import KFold
from sklearn.pipeline import Pipeline

from baselines.dosage_columns import dosage_columns, variant_keys
from baselines.penalized import PATIENCE, enet_cv
from core.errors import InputError
from core.metrics import pcc, r2
from core.tables import empty_predictions, predictions_table

if TYPE_CHECKING:
    from data_prep.dataset import GeneDataset

MODELS = ("elastic_net", "lasso", "ridge")
ENGINES = ("gram", "sklearn")
MAX_ITER = 2000  # the paper raised scikit-learn's default (1000) to 2000
RIDGE_ALPHAS = np.logspace(-2, 5, 29)  # RidgeCV's default (0.1, 1, 10) is too narrow for SNPs
#: inner CV folds: KFold needs 2; past 20 each held-out fold is a handful of people
CV_RANGE = (2, 20)


class LinearFit(NamedTuple):
    """One penalized linear model for one gene and fold."""

    gene: str
    fold: int
    model: str  # "elastic_net", "lasso" or "ridge"
    r2: float  # r2_score on test people (NaN with fewer than 2)
    pcc: float  # pearsonr on test people (NaN with fewer than 2 or constant predictions)
    n_train: int
    n_test: int
    coefficients: (
        pd.Series
    )  # per variant key chrom:pos:ref:alt, 0 where VarianceThreshold dropped it
    predictions: pd.DataFrame  # sample, gene, split ('tune'/'test'), observed, predicted
    alpha: float  # the penalty chosen by inner CV on train people (NaN without variants)
    intercept: float  # prediction = intercept + dosages @ coefficients


def check_linear_options(
    *, model: str, l1_ratio: float | None = None, cv: int | None = None
) -> None:
    """Refuse options the fit would fail on deep inside scikit-learn (with a traceback).

    Parameters
    ----------
    model : {"elastic_net", "lasso", "ridge"}
        Only the elastic net reads ``l1_ratio`` (lasso is 1, ridge has none), so only there
        is it checked: the contract for the other two is unchanged.
    l1_ratio : float, optional
        Elastic-net mixing, in (0, 1]: 0 would be ridge (whose penalty grid is undefined
        here; use ``model="ridge"``) and NaN is no mixing at all. None: not checked.
    cv : int, optional
        Inner CV folds, in :data:`CV_RANGE`. None: not checked.

    Raises
    ------
    InputError
        One line saying the valid range.
    """
    if model == "elastic_net" and l1_ratio is not None and not 0.0 < l1_ratio <= 1.0:
        # NaN fails the comparison too
        raise InputError(
            f"--l1-ratio must be in (0, 1] (1 = lasso; for ridge use --model ridge), got {l1_ratio}"
        )
    low, high = CV_RANGE
    if cv is not None and not low <= cv <= high:
        raise InputError(f"--cv must be between {low} and {high} inner folds, got {cv}")


def _estimator(model: str, *, l1_ratio: float, folds: KFold, seed: int):
    if model == "elastic_net":
        return ElasticNetCV(l1_ratio=l1_ratio, cv=folds, max_iter=MAX_ITER, random_state=seed)
    if model == "lasso":
        return LassoCV(cv=folds, max_iter=MAX_ITER, random_state=seed)
    return RidgeCV(alphas=RIDGE_ALPHAS, cv=folds)


def _with_expression(samples: list[str], expression: pd.Series) -> list[str]:
    have = set(expression.index)
    return [s for s in samples if s in have]


def _penalized(x, y, *, model, l1_ratio, cv, seed, engine, patience):
    """The penalized fit of ``y`` (shape=(n,)) on ``x`` (shape=(n, p)): the penalty chosen by
    inner K-fold CV over these rows only.

    Returns ``coef`` (shape=(p,), 0 for constant columns), ``alpha`` (NaN when no column
    varies), ``intercept`` (the mean of ``y`` then), ``support`` (columns that vary) and the
    fitted scikit-learn pipeline (``engine="sklearn"`` or ridge; else None).
    """
    coef = np.zeros(x.shape[1])
    support = np.ptp(x, axis=0) > 0 if x.shape[1] else np.zeros(0, bool)
    pipe, alpha, intercept = None, float("nan"), float(y.mean())
    if support.any() and model != "ridge" and engine == "gram":
        l1 = 1.0 if model == "lasso" else l1_ratio
        fit = enet_cv(
            x[:, support],
            y,
            l1_ratio=l1,
            cv=cv,
            seed=seed,
            max_iter=MAX_ITER,
            patience=patience or None,
        )
        coef[support] = fit.coef
        alpha, intercept = fit.alpha, fit.intercept
    elif support.any():
        folds = KFold(n_splits=min(cv, len(y)), shuffle=True, random_state=seed)
        pipe = Pipeline(
            [
                ("variance", VarianceThreshold()),
                ("model", _estimator(model, l1_ratio=l1_ratio, folds=folds, seed=seed)),
            ]
        )
        with warnings.catch_warnings():
            # the paper kept max_iter=2000; unconverged fits for weak genes are expected
            warnings.simplefilter("ignore", ConvergenceWarning)
            pipe.fit(x, y)
        fitted = pipe.named_steps["model"]
        coef[pipe.named_steps["variance"].get_support()] = fitted.coef_
        alpha, intercept = float(fitted.alpha_), float(fitted.intercept_)
    return coef, alpha, intercept, support, pipe


def fit_linear(
    ds: GeneDataset,
    gene: str,
    fold: int,
    *,
    model: str = "elastic_net",
    train_fraction: float = 1.0,
    l1_ratio: float = 0.5,
    cv: int = 5,
    seed: int = 0,
    engine: str = "gram",
    patience: int | None = PATIENCE,
    indels: bool = False,
) -> LinearFit:
    """Fit a penalized linear model of one gene's expression on its window's SNV dosages.

    Parameters
    ----------
    ds : GeneDataset
        Opened dataset; read only through ``variants``, ``dosages``, ``expression``, ``split``.
    gene : str
        Gene symbol in ``ds.genes``.
    fold : int
        Cross-validation fold; its train people fit the model, its tune and test people are
        predicted. People without an expression value are left out.
    model : {"elastic_net", "lasso", "ridge"}
        ``ElasticNetCV`` (with ``l1_ratio``), ``LassoCV`` or ``RidgeCV``, after a
        ``VarianceThreshold`` that drops variants constant among the train people.
    train_fraction : float
        In (0, 1]: fit on the fold's nested, downsampled train set; tune/test are unchanged.
    l1_ratio : float
        Elastic-net mixing (1 = lasso).
    cv : int
        Number of internal K-fold splits of the train people used to choose the penalty.
    seed : int
        Seed of the internal fold shuffle (and coordinate-descent seed).
    engine : {"gram", "sklearn"}
        Elastic net / lasso through :func:`baselines.penalized.enet_cv` (default, faster) or
        through scikit-learn's ``ElasticNetCV`` / ``LassoCV`` pipeline (the reference; the
        two agree to coordinate descent's tolerance). Ridge always uses ``RidgeCV``.
    patience : int or None
        With the ``gram`` engine: stop the penalty path once the inner-CV error has risen
        clearly above its minimum for this many alphas in a row (see
        :func:`baselines.penalized.enet_cv`; the default skips the slow, overfitting tail of
        the grid). None or 0: every alpha of the grid, exactly ``ElasticNetCV``'s choice.
    indels : bool
        On a haplotype-mode dataset, every allele (indels and MNPs too) overlapping the window
        is a dosage column; default: its SNVs of the window only (:func:`dosage_columns`).

    Returns
    -------
    LinearFit
        Metrics on test people; ``coefficients`` per variant (shape=(n_variants,)) and
        ``predictions`` with one row per tune/test person. With no variant that varies among
        the train people every prediction is the train mean (R^2 <= 0, PCC NaN).

    Raises
    ------
    InputError
        Unknown ``model`` or ``engine``, ``l1_ratio`` or ``cv`` out of range
        (:func:`check_linear_options`), or fewer than 2 train people with expression.
    """
    if model not in MODELS:
        raise InputError(f"unknown linear model {model!r}; choose one of {', '.join(MODELS)}")
    if engine not in ENGINES:
        raise InputError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    check_linear_options(model=model, l1_ratio=l1_ratio, cv=cv)
    ds = dosage_columns(ds, indels=indels)
    expression = ds.expression(gene)
    split = ds.split(fold, train_fraction=train_fraction)
    train = _with_expression(split["train"], expression)
    evaluated = {name: _with_expression(split[name], expression) for name in ("tune", "test")}
    if len(train) < 2:
        raise InputError(
            f"gene {gene}, fold {fold}: {len(train)} train people with expression; need >= 2"
        )

    keys = variant_keys(ds.variants(gene))
    x_train = np.asarray(ds.dosages(gene, samples=train), dtype=np.float64)
    y_train = expression.loc[train].to_numpy(dtype=np.float64)
    coef, alpha, intercept, support, pipe = _penalized(
        x_train, y_train, model=model, l1_ratio=l1_ratio, cv=cv, seed=seed, engine=engine,
        patience=patience,
    )  # fmt: skip

    rows = []
    for name, samples in evaluated.items():
        if not samples:
            continue
        observed = expression.loc[samples].to_numpy(dtype=np.float64)
        if pipe is not None:
            x = np.asarray(ds.dosages(gene, samples=samples), dtype=np.float64)
            predicted = pipe.predict(x)
        elif support.any():
            x = np.asarray(ds.dosages(gene, samples=samples), dtype=np.float64)
            predicted = x[:, support] @ coef[support] + intercept
        else:
            predicted = np.full(len(samples), y_train.mean())
        rows.append(
            predictions_table(
                samples, gene=gene, split=name, observed=observed, predicted=predicted
            )
        )
    predictions = pd.concat(rows, ignore_index=True) if rows else empty_predictions()

    test = predictions[predictions["split"] == "test"]
    return LinearFit(
        gene=gene,
        fold=fold,
        model=model,
        r2=r2(test["observed"], test["predicted"]),
        pcc=pcc(test["observed"], test["predicted"]),
        n_train=len(train),
        n_test=len(test),
        coefficients=pd.Series(coef, index=pd.Index(keys, name="variant"), name=gene),
        predictions=predictions,
        alpha=alpha,
        intercept=intercept,
    )


class AllPeopleFit(NamedTuple):
    """One penalized linear model for one gene, fitted on every person with expression."""

    gene: str
    model: str
    n_train: int  # people with expression (all of them fit the model)
    coefficients: pd.Series  # per variant key chrom:pos:ref:alt, 0 where constant
    alpha: float  # chosen by inner CV over these same people (NaN without variants)
    intercept: float  # prediction = intercept + dosages @ coefficients


def fit_linear_all(
    ds: GeneDataset,
    gene: str,
    *,
    model: str = "elastic_net",
    l1_ratio: float = 0.5,
    cv: int = 5,
    seed: int = 0,
    engine: str = "gram",
    patience: int | None = PATIENCE,
    indels: bool = False,
) -> AllPeopleFit:
    """:func:`fit_linear`'s model fitted on every person with expression (a PredictDB-style
    weight set): the same penalty choice, by inner ``cv``-fold CV over all of them.

    Parameters
    ----------
    ds : GeneDataset
    gene : str
    model, l1_ratio, cv, seed, engine, patience, indels
        As :func:`fit_linear`. The people are ``ds.samples`` with an expression value, in
        dataset order (the order the inner ``KFold`` shuffles).

    Returns
    -------
    AllPeopleFit
        ``coefficients`` shape=(n_variants,); there is no held-out person, so no metric.

    Raises
    ------
    InputError
        As :func:`fit_linear`; fewer than 2 people with expression.
    """
    if model not in MODELS:
        raise InputError(f"unknown linear model {model!r}; choose one of {', '.join(MODELS)}")
    if engine not in ENGINES:
        raise InputError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    check_linear_options(model=model, l1_ratio=l1_ratio, cv=cv)
    ds = dosage_columns(ds, indels=indels)
    expression = ds.expression(gene)
    people = _with_expression(list(ds.samples), expression)
    if len(people) < 2:
        raise InputError(f"gene {gene}: {len(people)} people with expression; need >= 2")
    keys = variant_keys(ds.variants(gene))
    x = np.asarray(ds.dosages(gene, samples=people), dtype=np.float64)
    y = expression.loc[people].to_numpy(dtype=np.float64)
    coef, alpha, intercept, _, _ = _penalized(
        x, y, model=model, l1_ratio=l1_ratio, cv=cv, seed=seed, engine=engine, patience=patience
    )
    coefficients = pd.Series(coef, index=pd.Index(keys, name="variant"), name=gene)
    return AllPeopleFit(gene, model, len(people), coefficients, alpha, intercept)


def fit_linear_many(
    ds: GeneDataset, genes: Iterable[str], folds: Iterable[int], **kw
) -> pd.DataFrame:
    """Fit :func:`fit_linear` for every gene and fold; one summary row per fit.

    Parameters
    ----------
    ds : GeneDataset
    genes : iterable of str
    folds : iterable of int
    **kw
        Keyword options of :func:`fit_linear` (``model``, ``train_fraction``, ...).

    Returns
    -------
    pd.DataFrame
        Columns ``gene, fold, model, train_fraction, r2, pcc, r2_tune, pcc_tune, n_train,
        n_test, n_variants, n_nonzero`` (``*_tune`` on tune people, the others on test people).
    """
    folds = list(folds)
    rows = []
    for gene in genes:
        for fold in folds:
            fit = fit_linear(ds, gene, fold, **kw)
            tune = fit.predictions[fit.predictions["split"] == "tune"]
            rows.append(
                {
                    "gene": fit.gene,
                    "fold": fit.fold,
                    "model": fit.model,
                    "train_fraction": kw.get("train_fraction", 1.0),
                    "r2": fit.r2,
                    "pcc": fit.pcc,
                    "r2_tune": r2(tune["observed"], tune["predicted"]),
                    "pcc_tune": pcc(tune["observed"], tune["predicted"]),
                    "n_train": fit.n_train,
                    "n_test": fit.n_test,
                    "n_variants": len(fit.coefficients),
                    "n_nonzero": int(np.count_nonzero(fit.coefficients.to_numpy())),
                }
            )
    return pd.DataFrame(rows)
