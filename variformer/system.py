"""The training system: a LightningModule that receives a :class:`~variformer.model.Variformer`.

It owns the loss, the optimizer and the tune metrics; in haplotype mode (batches of shape
(b, 2, L, 4), issue #24) it runs the model on the 2b haplotype windows in one forward and a
person's prediction is the mean of their two (:meth:`VariformerSystem.person_predictions`), on which
the loss and the metrics are computed; the network stays a plain ``nn.Module``
stored as ``self.model`` (checkpoint keys ``model.*``), and ``hyper_parameters`` hold the
Enformer hyperparameters under ``enformer_hparams`` so ``Variformer.load`` can rebuild it.

Tune metrics are computed once per validation epoch from every tune item of every rank
(gathered, then scikit-learn / scipy), so they equal what ``r2_score`` and ``pearsonr`` give
on the full tune set:

- ``tune_r2_mean`` / ``tune_pcc_mean``: mean over train genes of R2 / PCC across tune people
  (``tune_r2/<gene>`` per gene, logged for up to :data:`MAX_GENE_METRICS` genes);
- ``heldout_pcc_mean``: mean PCC over held-out tune genes (``data.tune_genes``);
- ``tune_loss``: MSE over the train genes' tune items (the reference-genome monitor).
"""

from __future__ import annotations

from collections.abc import Sequence

import lightning as L
import numpy as np
import torch
from torch import nn

from core.errors import InputError
from core.metrics import nanmean, r2_pcc
from variformer.data import group_by_gene
from variformer.loss import variformer_loss

#: above this many genes, per-gene tune metrics are not logged (only their means)
MAX_GENE_METRICS = 100


class TrainingDiverged(InputError):
    """The model's predictions became NaN or infinite (a learning rate too high for the data)."""


class VariformerSystem(L.LightningModule):
    """Fine-tune a Variformer with AdamW on the Variformer loss.

    Parameters
    ----------
    model : nn.Module
        Maps x, shape=(B, L, 4) float, to predictions, shape=(B,). Batches of shape
        (B, 2, L, 4) (haplotype mode) are predicted as the mean over the second axis.
    gene_names : sequence of str
        Train genes (gene index ``g`` of a batch names ``gene_names[g]``).
    heldout_gene_names : sequence of str
        Held-out tune genes, gene indices ``len(gene_names) + j``.
    learning_rate, weight_decay : float
        AdamW settings (paper: 5e-6).
    alpha : float
        Loss weight of the MSE term; ``1 - alpha`` weighs the pairwise-difference term.
    enformer_hparams : dict, optional
        Enformer hyperparameters to store in checkpoints (default: ``model.enformer_hparams``).
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        gene_names: Sequence[str],
        heldout_gene_names: Sequence[str] = (),
        learning_rate: float = 5e-6,
        weight_decay: float = 0.01,
        alpha: float = 0.5,
        enformer_hparams: dict | None = None,
    ) -> None:
        super().__init__()
        self.model = model
        self.save_hyperparameters(ignore=["model"])
        if enformer_hparams is None:
            self.hparams["enformer_hparams"] = dict(getattr(model, "enformer_hparams", None) or {})
        self.hparams["freeze_trunk"] = bool(getattr(model, "freeze_trunk", False))
        self.hparams["train_batchnorm"] = bool(getattr(model, "train_batchnorm", False))
        self.hparams["gene_names"] = list(gene_names)
        self.hparams["heldout_gene_names"] = list(heldout_gene_names)
        self._val_rows: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.person_predictions(x)

    def person_predictions(self, x: torch.Tensor) -> torch.Tensor:
        """People's predictions, shape=(B,), from x of shape (B, L, 4), or (B, 2, L, 4): each
        person's two haplotype windows, run as one batch of 2B, their predictions averaged
        (in float32)."""
        if x.ndim != 4:
            return self.model(x)
        b = x.shape[0]
        return self.model(x.reshape(b * 2, *x.shape[2:])).reshape(b, 2).float().mean(dim=1)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        params = [p for p in self.model.parameters() if p.requires_grad]
        return torch.optim.AdamW(
            params, lr=self.hparams.learning_rate, weight_decay=self.hparams.weight_decay
        )

    def on_train_epoch_start(self) -> None:
        # Lightning only calls set_epoch on samplers, not on batch samplers
        loader = self.trainer.train_dataloader
        set_epoch = getattr(getattr(loader, "batch_sampler", None), "set_epoch", None)
        if callable(set_epoch):
            set_epoch(self.current_epoch)

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        x, y, _ = batch
        pred = self.person_predictions(x)
        loss = variformer_loss(pred, y, alpha=self.hparams.alpha)
        self.log("train_loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=len(y))
        return loss

    def on_validation_epoch_start(self) -> None:
        self._val_rows = []

    def validation_step(self, batch, batch_idx: int) -> None:
        x, y, g = batch
        pred = self.person_predictions(x).detach().float()
        self._val_rows.append(torch.stack([g.float(), y.float(), pred], dim=1))

    def _gather_rows(self) -> np.ndarray:
        """All ranks' (gene, observed, predicted) rows, shape=(n, 3); ranks hold unequal counts."""
        local = (
            torch.cat(self._val_rows) if self._val_rows else torch.zeros(0, 3, device=self.device)
        )
        world = self.trainer.world_size
        if world == 1:
            return local.cpu().numpy()
        n = torch.tensor([len(local)], device=self.device)
        sizes = self.all_gather(n).flatten().tolist()
        padded = torch.zeros(max(sizes), 3, device=self.device)
        padded[: len(local)] = local
        gathered = self.all_gather(padded)  # (world, max_n, 3)
        return torch.cat([gathered[r, : sizes[r]] for r in range(world)]).cpu().numpy()

    def on_validation_epoch_end(self) -> None:
        rows = self._gather_rows()
        self._val_rows = []
        genes = self.hparams.gene_names
        heldout = self.hparams.heldout_gene_names
        gene_index = rows[:, 0].round().astype(np.int64)
        metrics: dict[str, float] = {}
        per_gene: dict[str, float] = {}
        r2s, pccs, held_pccs = [], [], []
        names = [*genes, *heldout]
        if not np.isfinite(rows[:, 2]).all():
            raise TrainingDiverged(
                f"training diverged by epoch {self.current_epoch + 1}: "
                f"{int((~np.isfinite(rows[:, 2])).sum())} tune predictions are not finite"
            )
        for g, sel in enumerate(group_by_gene(gene_index, len(names))):
            name = names[g]
            if not len(sel):
                continue
            r2, pcc = r2_pcc(rows[sel, 1], rows[sel, 2])  # NaN where undefined
            if g < len(genes):
                r2s.append(r2)
                pccs.append(pcc)
                per_gene[f"tune_r2/{name}"] = r2
            else:
                held_pccs.append(pcc)
                per_gene[f"heldout_pcc/{name}"] = pcc
        train_rows = rows[gene_index < len(genes)]
        if len(train_rows):
            metrics["tune_loss"] = float(np.mean((train_rows[:, 2] - train_rows[:, 1]) ** 2))
        metrics["tune_r2_mean"] = nanmean(r2s)
        metrics["tune_pcc_mean"] = nanmean(pccs)
        if heldout:
            metrics["heldout_pcc_mean"] = nanmean(held_pccs)
        # identical on every rank (computed from gathered rows): sync_dist averages equal values,
        # which keeps the monitors consistent and Lightning's DDP warning quiet
        self.log_dict(metrics, prog_bar=True, sync_dist=True)
        if len(genes) + len(heldout) <= MAX_GENE_METRICS:
            self.log_dict(per_gene, sync_dist=True)
