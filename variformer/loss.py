"""Variformer's loss: MSE plus the mean squared error of all pairwise differences in a batch.

Paper (Methods, "Loss function"): every batch holds different people of the same gene; the
pairwise term compares predicted and observed expression *differences* between people, so it
rewards getting the genetic effects right rather than the gene's mean level; the MSE term keeps
the predictions on the observed scale. The two are weighted one half each.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["pairwise_difference_loss", "variformer_loss"]


def _as_float32_pair(pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if pred.ndim != 1 or pred.shape != target.shape:
        # (B,) vs (B, 1) would silently broadcast to (B, B) in the subtraction
        raise ValueError(
            f"pred and target must both have shape (batch,), got {tuple(pred.shape)} and {tuple(target.shape)}"
        )
    # float32 even under bf16 autocast: differences of nearby bf16 values lose most digits
    return pred.float(), target.to(device=pred.device, dtype=torch.float32)


def pairwise_difference_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean over unique pairs ``i < j`` of ``((pred_i - pred_j) - (target_i - target_j)) ** 2``.

    Parameters
    ----------
    pred : torch.Tensor, shape=(B,)
        Predictions for B people of one gene (any float dtype).
    target : torch.Tensor, shape=(B,)
        Observed expression, same order.

    Returns
    -------
    torch.Tensor, shape=(), float32
        0 (still differentiable) for a batch of one person, which has no pairs.
    """
    pred32, target32 = _as_float32_pair(pred, target)
    n = pred32.shape[0]
    if n < 2:
        return (pred32 * 0.0).sum()
    i, j = torch.triu_indices(n, n, offset=1, device=pred32.device)
    diff = (pred32[i] - pred32[j]) - (target32[i] - target32[j])
    return diff.square().mean()


def variformer_loss(
    pred: torch.Tensor, target: torch.Tensor, *, alpha: float = 0.5
) -> torch.Tensor:
    """``alpha * MSE(pred, target) + (1 - alpha) * pairwise_difference_loss(pred, target)``.

    Parameters
    ----------
    pred : torch.Tensor, shape=(B,)
    target : torch.Tensor, shape=(B,)
    alpha : float, default 0.5
        Weight of the MSE term, in [0, 1]: 0.5 in the paper, 1 (MSE only) when training on the
        reference genome, 0 for the pairwise term only.

    Returns
    -------
    torch.Tensor, shape=(), float32
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must lie in [0, 1], got {alpha}")
    pred32, target32 = _as_float32_pair(pred, target)
    mse = F.mse_loss(pred32, target32)
    if alpha == 1.0:  # reference-genome mode; skip the O(B^2) term
        return mse
    return alpha * mse + (1.0 - alpha) * pairwise_difference_loss(pred32, target32)
