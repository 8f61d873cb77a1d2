"""Cross-validated elastic net / lasso with one shared Gram matrix per fit.

:func:`enet_cv` chooses the penalty exactly as ``sklearn.linear_model.ElasticNetCV`` does
(the same alpha grid from the training data, the same ``KFold`` inner splits, a path of
coordinate-descent fits warm-started from the largest alpha down, the alpha with the lowest
mean held-out MSE, then a refit on all training rows), but computes the inner folds' Gram
matrices by subtraction from one ``X.T @ X`` instead of once per fold, and runs coordinate
descent on the Gram matrix (``precompute``), which is several times faster when the window
has hundreds of SNVs. Coordinate descent stops at the same duality-gap tolerance, so the
coefficients agree with ``ElasticNetCV`` to that tolerance (tests compare them).

With ``patience`` (``variformer baselines``' default) the inner folds walk the grid together
and the path stops once the held-out MSE has clearly risen past its minimum
(:func:`stop_index`): the smallest alphas, where the model interpolates and coordinate descent
runs into ``max_iter``, hold nearly all of the cost and are never chosen on a U-shaped CV
curve. Every alpha it reaches has ``ElasticNetCV``'s held-out MSE; the choice differs only if
the MSE falls below its earlier minimum again after such a rise (benchmarks/README.md counts).

Only the rows passed in are ever seen: callers pass the fold's train people.
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import enet_path
from sklearn.model_selection import KFold

__all__ = ["PATIENCE", "RISE", "PenaltyFit", "alpha_grid", "enet_cv", "stop_index"]

PATIENCE = 10  # alphas in a row above the minimum before the path stops (baselines default)
RISE = 0.02  # ... each more than 2% above it


class PenaltyFit(NamedTuple):
    """A penalized fit whose penalty was chosen by inner cross-validation."""

    coef: np.ndarray  # shape=(n_features,)
    intercept: float
    alpha: float  # the chosen penalty
    alphas: np.ndarray  # shape=(n_alphas,), the grid, largest first
    mse_path: np.ndarray  # shape=(n_alphas, n_folds), held-out MSE per alpha and inner fold


def alpha_grid(
    X: np.ndarray, y: np.ndarray, *, l1_ratio: float, n_alphas: int = 100, eps: float = 1e-3
) -> np.ndarray:
    """ElasticNetCV's alpha grid: ``alpha_max`` (all coefficients zero) down to ``eps * alpha_max``.

    Parameters
    ----------
    X : np.ndarray, shape=(n, p)
    y : np.ndarray, shape=(n,)
    l1_ratio : float
    n_alphas : int
    eps : float

    Returns
    -------
    np.ndarray, shape=(n_alphas,)
        Geometric grid, largest first (``sklearn.linear_model._coordinate_descent._alpha_grid``
        with an intercept).
    """
    xy = X.T @ (y - y.mean())  # = centred X.T @ centred y
    alpha_max = float(np.max(np.abs(xy))) / (len(y) * l1_ratio) if xy.size else 0.0
    tiny = np.finfo(np.float64).resolution
    if alpha_max <= tiny:
        return np.full(n_alphas, tiny)
    return np.geomspace(alpha_max, alpha_max * eps, num=n_alphas)


def _centred(gram, xy, s, ysum, n):
    """Centre raw cross-products of n rows: X'X - s s'/n and X'y - s ybar (and ybar)."""
    ybar = ysum / n
    return gram - np.outer(s, s) / n, xy - s * ybar, ybar


def _path(xc, yc, gram, xy, *, alphas, l1_ratio, max_iter, tol, coef_init=None):
    with warnings.catch_warnings():
        # the paper kept max_iter=2000; unconverged tails of the path are expected
        warnings.simplefilter("ignore", ConvergenceWarning)
        _, coefs, _ = enet_path(
            xc,
            yc,
            l1_ratio=l1_ratio,
            alphas=alphas,
            precompute=gram,
            Xy=xy,
            max_iter=max_iter,
            tol=tol,
            coef_init=coef_init,
            check_input=False,
            copy_X=False,
        )
    return coefs  # (p, n_alphas)


class _InnerFold(NamedTuple):
    xc: np.ndarray  # centred train rows of the inner fold
    yc: np.ndarray
    gram: np.ndarray
    xy: np.ndarray
    held: np.ndarray  # held-out rows, centred by the inner train means
    y_held: np.ndarray  # held-out targets minus the inner train mean


def _held_mse(fold: _InnerFold, coefs: np.ndarray) -> np.ndarray:
    """Held-out MSE of each column of ``coefs``, shape=(p, k) -> (k,)."""
    return ((fold.held @ coefs - fold.y_held[:, None]) ** 2).mean(axis=0)


def stop_index(mean_mse: np.ndarray, *, patience: int, rise: float) -> int | None:
    """Where the early-stopped path ends: the first alpha index after which it stops, or None.

    The path stops at index ``i`` once the mean held-out MSE of the last ``patience`` alphas
    (``i - patience + 1 .. i``) has each been more than ``(1 + rise)`` times the lowest mean
    MSE seen so far. Read left to right (largest alpha first), as the path is computed.

    Parameters
    ----------
    mean_mse : np.ndarray, shape=(k,)
        Mean held-out MSE over inner folds of the first ``k`` alphas of the grid.
    patience : int
    rise : float

    Returns
    -------
    int or None
        The index ``i`` (the path holds alphas ``0..i``), or None if it never stops.
    """
    above = 0
    best = np.inf
    for i, m in enumerate(mean_mse):
        best = min(best, m)
        above = above + 1 if m > best * (1.0 + rise) else 0
        if above >= patience:
            return i
    return None


def enet_cv(
    X: np.ndarray,
    y: np.ndarray,
    *,
    l1_ratio: float = 0.5,
    cv: int = 5,
    seed: int = 0,
    n_alphas: int = 100,
    eps: float = 1e-3,
    max_iter: int = 2000,
    tol: float = 1e-4,
    patience: int | None = None,
    rise: float = RISE,
) -> PenaltyFit:
    """Elastic net (lasso with ``l1_ratio=1``) with the penalty chosen by K-fold CV on ``X, y``.

    Parameters
    ----------
    X : np.ndarray, shape=(n, p), float64
        Features of the training rows only (e.g. ALT dosages 0/1/2), no constant columns
        needed but allowed.
    y : np.ndarray, shape=(n,), float64
    l1_ratio : float
        Elastic-net mixing, in (0, 1].
    cv : int
        Inner folds: ``KFold(n_splits=min(cv, n), shuffle=True, random_state=seed)``, as
        ``ElasticNetCV(cv=KFold(...))``.
    seed : int
    n_alphas, eps : int, float
        The penalty grid (:func:`alpha_grid`).
    max_iter, tol : int, float
        Coordinate descent limits per alpha (the paper's ``max_iter=2000``; sklearn's tol).
    patience : int or None
        None (default): every alpha of the grid, exactly ``ElasticNetCV``'s choice. An int:
        the inner folds walk the grid together and stop once the mean held-out MSE has been
        more than ``(1 + rise)`` times its minimum so far for ``patience`` alphas in a row
        (:func:`stop_index`); the smallest alphas, where coordinate descent is slowest and the
        model overfits, are then never fitted. The choice can differ from ``ElasticNetCV``'s
        only if the held-out MSE falls again below its earlier minimum after such a rise.
    rise : float
        See ``patience``.

    Returns
    -------
    PenaltyFit
        ``mse_path`` is NaN for the alphas after an early stop.
    """
    X = np.ascontiguousarray(X, dtype=np.float64)
    y = np.ascontiguousarray(y, dtype=np.float64)
    n = len(y)
    alphas = alpha_grid(X, y, l1_ratio=l1_ratio, n_alphas=n_alphas, eps=eps)
    # raw cross-products of all training rows, computed once and shared by every inner fold
    gram_all, xy_all = X.T @ X, X.T @ y
    s_all, ysum_all = X.sum(axis=0), y.sum()
    inner = []
    for train, held in KFold(n_splits=min(cv, n), shuffle=True, random_state=seed).split(X):
        xh, yh = X[held], y[held]
        m = n - len(held)
        gram, xy, ybar = _centred(
            gram_all - xh.T @ xh, xy_all - xh.T @ yh, s_all - xh.sum(axis=0), ysum_all - yh.sum(), m
        )
        mean = (s_all - xh.sum(axis=0)) / m
        inner.append(_InnerFold(X[train] - mean, y[train] - ybar, gram, xy, xh - mean, yh - ybar))
    options = dict(l1_ratio=l1_ratio, max_iter=max_iter, tol=tol)
    if patience is None:
        mse_path = np.stack(
            [
                _held_mse(f, _path(f.xc, f.yc, f.gram, f.xy, alphas=alphas, **options))
                for f in inner
            ],
            axis=1,
        )
    else:
        if patience < 1:
            raise ValueError(f"patience must be None or at least 1, got {patience}")
        mse_path = np.full((len(alphas), len(inner)), np.nan)
        coefs = [None] * len(inner)  # each fold warm-starts from its previous alpha
        for i in range(len(alphas)):
            for k, f in enumerate(inner):
                step = _path(
                    f.xc,
                    f.yc,
                    f.gram,
                    f.xy,
                    alphas=alphas[i : i + 1],
                    coef_init=coefs[k],
                    **options,
                )
                coefs[k] = step[:, 0]
                mse_path[i, k] = _held_mse(f, step)[0]
            if stop_index(mse_path[: i + 1].mean(axis=1), patience=patience, rise=rise) is not None:
                break
    best = int(np.nanargmin(mse_path.mean(axis=1)))
    gram, xy, ybar = _centred(gram_all, xy_all, s_all, ysum_all, n)
    mean = s_all / n
    # the refit at the chosen alpha starts from zero, as ElasticNetCV's final ElasticNet does
    coef = _path(X - mean, y - ybar, gram, xy, alphas=alphas[best : best + 1], **options)[:, 0]
    return PenaltyFit(
        coef=coef,
        intercept=float(ybar - mean @ coef),
        alpha=float(alphas[best]),
        alphas=alphas,
        mse_path=mse_path,
    )
