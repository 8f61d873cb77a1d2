"""Input attributions: gradient x input, the paper's standardized attribution, matched controls,
and a screen-then-confirm ISM that ranks SNVs by gradients and confirms the top ones exactly.

Paper (Methods, "Input sequence attribution"): gradient x input on the reference window and on
personal windows (averaged over people), ``|.|``, the maximum over the 4 bases, z-scored within
the window = the "standardized attribution", read at driver/HSV SNVs and at matched control
SNVs (same window, TSS distance within 2.5 kb, MAF within 10% for drivers / 0.5% for HSVs).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd
import torch
from torch import nn

from core.errors import InputError
from variformer.analysis.mutagenesis import check_sequence, ism, variant_edits
from variformer.predict import inference_context, model_dtype

__all__ = [
    "ScreenResult",
    "gradient_x_input",
    "matched_controls",
    "screen_then_confirm",
    "standardized_attribution",
]


def _forward_with_grad(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    # Variformer.forward runs a frozen trunk under no_grad; the split forward never does
    if callable(getattr(model, "forward_tower", None)):
        return model.forward_from_tower(model.forward_tower(x))
    return model(x)


def _gradients(
    model: nn.Module, X: np.ndarray, *, batch_size: int, device
) -> tuple[np.ndarray, np.ndarray]:
    """Gradients of the output with respect to the input, and the outputs: (n, L, 4), (n,)."""
    X = np.asarray(X, dtype=np.float32)
    if X.ndim != 3 or X.shape[-1] != 4:
        raise InputError(f"sequences must have shape (n, length, 4), got {X.shape}")
    grads, outs = [], []
    with inference_context(model, device, grad=True) as dev:
        dtype = model_dtype(model)
        for lo in range(0, len(X), batch_size):
            x = torch.from_numpy(X[lo : lo + batch_size]).to(dev, dtype).requires_grad_(True)
            y = _forward_with_grad(model, x)
            (g,) = torch.autograd.grad(y.sum(), x)
            grads.append(g.float().cpu().numpy())
            outs.append(y.detach().float().cpu().numpy())
    return np.concatenate(grads), np.concatenate(outs)


def gradient_x_input(
    model: nn.Module,
    X: np.ndarray,
    *,
    batch_size: int = 8,
    device: str | torch.device | None = None,
) -> np.ndarray:
    """Gradient of the prediction with respect to the input, times the input.

    Parameters
    ----------
    model : torch.nn.Module
        A :class:`variformer.Variformer` or :class:`variformer.predict.CenterBins`-wrapped
        Enformer (one value per sequence); run in eval mode, fp32.
    X : np.ndarray, shape=(n, L, 4)
        One-hot or averaged one-hot sequences.
    batch_size : int, default 8
    device : str or torch.device, optional
        Default: CUDA if available, else the CPU.

    Returns
    -------
    np.ndarray, shape=(n, L, 4), float32
    """
    X = np.asarray(X, dtype=np.float32)
    grads, _ = _gradients(model, X, batch_size=batch_size, device=device)
    return grads * X


def standardized_attribution(gxi: np.ndarray) -> np.ndarray:
    """The paper's standardized attribution track of one window.

    Parameters
    ----------
    gxi : np.ndarray, shape=(L, 4) or (n, L, 4)
        Gradient x input; with several backgrounds (people) the mean over them is taken first.

    Returns
    -------
    np.ndarray, shape=(L,), float64
        ``|mean gxi|`` maximised over the bases, z-scored over the window's positions (all
        zeros if the track is constant).
    """
    gxi = np.asarray(gxi, dtype=np.float64)
    if gxi.ndim == 3:
        gxi = gxi.mean(axis=0)
    if gxi.ndim != 2 or gxi.shape[-1] != 4:
        raise InputError(f"gradient x input must have shape (L, 4) or (n, L, 4), got {gxi.shape}")
    track = np.abs(gxi).max(axis=1)
    sd = track.std()
    return (track - track.mean()) / sd if sd > 0 else np.zeros_like(track)


def matched_controls(
    variants: pd.DataFrame,
    targets: np.ndarray,
    *,
    max_tss_difference: float = 2500,
    max_maf_difference: float = 0.10,
) -> pd.DataFrame:
    """Control SNVs for each target SNV of one window (Fig. S10's matching).

    Parameters
    ----------
    variants : pd.DataFrame
        One window's SNVs with ``tss_distance`` (bp, signed) and ``maf`` (a fraction).
    targets : np.ndarray of bool, shape=(V,), or of int
        The drivers / HSVs (mask or row positions).
    max_tss_difference : float, default 2500
        A control's TSS distance lies within this many bp of its target's.
    max_maf_difference : float, default 0.10
        A control's MAF lies within this of its target's (0.10 for drivers, 0.005 for HSVs).

    Returns
    -------
    pd.DataFrame
        Columns ``target`` and ``control``: row positions in ``variants``, one row per pair.
        Controls are never targets themselves; a target may have none.
    """
    for col in ("tss_distance", "maf"):
        if col not in variants.columns:
            raise InputError(f"variants lack column {col!r} needed to match controls")
    n = len(variants)
    mask = np.zeros(n, dtype=bool)
    mask[np.asarray(targets)] = True
    dist = variants["tss_distance"].to_numpy(dtype=np.float64)
    maf = variants["maf"].to_numpy(dtype=np.float64)
    tgt, ctl = np.flatnonzero(mask), np.flatnonzero(~mask)
    ok = (np.abs(dist[tgt, None] - dist[None, ctl]) <= max_tss_difference) & (
        np.abs(maf[tgt, None] - maf[None, ctl]) <= max_maf_difference
    )
    i, j = np.nonzero(ok)
    return pd.DataFrame({"target": tgt[i], "control": ctl[j]})


class ScreenResult(NamedTuple):
    """Result of :func:`screen_then_confirm`.

    Attributes
    ----------
    screen : np.ndarray, shape=(V,), float32
        First-order estimate of each SNV's ISM score, gradient . (x_alt - x), at the background.
    scores : np.ndarray, shape=(V,), float32
        Exact ISM scores of the confirmed SNVs; NaN elsewhere.
    confirmed : np.ndarray, shape=(n_confirm,), int64
        Row positions that were scored exactly, in screen order (largest ``|screen|`` first).
    top : np.ndarray, shape=(k,), int64
        The top ``k`` confirmed SNVs by exact ``|score|``, largest first.
    """

    screen: np.ndarray
    scores: np.ndarray
    confirmed: np.ndarray
    top: np.ndarray


def screen_then_confirm(
    model: nn.Module,
    sequence: np.ndarray,
    variants: pd.DataFrame,
    *,
    k: int,
    n_confirm: int | None = None,
    batch_size: int = 16,
    device: str | torch.device | None = None,
) -> ScreenResult:
    """Rank all SNVs by one backward pass, then score the best ``n_confirm`` exactly (fast ISM).

    Parameters
    ----------
    model, sequence, variants, batch_size, device
        As for :func:`variformer.analysis.ism`.
    k : int
        Size of the top set wanted (e.g. the gene's HSV count).
    n_confirm : int, optional
        SNVs scored exactly; default ``2 * k``. Compute saved vs full ISM:
        ``1 - n_confirm / V`` of the per-variant forwards, for one extra backward pass.

    Returns
    -------
    ScreenResult
    """
    if k < 1:
        raise InputError(f"k must be >= 1, got {k}")
    seq = check_sequence(sequence)
    pos0, alt = variant_edits(seq, variants)
    n_confirm = min(len(pos0), 2 * k if n_confirm is None else int(n_confirm))
    grads, _ = _gradients(model, seq[None], batch_size=1, device=device)
    g = grads[0]
    screen = (g[pos0, alt] - (g[pos0] * seq[pos0]).sum(axis=1)).astype(np.float32)
    order = np.argsort(-np.abs(screen), kind="stable")
    confirmed = order[:n_confirm]
    scores = np.full(len(pos0), np.nan, dtype=np.float32)
    scores[confirmed] = ism(
        model,
        seq,
        variants.iloc[confirmed],
        method="fast",
        batch_size=batch_size,
        device=device,
    )
    top = confirmed[np.argsort(-np.abs(scores[confirmed]), kind="stable")[:k]]
    return ScreenResult(screen, scores, confirmed.astype(np.int64), top.astype(np.int64))
